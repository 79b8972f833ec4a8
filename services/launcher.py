"""``make run``: every service of the compose deployment as a local process, supervised.

A small supervisor rather than honcho: besides prefixed logs and clean shutdown (which honcho has),
it waits for each service's *readiness* in dependency order, prints the URLs only once they answer,
and names the service that died with its exit code and last log lines.

Order: verify the packaged GGUF -> first-run sample ingest (only when the store is empty) -> start
Phoenix, LLM server, API (owns the embedded Qdrant) and Gradio frontend together -> wait for each one's
readiness in that order.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from services.core.processes import ManagedProcess, NotReadyError, ProcessExitedError
from services.core.processes import stop_all as stop_processes
from services.core.settings import Settings

REPO = Path(__file__).resolve().parents[1]
COLORS = ["\033[36m", "\033[33m", "\033[35m", "\033[32m", "\033[34m"]
RESET = "\033[0m"


@dataclass
class Service:
    name: str
    argv: list[str]
    ready_url: str
    env: dict[str, str] = field(default_factory=dict)
    ready_timeout_s: float = 180.0
    proc: ManagedProcess | None = None


def say(message: str) -> None:
    print(f"[launcher] {message}", flush=True)


def services_for(settings: Settings, *, phoenix: bool = True, frontend: bool = True) -> list[Service]:
    """The local stack in start order: each one's dependencies are ready before it starts."""
    py = sys.executable
    api = f"http://{settings.api_host}:{settings.api_port}"
    llm = f"http://{settings.llm_host}:{settings.llm_port}"
    phoenix_url = f"http://{settings.phoenix_host}:{settings.phoenix_port}"
    # A user's own RAG_TRACING_ENDPOINT wins; else the local Phoenix when it runs; else tracing stays off.
    traced = {"RAG_TRACING_ENDPOINT": settings.tracing_endpoint or f"{phoenix_url}/v1/traces"} if phoenix else {}
    services = []
    if phoenix:
        services.append(Service("phoenix", [py, "-m", "services.phoenix.server"], f"{phoenix_url}/healthz"))
    services.append(Service("llm", [py, "-m", "services.llm.server"], f"{llm}/v1/models"))
    api_env = {"RAG_LLM_BASE_URL": f"{llm}/v1", **traced}
    services.append(Service("api", [py, "-m", "services.api.main"], f"{api}/readyz", env=api_env))
    if frontend:
        ui = f"http://{settings.frontend_host}:{settings.frontend_port}"
        services.append(
            Service("frontend", [py, "-m", "frontend.main"], f"{ui}/", env={"RAG_FRONTEND_API_URL": api, **traced})
        )
    return services


def first_run_ingest(settings: Settings, max_docs: int) -> None:
    """Ingest the sample corpus when the store is empty, then build its index if it is past the threshold (in
    this process: nothing is served yet); the folder lock is released before the API starts."""
    from ingest.factory import build_pipeline
    from ingest.maintenance import IndexMaintainer, describe
    from ingest.sample import write_sample_corpus
    from services.core.factory import build_store

    store = build_store(settings)
    try:
        if store.list_documents():
            say("the store already has documents: skipping the sample ingest")
            return
        folder = settings.data_dir / "sample-corpus"
        say(f"first run: writing {max_docs} sample documents (fitz-gov) to {folder} and ingesting them")
        write_sample_corpus(folder, max_docs)
        pipeline = build_pipeline(settings, store=store)
        pipeline.warm_up()
        report = pipeline.sync(folder, progress=True)
        s = report.summary()
        say(f"sample ingest: {s['added']} documents, {s['chunks']} chunks in {s['seconds']} s")
        line = describe(IndexMaintainer(store).run())
        if line:
            say(line)
    finally:
        store.close()


def start(service: Service, color: str) -> None:
    """Start the service in its own process group (Ctrl-C reaches the launcher only; it stops children in
    order), its output printed line by line behind its name."""

    def show(line: str) -> None:
        print(f"{color}{service.name:>8} |{RESET} {line}", flush=True)

    service.proc = ManagedProcess(service.name, service.argv, env=service.env, cwd=REPO, on_line=show).start()
    say(f"started {service.name} pid {service.proc.pid}")


def wait_ready(service: Service) -> None:
    assert service.proc is not None
    try:
        service.proc.wait_ready(service.ready_url, service.ready_timeout_s)
    except ProcessExitedError:
        raise RuntimeError(died(service)) from None
    except NotReadyError:
        raise RuntimeError(
            f"{service.name} not ready after {service.ready_timeout_s:.0f} s ({service.ready_url})"
        ) from None
    say(f"{service.name} ready ({service.ready_url})")


def died(service: Service) -> str:
    assert service.proc is not None
    last = "\n    ".join(service.proc.last_output(lines=10).splitlines())
    return f"service {service.name!r} died ({service.proc.exit_description()}); last lines:\n    {last}"


def stop_all(services: list[Service]) -> None:
    stop_processes([s.proc for s in reversed(services) if s.proc is not None], grace_s=10)
    say("all services stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample-docs", type=int, default=400, help="sample corpus size on first run (0: none)")
    parser.add_argument("--no-phoenix", action="store_true", help="do not start Phoenix (tracing stays off)")
    parser.add_argument("--no-frontend", action="store_true", help="do not start the Gradio chat UI")
    args = parser.parse_args(argv)
    settings = Settings()
    started = time.monotonic()
    services = services_for(settings, phoenix=not args.no_phoenix, frontend=not args.no_frontend)
    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        from services.llm.gguf import ensure_model

        say(f"LLM model: {ensure_model(settings.llm_gguf, settings.data_dir / 'models')} (sha256 verified)")
        if args.sample_docs:
            first_run_ingest(settings, args.sample_docs)
        # All start at once: none needs another to *start* (the API retries the LLM, the UI shows "API down"
        # until the API answers, spans sent before Phoenix listens are dropped), so startup costs the slowest
        # service, not the sum. Readiness is still checked in dependency order.
        for i, service in enumerate(services):
            start(service, COLORS[i % len(COLORS)])
        for service in services:
            wait_ready(service)
            if stopping.is_set():
                raise KeyboardInterrupt
    except (RuntimeError, KeyboardInterrupt) as exc:
        if isinstance(exc, RuntimeError):
            say(str(exc))
        stop_all(services)
        return 1 if isinstance(exc, RuntimeError) else 0
    api = f"http://{settings.api_host}:{settings.api_port}"
    names = {s.name for s in services}
    say(f"stack ready in {time.monotonic() - started:.1f} s")
    if "frontend" in names:
        say(f"  Chat UI  : http://{settings.frontend_host}:{settings.frontend_port}")
    say(f"  API docs : {api}/docs")
    say(f"  Chat API : {api}/v1/chat/completions  (OpenAI-compatible, model 'rag:{settings.llm_model}')")
    say(f"  LLM      : http://{settings.llm_host}:{settings.llm_port}/v1")
    if "phoenix" in names:
        say(f"  Phoenix  : http://{settings.phoenix_host}:{settings.phoenix_port}  (traces of every request)")
    say(
        "  your own documents: curl -F files=@report.pdf "
        + api
        + "/documents   (or stop and run: .venv/bin/ingest sync DIR)"
    )
    say("Ctrl-C stops everything")
    code = 0
    while not stopping.wait(0.5):
        dead = [s for s in services if s.proc and s.proc.poll() is not None]
        if dead:
            say(died(dead[0]))
            code = 1
            break
    stop_all(services)
    return code


if __name__ == "__main__":
    sys.exit(main())
