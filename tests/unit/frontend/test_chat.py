"""One chat turn against a FAKE API (httpx.MockTransport): history, citations, states, tracing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from frontend.chat import ChatState, run_turn
from services.contract.client import AsyncApiClient
from services.contract.schemas import (
    ChatOptions,
    ChatResponse,
    Citation,
    ConversationOut,
    DocumentOut,
    ErrorBody,
    ErrorDetail,
    Filters,
    SentenceOut,
    StreamError,
    TurnOut,
)
from services.core.observability import tracing
from services.core.settings import FrontendSettings

pytestmark = pytest.mark.unit


def source(n: int, name: str) -> dict[str, Any]:
    """One numbered source as the API sends it (the contract's Citation)."""
    citation = Citation(n=n, chunk_id=f"c{n}", doc_id=f"d{n}", source=f"upload://{name}", title=name, section=None,
                        page=None, text=f"text of {name}", rerank_score=0.5, retrieval_score=0.4)  # fmt: skip
    return citation.model_dump(mode="json")


def sentence(text: str, citations: list[int], supported: bool, score: float) -> dict[str, Any]:
    return SentenceOut(text=text, citations=citations, supported=supported, score=score).model_dump(mode="json")


SOURCES = [source(1, "router.md"), source(2, "bread.md")]


def sse(*events: tuple[str, Any]) -> bytes:
    return b"".join(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events)


def answer_stream(answer: str, sources: list[dict[str, Any]] = SOURCES, verified: dict | None = None) -> bytes:
    """The SSE body of one streamed answer; ``verified`` sets the final ChatResponse's verifier fields (and answer)."""
    words = [w + " " for w in answer.split(" ")]
    words[-1] = words[-1].rstrip()
    done = ChatResponse.model_validate(
        {
            "answer": answer,
            "sources": sources,
            "citations": [],
            "declined": False,
            "model": "fake-model",
            "usage": {"completion_tokens": len(words)},
            "timings_ms": {"first_token": 100.0, "total": 900.0},
        }
        | (verified or {})
    )
    return sse(("sources", sources), *[("token", {"text": w}) for w in words], ("done", done.model_dump(mode="json")))


class FakeApi:
    """A FAKE of the RAG API: ``/chat`` answers come from ``chat``; ``/documents`` from ``documents``."""

    def __init__(self, chat: Callable[[httpx.Request], httpx.Response], documents: list[dict] | None = None) -> None:
        self.chat, self.documents = chat, documents or []
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/documents":
            return httpx.Response(200, json=self.documents)
        return self.chat(request)

    def client(self) -> AsyncApiClient:
        return AsyncApiClient("http://api.test", transport=httpx.MockTransport(self))

    def chat_bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests if r.url.path == "/chat"]


def turn(api: FakeApi, state: ChatState, question: str, options: ChatOptions | None = None) -> list[str]:
    """Run one turn; returns the assistant bubble's text at every step the UI would have shown."""

    async def run() -> list[str]:
        return [
            state.display[-1]["content"]
            async for _ in run_turn(api.client(), state, question, options or ChatOptions())
        ]

    return asyncio.run(run())


def test_a_turn_streams_links_citations_and_fills_the_sources_panel() -> None:
    api = FakeApi(lambda r: httpx.Response(200, content=answer_stream("Unplug the router for thirty seconds [1].")))
    state = ChatState()
    steps = turn(api, state, "how do I restart the router?")

    assert steps[0] == "…"
    assert any(s.endswith("▌") for s in steps), "tokens must reach the UI one by one"
    assert state.display[-1]["content"] == "Unplug the router for thirty seconds [\\[1\\]](#src-1-1)."
    assert state.phase == "done" and "fake-model" in state.info and "total 0.9 s" in state.info
    panel = state.sources_html()
    assert 'id="src-1-1"' in panel and "source-card cited" in panel and 'id="src-1-2"' in panel
    assert 'data-questions="1"' in state.info_html()


def test_the_done_event_replaces_the_draft_with_the_verified_answer() -> None:
    """Streamed "[2]" was wrong: the verifier moved it to [1] and flagged the unsupported sentence."""
    verified = "Unplug the router [1]. Then dance."
    sentences = [sentence("Unplug the router [1].", [1], True, 0.9), sentence("Then dance.", [], False, 0.05)]
    body = answer_stream(
        "Unplug the router [2]. Then dance.",
        verified={"answer": verified, "sentences": sentences, "decline_reason": None},
    )
    api = FakeApi(lambda r: httpx.Response(200, content=body))
    state = ChatState()
    steps = turn(api, state, "how do I restart the router?")

    assert any("#src-1-2" in s for s in steps[:-1]), "the draft streams as the model wrote it"
    final = state.display[-1]["content"]
    assert final.startswith("Unplug the router [\\[1\\]](#src-1-1). ")
    assert 'title="not supported by the sources">⚠' in final and "Then dance." in final
    assert "#src-1-2" not in final
    assert state.sources_html().count("source-card cited") == 1 and 'source-card cited" id="src-1-1' in (
        state.sources_html()
    )
    assert state.history[-1] == {"role": "assistant", "content": verified}


@pytest.mark.parametrize(
    ("reason", "shown"),
    [
        ("no_relevant_sources", "No document answers this question: the nearest sources are listed below."),
        ("unsupported_answer", "The draft answer was not supported by the sources, so it was withheld."),
    ],
)
def test_a_declined_answer_says_why_and_cites_nothing(reason: str, shown: str) -> None:
    body = answer_stream(
        "I don't know based on the provided documents.",
        verified={"declined": True, "decline_reason": reason, "sentences": []},
    )
    api = FakeApi(lambda r: httpx.Response(200, content=body))
    state = ChatState()
    turn(api, state, "who is the office manager?")
    assert shown in state.display[-1]["content"]
    assert "source-card cited" not in state.sources_html() and 'id="src-1-1"' in state.sources_html()
    assert state.phase == "done"


def test_a_model_that_declined_shows_its_own_words() -> None:
    answer = "I don't know based on the provided documents."
    sentences = [sentence(answer, [], True, 1.0)]
    verified = {"declined": True, "decline_reason": "model_declined", "sentences": sentences}
    body = answer_stream(answer, verified=verified)
    state = ChatState()
    turn(FakeApi(lambda r: httpx.Response(200, content=body)), state, "who is the manager?")
    assert state.display[-1]["content"] == answer


def test_history_sends_earlier_turns_raw_and_the_session_id_stays() -> None:
    answers = iter([answer_stream("Unplug it [1]."), answer_stream("Thirty seconds [1].")])
    api = FakeApi(lambda r: httpx.Response(200, content=next(answers)))
    state = ChatState()
    turn(api, state, "how do I restart the router?")
    only = Filters(source=["upload://router.md"])
    turn(api, state, "for how long?", ChatOptions(mode="dense", rerank=False, top_k=2, filters=only))

    second = api.chat_bodies()[1]
    assert second["messages"] == [
        {"role": "user", "content": "how do I restart the router?"},
        {"role": "assistant", "content": "Unplug it [1]."},  # raw text: no link markup goes back to the model
        {"role": "user", "content": "for how long?"},
    ]
    assert (second["mode"], second["rerank"], second["top_k"]) == ("dense", False, 2)
    assert second["filters"] == {"source": ["upload://router.md"]}
    sessions = {r.headers["x-session-id"] for r in api.requests}
    assert sessions == {state.session_id}
    assert [t.turn for t in state.turns] == [1, 2]
    assert "#src-2-1" in state.display[-1]["content"]


def test_new_conversations_get_new_session_ids() -> None:
    assert ChatState().session_id != ChatState().session_id


def test_llm_down_shows_the_sources_and_keeps_the_failed_turn_out_of_history() -> None:
    error = ErrorDetail(message="LLM unreachable", type="service_unavailable", code=503)
    body = ErrorBody(detail="LLM unreachable", error=error, sources=SOURCES).model_dump(mode="json")
    api = FakeApi(lambda r: httpx.Response(503, json=body))
    state = ChatState()
    turn(api, state, "how do I restart the router?")

    assert "language model is unavailable" in state.display[-1]["content"]
    assert "2 passages" in state.display[-1]["content"]
    assert "upload://router.md" in state.sources_html()
    assert state.history == [] and state.phase == "error"


def test_api_down_is_an_error_bubble_not_an_exception() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    state = ChatState()
    turn(FakeApi(refuse), state, "hello?")
    assert "cannot reach the API" in state.display[-1]["content"]
    assert state.phase == "error" and state.info == "API unreachable" and state.history == []


def test_no_sources_on_an_empty_index_tells_how_to_add_documents() -> None:
    api = FakeApi(lambda r: httpx.Response(200, content=answer_stream("I don't know.", sources=[])), documents=[])
    state = ChatState()
    turn(api, state, "anything?")
    assert "ingest add <folder>" in state.display[-1]["content"]


def test_no_sources_with_documents_present_points_at_the_filter() -> None:
    doc = DocumentOut(doc_id="d1", source="upload://a.md", title="A", media_type="text/markdown", chunk_count=1,
                      status="complete", ingested_at="2026-11-22T06:00:00", size_bytes=10)  # fmt: skip
    documents = [doc.model_dump(mode="json")]
    api = FakeApi(
        lambda r: httpx.Response(200, content=answer_stream("I don't know.", sources=[])), documents=documents
    )
    state = ChatState()
    turn(api, state, "anything?")
    assert "source filter" in state.display[-1]["content"]


def test_a_stream_that_breaks_keeps_the_partial_answer() -> None:
    body = sse(
        ("sources", SOURCES),
        ("token", {"text": "Unplug "}),
        ("error", StreamError(message="LLM died", partial_answer="Unplug ").model_dump(mode="json")),
    )
    api = FakeApi(lambda r: httpx.Response(200, content=body))
    state = ChatState()
    turn(api, state, "router?")
    assert state.display[-1]["content"].startswith("Unplug")
    assert "broke off: LLM died" in state.display[-1]["content"]
    assert state.history[-1] == {"role": "assistant", "content": "Unplug "}


def test_blank_question_sends_nothing() -> None:
    api = FakeApi(lambda r: httpx.Response(500))
    state = ChatState()
    assert turn(api, state, "   ") == []
    assert api.requests == [] and state.display == []


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.setup_tracing(FrontendSettings(), "frontend", processors=[SimpleSpanProcessor(exporter)])
    try:
        yield exporter
    finally:
        tracing.install(None)


def test_each_turn_is_a_frontend_chat_span_whose_context_reaches_the_api(spans: InMemorySpanExporter) -> None:
    api = FakeApi(lambda r: httpx.Response(200, content=answer_stream("Unplug it [1].")))
    state = ChatState()
    turn(api, state, "how do I restart the router?")

    (span,) = [s for s in spans.get_finished_spans() if s.name == "frontend.chat"]
    assert span.attributes["openinference.span.kind"] == "CHAIN"
    assert span.attributes["session.id"] == state.session_id
    assert span.attributes["input.value"] == "how do I restart the router?"
    assert span.attributes["output.value"] == "Unplug it [1]."
    traceparent = next(r for r in api.requests if r.url.path == "/chat").headers["traceparent"]
    assert traceparent.split("-")[1] == format(span.context.trace_id, "032x")  # the API's spans join this trace
    assert traceparent.split("-")[2] == format(span.context.span_id, "016x")


def test_stopping_a_turn_marks_the_bubble_and_closes_the_api_stream() -> None:
    """Gradio cancels the handler on Stop and closes the generator; the half answer stays, marked."""
    api = FakeApi(lambda r: httpx.Response(200, content=answer_stream("Unplug the router for thirty seconds [1].")))
    state = ChatState()

    async def run() -> None:
        turn_steps = run_turn(api.client(), state, "router?", ChatOptions())
        async for _ in turn_steps:
            if state.display[-1]["content"].count(" ") >= 2:  # a few tokens in: the user presses Stop
                break
        await turn_steps.aclose()

    asyncio.run(run())
    assert state.display[-1]["content"].startswith("Unplug")
    assert state.display[-1]["content"].endswith("_(stopped)_")
    assert state.phase == "idle" and state.history == []


def test_an_answer_keeps_its_id_for_feedback_and_a_kept_conversation_restores_as_it_was_shown() -> None:
    api = FakeApi(
        lambda r: httpx.Response(200, content=answer_stream("Unplug the router [1].", verified={"id": "a" * 32}))
    )
    state = ChatState()
    turn(api, state, "how do I restart the router?")
    assert state.answer_ids == {1: "a" * 32}  # the assistant bubble's index in the chat, as gr.LikeData gives it

    done = ChatResponse.model_validate(
        {"id": "a" * 32, "answer": "Unplug the router [1].", "sources": SOURCES, "citations": [], "declined": False,
         "model": "m"}
    )  # fmt: skip
    kept = ConversationOut(
        id=state.session_id,
        turns=[TurnOut(id="a" * 32, question="how do I restart the router?", created_at="2026-12-07T00:00:00Z",
                       response=done)],
    )  # fmt: skip
    restored = ChatState.restore(kept)
    assert restored.session_id == state.session_id
    assert restored.display == state.display
    assert restored.history == state.history
    assert restored.answer_ids == state.answer_ids
    assert restored.sources_html() == state.sources_html()
