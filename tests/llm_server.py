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
import tempfile
from pathlib import Path

from services.core.processes import ManagedProcess, free_port

__all__ = ["REPO_ROOT", "DATA_DIR", "free_port", "start_llm_server", "stop"]

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = REPO_ROOT / ".data"  # the GGUFs are assembled and verified under <data dir>/models, once


def start_llm_server(
    alias: str = "smollm2-135m",
    port: int | None = None,
    *,
    timeout_s: float = 120.0,
    ctx: int = 2048,
    threads: int = 1,
) -> tuple[ManagedProcess, str]:
    """Start the server; ``threads=1`` because llama.cpp's spinning threads collapse when cores are shared.
    Its log is a temporary file, removed by ``stop`` (and kept, named in the error, when it fails to start)."""
    port = port or free_port()
    env = {
        "RAG_LLM_GGUF": alias,
        "RAG_LLM_MODEL": alias,
        "RAG_LLM_HOST": "127.0.0.1",
        "RAG_LLM_PORT": str(port),
        "RAG_LLM_CTX": str(ctx),
        "RAG_LLM_THREADS": str(threads),
        "RAG_DATA_DIR": str(DATA_DIR),
        "HF_HUB_OFFLINE": "1",
    }
    fd, log = tempfile.mkstemp(prefix=f"llm-server-{alias}-", suffix=".log")
    os.close(fd)
    base_url = f"http://127.0.0.1:{port}/v1"
    proc = ManagedProcess.module(
        "LLM server", "services.llm.server", env=env, cwd=REPO_ROOT, log=Path(log), delete_log=True
    ).start_ready(f"{base_url}/models", timeout_s)
    return proc, base_url


def stop(proc: ManagedProcess, grace_s: float = 10.0) -> None:
    proc.stop(grace_s)
