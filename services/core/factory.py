"""Settings -> components. The only place that knows which concrete class backs each interface."""

from __future__ import annotations

import os

from services.core.embedder import SentenceTransformerEmbedder
from services.core.settings import Settings
from services.core.store import QdrantStore


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


def build_store(settings: Settings) -> QdrantStore:
    return QdrantStore(
        url=settings.qdrant_url,
        path=None if settings.qdrant_url else settings.resolved_qdrant_path,
        api_key=settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None,
        collection=settings.collection,
        timeout_s=settings.qdrant_timeout_s,
        late_interaction=settings.late_interaction,
    )
