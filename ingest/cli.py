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
import time
import uuid
from pathlib import Path
from typing import Annotated

import typer

from ingest.factory import build_pipeline, build_queue, build_spool
from ingest.jobs import FolderProducer
from ingest.maintenance import IndexMaintainer, describe
from ingest.pipeline import IngestPipeline, IngestReport
from ingest.watch import DEFAULT_HEARTBEAT, Debouncer, FolderWatcher
from services.core.factory import build_store
from services.core.observability import tracing
from services.core.settings import IngestSettings
from services.core.storage.store import QdrantStore, VectorStore
from services.core.storage.store_edge import EdgeStore, copy_client_to_edge, copy_edge_to_client, folder_kind
from services.core.types import doc_id_for
from services.healthcheck import Heartbeat

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
JsonOpt = Annotated[bool, typer.Option("--json", help="print the summary as JSON")]


def _settings() -> IngestSettings:
    settings = IngestSettings()
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    if settings.tracing_endpoint and not tracing.enabled():
        tracing.setup_tracing(settings, "ingest")
        atexit.register(tracing.shutdown)  # flush the last batch's spans; bounded by the export timeout
    return settings


def _pipeline(settings: IngestSettings | None = None, *, warm: bool = True) -> IngestPipeline:
    """The ingest wiring (``ingest.factory``), warmed up for the commands that ingest; ``delete`` takes it cold,
    so no embedding model is loaded to delete a document."""
    pipeline = build_pipeline(settings or _settings())
    if warm:
        try:
            pipeline.warm_up()
        except BaseException:
            pipeline.store.close()  # a model that cannot load must not leave the store folder locked
            raise
    return pipeline


def _store() -> VectorStore:
    """list / build-index only read or maintain the store: no pipeline, no embedding model."""
    return build_store(_settings())


def _print_report(report: IngestReport, as_json: bool) -> None:
    summary = report.summary()
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(
        f"files {summary['files']}: {summary['added']} added, {summary['updated']} updated, "
        f"{summary['unchanged']} unchanged, {summary['deleted']} deleted, {summary['skipped']} skipped"
        f"{f', {q} queued for the workers' if (q := summary['queued']) else ''} | "
        f"chunks {summary['chunks']} | {summary['seconds']} s | {summary['chunks_per_s']} chunks/s"
    )
    for problem in summary["problems"]:  # type: ignore[attr-defined]
        typer.echo(f"  skipped {problem['source']}: {problem['reason']}", err=True)


def _maintain(store: VectorStore) -> None:
    """End of an ingest run: an Edge store past RAG_QDRANT_INDEX_THRESHOLD builds its HNSW index now, in this
    process and not on a request (see docs/embedded-store.md). A failed build is reported, not fatal: the
    documents are in, and search stays exact until `ingest build-index` or the next run succeeds."""
    line = describe(IndexMaintainer(store).run())
    if line:
        typer.echo(line, err=True)


@app.command()
def add(paths: list[Path], as_json: JsonOpt = False) -> None:
    """Ingest files or folders (recursively); unchanged files are skipped."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        typer.echo(f"no such file or folder: {', '.join(missing)}", err=True)
        raise typer.Exit(2)
    pipeline = _pipeline()
    try:
        _print_report(pipeline.ingest_paths(paths, progress=sys.stderr.isatty()), as_json)
        _maintain(pipeline.store)
    finally:
        pipeline.store.close()


@app.command()
def sync(directory: Path, as_json: JsonOpt = False) -> None:
    """Mirror a folder: new and changed files are (re)ingested, removed files are deleted from the store."""
    if not directory.is_dir():
        typer.echo(f"not a folder: {directory}", err=True)
        raise typer.Exit(2)
    pipeline = _pipeline()
    try:
        _print_report(pipeline.sync(directory, progress=sys.stderr.isatty()), as_json)
        _maintain(pipeline.store)
    finally:
        pipeline.store.close()


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
    """Keep the store in step with a folder: sync now, then after every change settles (until SIGTERM/Ctrl-C).

    With RAG_INGEST_QUEUE=redis the watcher ingests nothing itself: new and changed files become jobs for the
    workers (``python -m ingest.worker``), and it loads no model; deletions it applies directly."""
    if not directory.is_dir():
        typer.echo(f"not a folder: {directory}", err=True)
        raise typer.Exit(2)
    settings = _settings()
    producer: FolderProducer | None = None
    if settings.ingest_queue == "redis":
        pipeline = _pipeline(settings, warm=False)
        producer = FolderProducer(build_queue(settings), build_spool(settings), pipeline.store)
    else:
        pipeline = _pipeline(settings)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    beat = Heartbeat(heartbeat).start()

    def on_health(ok: bool) -> None:
        beat.healthy = ok

    def on_report(report: IngestReport) -> None:
        _print_report(report, as_json)
        if producer is None:  # in queue mode the workers ask for index upkeep after their jobs
            _maintain(pipeline.store)

    watcher = FolderWatcher(
        directory,
        producer.sync if producer is not None else pipeline.sync,
        interval_s=interval,
        debouncer=Debouncer(quiet_s=quiet, max_wait_s=max_wait),
        on_report=on_report,
        on_health=on_health,
    )
    try:
        watcher.run(stop)
    finally:
        beat.stop()
        if producer is not None:
            producer.queue.close()
        pipeline.store.close()


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


@app.command()
def delete(target: str) -> None:
    """Delete a document by id or by the path it was ingested from."""
    pipeline = _pipeline(warm=False)
    store = pipeline.store
    try:
        record = None
        # A document id, a path (existing or already deleted from disk: sources are absolute), or a raw source.
        for candidate in (target, doc_id_for(str(Path(target).resolve())), doc_id_for(target)):
            record = store.get_document(candidate) if _is_uuid(candidate) else None
            if record is not None:
                break
        if record is None:
            typer.echo(f"no document {target!r}", err=True)
            raise typer.Exit(1)
        removed = pipeline.delete(record.doc_id)
    finally:
        store.close()
    typer.echo(f"deleted {record.source} ({removed} chunks)")


@app.command("list")
def list_documents(as_json: JsonOpt = False) -> None:
    """List ingested documents."""
    store = _store()
    try:
        records = store.list_documents()
    finally:
        store.close()
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
    pipeline = _pipeline(settings)
    try:
        _print_report(pipeline.sync(folder, progress=True), as_json)
        _maintain(pipeline.store)
    finally:
        pipeline.store.close()


@app.command()
def stats(as_json: JsonOpt = False) -> None:
    """Counts of documents and chunks, and where the store lives."""
    settings = _settings()
    store = build_store(settings)
    try:
        records = store.list_documents()
        info: dict[str, object] = {
            "documents": len(records),
            "pending": sum(1 for r in records if r.status != "complete"),
            "chunks": store.count_chunks(),
            "store": settings.qdrant_url or settings.resolved_qdrant_path,
            "engine": getattr(store, "mode", "?"),
            "collection": settings.collection,
            "embed_model": settings.embed_model,
        }
        if isinstance(store, EdgeStore):
            info["shards"] = store.stats()
    finally:
        store.close()
    typer.echo(json.dumps(info, indent=2) if as_json else "\n".join(f"{k}: {v}" for k, v in info.items()))


@app.command("build-index")
def build_index(
    force: Annotated[bool, typer.Option(help="build even below RAG_QDRANT_INDEX_THRESHOLD")] = False,
) -> None:
    """Edge: build the HNSW index (and int8 quantisation if set) now; blocks the store while it runs."""
    store = _store()
    try:
        typer.echo(json.dumps(store.maintain(force=force), indent=2))
    finally:
        store.close()


@app.command("migrate-store")
def migrate_store(
    source: Annotated[
        Path | None, typer.Argument(help="qdrant-client local-mode folder; default RAG_QDRANT_PATH")
    ] = None,
    target: Annotated[
        Path | None,
        typer.Option(help="new Edge folder; default: the source's own path (the old folder is kept as a backup)"),
    ] = None,
    batch: Annotated[int, typer.Option(min=1, help="points per read and write")] = 256,
) -> None:
    """Move a qdrant-client local-mode folder to qdrant-edge: same ids, vectors and manifest (no re-embedding)."""
    from qdrant_client import QdrantClient

    settings = _settings()
    src = Path(source or settings.resolved_qdrant_path).resolve()
    if folder_kind(src) != "local":
        typer.echo(f"{src} is not a qdrant-client local-mode folder (found: {folder_kind(src)})", err=True)
        raise typer.Exit(2)
    in_place = target is None or target.resolve() == src
    dst = src.with_name(src.name + ".edge-migrating") if in_place else target.resolve()  # type: ignore[union-attr]
    if in_place and dst.exists():
        import shutil

        shutil.rmtree(dst)  # what an interrupted earlier migration left
    elif folder_kind(dst) not in ("missing", "empty"):
        typer.echo(f"{dst} is not empty: choose a new --target folder", err=True)
        raise typer.Exit(2)
    started = time.perf_counter()
    client = QdrantClient(path=str(src))  # takes the folder lock: stop the API first
    edge = EdgeStore(path=str(dst), collection=settings.collection)
    try:
        copied = copy_client_to_edge(client, settings.collection, edge, batch=batch)
        if edge.count_chunks() != copied["chunks"] or len(edge.list_documents()) != copied["documents"]:
            raise RuntimeError(f"the copy in {dst} does not hold what was read; the source is unchanged")
    finally:
        edge.close()
        client.close()
    backup = None
    if in_place:
        backup = src.with_name(f"{src.name}.local-backup-{time.strftime('%Y%m%d-%H%M%S')}")
        src.rename(backup)
        dst.rename(src)
        dst = src
    seconds = round(time.perf_counter() - started, 1)
    typer.echo(
        f"migrated {copied['documents']} documents, {copied['chunks']} chunks to qdrant-edge at {dst} in {seconds} s"
    )
    if backup:
        typer.echo(f"the local-mode folder is kept at {backup} (delete it once the new store serves well)")
    if not in_place:
        typer.echo(f"use it with RAG_QDRANT_EMBEDDED_ENGINE=edge RAG_QDRANT_PATH={dst}")


@app.command("push-store")
def push_store(
    url: Annotated[
        str, typer.Argument(help="Qdrant server URL, e.g. http://qdrant:6333 (RAG_QDRANT_API_KEY); or a folder")
    ],
    batch: Annotated[int, typer.Option(min=1, help="points per upsert")] = 256,
) -> None:
    """Copy the Edge store at RAG_QDRANT_PATH to a Qdrant server (re-upserted in batches, nothing re-embedded)."""
    settings = _settings()
    edge = EdgeStore(path=settings.resolved_qdrant_path, collection=settings.collection)
    api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
    if "://" in url:
        server = QdrantStore(
            url=url, api_key=api_key, collection=settings.collection, timeout_s=settings.qdrant_timeout_s
        )
    else:  # a qdrant-client local-mode folder: the same client API, for a dry run without a server
        server = QdrantStore(path=url, collection=settings.collection)
    try:
        copied = copy_edge_to_client(edge, server, batch=batch)
    finally:
        server.close()
        edge.close()
    typer.echo(f"pushed {copied['documents']} documents, {copied['chunks']} chunks to {url}")


if __name__ == "__main__":
    app()
