"""Build the ingest pipeline from settings (shared by the CLI, the API and the ingest container)."""

from __future__ import annotations

from ingest.chunker import Chunker
from ingest.loaders import LoadLimits
from ingest.pipeline import IngestPipeline
from services.core.embedder import Embedder
from services.core.settings import Settings
from services.core.store import VectorStore


def build_chunker(settings: Settings, embedder: Embedder) -> Chunker:
    return Chunker(
        embedder.count_tokens,
        chunk_size=settings.chunk_size,
        chunk_overlap=settings.chunk_overlap,
        max_tokens=embedder.max_tokens,
    )


def build_limits(settings: Settings) -> LoadLimits:
    return LoadLimits(
        max_file_bytes=settings.max_file_bytes,
        max_uncompressed_bytes=settings.max_uncompressed_bytes,
        max_pdf_pages=settings.max_pdf_pages,
    )


def build_pipeline(settings: Settings, embedder: Embedder, store: VectorStore) -> IngestPipeline:
    return IngestPipeline(
        embedder,
        store,
        build_chunker(settings, embedder),
        limits=build_limits(settings),
        batch_size=settings.embed_batch_size * 2,
        embed_context_header=settings.embed_context_header,
    )
