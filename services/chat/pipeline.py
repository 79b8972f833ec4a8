"""The chat flow as one typed pipeline, told as a stream of events. ``run`` reads as its steps:

1. ``prepare``: cap the history, check the question, retrieve (the Retriever runs in a thread), pick the
   evidence (``services.core.grounding.evidence``: the sentences that bear on the question, within a token budget;
   whole chunks when there is no selector), number the sources and build the prompt
   (``services.core.grounding.prompt.build_messages``).
2. ``decide``: the answerability gate's band for those sources (None when it is off, absent or failed).
3. ``plan``: what the band does, from one table (``BAND_RULES``) narrowed by the toggles: ``decline`` (or no
   sources at all) refuses without calling the LLM; ``answer`` streams, and a model that says it does not
   know is replaced by the evidence sentence that bears most on the question, quoted and cited
   (``extractive``), its tokens held back while the draft may still be that refusal
   (``services.core.grounding.prompt.may_become_refusal``), so a client never sees a refusal and then an answer;
   ``verify`` (the uncertain middle) holds the draft until the verifier kept it.
4. generate (``_stream``, or ``_complete`` for a consumer that shows nothing before the end): the LLM
   writes the ``Draft``; its span records the prompt, the answer, token counts and time to first token;
   ``Draft.release`` decides which tokens the client sees as they come.
5. ``settle``: the draft made the answer: quoted on refusal (per plan), else verified: the verifier scores
   each sentence against the sources the model saw, the answer carries the verified ``[n]`` markers and
   the per-sentence support; a held draft below ``verify_min_supported`` is withheld
   (``unsupported_answer``). Without a verifier (or with verification off) the citations are the ``[n]``
   the model wrote.
6. respond: a draft the client has not seen goes out as one token, then the ``DoneEvent``.

Failures before any event (bad request, retrieval down, LLM unreachable) are raised as the typed errors of
``services.chat.errors``; a failure after the sources went out is a ``FailedEvent``. This package knows no
HTTP: the API maps the errors to status codes and encodes the events (SSE, OpenAI chunks).

Usage::

    pipeline = ChatPipeline(retriever, llm, gate=gate, verifier=verifier, config=ChatConfig.from_settings(s))
    request = ChatInput(messages=[{"role": "user", "content": "How do I reset the router?"}])
    async for event in pipeline.run(request):
        match event:
            case SourcesEvent(sources=sources, excerpts=excerpts): ...  # numbered [1..n] as in the prompt;
                # excerpts[i]: what the prompt held of sources[i] (its evidence), None for whole chunks
            case TokenEvent(text=text): print(text, end="")
            case DoneEvent(result=result): print(result.answer, result.citations, result.decline_reason)
            case FailedEvent(error=error, partial_answer=partial): ...
    result = await pipeline.answer(request)   # run(stream=False)'s events, consumed; raises LLMUnavailable
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import anyio.to_thread
from opentelemetry.trace import Status, StatusCode

from services.chat import spans as chat_spans
from services.chat.errors import InvalidRequest, LLMUnavailable, QueryTooLong
from services.core.grounding.contracts import (
    AnswerabilityGate,
    AnswerVerifier,
    Band,
    DeclineReason,
    GateDecision,
    SentenceSupport,
    Verification,
)
from services.core.grounding.evidence import EvidenceSelector, Excerpt, extractive_answer
from services.core.grounding.prompt import NO_ANSWER, build_messages, cited_numbers, declined, may_become_refusal
from services.core.models.llm import LLMClient, LLMUnavailableError, StreamState
from services.core.models.reranker import titled_passage
from services.core.observability import spans, tracing
from services.core.retrieval import SearchResult, SearchSpec, retrieval_query
from services.core.storage.store import SearchFilters
from services.core.types import RetrievalMode, RetrievedChunk

if TYPE_CHECKING:
    from services.core.settings import ChatPipelineSettings

logger = logging.getLogger(__name__)
T = TypeVar("T")


class ChunkSearcher(Protocol):
    """What the pipeline needs of ``services.core.retrieval.Retriever``."""

    def search(self, query: str, spec: SearchSpec) -> SearchResult: ...


# --- inputs ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChatConfig:
    """The pipeline's defaults (from settings); a request may override the retrieval ones and the toggles."""

    search: SearchSpec = SearchSpec(mode="hybrid", top_n=10, top_k=5)  # what a request with no options gets
    max_query_chars: int = 2000
    max_history_messages: int = 12
    context_max_chars: int = 6000
    answerability_gate: bool = True
    verify_answers: bool = True
    verify_min_supported: float = 0.5
    extractive_fallback: bool = True

    @classmethod
    def from_settings(cls, settings: ChatPipelineSettings) -> ChatConfig:
        return cls(
            search=SearchSpec.configured(settings),
            max_query_chars=settings.max_query_chars,
            max_history_messages=settings.max_history_messages,
            context_max_chars=settings.context_max_chars,
            answerability_gate=settings.answerability_gate,
            verify_answers=settings.verify_answers,
            verify_min_supported=settings.verify_min_supported,
            extractive_fallback=settings.extractive_fallback,
        )


@dataclass(frozen=True, slots=True)
class SearchOptions:
    """Per-request retrieval options; ``None`` means the configured default (``resolve`` fills them once)."""

    mode: RetrievalMode | None = None
    top_n: int | None = None
    top_k: int | None = None
    rerank: bool = True
    late_interaction: bool | None = None
    min_score: float | None = None
    filters: SearchFilters | None = None

    def resolve(self, default: SearchSpec) -> SearchSpec:
        """The one retrieval these options ask for, over the configured ``default``; ``InvalidRequest`` if it
        cannot be run as asked (``top_k > top_n``)."""
        asked: dict[str, Any] = {
            "mode": self.mode,
            "top_n": self.top_n,
            "top_k": self.top_k,
            "min_score": self.min_score,
            "late_interaction": self.late_interaction,
        }
        overrides = {name: value for name, value in asked.items() if value is not None}
        try:
            return dataclasses.replace(default, rerank=self.rerank, filters=self.filters, **overrides)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from exc


@dataclass(frozen=True, slots=True)
class ChatInput:
    """One chat turn: the conversation (``{"role", "content"}`` dicts, last one the question) and options."""

    messages: Sequence[Mapping[str, str]]
    options: SearchOptions = field(default_factory=SearchOptions)
    answerability_gate: bool | None = None  # None: ChatConfig.answerability_gate
    verify: bool | None = None  # None: ChatConfig.verify_answers
    max_tokens: int | None = None
    temperature: float | None = None


# --- outputs ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class ChatResult:
    """The final answer. ``sources[i]`` is ``[i + 1]``; ``citations`` are source numbers.

    ``excerpts[i]`` is what the prompt held of ``sources[i]`` (its evidence sentences); None when the prompt
    held whole chunks (no evidence selector) or nothing was found.
    """

    answer: str
    sources: list[RetrievedChunk]
    citations: list[int]
    sentences: list[SentenceSupport]
    declined: bool
    decline_reason: DeclineReason | None
    answerability: GateDecision | None
    model: str  # empty when no LLM was called (a decline before generation)
    usage: dict[str, int]
    retrieval: SearchResult
    timings_ms: dict[str, float]
    finish_reason: str = "stop"
    extractive: bool = False  # the model refused a question the gate found answerable: the best evidence quoted
    excerpts: list[str] | None = None


@dataclass(frozen=True, slots=True)
class SourcesEvent:
    """The numbered sources given to the model (or, for a decline, the nearest ones found).

    ``excerpts`` (aligned with ``sources``) is what the prompt held of each: the evidence sentences; None when
    it held whole chunks (no evidence selector) or nothing was found.
    """

    sources: list[RetrievedChunk]
    excerpts: list[str] | None = None


@dataclass(frozen=True, slots=True)
class TokenEvent:
    text: str


@dataclass(frozen=True, slots=True)
class DoneEvent:
    result: ChatResult


@dataclass(frozen=True, slots=True)
class FailedEvent:
    """The answer broke off after the sources went out; ``partial_answer`` is what the client already got."""

    error: LLMUnavailable
    partial_answer: str


ChatEvent = SourcesEvent | TokenEvent | DoneEvent | FailedEvent


@dataclass(slots=True)
class Prepared:
    """Everything decided before the gate: the retrieval, the prompt and the numbered sources."""

    question: str
    retrieval: SearchResult
    messages: list[dict[str, str]]
    sources: list[RetrievedChunk]
    passages: list[str]  # each source as the model read it (title + evidence): what the verifier checks
    excerpts: list[Excerpt]  # the evidence per source (empty without a selector)
    started: float
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def prompt_texts(self) -> list[str] | None:
        """What the prompt holds of each source, for the client: the evidence texts (aligned with ``sources``),
        or None when the prompt holds the whole chunks (no selector) or there are no sources."""
        return [e.text for e in self.excerpts] if self.excerpts else None


@dataclass(frozen=True, slots=True)
class BandRule:
    """What one band of the gate does with the turn."""

    generate: bool  # False: decline without calling the LLM
    hold: bool  # show nothing until the verifier kept the draft; below verify_min_supported it is withheld
    fallback: bool  # a refusal is replaced by the best evidence, quoted; tokens held while it may be one


# The band policy in one table. None: the gate is off, absent or failed (answer; verify when verification is
# on). "answer": clearly answerable, so a small model's "I don't know" is the model's failure and the evidence
# is quoted instead. "verify": the uncertain middle, shown only once verified.
BAND_RULES: dict[Band | None, BandRule] = {
    None: BandRule(generate=True, hold=False, fallback=False),
    "answer": BandRule(generate=True, hold=False, fallback=True),
    "verify": BandRule(generate=True, hold=True, fallback=False),
    "decline": BandRule(generate=False, hold=False, fallback=False),
}


@dataclass(frozen=True, slots=True)
class Plan:
    """How this turn's draft is handled: its band's rule narrowed by the toggles (``ChatPipeline.plan``)."""

    verify: bool  # the verifier checks the draft (on, and there is one)
    hold: bool  # the band holds and the draft is verified: nothing streams, an unsupported draft is withheld
    fallback: bool  # the band quotes on refusal, the fallback is on and there is evidence to quote


@dataclass(slots=True)
class Draft:
    """The model's answer as it arrives, and how much of it the client has seen."""

    model: str
    parts: list[str] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    finish_reason: str | None = None
    released: bool = False  # the client sees the draft as it streams (else it gets the final answer at the end)
    failed: bool = False  # the stream broke off after the sources went out (a FailedEvent was sent)

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def release(self, delta: str, plan: Plan) -> str:
        """What of a new delta (already in ``parts``) the client may see now: a held draft shows nothing, a
        fallback draft nothing while it may still be a refusal and then everything so far at once."""
        if self.released:
            return delta
        if plan.hold or (plan.fallback and may_become_refusal(self.text)):
            return ""
        self.released = True
        return self.text


class _LLMSpan:
    """The ``generate`` span (OpenInference LLM kind): prompt, answer, token counts, time to first token.

    Started now and never made current (the answer is streamed across ``yield``s); ends exactly once.
    """

    def __init__(self, model: str, messages: Sequence[Mapping[str, str]], params: Mapping[str, Any]) -> None:
        self.span = tracing.tracer().start_span("generate", openinference_span_kind="llm")
        self.ended = False
        if self.span.is_recording():
            self.span.set_attributes(spans.llm_request(model, messages, params))

    def first_token(self) -> None:
        if self.span.is_recording():
            self.span.add_event("first_token")

    def ok(self, text: str, model: str, usage: Mapping[str, int], first_token_ms: float | None) -> None:
        if self.ended:
            return
        if self.span.is_recording():
            self.span.set_attributes(spans.llm_response(text, model, usage, first_token_ms))
            self.span.set_status(Status(StatusCode.OK))
        self.close()

    def fail(self, exc: BaseException) -> None:
        if self.ended:
            return
        if self.span.is_recording():
            self.span.record_exception(exc)
            self.span.set_status(Status(StatusCode.ERROR, str(exc)[:300]))
        self.close()

    def close(self) -> None:
        if not self.ended:
            self.ended = True
            self.span.end()


async def _in_thread(func: Callable[..., T], *args: Any) -> T:
    """Model work (embedding, reranking, gate, verifier) off the event loop, in anyio's pool (the one the
    API's other blocking calls share); the current span context goes along, so child spans nest."""
    return await anyio.to_thread.run_sync(functools.partial(func, *args))


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 2)


class ChatPipeline:
    """Retrieve, gate, generate and verify one chat turn (see the module docstring for the flow and usage).

    Cheap to build (the heavy objects are passed in, already loaded), so the API builds one per request.
    """

    def __init__(
        self,
        retriever: ChunkSearcher,
        llm: LLMClient,
        *,
        gate: AnswerabilityGate | None = None,
        verifier: AnswerVerifier | None = None,
        evidence: EvidenceSelector | None = None,
        config: ChatConfig | None = None,
    ) -> None:
        self.retriever = retriever
        self.llm = llm
        self.evidence = evidence
        self.gate = gate
        self.verifier = verifier
        self.config = config or ChatConfig()

    # --- retrieval (also what /search runs) ----------------------------------------------------------

    def check_query(self, query: str) -> None:
        limit = self.config.max_query_chars
        if len(query) > limit:
            raise QueryTooLong(len(query), limit)

    async def search(self, query: str, options: SearchOptions) -> SearchResult:
        """The question checked against ``max_query_chars``, then retrieved with the options resolved."""
        self.check_query(query)
        return await self._search(query, options)

    async def _search(self, query: str, options: SearchOptions) -> SearchResult:
        return await _in_thread(self.retriever.search, query, options.resolve(self.config.search))

    # --- the steps -------------------------------------------------------------------------------------

    def history(self, messages: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
        """Caller-supplied system prompts are dropped (ours sets the grounding rules); history is capped."""
        turns = [
            {"role": m["role"], "content": m.get("content") or ""}
            for m in messages
            if m.get("role") in ("user", "assistant")
        ]
        return turns[-self.config.max_history_messages :]

    async def prepare(self, request: ChatInput) -> Prepared:
        started = time.perf_counter()
        turns = self.history(request.messages)
        if not turns or turns[-1]["role"] != "user" or not turns[-1]["content"].strip():
            raise InvalidRequest("the last message must be a non-empty user message")
        # Only the question is bounded by max_query_chars; earlier answers may be long (they are capped per
        # message by the API's schema and in number by max_history_messages).
        question = turns[-1]["content"]
        self.check_query(question)
        result = await self._search(retrieval_query(turns, self.config.max_query_chars), request.options)
        timings = {k: v for k, v in result.timings_ms.items() if k != "total"}
        chunks, texts, excerpts = list(result.chunks), None, []
        if self.evidence is not None and chunks:
            t0 = time.perf_counter()
            with tracing.tracer().start_as_current_span("evidence", openinference_span_kind="chain") as span:
                excerpts = await _in_thread(self.evidence.select, result.query, chunks)
                if span.is_recording():
                    span.set_attributes(chat_spans.evidence(len(chunks), excerpts))
            timings["evidence"] = _ms(t0)
            chunks, texts = [e.chunk for e in excerpts], [e.text for e in excerpts]
        messages, used = build_messages(
            question, turns[:-1], chunks, max_chars=self.config.context_max_chars, texts=texts
        )
        bodies = [c.text for c in chunks] if texts is None else texts
        passages = [titled_passage(c.title, body) for c, body in zip(used, bodies, strict=False)]
        return Prepared(question, result, messages, used, passages, excerpts[: len(used)], started, timings)

    async def decide(self, prepared: Prepared, request: ChatInput) -> GateDecision | None:
        """The gate's band for these sources; None when the gate is off, absent, or failed (then: answer)."""
        enabled = request.answerability_gate
        if enabled is None:
            enabled = self.config.answerability_gate
        if self.gate is None or not enabled or not prepared.sources:
            return None
        gate = self.gate
        # The retrieval query (a short follow-up carries the previous question) and the reranked chunks are
        # what the gate was fitted on (train/answerability.py); the prompt's sources are their first ones.
        question = prepared.retrieval.query
        chunks = prepared.retrieval.chunks
        t0 = time.perf_counter()
        with tracing.tracer().start_as_current_span("gate", openinference_span_kind="guardrail") as span:
            try:
                decision = await _in_thread(gate.decide, question, chunks)
            except Exception as exc:  # a broken gate must not take chat down: answer ungated
                logger.exception("answerability gate %s failed; answering without it", getattr(gate, "name", gate))
                if span.is_recording():
                    span.record_exception(exc)
                    span.set_status(Status(StatusCode.ERROR, str(exc)[:300]))
                return None
            if span.is_recording():
                span.set_attributes(chat_spans.gate(question, len(chunks), decision))
        prepared.timings_ms["gate"] = _ms(t0)
        return decision

    async def check(
        self, answer: str, sources: Sequence[str], min_supported: float | None = None, question: str | None = None
    ) -> Verification | None:
        """Which source supports each sentence; None without a verifier or when it failed (then: unverified).

        ``sources`` are the passages as the model read them (``Prepared.passages``: title and evidence).
        """
        verifier = self.verifier
        if verifier is None:
            return None
        if not answer.strip():
            return Verification(sentences=(), answer=answer)
        with tracing.tracer().start_as_current_span("verify", openinference_span_kind="evaluator") as span:
            try:
                verification = await _in_thread(verifier.verify, answer, list(sources), question)
            except Exception as exc:  # an unverified answer beats no answer
                logger.exception("verifier %s failed; the answer goes out unverified", getattr(verifier, "name", "?"))
                if span.is_recording():
                    span.record_exception(exc)
                    span.set_status(Status(StatusCode.ERROR, str(exc)[:300]))
                return None
            if span.is_recording():
                span.set_attributes(chat_spans.verify(verifier.name, answer, verification, min_supported))
        return verification

    # --- the flow -----------------------------------------------------------------------------------------

    def plan(self, prepared: Prepared, decision: GateDecision | None, request: ChatInput) -> Plan | None:
        """How this turn's draft is handled: the band's row of ``BAND_RULES`` and the toggles; None: decline."""
        if not prepared.sources:
            return None
        rule = BAND_RULES[decision.band if decision is not None else None]
        if not rule.generate:
            return None
        verify = request.verify if request.verify is not None else self.config.verify_answers
        verifying = verify and self.verifier is not None
        return Plan(
            verify=verifying,
            hold=rule.hold and verifying,
            fallback=rule.fallback and self.config.extractive_fallback and bool(prepared.excerpts),
        )

    async def run(self, request: ChatInput, *, stream: bool = True) -> AsyncGenerator[ChatEvent, None]:
        """The turn as events: ``SourcesEvent``, ``TokenEvent``s, then one ``DoneEvent`` or ``FailedEvent``.

        Raises (before any event) ``InvalidRequest``, ``QueryTooLong``, ``LLMUnavailable`` (connect failed,
        with the sources) and the retrieval's own errors (store down, late interaction unavailable).
        With ``stream=False`` (a consumer that shows nothing before the end) the LLM is asked for one
        completion, whose usage servers report in full, and the answer comes as one ``TokenEvent``.
        """
        prepared = await self.prepare(request)
        decision = await self.decide(prepared, request) if prepared.sources else None
        plan = self.plan(prepared, decision, request)
        if plan is None:
            for event in self._decline(prepared, decision):
                yield event
            return
        draft = Draft(model=self.llm.model)
        generate = self._stream if stream else self._complete
        async for event in generate(prepared, plan, draft, request):
            yield event
        if draft.failed:
            return
        result = await self.settle(prepared, decision, plan, draft)
        if not draft.released:  # held, buffered or one completion: the final answer is the one token
            yield TokenEvent(result.answer)
        prepared.timings_ms["total"] = _ms(prepared.started)
        yield DoneEvent(result)

    async def _complete(
        self, prepared: Prepared, plan: Plan, draft: Draft, request: ChatInput
    ) -> AsyncGenerator[ChatEvent, None]:
        """generate, in one call: the draft filled, then the sources sent (nothing showed before the end)."""
        params = {"max_tokens": request.max_tokens, "temperature": request.temperature}
        span = _LLMSpan(self.llm.model, prepared.messages, params)
        t0 = time.perf_counter()
        try:
            completion = await self.llm.complete(prepared.messages, **params)
        except LLMUnavailableError as exc:
            span.fail(exc)
            raise LLMUnavailable(str(exc), prepared.sources, prepared.prompt_texts) from exc
        except BaseException:  # cancelled while waiting (the client went away): the span still ends
            span.close()
            raise
        prepared.timings_ms["generate"] = _ms(t0)
        span.ok(completion.text, completion.model, completion.usage, None)
        draft.parts.append(completion.text)
        draft.model, draft.usage, draft.finish_reason = completion.model, completion.usage, completion.finish_reason
        yield SourcesEvent(list(prepared.sources), prepared.prompt_texts)

    async def _stream(
        self, prepared: Prepared, plan: Plan, draft: Draft, request: ChatInput
    ) -> AsyncGenerator[ChatEvent, None]:
        """generate, streamed: the sources once connected, then tokens as the plan lets them out.

        A held draft (the uncertain band) shows nothing; a fallback draft is held while it may still be a
        refusal (``may_become_refusal``) and released whole once it cannot be one.
        """
        params = {"max_tokens": request.max_tokens, "temperature": request.temperature}
        span = _LLMSpan(self.llm.model, prepared.messages, params)
        state = StreamState(model=self.llm.model)
        t0 = time.perf_counter()
        connected = False
        first_token_ms: float | None = None
        draft.released = not plan.hold and not plan.fallback  # nothing to hold back: tokens go out as they come
        try:
            async with self.llm.stream(prepared.messages, state, **params) as deltas:
                connected = True
                prepared.timings_ms["llm_connect"] = _ms(t0)
                yield SourcesEvent(list(prepared.sources), prepared.prompt_texts)
                async for delta in deltas:
                    if not draft.parts:
                        first_token_ms = (time.perf_counter() - t0) * 1000
                        prepared.timings_ms["first_token"] = round(first_token_ms, 2)
                        span.first_token()
                    draft.parts.append(delta)
                    shown = draft.release(delta, plan)
                    if shown:
                        yield TokenEvent(shown)
            prepared.timings_ms["generate"] = _ms(t0)
        except LLMUnavailableError as exc:
            span.fail(exc)
            error = LLMUnavailable(str(exc), prepared.sources, prepared.prompt_texts)
            if not connected:
                raise error from exc
            logger.warning("LLM stream failed: %s", exc)
            draft.failed = True
            yield FailedEvent(error, draft.text if draft.released else "")
            return
        finally:
            # Done, or the consumer went away mid-answer: the span closes either way, with what arrived.
            span.ok(draft.text, state.model, state.final_usage(), first_token_ms)
        draft.model, draft.usage, draft.finish_reason = state.model, state.final_usage(), state.finish_reason

    async def settle(self, prepared: Prepared, decision: GateDecision | None, plan: Plan, draft: Draft) -> ChatResult:
        """The draft made the answer: a refusal quoted from the evidence (fallback), else verified per plan."""
        result = ChatResult(
            answer=draft.text,
            sources=list(prepared.sources),
            citations=[],
            sentences=[],
            declined=False,
            decline_reason=None,
            answerability=decision,
            model=draft.model,
            usage=draft.usage,
            retrieval=prepared.retrieval,
            timings_ms=prepared.timings_ms,
            finish_reason=draft.finish_reason or "stop",
            excerpts=prepared.prompt_texts,
        )
        if draft.usage.get("prompt_tokens"):
            prepared.timings_ms["prompt_tokens"] = float(draft.usage["prompt_tokens"])
        quote = extractive_answer(prepared.excerpts) if plan.fallback and declined(draft.text) else None
        if quote is not None:
            result.answer, result.extractive = quote, True
        if declined(result.answer):
            result.declined, result.decline_reason = True, "model_declined"
            return result
        await self._verify(prepared, plan, result)
        return result

    async def _verify(self, prepared: Prepared, plan: Plan, result: ChatResult) -> None:
        """verify: the per-sentence support and the verified citations; a held draft below the bar withheld."""
        if not plan.verify:
            result.citations = cited_numbers(result.answer, len(result.sources))
            return
        t0 = time.perf_counter()
        min_supported = self.config.verify_min_supported if plan.hold else None
        verification = await self.check(result.answer, prepared.passages, min_supported, prepared.question)
        prepared.timings_ms["verify"] = _ms(t0)
        if verification is None:  # the verifier failed: the answer goes out with the model's own markers
            result.citations = cited_numbers(result.answer, len(result.sources))
            return
        # a withheld draft's verdicts stay visible (why it was withheld; the data that tunes the thresholds on
        # dev), its text is not shown; citations stay empty: nothing was answered
        result.sentences = list(verification.sentences)
        if min_supported is not None and verification.supported_share < min_supported:
            result.answer, result.declined, result.decline_reason = NO_ANSWER, True, "unsupported_answer"
            result.finish_reason = "stop"
            return
        result.answer = verification.answer
        result.citations = [n for n in verification.citations if 1 <= n <= len(result.sources)]

    def _decline(self, prepared: Prepared, decision: GateDecision | None) -> list[ChatEvent]:
        """No relevant sources: refuse without calling the LLM, still showing the nearest sources found (and,
        after a gate decline, the evidence the prompt would have held of each)."""
        prepared.timings_ms["total"] = _ms(prepared.started)
        excerpts = prepared.prompt_texts
        result = ChatResult(
            answer=NO_ANSWER,
            sources=list(prepared.sources),
            citations=[],
            sentences=[],
            declined=True,
            decline_reason="no_relevant_sources",
            answerability=decision,
            model="",
            usage={},
            retrieval=prepared.retrieval,
            timings_ms=prepared.timings_ms,
            excerpts=excerpts,
        )
        return [SourcesEvent(list(prepared.sources), excerpts), TokenEvent(NO_ANSWER), DoneEvent(result)]

    async def answer(self, request: ChatInput) -> ChatResult:
        """The non-streaming answer: ``run(stream=False)``'s events consumed; a failure is raised as its error."""
        events = self.run(request, stream=False)
        try:
            async for event in events:
                if isinstance(event, DoneEvent):
                    return event.result
                if isinstance(event, FailedEvent):
                    raise event.error
        finally:
            await events.aclose()
        raise RuntimeError("the chat pipeline ended without a result")  # pragma: no cover - run always ends so
