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

import re
from dataclasses import dataclass
from pathlib import Path

from llm_server import REPO_ROOT

from services.core.processes import ManagedProcess, free_port

_CRASH = re.compile(r'Traceback \(most recent call last\)|HTTP/\d(?:\.\d)?" 500\b')


@dataclass
class ApiProcess:
    proc: ManagedProcess
    base: str
    log: Path

    def log_text(self) -> str:
        return self.proc.log_text()

    def crash_lines(self) -> list[str]:
        """Log lines that show a crash: a traceback or an access-log line answered 500.

        Matched on the access-log form, not on a bare " 500": a progress bar's "500.12it/s" is not
        an error (a CI run failed on exactly that).
        """
        return [line for line in self.log_text().splitlines() if _CRASH.search(line)]

    def stop(self) -> None:
        self.proc.stop(grace_s=20)


def start_api(data_dir: Path, env: dict[str, str], *, timeout_s: float = 120.0) -> ApiProcess:
    port = free_port()
    full_env = {
        "RAG_DATA_DIR": str(data_dir),
        "RAG_API_PORT": str(port),
        "RAG_RERANKER": "none",
        "RAG_LOG_LEVEL": "DEBUG",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        **env,
    }
    log = data_dir / "api.log"
    base = f"http://127.0.0.1:{port}"
    proc = ManagedProcess.module("API", "services.api.main", env=full_env, cwd=REPO_ROOT, log=log)
    return ApiProcess(proc.start_ready(f"{base}/healthz", timeout_s, interval_s=0.3, grace_s=20), base, log)
