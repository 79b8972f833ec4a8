"""``ingest``: add, sync, delete, list and inspect documents in the store.

Locally the Qdrant folder is owned by one process: stop the API (or point both at a Qdrant server)
before running this CLI against the same ``RAG_DATA_DIR``; the API offers the same operations over HTTP.
"""

from __future__ import annotations

import atexit
import json
import logging
import signal
import sys
import threading
import uuid
from pathlib import Path
from typing import Annotated

import typer

from ingest.factory import build_pipeline
from ingest.pipeline import IngestPipeline, IngestReport, delete_document
from ingest.watch import DEFAULT_HEARTBEAT, Debouncer, FolderWatcher
from services.core import tracing
from services.core.factory import build_embedder, build_store
from services.core.settings import Settings
from services.core.store import QdrantStore
from services.core.types import doc_id_for
from services.healthcheck import Heartbeat

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
JsonOpt = Annotated[bool, typer.Option("--json", help="print the summary as JSON")]


def _settings() -> Settings:
    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    if settings.tracing_endpoint and not tracing.enabled():
        tracing.setup_tracing(settings, "ingest")
        atexit.register(tracing.shutdown)  # flush the last batch's spans; bounded by the export timeout
    return settings


def _pipeline(settings: Settings | None = None) -> IngestPipeline:
    settings = settings or _settings()
    return build_pipeline(settings, build_embedder(settings), build_store(settings))


def _store() -> QdrantStore:
    """list / stats / delete only read or remove points: no embedding model is loaded for them."""
    return build_store(_settings())


def _print_report(report: IngestReport, as_json: bool) -> None:
    summary = report.summary()
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(
        f"files {summary['files']}: {summary['added']} added, {summary['updated']} updated, "
        f"{summary['unchanged']} unchanged, {summary['deleted']} deleted, {summary['skipped']} skipped | "
        f"chunks {summary['chunks']} | {summary['seconds']} s | {summary['chunks_per_s']} chunks/s"
    )
    for problem in summary["problems"]:  # type: ignore[attr-defined]
        typer.echo(f"  skipped {problem['source']}: {problem['reason']}", err=True)


@app.command()
def add(paths: list[Path], as_json: JsonOpt = False) -> None:
    """Ingest files or folders (recursively); unchanged files are skipped."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        typer.echo(f"no such file or folder: {', '.join(missing)}", err=True)
        raise typer.Exit(2)
    _print_report(_pipeline().ingest_paths(paths, progress=sys.stderr.isatty()), as_json)


@app.command()
def sync(directory: Path, as_json: JsonOpt = False) -> None:
    """Mirror a folder: new and changed files are (re)ingested, removed files are deleted from the store."""
    if not directory.is_dir():
        typer.echo(f"not a folder: {directory}", err=True)
        raise typer.Exit(2)
    _print_report(_pipeline().sync(directory, progress=sys.stderr.isatty()), as_json)


@app.command()
def watch(
    directory: Path,
    interval: Annotated[float, typer.Option(help="seconds between polls of the folder")] = 2.0,
    quiet: Annotated[float, typer.Option(help="sync once no change was seen for this many seconds")] = 5.0,
    max_wait: Annotated[float, typer.Option(help="but at most this many seconds after the first change")] = 60.0,
    heartbeat: Annotated[Path, typer.Option(help="touched while healthy; the container healthcheck reads it")] = (
        DEFAULT_HEARTBEAT
    ),
    as_json: JsonOpt = False,
) -> None:
    """Keep the store in step with a folder: sync now, then after every change settles (until SIGTERM/Ctrl-C)."""
    if not directory.is_dir():
        typer.echo(f"not a folder: {directory}", err=True)
        raise typer.Exit(2)
    pipeline = _pipeline()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    beat = Heartbeat(heartbeat).start()

    def on_health(ok: bool) -> None:
        beat.healthy = ok

    watcher = FolderWatcher(
        directory,
        pipeline.sync,
        interval_s=interval,
        debouncer=Debouncer(quiet_s=quiet, max_wait_s=max_wait),
        on_report=lambda report: _print_report(report, as_json),
        on_health=on_health,
    )
    try:
        watcher.run(stop)
    finally:
        beat.stop()


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


@app.command()
def delete(target: str) -> None:
    """Delete a document by id or by the path it was ingested from."""
    store = _store()
    record = None
    # A document id, a path (existing or already deleted from disk: sources are absolute), or a raw source.
    for candidate in (target, doc_id_for(str(Path(target).resolve())), doc_id_for(target)):
        record = store.get_document(candidate) if _is_uuid(candidate) else None
        if record is not None:
            break
    if record is None:
        typer.echo(f"no document {target!r}", err=True)
        raise typer.Exit(1)
    removed = delete_document(store, record.doc_id)
    typer.echo(f"deleted {record.source} ({removed} chunks)")


@app.command("list")
def list_documents(as_json: JsonOpt = False) -> None:
    """List ingested documents."""
    records = _store().list_documents()
    if as_json:
        typer.echo(json.dumps([r.to_payload() for r in records], indent=2))
        return
    for r in records:
        typer.echo(f"{r.doc_id}  {r.chunk_count:5d} chunks  {r.status:8s}  {r.title[:40]:40s}  {r.source}")
    typer.echo(f"{len(records)} documents")


@app.command()
def sample(
    max_docs: Annotated[int, typer.Option(help="documents to write and ingest")] = 400,
    as_json: JsonOpt = False,
) -> None:
    """Write a sample corpus (from the packaged fitz-gov data) under RAG_DATA_DIR and ingest it."""
    from ingest.sample import write_sample_corpus

    settings = _settings()
    folder = settings.data_dir / "sample-corpus"
    write_sample_corpus(folder, max_docs)
    _print_report(_pipeline(settings).sync(folder, progress=True), as_json)


@app.command()
def stats(as_json: JsonOpt = False) -> None:
    """Counts of documents and chunks, and where the store lives."""
    settings = _settings()
    store = build_store(settings)
    records = store.list_documents()
    info = {
        "documents": len(records),
        "pending": sum(1 for r in records if r.status != "complete"),
        "chunks": store.count_chunks(),
        "store": settings.qdrant_url or settings.resolved_qdrant_path,
        "collection": settings.collection,
        "embed_model": settings.embed_model,
    }
    typer.echo(json.dumps(info, indent=2) if as_json else "\n".join(f"{k}: {v}" for k, v in info.items()))


if __name__ == "__main__":
    app()
