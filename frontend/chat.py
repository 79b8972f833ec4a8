"""One chat turn, independent of Gradio: call the API, and say after each event what the UI shows.

Why a separate module: the turn logic (history kept raw for the API, citations linked for display,
sources panel per turn, the LLM-down / API-down / empty-index states) is the part worth unit-testing,
and Gradio is only the wiring around it (frontend/app.py).

Tracing: the API stream runs inside its own asyncio task under a ``frontend.chat`` span, so the span
is "current" only in that task's context. Gradio may resume an async generator from another context,
and a span kept current across ``yield`` would be detached from the wrong one; the task avoids that.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from frontend import render
from services.contract.client import (
    ApiClientError,
    ApiDownError,
    AsyncApiClient,
    ChatEvent,
    LLMDownError,
    SourcesEvent,
    StreamErrorEvent,
    TokenEvent,
)
from services.contract.schemas import ChatOptions, ChatResponse, Citation, ConversationOut
from services.core.grounding.citations import cited_among
from services.core.observability import tracing

_END = object()


def new_session_id() -> str:
    return str(uuid.uuid4())


async def traced_events(
    client: AsyncApiClient, messages: list[dict[str, str]], options: ChatOptions, session_id: str
) -> AsyncGenerator[ChatEvent, None]:
    """``client.stream_chat`` inside a ``frontend.chat`` span; the API's spans become its children."""
    queue: asyncio.Queue[Any] = asyncio.Queue()

    async def produce() -> None:
        answer: list[str] = []
        try:
            with (
                tracing.session(session_id),
                tracing.tracer().start_as_current_span("frontend.chat", openinference_span_kind="chain") as span,
            ):
                if span.is_recording():
                    span.set_input(tracing.clip(messages[-1]["content"] if messages else ""))
                    span.set_attribute("rag.mode", options.mode or "default")
                    span.set_attribute("rag.rerank", options.rerank)
                    span.set_attribute("rag.top_k", options.top_k or 0)
                async for event in client.stream_chat(messages, options, session_id):
                    if isinstance(event, TokenEvent):
                        answer.append(event.text)
                    elif isinstance(event, ChatResponse):
                        answer = [event.answer]
                    await queue.put(event)
                if span.is_recording():
                    span.set_output(tracing.clip("".join(answer)))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            await queue.put(exc)
        finally:
            await queue.put(_END)

    task = asyncio.create_task(produce())
    try:
        while True:
            item = await queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        if not task.done():
            task.cancel()  # the user left or pressed stop: close the HTTP stream to the API
            await asyncio.gather(task, return_exceptions=True)


@dataclass
class ChatState:
    """What the UI holds for one conversation.

    ``display`` is what the chat shows (citations as links); ``history`` is what the API gets (the
    model's raw text, failed turns left out so the model never sees our error messages).
    """

    session_id: str = field(default_factory=new_session_id)
    display: list[dict[str, str]] = field(default_factory=list)
    history: list[dict[str, str]] = field(default_factory=list)
    turns: list[render.TurnSources] = field(default_factory=list)
    phase: str = "idle"  # idle | retrieving | streaming | done | error
    info: str = ""  # one line under the chat about the last answer (model, tokens, time) or its failure
    # the API's id of each answered assistant message, by its index in ``display``: what feedback names
    answer_ids: dict[int, str] = field(default_factory=dict)
    feedback_for: str | None = None  # the answer a thumbs-down's reason form is about

    @classmethod
    def restore(cls, conversation: ConversationOut) -> ChatState:
        """The state of a conversation the API kept (a reload, or one reopened from the list)."""
        state = cls(session_id=conversation.id)
        for turn, kept in enumerate(conversation.turns, start=1):
            done = kept.response
            text, cited = answer_view(done, done.sources, turn)
            state.display.append({"role": "user", "content": kept.question})
            state.display.append({"role": "assistant", "content": text})
            state.answer_ids[len(state.display) - 1] = kept.id
            state.turns.append(render.TurnSources(turn, kept.question, tuple(done.sources), tuple(cited)))
            state.history += [{"role": "user", "content": kept.question}, {"role": "assistant", "content": done.answer}]
        return state

    def sources_html(self) -> str:
        return render.sources_panel(self.turns)

    def info_html(self) -> str:
        questions = sum(1 for m in self.display if m["role"] == "user")
        return render.turn_info(self.phase, self.info, questions)


async def run_turn(
    client: AsyncApiClient, state: ChatState, question: str, options: ChatOptions
) -> AsyncIterator[None]:
    """Send one question; mutate ``state`` and yield after every change the UI should show."""
    question = question.strip()
    if not question:
        return
    turn = len(state.turns) + 1
    messages = [*state.history, {"role": "user", "content": question}]
    state.display.append({"role": "user", "content": question})
    state.display.append({"role": "assistant", "content": "…"})
    bubble = state.display[-1]
    state.phase, state.info = "retrieving", ""
    yield

    sources: list[Citation] = []
    parts: list[str] = []
    try:
        async with aclosing(traced_events(client, messages, options, state.session_id)) as events:
            async for event in events:
                if isinstance(event, SourcesEvent):
                    sources = event.sources
                    state.phase = "streaming"
                    state.turns.append(render.TurnSources(turn, question, tuple(sources)))
                elif isinstance(event, TokenEvent):
                    parts.append(event.text)
                    bubble["content"] = render.link_citations("".join(parts), (s.n for s in sources), turn) + " ▌"
                elif isinstance(event, ChatResponse):
                    await _finish(client, state, turn, question, event, event.sources or sources)
                    state.phase, state.info = "done", render.answer_stats(event.model, event.usage, event.timings_ms)
                    yield
                    return
                elif isinstance(event, StreamErrorEvent):
                    partial = event.partial_answer or "".join(parts)
                    linked = render.link_citations(partial, (s.n for s in sources), turn)
                    bubble["content"] = f"{linked}\n\n{render.error_message('the answer broke off: ' + event.message)}"
                    if partial:
                        state.history = [*messages, {"role": "assistant", "content": partial}]
                    state.phase, state.info = "error", event.message
                    yield
                    return
                yield
    except (asyncio.CancelledError, GeneratorExit):  # Stop / New chat: keep what came, marked as stopped
        bubble["content"] = ("".join(parts) + " _(stopped)_").strip()
        state.phase, state.info = "idle", ""
        raise
    except LLMDownError as exc:
        state.turns.append(render.TurnSources(turn, question, tuple(exc.sources)))
        bubble["content"] = render.llm_down_message(exc.message, len(exc.sources))
        state.phase, state.info = "error", "language model unavailable"
    except ApiDownError as exc:
        bubble["content"] = render.error_message(f"{exc.message}. Is the API running?")
        state.phase, state.info = "error", "API unreachable"
    except ApiClientError as exc:
        bubble["content"] = render.error_message(exc.message)
        state.phase, state.info = "error", exc.message
    yield


async def _finish(
    client: AsyncApiClient, state: ChatState, turn: int, question: str, done: ChatResponse, sources: list[Citation]
) -> None:
    """Show the final answer: the verified one (flagged sentences, verified links) or why it was declined."""
    answer = done.answer
    text, cited = answer_view(done, sources, turn)
    if state.turns and state.turns[-1].turn == turn:
        state.turns[-1] = render.TurnSources(turn, question, tuple(sources), tuple(cited))
    else:
        state.turns.append(render.TurnSources(turn, question, tuple(sources), tuple(cited)))
    if not sources:
        text += "\n\n" + render.no_sources_hint(await _index_empty(client, state.session_id))
    state.display[-1]["content"] = text
    if done.id:
        state.answer_ids[len(state.display) - 1] = done.id
    state.history = [*state.history, {"role": "user", "content": question}, {"role": "assistant", "content": answer}]


def answer_view(done: ChatResponse, sources: Sequence[Citation], turn: int) -> tuple[str, list[int]]:
    """The bubble of a final answer and the source numbers it verifiably cites (a declined one cites none)."""
    numbers = [s.n for s in sources]
    withheld = render.declined_message(done.decline_reason)
    if withheld:
        cited: list[int] = []
    elif done.sentences:
        verified = dict.fromkeys(n for s in done.sentences if s.supported for n in s.citations)  # ordered set
        cited = [n for n in verified if n in numbers]
    else:
        cited = cited_among(done.answer, numbers)
    text = withheld or render.verified_answer(done.answer, done.sentences, numbers, turn) or "(empty answer)"
    return text, cited


async def _index_empty(client: AsyncApiClient, session_id: str) -> bool:
    try:
        return not await client.list_documents(session_id)
    except ApiClientError:
        return False
