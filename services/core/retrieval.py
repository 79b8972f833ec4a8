"""Query -> ranked chunks: embed, first-stage search (dense / sparse / hybrid), optional rerank.

Timings are measured per stage because they decide the defaults (see ``make bench``). A reranker that
fails is skipped, not fatal: the first stage's order is returned and the result says why.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from services.core.models.embedder import Embedder, TokenEmbedder
from services.core.models.reranker import NoReranker, Reranker
from services.core.models.sparse import BM25SparseEncoder
from services.core.observability import spans
from services.core.observability.tracing import tracer
from services.core.storage.store import SearchFilters, VectorStore
from services.core.types import RetrievalMode, RetrievedChunk

if TYPE_CHECKING:
    from services.core.settings import ChatPipelineSettings

logger = logging.getLogger(__name__)


class LateInteractionUnavailableError(ValueError):
    """Late interaction was asked for but the collection holds no per-token vectors."""


@dataclass(frozen=True, slots=True)
class SearchSpec:
    """One retrieval with every option resolved (the request's over the settings' defaults).

    Built once where a request meets its settings (``services.chat.SearchOptions.resolve``, or a tool that
    knows what it wants) and passed down unchanged: a new option is one field here, not six signatures.
    """

    mode: RetrievalMode
    top_n: int  # first-stage candidates
    top_k: int  # kept after reranking
    rerank: bool = True
    min_score: float | None = None  # drop reranked chunks below this cross-encoder probability
    filters: SearchFilters | None = None
    late_interaction: bool = False  # re-score the candidates by MaxSim over per-token vectors

    def __post_init__(self) -> None:
        if self.top_k > self.top_n:
            raise ValueError(f"top_k ({self.top_k}) must be <= top_n ({self.top_n})")

    @classmethod
    def configured(cls, settings: ChatPipelineSettings) -> SearchSpec:
        """The retrieval the API runs for a request that sets no option: the settings' defaults."""
        return cls(
            mode=settings.retrieval_mode,
            top_n=settings.top_n,
            top_k=settings.top_k,
            min_score=settings.rerank_min_score,
            late_interaction=settings.late_interaction,
        )


@dataclass(slots=True)
class SearchResult:
    query: str
    mode: RetrievalMode
    chunks: list[RetrievedChunk]
    candidates: int
    reranker: str
    reranked: bool
    rerank_skipped_reason: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    late_interaction: bool = False


class Retriever:
    def __init__(
        self,
        embedder: Embedder,
        store: VectorStore,
        reranker: Reranker | None = None,
        sparse: BM25SparseEncoder | None = None,
    ) -> None:
        self.embedder = embedder
        self.store = store
        self.reranker = reranker or NoReranker()
        self.sparse = sparse or BM25SparseEncoder()

    def search(self, query: str, spec: SearchSpec) -> SearchResult:
        mode, top_n, top_k, filters = spec.mode, spec.top_n, spec.top_k, spec.filters
        timings: dict[str, float] = {}
        t = tracer()
        t0 = time.perf_counter()
        with t.start_as_current_span("embed_query", openinference_span_kind="embedding") as span:
            dense = self.embedder.embed_query(query) if mode in ("dense", "hybrid") else None
            sparse = self.sparse.encode_query(query) if mode in ("sparse", "hybrid") else None
            late = None
            if spec.late_interaction:
                if not isinstance(self.embedder, TokenEmbedder) or not getattr(self.store, "late_interaction", False):
                    raise LateInteractionUnavailableError(
                        "late interaction needs per-token vectors in the collection: "
                        "ingest with RAG_LATE_INTERACTION=true"
                    )
                late = self.embedder.embed_query_tokens(query)
            if span.is_recording():
                span.set_attributes(spans.embedding(getattr(self.embedder, "name", "embedder"), query))
        t1 = time.perf_counter()
        timings["embed"] = (t1 - t0) * 1000
        with t.start_as_current_span("retrieve", openinference_span_kind="retriever") as span:
            candidates = self.store.search(
                dense=dense, sparse=sparse, mode=mode, limit=top_n, filters=filters, late=late
            )
            if late is not None:
                for chunk in candidates:
                    chunk.late_interaction_score = chunk.retrieval_score
            if span.is_recording():
                meta = {"mode": mode, "top_n": top_n, "late_interaction": late is not None, "filters": filters}
                span.set_attributes(spans.retrieval(query, candidates, meta))
        t2 = time.perf_counter()
        timings["retrieve"] = (t2 - t1) * 1000
        with t.start_as_current_span("rerank", openinference_span_kind="reranker") as span:
            if span.is_recording():
                span.set_attributes(spans.rerank_input(self.reranker.name, query, top_k, candidates))
            chunks, reranked, reason = self._rerank(query, candidates, top_k, spec.min_score, spec.rerank)
            if span.is_recording():
                span.set_attributes(spans.rerank_output(chunks, reason))
        timings["rerank"] = (time.perf_counter() - t2) * 1000
        timings["total"] = (time.perf_counter() - t0) * 1000
        return SearchResult(
            query=query,
            mode=mode,
            chunks=chunks,
            candidates=len(candidates),
            reranker=self.reranker.name if reranked else "none",
            reranked=reranked,
            rerank_skipped_reason=reason,
            timings_ms={k: round(v, 2) for k, v in timings.items()},
            late_interaction=late is not None,
        )

    def _rerank(
        self,
        query: str,
        candidates: Sequence[RetrievedChunk],
        top_k: int,
        min_score: float | None,
        enabled: bool,
    ) -> tuple[list[RetrievedChunk], bool, str | None]:
        if not enabled or isinstance(self.reranker, NoReranker) or not candidates:
            return list(candidates[:top_k]), False, None if enabled else "disabled by request"
        try:
            return self.reranker.rerank(query, candidates, top_k, min_score), True, None
        except Exception as exc:  # degraded service beats no service
            logger.exception("reranker failed; returning first-stage order")
            return list(candidates[:top_k]), False, f"reranker failed: {type(exc).__name__}: {exc}"[:300]


def retrieval_query(messages: Sequence[dict[str, str]], max_chars: int) -> str:
    """The last user turn, plus the previous user turn when the last one is a short follow-up.

    "and for Linux?" retrieves nothing on its own; with the previous question in front it does.
    """
    users = [m["content"].strip() for m in messages if m.get("role") == "user" and m.get("content", "").strip()]
    if not users:
        return ""
    query = users[-1]
    if len(users) > 1 and len(query.split()) < 8:
        query = f"{users[-2]} {query}"
    return query[-max_chars:]
