"""What the numbers were measured on: printed and stored with every result, since they mean nothing alone."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

from services.core.measure import cpu_name


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    import psutil

    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_avg_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "versions": {
            p: _version(p)
            for p in ("torch", "sentence-transformers", "onnxruntime", "openvino", "qdrant-client", "llama_cpp_python")
        },
    }


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
