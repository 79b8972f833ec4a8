"""A temporary local stack for ``make eval`` when nothing answers at the API URL.

The same processes as ``make run`` (the real llama.cpp server, ``python -m services.llm.server``, and the
real API, ``python -m services.api.main``), but the API gets its own store under ``.data/eval``: the whole
fitz-gov corpus (5,043 documents) ingested once, as ``corpus/<fitz-gov id>.md`` so a hit's file name is its
judged id, and reused by every later run. Logs go to ``<data dir>/logs/``; ``stop()`` ends exactly the
processes it started. With ``corpus`` folders it serves what a user's first ``make run`` would: the 400-document
sample corpus, then those folders (the out-of-domain set, eval/ood/), in ``<data dir>``'s own store.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from services.core.processes import ManagedProcess, free_port, stop_all

REPO = Path(__file__).resolve().parents[1]


def say(message: str) -> None:
    print(f"[eval] {message}", flush=True)


def start_llm(data_dir: Path, ready_timeout_s: float = 600.0) -> tuple[str, ManagedProcess]:
    """The local LLM server (``python -m services.llm.server``, as make run starts it) on a free port, ready:
    its OpenAI-compatible base URL and its process."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    log = data_dir / "logs" / "llm.log"
    env = {"RAG_LLM_HOST": "127.0.0.1", "RAG_LLM_PORT": str(port)}
    proc = ManagedProcess.module("llm", "services.llm.server", env=env, cwd=REPO, log=log).start()
    say(f"started llm (pid {proc.pid}, log {log})")
    try:
        proc.wait_ready(f"{url}/models", ready_timeout_s, interval_s=1.0, request_timeout_s=3.0)
    except BaseException:
        stop_all([proc], grace_s=5)
        raise
    say(f"llm ready ({url})")
    return url, proc


def ensure_llm(url: str, data_dir: Path) -> tuple[str, ManagedProcess | None]:
    """``url`` when an LLM answers there (``GET /models``), else a local one started by ``start_llm``."""
    import httpx

    try:
        if httpx.get(f"{url.rstrip('/')}/models", timeout=3.0).status_code == 200:
            return url, None
    except httpx.HTTPError:
        pass
    say(f"no LLM answers at {url}: starting the local one")
    return start_llm(data_dir)


def ensure_folders_index(data_dir: Path, folders: list[Path], sample_docs: int = 400) -> None:
    """The sample corpus a first ``make run`` loads, then each folder, synced into ``data_dir``'s store (a file
    already indexed unchanged is skipped, so a second run only checks)."""
    from ingest.factory import build_pipeline
    from ingest.sample import write_sample_corpus
    from services.core.factory import build_store
    from services.core.settings import IngestSettings

    settings = IngestSettings(data_dir=data_dir)
    sample = data_dir / "sample-corpus"
    write_sample_corpus(sample, sample_docs)
    store = build_store(settings)
    try:
        pipeline = build_pipeline(settings, store=store)
        pipeline.warm_up()
        for folder in [sample, *folders]:
            summary = pipeline.sync(folder, progress=True).summary()
            say(f"{folder}: {summary['added']} added, {summary['unchanged']} unchanged, {summary['chunks']} chunks")
    finally:
        store.close()


class LocalStack:
    def __init__(
        self, api_url: str, data_dir: Path, *, ready_timeout_s: float = 600.0, corpus: list[Path] | None = None
    ) -> None:
        parsed = urlparse(api_url)
        self.api_url = api_url.rstrip("/")
        self.llm_url = ""  # the local LLM's OpenAI-compatible base URL once started (a judge can use it)
        self.api_host = parsed.hostname or "127.0.0.1"
        self.api_port = parsed.port or 8000
        self.data_dir = data_dir
        self.ready_timeout_s = ready_timeout_s
        self.procs: list[ManagedProcess] = []
        self.corpus = corpus

    def start(self) -> None:
        say(f"nothing answers at {self.api_url}: starting a local stack (store {self.data_dir})")
        from ingest.sample import ensure_corpus_index

        if self.corpus:
            ensure_folders_index(self.data_dir, self.corpus)
        else:
            ensure_corpus_index(self.data_dir, say)
        try:
            llm_url, llm = start_llm(self.data_dir, self.ready_timeout_s)
            self.llm_url = llm_url
            self.procs.append(llm)
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
