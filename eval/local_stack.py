"""A temporary local stack for ``make eval`` when nothing answers at the API URL.

The same processes as ``make run`` (the real llama.cpp server, ``python -m services.llm.server``, and the
real API, ``python -m services.api.main``), but the API gets its own store under ``.data/eval``: the whole
fitz-gov corpus (5,043 documents) ingested once, as ``corpus/<fitz-gov id>.md`` so a hit's file name is its
judged id, and reused by every later run. Logs go to ``<data dir>/logs/``; ``stop()`` ends exactly the
processes it started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx

REPO = Path(__file__).resolve().parents[1]


def say(message: str) -> None:
    print(f"[eval] {message}", flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalStack:
    def __init__(self, api_url: str, data_dir: Path, *, ready_timeout_s: float = 600.0) -> None:
        parsed = urlparse(api_url)
        self.api_url = api_url.rstrip("/")
        self.llm_url = ""  # the local LLM's OpenAI-compatible base URL once started (a judge can use it)
        self.api_host = parsed.hostname or "127.0.0.1"
        self.api_port = parsed.port or 8000
        self.data_dir = data_dir
        self.ready_timeout_s = ready_timeout_s
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self) -> None:
        say(f"nothing answers at {self.api_url}: starting a local stack (store {self.data_dir})")
        from ingest.sample import ensure_corpus_index

        ensure_corpus_index(self.data_dir, say)
        try:
            llm_port = free_port()
            llm_url = self.llm_url = f"http://127.0.0.1:{llm_port}/v1"
            self._spawn("llm", {"RAG_LLM_HOST": "127.0.0.1", "RAG_LLM_PORT": str(llm_port)}, "services.llm.server")
            self._wait("llm", f"{llm_url}/models")
            env = {
                "RAG_DATA_DIR": str(self.data_dir),
                "RAG_API_HOST": self.api_host,
                "RAG_API_PORT": str(self.api_port),
                "RAG_LLM_BASE_URL": llm_url,
            }
            self._spawn("api", env, "services.api.main")
            self._wait("api", f"{self.api_url}/readyz?strict=true")
        except BaseException:
            self.stop()
            raise

    def _spawn(self, name: str, env: dict[str, str], module: str) -> None:
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with (logs / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", module],
                cwd=REPO,
                env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stop() ends it and its children only
            )
        self.procs.append((name, proc))
        say(f"started {name} (pid {proc.pid}, log {logs / f'{name}.log'})")

    def _wait(self, name: str, url: str) -> None:
        proc = dict(self.procs)[name]
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}; see {self.data_dir / 'logs' / name}.log")
            try:
                if httpx.get(url, timeout=3.0).status_code == 200:
                    say(f"{name} ready ({url})")
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1.0)
        raise RuntimeError(f"{name} not ready after {self.ready_timeout_s:.0f} s ({url})")

    def stop(self) -> None:
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for name, proc in reversed(self.procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            say(f"stopped {name}")
        self.procs.clear()
