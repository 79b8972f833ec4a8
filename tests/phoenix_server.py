"""Start the REAL Phoenix server (``python -m services.phoenix.server``, from .venv-phoenix) for tests.

Usage::

    proc, url = start_phoenix(tmp_path)    # url: "http://127.0.0.1:PORT"
    try:
        ...   # export OTLP/HTTP to f"{url}/v1/traces", read spans from f"{url}/v1/projects/<p>/spans"
    finally:
        stop(proc)
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from llm_server import REPO_ROOT, stop

from services.core.processes import ManagedProcess, free_port

__all__ = ["start_phoenix", "stop", "read_spans"]


def start_phoenix(data_dir: Path, *, timeout_s: float = 120.0) -> tuple[ManagedProcess, str]:
    port = free_port()
    env = {
        "RAG_DATA_DIR": str(data_dir),
        "RAG_PHOENIX_PORT": str(port),
        "RAG_PHOENIX_GRPC_PORT": str(free_port()),
    }
    url = f"http://127.0.0.1:{port}"
    proc = ManagedProcess.module(
        "phoenix", "services.phoenix.server", env=env, cwd=REPO_ROOT, log=data_dir / "phoenix.log"
    ).start_ready(f"{url}/healthz", timeout_s, interval_s=1.0, grace_s=10)
    return proc, url


def read_spans(
    url: str, project: str, *, expect: int, names: set[str] = frozenset(), timeout_s: float = 30.0
) -> list[dict]:
    """Poll Phoenix's REST API until at least ``expect`` spans, including ``names``, of the project are stored."""
    deadline = time.monotonic() + timeout_s
    spans: list[dict] = []
    while time.monotonic() < deadline:
        r = httpx.get(f"{url}/v1/projects/{project}/spans", params={"limit": 1000}, timeout=10)
        if r.status_code == 200:
            spans = r.json()["data"]
            if len(spans) >= expect and names <= {s["name"] for s in spans}:
                return spans
        time.sleep(1)
    raise AssertionError(f"only {len(spans)} spans in Phoenix project {project!r} after {timeout_s:.0f} s")
