"""Settings -> components. The only place that knows which concrete class backs each interface."""

from __future__ import annotations

import os

from services.core.embedder import SentenceTransformerEmbedder
from services.core.settings import Settings
from services.core.store import QdrantStore, VectorStore
from services.core.store_edge import MIGRATE_COMMAND, EdgeStore, folder_kind


def apply_offline_env(settings: Settings) -> None:
    """Make the hub libraries refuse network access unless the operator explicitly allowed it."""
    if settings.hf_hub_offline:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def build_embedder(settings: Settings) -> SentenceTransformerEmbedder:
    apply_offline_env(settings)
    return SentenceTransformerEmbedder.from_settings(settings)


def build_store(settings: Settings) -> VectorStore:
    """A Qdrant server when RAG_QDRANT_URL is set; else the embedded engine RAG_QDRANT_EMBEDDED_ENGINE picks."""
    if not settings.qdrant_url and settings.qdrant_embedded_engine == "edge":
        return EdgeStore(
            path=settings.resolved_qdrant_path,
            collection=settings.collection,
            late_interaction=settings.late_interaction,
            index_threshold=settings.qdrant_index_threshold,
            quantization=settings.qdrant_quantization,
            hnsw_ef=settings.qdrant_hnsw_ef,
        )
    path = None if settings.qdrant_url else settings.resolved_qdrant_path
    if path and path != ":memory:" and folder_kind(path) == "edge":
        # Local mode would open an Edge folder as a new, empty store: refuse instead of hiding the data.
        raise ValueError(
            f"{path} holds a qdrant-edge store: set RAG_QDRANT_EMBEDDED_ENGINE=edge (local mode cannot read it; "
            f"`{MIGRATE_COMMAND} --help` moves stores between engines)"
        )
    return QdrantStore(
        url=settings.qdrant_url,
        path=path,
        api_key=settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None,
        collection=settings.collection,
        timeout_s=settings.qdrant_timeout_s,
        late_interaction=settings.late_interaction,
        hnsw_ef=settings.qdrant_hnsw_ef,
    )
