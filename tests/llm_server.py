"""Start the REAL local LLM server (``python -m services.llm.server``) as a subprocess, for tests.

Usage::

    proc, base_url = start_llm_server("smollm2-135m")   # base_url: "http://127.0.0.1:PORT/v1"
    try:
        ...
    finally:
        stop(proc)
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = REPO_ROOT / ".data"  # the GGUFs are assembled and verified under <data dir>/models, once


class LLMServerError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


def start_llm_server(
    alias: str = "smollm2-135m",
    port: int | None = None,
    *,
    timeout_s: float = 120.0,
    ctx: int = 2048,
    threads: int = 1,
) -> tuple[subprocess.Popen, str]:
    """Start the server; ``threads=1`` because llama.cpp's spinning threads collapse when cores are shared."""
    port = port or free_port()
    env = dict(os.environ)
    env.update(
        {
            "RAG_LLM_GGUF": alias,
            "RAG_LLM_MODEL": alias,
            "RAG_LLM_HOST": "127.0.0.1",
            "RAG_LLM_PORT": str(port),
            "RAG_LLM_CTX": str(ctx),
            "RAG_LLM_THREADS": str(threads),
            "RAG_DATA_DIR": str(DATA_DIR),
            "HF_HUB_OFFLINE": "1",
        }
    )
    log = Path(tempfile.mkstemp(prefix=f"llm-server-{alias}-", suffix=".log")[1])
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.llm.server"],
            cwd=REPO_ROOT,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    proc.log_path = log  # type: ignore[attr-defined]
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise LLMServerError(f"LLM server exited with {proc.returncode} before it was ready:\n{_tail(log)}")
        try:
            if httpx.get(f"{base_url}/models", timeout=2.0).status_code == 200:
                return proc, base_url
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            stop(proc)
            raise LLMServerError(f"LLM server not ready on {base_url} after {timeout_s:.0f} s:\n{_tail(log)}")
        time.sleep(0.5)


def stop(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=grace_s)
    log = getattr(proc, "log_path", None)
    if log is not None:
        Path(log).unlink(missing_ok=True)
