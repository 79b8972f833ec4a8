"""The seam between HTTP and the chat pipeline (``services.chat``), shared by /search, /chat and /v1.

Routes stay thin encoders: they turn the request body into the pipeline's typed input here, run the
pipeline under the request's trace span, and shape its result with the one mapping below, so the two
chat surfaces cannot drift apart. Domain errors become HTTP statuses in ``services/api/errors.py``.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from starlette.concurrency import run_in_threadpool

from services.api.errors import status_for
from services.chat.pipeline import ChatEvent, ChatInput, ChatResult, DoneEvent, FailedEvent, SearchOptions, TokenEvent
from services.contract.schemas import (
    AnswerabilityOut,
    ChatMessage,
    ChatOptions,
    ChatResponse,
    ChunkOut,
    Citation,
    RetrievalOptions,
    SearchResponse,
    SentenceOut,
)
from services.core.observability import spans, tracing
from services.core.retrieval import SearchResult
from services.core.storage.store import SearchFilters
from services.state.db import DatabaseUnavailable
from services.state.store import AppState, TurnRecord

logger = logging.getLogger(__name__)


class RequestTrace:
    """The request's CHAIN span, whose lifetime may outlast the route handler (a streamed answer).

    It continues the caller's trace (W3C ``traceparent`` from the frontend) and tags every span of the
    request with the conversation's ``X-Session-Id``, so one chat is one Phoenix session.
    """

    def __init__(self, name: str, headers: Mapping[str, str], input_value: str) -> None:
        self.session_id = (headers.get(tracing.SESSION_HEADER) or "")[:128] or None
        self.ended = False
        # the answer's id (ChatResponse.id): its key for feedback. Not the trace id: one trace may hold many
        # requests (an evaluation run is one trace).
        self.answer_id = uuid.uuid4().hex
        with tracing.session(self.session_id):
            self.span = tracing.tracer().start_span(
                name, context=tracing.context_from(headers), openinference_span_kind="chain"
            )
        ctx = self.span.get_span_context()
        self.trace_id = format(ctx.trace_id, "032x") if ctx.is_valid else None
        self.span_id = format(ctx.span_id, "016x") if ctx.is_valid and self.span.is_recording() else None
        if self.span.is_recording():
            self.span.set_attributes(spans.chain_input(input_value))
            self.span.set_attribute("rag.answer_id", self.answer_id)

    @contextmanager
    def active(self) -> Iterator[None]:
        """Make the span current (children attach to it) without ending it on exit; an error ends it."""
        with trace.use_span(self.span, end_on_exit=False), tracing.session(self.session_id):
            try:
                yield
            except BaseException as exc:
                self.finish(error=exc)
                raise

    def finish(self, output: Any = None, error: BaseException | None = None) -> None:
        if self.ended:
            return
        self.ended = True
        if not self.span.is_recording():
            self.span.end()
            return
        if error is not None:
            status = status_for(error)
            self.span.set_attribute("http.status_code", status)
            if status >= 500:
                self.span.record_exception(error)
                self.span.set_status(Status(StatusCode.ERROR, str(error)[:300]))
        elif output is not None:
            self.span.set_attributes(spans.chain_output(output))
            self.span.set_status(Status(StatusCode.OK))
        self.span.end()


class EventStream:
    """The pipeline's events for a streamed response, each step run with the request's span current.

    ``open`` pulls the first event inside the route handler, so whatever fails before any output (a bad
    request, retrieval down, the LLM unreachable) is still an HTTP error with its status, not a broken
    stream. No span context is held across a ``yield`` (the response is sent from another task).
    """

    def __init__(self, rt: RequestTrace, events: AsyncGenerator[ChatEvent, None], first: ChatEvent) -> None:
        self.rt = rt
        self.events = events
        self.first = first

    @classmethod
    async def open(cls, rt: RequestTrace, events: AsyncGenerator[ChatEvent, None]) -> EventStream:
        with rt.active():
            first = await anext(events)
        return cls(rt, events, first)

    async def __aiter__(self) -> AsyncIterator[ChatEvent]:
        shown: list[str] = []
        event: ChatEvent = self.first
        try:
            while True:
                if isinstance(event, TokenEvent):
                    shown.append(event.text)
                elif isinstance(event, DoneEvent):
                    self.rt.finish(output=event.result.answer)
                elif isinstance(event, FailedEvent):
                    self.rt.finish(error=event.error)
                yield event
                with self.rt.active():
                    try:
                        event = await anext(self.events)
                    except StopAsyncIteration:
                        return
        finally:
            await self.events.aclose()  # ends the LLM span and connection when the client went away
            self.rt.finish(output="".join(shown))


# --- requests -> the pipeline's input -------------------------------------------------------------------


def search_options(options: RetrievalOptions) -> SearchOptions:
    f = options.filters
    return SearchOptions(
        mode=options.mode,
        top_n=options.top_n,
        top_k=options.top_k,
        rerank=options.rerank,
        late_interaction=options.late_interaction,
        min_score=options.min_score,
        filters=SearchFilters(tuple(f.source), tuple(f.doc_id), tuple(f.tags), tuple(f.exclude_doc_id)) if f else None,
    )


def chat_input(
    messages: Sequence[ChatMessage], options: ChatOptions, max_tokens: int | None, temperature: float | None
) -> ChatInput:
    return ChatInput(
        messages=[
            {"role": m.role, "content": without_sources_footer(m.text()) if m.role == "assistant" else m.text()}
            for m in messages
        ],
        options=search_options(options),
        answerability_gate=options.answerability_gate,
        verify=options.verify,
        max_tokens=max_tokens,
        temperature=temperature,
    )


# --- the pipeline's results -> responses ----------------------------------------------------------------


def search_response(result: SearchResult) -> SearchResponse:
    return SearchResponse(
        query=result.query,
        mode=result.mode,
        reranker=result.reranker,
        reranked=result.reranked,
        rerank_skipped_reason=result.rerank_skipped_reason,
        late_interaction=result.late_interaction,
        candidates=result.candidates,
        results=[ChunkOut.from_chunk(c) for c in result.chunks],
        timings_ms=result.timings_ms,
    )


def retrieval_info(r: SearchResult) -> dict[str, Any]:
    return {
        "query": r.query,
        "mode": r.mode,
        "reranker": r.reranker,
        "reranked": r.reranked,
        "rerank_skipped_reason": r.rerank_skipped_reason,
        "candidates": r.candidates,
        "timings_ms": r.timings_ms,
    }


def chat_response(result: ChatResult, answer_id: str = "") -> ChatResponse:
    """The one shape of a chat answer: /chat's body and ``done`` event, and /v1's extension fields."""
    sources = Citation.numbered(result.sources, result.excerpts)
    gate = result.answerability
    return ChatResponse(
        id=answer_id,
        answer=result.answer,
        citations=[sources[n - 1] for n in result.citations if 1 <= n <= len(sources)],
        sources=sources,
        sentences=[
            SentenceOut(text=s.text, citations=list(s.citations), supported=s.supported, score=float(s.score))
            for s in result.sentences
        ],
        declined=result.declined,
        decline_reason=result.decline_reason,
        answerability=AnswerabilityOut(score=gate.score, band=gate.band, model=gate.model, calibrated=gate.calibrated)
        if gate
        else None,
        extractive=result.extractive,
        model=result.model,
        usage=result.usage,
        retrieval=retrieval_info(result.retrieval),
        timings_ms=result.timings_ms,
    )


# What /v1/chat/completions adds to OpenAI's schema (OpenAI clients ignore it; RAG-aware ones read it).
OPENAI_EXTENSIONS = {"citations", "sources", "sentences", "declined", "decline_reason", "answerability", "extractive"}


def openai_extensions(response: ChatResponse) -> dict[str, Any]:
    return response.model_dump(mode="json", include=OPENAI_EXTENSIONS)


def sources_footer(response: ChatResponse) -> str:
    """The grounding as text, for OpenAI clients that show only ``content``: the cited sources by their [n],
    and how many sentences no source supports. Empty for a refusal, or an answer with nothing to report.

    A streamed answer reaches such a client as the model wrote it, often without [n] markers (they are added by
    the verifier, after the stream); this footer is then the only place that client sees what it rests on,
    or that it rests on nothing."""
    if response.declined:
        return ""
    lines = []
    if response.citations:
        lines.append("Sources:")
    for c in response.citations:
        where = [c.source.rstrip("/").rsplit("/", 1)[-1]]
        if c.page is not None:
            where.append(f"p. {c.page}")
        heading = c.title if not c.section or c.section == c.title else f"{c.title} › {c.section}"
        lines.append(f"[{c.n}] {heading} ({', '.join(where)})")
    unsupported = sum(not s.supported for s in response.sentences)
    if unsupported:
        lines.append(f"Not supported by these sources: {unsupported} of {len(response.sentences)} sentences.")
    return "\n\n" + "\n".join(lines) if lines else ""


_UNSUPPORTED_LINE = r"Not supported by these sources: \d+ of \d+ sentences\."
_FOOTER = re.compile(rf"\n\n(?:Sources:(?:\n\[\d+\] [^\n]*)+(?:\n{_UNSUPPORTED_LINE})?|{_UNSUPPORTED_LINE})\Z")


def without_sources_footer(answer: str) -> str:
    """An earlier answer as the model wrote it: OpenAI clients send their history back with our footer, and its
    numbers belong to that turn's sources, not this one's, so the model must not read them as citations."""
    return answer[: m.start()] if (m := _FOOTER.search(answer)) else answer


# --- the record of an answer (conversations, feedback) ---------------------------------------------------


def turn_record(rt: RequestTrace, question: str, response: ChatResponse, route: str) -> TurnRecord:
    return TurnRecord(
        id=rt.answer_id,
        question=question,
        answer=response.answer,
        declined=response.declined,
        decline_reason=response.decline_reason,
        conversation_id=rt.session_id,
        route=route,
        trace_id=rt.trace_id,
        span_id=rt.span_id,
        # the answer as given, with what it rested on and the models that gave it (the LLM, the gate, the
        # reranker); timings are not part of what a person judges
        detail=response.model_dump(mode="json", exclude={"timings_ms"}),
    )


async def record_turn(app_state: Callable[[], AppState], record: TurnRecord) -> None:
    """Keep the answer for its conversation and its feedback. Best effort: a database that is down costs the record
    (logged), never the answer."""

    def write() -> None:
        app_state().record_turn(record)

    try:
        await run_in_threadpool(write)
    except DatabaseUnavailable as exc:
        logger.warning("answer %s not recorded: %s", record.id, exc)
