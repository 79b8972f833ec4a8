"""Start the REAL API process (``python -m services.api.main``, uvicorn) for reliability tests.

Usage::

    api = start_api(tmp_path, {"RAG_LLM_BASE_URL": llm_url})
    try:
        httpx.post(f"{api.base}/search", json={"query": "..."})
    finally:
        api.stop()
    api.log_text()   # everything the process logged
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from llm_server import REPO_ROOT, free_port


@dataclass
class ApiProcess:
    proc: subprocess.Popen
    base: str
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def start_api(data_dir: Path, env: dict[str, str], *, timeout_s: float = 120.0) -> ApiProcess:
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    full_env = os.environ | {
        "RAG_DATA_DIR": str(data_dir),
        "RAG_API_PORT": str(port),
        "RAG_RERANKER": "none",
        "RAG_LOG_LEVEL": "DEBUG",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    full_env.update(env)
    log = data_dir / "api.log"
    with log.open("wb") as fh:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.api.main"],
            cwd=REPO_ROOT,
            env=full_env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    api = ApiProcess(proc, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"API exited with {proc.returncode}:\n{api.log_text()[-3000:]}")
        try:
            if httpx.get(f"{api.base}/healthz", timeout=2).status_code == 200:
                return api
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            api.stop()
            raise RuntimeError(f"API not up after {timeout_s:.0f} s:\n{api.log_text()[-3000:]}")
        time.sleep(0.3)
