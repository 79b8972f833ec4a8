"""A temporary local stack for ``make eval`` when nothing answers at the API URL.

The same processes as ``make run`` (the real llama.cpp server, ``python -m services.llm.server``, and the
real API, ``python -m services.api.main``), but the API gets its own store under ``.data/eval``: the whole
fitz-gov corpus (5,043 documents) ingested once, as ``corpus/<fitz-gov id>.md`` so a hit's file name is its
judged id, and reused by every later run. Logs go to ``<data dir>/logs/``; ``stop()`` ends exactly the
processes it started.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from services.core.processes import ManagedProcess, free_port, stop_all

REPO = Path(__file__).resolve().parents[1]


def say(message: str) -> None:
    print(f"[eval] {message}", flush=True)


class LocalStack:
    def __init__(self, api_url: str, data_dir: Path, *, ready_timeout_s: float = 600.0) -> None:
        parsed = urlparse(api_url)
        self.api_url = api_url.rstrip("/")
        self.llm_url = ""  # the local LLM's OpenAI-compatible base URL once started (a judge can use it)
        self.api_host = parsed.hostname or "127.0.0.1"
        self.api_port = parsed.port or 8000
        self.data_dir = data_dir
        self.ready_timeout_s = ready_timeout_s
        self.procs: list[ManagedProcess] = []

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
        log = self.data_dir / "logs" / f"{name}.log"
        proc = ManagedProcess.module(name, module, env=env, cwd=REPO, log=log).start()
        self.procs.append(proc)
        say(f"started {name} (pid {proc.pid}, log {log})")

    def _wait(self, name: str, url: str) -> None:
        proc = next(p for p in self.procs if p.name == name)
        proc.wait_ready(url, self.ready_timeout_s, interval_s=1.0, request_timeout_s=3.0)
        say(f"{name} ready ({url})")

    def stop(self) -> None:
        procs = list(reversed(self.procs))
        stop_all(procs, grace_s=15)
        for proc in procs:
            say(f"stopped {proc.name}")
        self.procs.clear()
