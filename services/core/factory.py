"""Settings -> components. The only place that knows which concrete class backs each interface.

These are the shared builders the apps wire from (``services.api.components.build_components`` for the API,
``ingest.factory.build_pipeline`` for the ingest CLI, worker and launcher). They construct and load
nothing: each model component is loaded by its own ``warm_up()``, which the wiring's caller runs once,
at start-up. (The store is the exception: opening a Qdrant client or an Edge folder is its constructor.)
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from services.core.embedder import SentenceTransformerEmbedder
from services.core.reranker import CrossEncoderReranker, NoReranker, Reranker
from services.core.settings import (
    ChatSettings,
    EmbedderSettings,
    LlmSettings,
    ModelRuntimeSettings,
    RerankerSettings,
    StoreSettings,
)
from services.core.store import QdrantStore, VectorStore
from services.core.store_edge import MIGRATE_COMMAND, EdgeStore, folder_kind

if TYPE_CHECKING:  # the chat-side builders import their modules when called: the ingest CLI needs none of them
    from services.core.answerability import CalibratedGate
    from services.core.evidence import EvidenceSelector
    from services.core.llm import OpenAICompatibleLLM
    from services.core.verify import Verifier


def apply_offline_env(settings: ModelRuntimeSettings) -> None:
    """Make the hub libraries refuse network access unless the operator explicitly allowed it."""
    if settings.hf_hub_offline:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def build_embedder(settings: EmbedderSettings) -> SentenceTransformerEmbedder:
    """The bi-encoder the settings name, not loaded yet (``warm_up()`` loads it)."""
    apply_offline_env(settings)
    return SentenceTransformerEmbedder(
        settings.embed_model,
        query_prefix=settings.embed_query_prefix,
        passage_prefix=settings.embed_passage_prefix,
        normalize=settings.embed_normalize,
        batch_size=settings.embed_batch_size,
        device=settings.device,
        backend=settings.embed_backend,
        model_cache=settings.resolved_model_cache_dir,
    )


def build_reranker(settings: RerankerSettings) -> Reranker:
    """The second stage the settings pick (``RAG_RERANKER``), not loaded yet (``warm_up()`` loads it)."""
    if settings.reranker == "none":
        return NoReranker()
    apply_offline_env(settings)
    return CrossEncoderReranker(
        settings.reranker_model,
        batch_size=settings.reranker_batch_size,
        max_length=settings.reranker_max_length,
        device=settings.device,
        fusion_weight=settings.rerank_fusion_weight,
        backend=settings.reranker_backend,
        model_cache=settings.resolved_model_cache_dir,
    )


def pair_scorer(reranker: Reranker) -> CrossEncoderReranker | None:
    """The cross-encoder the verifier and the evidence selector score sentences with, when there is one."""
    return reranker if isinstance(reranker, CrossEncoderReranker) else None


def build_gate(settings: ChatSettings, reranker: Reranker) -> CalibratedGate | None:
    """The answerability gate (it scores with the reranker); None when it cannot run with this setup."""
    from services.core.answerability import gate_from_settings

    return gate_from_settings(settings, reranker)


def build_verifier(settings: ChatSettings, reranker: Reranker) -> Verifier:
    """The answer verifier; it scores sentences with the cross-encoder when there is one."""
    from services.core.verify import verifier_from_settings

    return verifier_from_settings(settings, pair_scorer(reranker))


def build_evidence(settings: ChatSettings, reranker: Reranker) -> EvidenceSelector | None:
    """The evidence selector (None: whole chunks go into the prompt)."""
    from services.core.evidence import evidence_from_settings

    return evidence_from_settings(settings, pair_scorer(reranker))


def build_llm(settings: LlmSettings) -> OpenAICompatibleLLM:
    """The client of the OpenAI-compatible server at ``RAG_LLM_BASE_URL`` (it connects on first use)."""
    from services.core.llm import OpenAICompatibleLLM

    return OpenAICompatibleLLM(
        settings.llm_base_url,
        model=settings.llm_model,
        api_key=settings.llm_api_key.get_secret_value(),
        timeout_s=settings.llm_timeout_s,
        connect_timeout_s=settings.llm_connect_timeout_s,
        max_retries=settings.llm_max_retries,
        max_tokens=settings.llm_max_tokens,
        temperature=settings.llm_temperature,
    )


def build_store(settings: StoreSettings) -> VectorStore:
    """A Qdrant server when RAG_QDRANT_URL is set; else the embedded engine RAG_QDRANT_EMBEDDED_ENGINE picks.

    Opened here, so a wrong folder fails at start-up with its reason (a server client connects lazily)."""
    if not settings.qdrant_url and settings.qdrant_embedded_engine == "edge":
        return EdgeStore(
            path=settings.resolved_qdrant_path,
            collection=settings.collection,
            late_interaction=settings.late_interaction,
            index_threshold=settings.qdrant_index_threshold,
            quantization=settings.qdrant_quantization,
            hnsw_m=settings.qdrant_hnsw_m,
            hnsw_ef_construct=settings.qdrant_hnsw_ef_construct,
            hnsw_ef=settings.qdrant_hnsw_ef,
        ).open()
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
        shard_number=settings.qdrant_shard_number,
        replication_factor=settings.qdrant_replication_factor,
        write_consistency_factor=settings.qdrant_write_consistency_factor,
    ).open()
