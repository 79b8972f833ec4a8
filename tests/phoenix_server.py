"""Start the REAL Phoenix server (``python -m services.phoenix.server``, from .venv-phoenix) for tests.

Usage::

    proc, url = start_phoenix(tmp_path)    # url: "http://127.0.0.1:PORT"
    try:
        ...   # export OTLP/HTTP to f"{url}/v1/traces", read spans from f"{url}/v1/projects/<p>/spans"
    finally:
        stop(proc)
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from llm_server import REPO_ROOT, free_port, stop

__all__ = ["start_phoenix", "stop", "read_spans"]


def start_phoenix(data_dir: Path, *, timeout_s: float = 120.0) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = os.environ | {
        "RAG_DATA_DIR": str(data_dir),
        "RAG_PHOENIX_PORT": str(port),
        "RAG_PHOENIX_GRPC_PORT": str(free_port()),
    }
    log = data_dir / "phoenix.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.phoenix.server"],
            cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"phoenix exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(1)
    stop(proc)
    raise RuntimeError(f"phoenix not ready after {timeout_s:.0f} s:\n{log.read_text()[-3000:]}")


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
