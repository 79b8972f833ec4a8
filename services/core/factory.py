"""Settings -> components. The only place that knows which concrete class backs each interface.

These are the shared builders the apps wire from (``services.api.components.build_components`` for the API,
``ingest.factory.build_pipeline`` for the ingest CLI, worker and launcher). They construct and load
nothing: each model component is loaded by its own ``warm_up()``, which the wiring's caller runs once,
at start-up. (The store is the exception: opening a Qdrant client or an Edge folder is its constructor.)
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal

from services.core.models.embedder import SentenceTransformerEmbedder
from services.core.models.model_registry import AdaptedModels, find_adapted
from services.core.models.reranker import CrossEncoderReranker, NoReranker, Reranker
from services.core.settings import (
    ChatSettings,
    EmbedderSettings,
    LlmSettings,
    ModelRuntimeSettings,
    RerankerSettings,
    StoreSettings,
)
from services.core.storage.store import QdrantStore, VectorStore
from services.core.storage.store_edge import MIGRATE_COMMAND, EdgeStore, folder_kind

logger = logging.getLogger(__name__)

if TYPE_CHECKING:  # the chat-side builders import their modules when called: the ingest CLI needs none of them
    from services.core.grounding.answerability import CalibratedGate
    from services.core.grounding.evidence import EvidenceSelector
    from services.core.grounding.verify import Verifier
    from services.core.models.llm import OpenAICompatibleLLM
    from services.core.retrieval import Retriever
    from services.core.settings import ChatPipelineSettings, Settings
    from services.core.types import RetrievedChunk


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


def build_reranker(settings: RerankerSettings, adapted: AdaptedModels | None | Literal["find"] = "find") -> Reranker:
    """The second stage the settings pick (``RAG_RERANKER``), not loaded yet (``warm_up()`` loads it): the one
    ``make adapt`` fitted for this deployment when there is one (``adapted``: ``"find"`` looks in the data dir as
    ``RAG_ADAPTED_MODELS`` says; given, that one; None, the configured one)."""
    if settings.reranker == "none":
        return NoReranker()
    apply_offline_env(settings)
    if adapted == "find":
        adapted = find_adapted(settings.data_dir, settings.reranker_model) if settings.adapted_models else None
    if adapted is not None:
        logger.info("reranker: %s, adapted to this deployment's documents (%s)", adapted.name, adapted.root)
    return CrossEncoderReranker(
        str(adapted.reranker) if adapted else settings.reranker_model,
        name=adapted.name if adapted else None,
        batch_size=settings.reranker_batch_size,
        max_length=settings.reranker_max_length,
        device=settings.device,
        fusion_weight=settings.rerank_fusion_weight,
        backend=settings.reranker_backend,
        model_cache=settings.resolved_model_cache_dir,
    )


def sentence_scorer(settings: RerankerSettings, reranker: Reranker) -> Reranker:
    """The cross-encoder that scores sentences for the verifier and the evidence selector: the reranker, unless
    it is one ``make adapt`` fitted; then the configured one it was adapted from, because the verifier's
    thresholds were chosen on that one's scores and its precision was measured with it."""
    if isinstance(reranker, CrossEncoderReranker) and reranker.model_ref != settings.reranker_model:
        return build_reranker(settings, adapted=None)
    return reranker


def pair_scorer(reranker: Reranker) -> CrossEncoderReranker | None:
    """The cross-encoder the verifier and the evidence selector score sentences with, when there is one."""
    return reranker if isinstance(reranker, CrossEncoderReranker) else None


def build_gate(settings: ChatSettings, reranker: Reranker) -> CalibratedGate | None:
    """The answerability gate (it scores with the reranker); None when it cannot run with this setup."""
    from services.core.grounding.answerability import gate_from_settings

    return gate_from_settings(settings, reranker)


def build_verifier(settings: ChatSettings, reranker: Reranker) -> Verifier:
    """The answer verifier; it scores sentences with the cross-encoder when there is one."""
    from services.core.grounding.verify import verifier_from_settings

    return verifier_from_settings(settings, pair_scorer(reranker))


def build_evidence(settings: ChatSettings, reranker: Reranker) -> EvidenceSelector | None:
    """The evidence selector (None: whole chunks go into the prompt)."""
    from services.core.grounding.evidence import evidence_from_settings

    return evidence_from_settings(settings, pair_scorer(reranker))


def build_llm(settings: LlmSettings) -> OpenAICompatibleLLM:
    """The client of the OpenAI-compatible server at ``RAG_LLM_BASE_URL`` (it connects on first use)."""
    from services.core.models.llm import OpenAICompatibleLLM

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


@contextmanager
def open_retriever(
    settings: Settings, adapted: AdaptedModels | None | Literal["find"] = "find"
) -> Iterator[tuple[VectorStore, Retriever]]:
    """The API's retrieval path in this process, loaded: its store (closed on exit) and a ``Retriever`` over it
    with the configured embedder and reranker. For the tools that read a deployment's store (question
    generation, ``make adapt``, ``make answerability``). An embedded store held by a running API fails with
    the reason and what to do."""
    from services.core.retrieval import Retriever

    try:
        store = build_store(settings)
    except Exception as exc:  # qdrant-edge: one process owns a folder
        raise RuntimeError(
            f"cannot open the store of {settings.data_dir} ({exc}): stop the API that uses it (make run), "
            "or set RAG_QDRANT_URL to a Qdrant server, which any number of clients share"
        ) from exc
    try:
        embedder = build_embedder(settings)
        embedder.warm_up()
        reranker = build_reranker(settings, adapted)
        reranker.warm_up()
        yield store, Retriever(embedder, store, reranker)
    finally:
        store.close()


def searcher(retriever: Retriever, settings: ChatPipelineSettings) -> Callable[..., list[RetrievedChunk]]:
    """``search(question, exclude=())``: the API's retrieval with its defaults (first stage, rerank, top-k) for
    one question, optionally without some documents (leave-one-out). The tools' one way to ask the store."""
    from services.core.retrieval import SearchSpec
    from services.core.storage.store import SearchFilters

    default = SearchSpec.configured(settings)

    def search(question: str, exclude: Sequence[str] = ()) -> list[RetrievedChunk]:
        filters = SearchFilters(exclude_doc_id=tuple(exclude)) if exclude else None
        found = retriever.search(question, dataclasses.replace(default, filters=filters))
        return list(found.chunks)

    return search
