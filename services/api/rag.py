"""The request-level RAG flow shared by /search, /chat and /v1/chat/completions.

Routes stay thin: they validate, call into here, and shape the response.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import HTTPException
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from starlette.concurrency import run_in_threadpool

from services.api.components import Components
from services.api.errors import DependencyUnavailable
from services.api.schemas import ChatMessage, ChunkOut, Citation, RetrievalOptions, SearchResponse
from services.core import spans, tracing
from services.core.llm import LLMUnavailableError, StreamState
from services.core.prompt import build_messages, cited_numbers, declined
from services.core.retrieval import SearchResult, retrieval_query
from services.core.store import SearchFilters
from services.core.types import RetrievedChunk


def check_query(components: Components, query: str) -> None:
    limit = components.settings.max_query_chars
    if len(query) > limit:
        raise HTTPException(413, f"query is {len(query)} characters; the limit is {limit} (RAG_MAX_QUERY_CHARS)")


class RequestTrace:
    """The request's CHAIN span, whose lifetime may outlast the route handler (a streamed answer).

    It continues the caller's trace (W3C ``traceparent`` from the frontend) and tags every span of the
    request with the conversation's ``X-Session-Id``, so one chat is one Phoenix session.
    """

    def __init__(self, name: str, headers: Mapping[str, str], input_value: str) -> None:
        self.session_id = headers.get(tracing.SESSION_HEADER) or None
        with tracing.session(self.session_id):
            self.span = tracing.tracer().start_span(
                name, context=tracing.context_from(headers), openinference_span_kind="chain"
            )
        if self.span.is_recording():
            self.span.set_attributes(spans.chain_input(input_value))

    @contextmanager
    def active(self) -> Iterator[None]:
        """Make the span current (children attach to it) without ending it on exit."""
        with trace.use_span(self.span, end_on_exit=False), tracing.session(self.session_id):
            try:
                yield
            except BaseException as exc:
                self.finish(error=exc)
                raise

    def finish(self, output: Any = None, error: BaseException | None = None) -> None:
        if not self.span.is_recording():
            return
        if error is not None:
            status = getattr(error, "status_code", 500)
            self.span.set_attribute("http.status_code", status)
            if status >= 500:
                self.span.record_exception(error)
                self.span.set_status(Status(StatusCode.ERROR, str(error)[:300]))
        elif output is not None:
            self.span.set_attributes(spans.chain_output(output))
            self.span.set_status(Status(StatusCode.OK))
        self.span.end()


async def search(components: Components, query: str, options: RetrievalOptions) -> SearchResult:
    settings = components.settings
    top_n = options.top_n or settings.top_n
    top_k = options.top_k or settings.top_k
    if top_k > top_n:
        raise HTTPException(422, f"top_k ({top_k}) must be <= top_n ({top_n})")
    f = options.filters
    filters = SearchFilters(tuple(f.source), tuple(f.doc_id), tuple(f.tags)) if f else None
    return await run_in_threadpool(
        components.retriever.search,
        query,
        mode=options.mode or settings.retrieval_mode,
        top_n=top_n,
        top_k=top_k,
        rerank=options.rerank,
        min_score=options.min_score if options.min_score is not None else settings.rerank_min_score,
        filters=filters,
        late_interaction=(
            options.late_interaction if options.late_interaction is not None else settings.late_interaction
        ),
    )


def chunk_out(chunk: RetrievedChunk) -> ChunkOut:
    return ChunkOut(
        id=chunk.id,
        doc_id=chunk.doc_id,
        source=chunk.source,
        title=chunk.title,
        section=chunk.section,
        page=chunk.page,
        chunk_index=chunk.chunk_index,
        text=chunk.text,
        tags=chunk.tags,
        retrieval_score=chunk.retrieval_score,
        late_interaction_score=chunk.late_interaction_score,
        rerank_score=chunk.rerank_score,
    )


def search_response(result: SearchResult) -> SearchResponse:
    return SearchResponse(
        query=result.query,
        mode=result.mode,  # type: ignore[arg-type]
        reranker=result.reranker,
        reranked=result.reranked,
        rerank_skipped_reason=result.rerank_skipped_reason,
        late_interaction=result.late_interaction,
        candidates=result.candidates,
        results=[chunk_out(c) for c in result.chunks],
        timings_ms=result.timings_ms,
    )


def citation(n: int, chunk: RetrievedChunk) -> Citation:
    return Citation(
        n=n,
        chunk_id=chunk.id,
        doc_id=chunk.doc_id,
        source=chunk.source,
        title=chunk.title,
        section=chunk.section,
        page=chunk.page,
        text=chunk.text,
        rerank_score=chunk.rerank_score,
        retrieval_score=chunk.retrieval_score,
    )


@dataclass(slots=True)
class PreparedChat:
    """Everything decided before the LLM is called: the retrieval, the prompt, the numbered sources."""

    result: SearchResult
    messages: list[dict[str, str]]
    sources: list[RetrievedChunk]
    started: float
    timings_ms: dict[str, float] = field(default_factory=dict)

    def sources_out(self) -> list[Citation]:
        return [citation(i + 1, c) for i, c in enumerate(self.sources)]

    def citations_for(self, answer: str) -> list[Citation]:
        return [citation(n, self.sources[n - 1]) for n in cited_numbers(answer, len(self.sources))]

    def retrieval_info(self) -> dict[str, Any]:
        r = self.result
        return {
            "query": r.query,
            "mode": r.mode,
            "reranker": r.reranker,
            "reranked": r.reranked,
            "rerank_skipped_reason": r.rerank_skipped_reason,
            "candidates": r.candidates,
            "timings_ms": r.timings_ms,
        }

    def final(self, answer: str, model: str, usage: dict[str, int]) -> dict[str, Any]:
        self.timings_ms["total"] = round((time.perf_counter() - self.started) * 1000, 2)
        return {
            "answer": answer,
            "citations": [c.model_dump() for c in self.citations_for(answer)],
            "sources": [c.model_dump() for c in self.sources_out()],
            "declined": declined(answer),
            "model": model,
            "usage": usage,
            "retrieval": self.retrieval_info(),
            "timings_ms": self.timings_ms,
        }


def bounded_history(components: Components, messages: list[ChatMessage]) -> list[dict[str, str]]:
    """Caller-supplied system prompts are dropped (ours sets the grounding rules); history is capped."""
    turns = [{"role": m.role, "content": m.text()} for m in messages if m.role in ("user", "assistant")]
    return turns[-components.settings.max_history_messages :]


async def prepare_chat(components: Components, messages: list[ChatMessage], options: RetrievalOptions) -> PreparedChat:
    started = time.perf_counter()
    turns = bounded_history(components, messages)
    if not turns or turns[-1]["role"] != "user" or not turns[-1]["content"].strip():
        raise HTTPException(422, "the last message must be a non-empty user message")
    # Only the question is bounded by RAG_MAX_QUERY_CHARS; earlier answers may be long (they are capped per
    # message by the schema and in number by RAG_MAX_HISTORY_MESSAGES).
    check_query(components, turns[-1]["content"])
    query = retrieval_query(turns, components.settings.max_query_chars)
    result = await search(components, query, options)
    chat_messages, used = build_messages(
        turns[-1]["content"], turns[:-1], result.chunks, max_chars=components.settings.context_max_chars
    )
    prepared = PreparedChat(result, chat_messages, used, started)
    prepared.timings_ms.update(result.timings_ms)
    prepared.timings_ms.pop("total", None)
    return prepared


def llm_params(max_tokens: int | None, temperature: float | None) -> dict[str, Any]:
    return {"max_tokens": max_tokens, "temperature": temperature}


def llm_down(exc: LLMUnavailableError, prepared: PreparedChat) -> DependencyUnavailable:
    """The 503 for a dead LLM still carries the retrieved sources: the user sees what was found."""
    return DependencyUnavailable(
        f"{exc}; retrieval still works (POST /search)",
        extra={"sources": [c.model_dump() for c in prepared.sources_out()]},
    )


def _llm_span(components: Components, prepared: PreparedChat, params: dict[str, Any]) -> Any:
    span = tracing.tracer().start_span("generate", openinference_span_kind="llm")
    if span.is_recording():
        span.set_attributes(spans.llm_request(components.llm.model, prepared.messages, params))
    return span


def _end_llm_span(span: Any, text: str, model: str, usage: dict[str, int], first_token_ms: float | None) -> None:
    if span.is_recording():
        span.set_attributes(spans.llm_response(text, model, usage, first_token_ms))
        span.set_status(Status(StatusCode.OK))
    span.end()


def _fail_llm_span(span: Any, exc: BaseException) -> None:
    if span.is_recording():
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, str(exc)[:300]))
    span.end()


async def answer(components: Components, prepared: PreparedChat, params: dict[str, Any]) -> dict[str, Any]:
    span = _llm_span(components, prepared, params)
    t0 = time.perf_counter()
    try:
        completion = await components.llm.complete(prepared.messages, **params)
    except LLMUnavailableError as exc:
        _fail_llm_span(span, exc)
        raise llm_down(exc, prepared) from exc
    prepared.timings_ms["generate"] = round((time.perf_counter() - t0) * 1000, 2)
    _end_llm_span(span, completion.text, completion.model, completion.usage, None)
    return prepared.final(completion.text, completion.model, completion.usage)


@dataclass(slots=True)
class AnswerStream:
    """An LLM stream that is already connected (so failures become a 503 before streaming starts)."""

    deltas: AsyncIterator[str]
    state: StreamState
    close: Any
    span: Any
    started: float
    first_token_ms: float | None = None
    ended: bool = False

    def first_token(self) -> None:
        if self.first_token_ms is None:
            self.first_token_ms = (time.perf_counter() - self.started) * 1000
            if self.span.is_recording():
                self.span.add_event("first_token")

    def finish(self, text: str) -> None:
        if not self.ended:
            self.ended = True
            _end_llm_span(self.span, text, self.state.model, self.state.final_usage(), self.first_token_ms)

    def fail(self, exc: BaseException) -> None:
        if not self.ended:
            self.ended = True
            _fail_llm_span(self.span, exc)


async def open_stream(components: Components, prepared: PreparedChat, params: dict[str, Any]) -> AnswerStream:
    state = StreamState(model=components.llm.model)
    span = _llm_span(components, prepared, params)
    cm = components.llm.stream(prepared.messages, state, **params)
    t0 = time.perf_counter()
    try:
        deltas = await cm.__aenter__()
    except LLMUnavailableError as exc:
        _fail_llm_span(span, exc)
        raise llm_down(exc, prepared) from exc
    prepared.timings_ms["llm_connect"] = round((time.perf_counter() - t0) * 1000, 2)

    async def close() -> None:
        await cm.__aexit__(None, None, None)

    return AnswerStream(deltas, state, close, span, t0)
