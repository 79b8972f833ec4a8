"""The ingest wiring: settings -> ``IngestPipeline``, for the CLI, the watcher container and the launcher.

The API builds its pipeline here too (around the embedder and store it serves with). Embedder and store
come from the shared builders in ``services.core.factory``, looked up when called so that a test can swap
``services.core.factory.build_embedder`` for every app at once.

Usage::

    pipeline = build_pipeline(settings)  # loads nothing: deleting a document needs no model
    pipeline.warm_up()                   # before ingesting: the model, the chunker, the collections
    pipeline.sync(folder)
"""

from __future__ import annotations

from ingest.jobs import JobQueue, LocalQueue, RedisQueue, UploadSpool
from ingest.loaders import LoadLimits
from ingest.pipeline import IngestPipeline
from services.core import factory as core
from services.core.models.embedder import Embedder
from services.core.settings import IngestionSettings, IngestSettings
from services.core.storage.store import VectorStore


def build_limits(settings: IngestionSettings) -> LoadLimits:
    return LoadLimits(
        max_file_bytes=settings.max_file_bytes,
        max_uncompressed_bytes=settings.max_uncompressed_bytes,
        max_pdf_pages=settings.max_pdf_pages,
        ocr=settings.ocr,
        ocr_language=settings.ocr_language,
        ocr_dpi=settings.ocr_dpi,
    )


def build_pipeline(
    settings: IngestSettings, embedder: Embedder | None = None, store: VectorStore | None = None
) -> IngestPipeline:
    """The ingest pipeline the settings describe, not warmed up; pass an embedder or a store to share one.

    The caller owns the store (``pipeline.store.close()``) and runs ``pipeline.warm_up()`` before ingesting
    (the ingest methods also do it on first use)."""
    return IngestPipeline(
        embedder if embedder is not None else core.build_embedder(settings),
        store if store is not None else core.build_store(settings),
        chunk_size=settings.chunk_size,
        chunk_overlap=settings.chunk_overlap,
        limits=build_limits(settings),
        batch_size=settings.embed_batch_size * 2,
        embed_context_header=settings.embed_context_header,
    )


def build_spool(settings: IngestionSettings) -> UploadSpool:
    return UploadSpool(settings.resolved_upload_dir)


def build_queue(settings: IngestionSettings) -> JobQueue:
    """The job queue RAG_INGEST_QUEUE names: the API's in-process one, or the Redis stream workers read."""
    if settings.ingest_queue == "redis":
        if not settings.redis_url:
            raise ValueError("RAG_INGEST_QUEUE=redis needs RAG_REDIS_URL (redis://host:6379/0)")
        return RedisQueue(
            settings.redis_url,
            max_attempts=settings.ingest_max_attempts,
            visibility_timeout_s=settings.ingest_visibility_timeout_s,
            retry_backoff_s=settings.ingest_retry_backoff_s,
        )
    return LocalQueue(
        settings.resolved_upload_dir,
        max_attempts=settings.ingest_max_attempts,
        retry_backoff_s=settings.ingest_retry_backoff_s,
    )
