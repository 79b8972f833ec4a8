"""The frontend's API client against a FAKE API (httpx.MockTransport): SSE parsing, typed failures, headers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from frontend.api_client import (
    Answerability,
    AnswerSentence,
    ApiClient,
    ApiDownError,
    ApiHTTPError,
    ChatOptions,
    DoneEvent,
    LLMDownError,
    Source,
    SourcesEvent,
    SSEParser,
    StreamErrorEvent,
    TokenEvent,
)
from services.core.tracing import SESSION_HEADER

pytestmark = pytest.mark.unit

SOURCE = {
    "n": 1,
    "chunk_id": "c1",
    "doc_id": "d1",
    "source": "upload://router.md",
    "title": "Restarting the home router",
    "section": "Restarting the home router",
    "page": None,
    "text": "Unplug the router's power cable, wait thirty seconds.",
    "rerank_score": 0.91,
    "retrieval_score": 0.55,
}


def sse(*events: tuple[str, Any]) -> bytes:
    return b"".join(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events)


def done_body(answer: str) -> dict[str, Any]:
    return {"answer": answer, "citations": [SOURCE], "sources": [SOURCE], "declined": False, "model": "m",
            "usage": {"completion_tokens": 3}, "retrieval": {}, "timings_ms": {"total": 12.0}}  # fmt: skip


class FakeApi:
    """A FAKE of the RAG API: answers each request with ``handler`` and records what it received."""

    def __init__(self, handler: Callable[[httpx.Request], httpx.Response]) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    def client(self, **kwargs: Any) -> ApiClient:
        return ApiClient("http://api.test/", transport=httpx.MockTransport(self), **kwargs)


def collect(client: ApiClient, options: ChatOptions | None = None, session: str = "s-1") -> list[Any]:
    async def run() -> list[Any]:
        messages = [{"role": "user", "content": "how do I restart the router?"}]
        return [e async for e in client.stream_chat(messages, options or ChatOptions(), session)]

    return asyncio.run(run())


def test_sse_parser_joins_data_lines_skips_comments_and_names_events() -> None:
    parser = SSEParser()
    lines = [": keep-alive", "event: token", 'data: {"text":', 'data: "a"}', "", "", "data: plain", ""]
    out = [e for line in lines if (e := parser.feed(line)) is not None]
    assert out == [("token", '{"text":\n"a"}'), ("message", "plain")]


def test_sse_parser_flush_returns_an_event_without_its_blank_line() -> None:
    parser = SSEParser()
    assert parser.feed("event: done") is None
    assert parser.feed("data: {}") is None
    assert parser.flush() == ("done", "{}")
    assert parser.flush() is None


def test_stream_chat_yields_sources_tokens_then_done_and_sends_the_contract() -> None:
    body = sse(("sources", [SOURCE]), ("token", {"text": "Unplug it "}), ("token", {"text": "[1]"}),
               ("done", done_body("Unplug it [1]")))  # fmt: skip
    fake = FakeApi(lambda r: httpx.Response(200, content=body, headers={"content-type": "text/event-stream"}))
    events = collect(fake.client(api_key="k3y"), ChatOptions(mode="dense", rerank=False, top_k=3, sources=["a.md"]))

    assert [type(e) for e in events] == [SourcesEvent, TokenEvent, TokenEvent, DoneEvent]
    assert events[0].sources[0].title == "Restarting the home router"
    assert events[0].sources[0].rerank_score == pytest.approx(0.91)
    assert "".join(e.text for e in events if isinstance(e, TokenEvent)) == events[-1].answer
    assert events[-1].citations[0].source == "upload://router.md"

    request = fake.requests[0]
    assert request.method == "POST" and request.url.path == "/chat"
    assert json.loads(request.content) == {
        "messages": [{"role": "user", "content": "how do I restart the router?"}],
        "stream": True,
        "mode": "dense",
        "rerank": False,
        "top_k": 3,
        "filters": {"source": ["a.md"]},
    }
    assert request.headers["authorization"] == "Bearer k3y"
    assert request.headers[SESSION_HEADER] == "s-1"


def test_done_event_carries_the_verified_sentences_decline_reason_and_answerability() -> None:
    body = done_body("Unplug it [1]. It is magic.") | {
        "sentences": [
            {"text": "Unplug it [1].", "citations": [1], "supported": True, "score": 0.93},
            {"text": "It is magic.", "citations": [], "supported": False, "score": 0.1},
        ],
        "decline_reason": None,
        "answerability": {"score": 0.8, "band": "answer", "model": "gate-v1"},
    }
    fake = FakeApi(lambda r: httpx.Response(200, content=sse(("sources", [SOURCE]), ("done", body))))
    done = collect(fake.client(), ChatOptions())[-1]
    assert isinstance(done, DoneEvent)
    assert done.sentences == (
        AnswerSentence("Unplug it [1].", (1,), True, pytest.approx(0.93)),
        AnswerSentence("It is magic.", (), False, pytest.approx(0.1)),
    )
    assert done.decline_reason is None
    assert done.answerability == Answerability(pytest.approx(0.8), "answer", "gate-v1")
    declined = DoneEvent.from_dict(done_body("I don't know.") | {"decline_reason": "no_relevant_sources"})
    assert declined.decline_reason == "no_relevant_sources"


def test_done_event_from_an_older_server_has_no_verification_fields() -> None:
    done = DoneEvent.from_dict(done_body("Unplug it [1]"))
    assert (done.sentences, done.decline_reason, done.answerability) == ((), None, None)
    assert done.sources[0].excerpt is None  # no ``excerpt`` field: the model read the whole text


def test_sources_carry_the_excerpt_the_model_read() -> None:
    read = Source.from_dict(SOURCE | {"excerpt": "Hold the button … then wait."})
    assert read.excerpt == "Hold the button … then wait." and read.text == SOURCE["text"]
    assert Source.from_dict(SOURCE | {"excerpt": None}).excerpt is None


def test_no_source_filter_sends_no_filters_and_no_key_sends_no_authorization() -> None:
    fake = FakeApi(lambda r: httpx.Response(200, content=sse(("sources", []), ("done", done_body("x")))))
    collect(fake.client())
    assert "filters" not in json.loads(fake.requests[0].content)
    assert "authorization" not in fake.requests[0].headers


def test_error_event_after_tokens_keeps_the_partial_answer() -> None:
    body = sse(("sources", [SOURCE]), ("token", {"text": "Unplug"}),
               ("error", {"message": "LLM stream broke", "partial_answer": "Unplug"}))  # fmt: skip
    events = collect(FakeApi(lambda r: httpx.Response(200, content=body)).client())
    assert events[-1] == StreamErrorEvent("LLM stream broke", "Unplug")


def test_stream_ending_without_a_final_event_is_reported_with_the_partial_answer() -> None:
    body = sse(("sources", [SOURCE]), ("token", {"text": "Unplug "}), ("token", {"text": "the"}))
    events = collect(FakeApi(lambda r: httpx.Response(200, content=body)).client())
    assert isinstance(events[-1], StreamErrorEvent)
    assert events[-1].partial_answer == "Unplug the"


def test_llm_down_503_raises_with_the_retrieved_sources() -> None:
    body = {"detail": "LLM unreachable; retrieval still works (POST /search)",
            "error": {"message": "LLM unreachable; retrieval still works (POST /search)", "type": "x", "code": 503},
            "sources": [SOURCE]}  # fmt: skip
    fake = FakeApi(lambda r: httpx.Response(503, json=body, headers={"Retry-After": "5"}))
    with pytest.raises(LLMDownError) as info:
        collect(fake.client())
    assert info.value.sources[0].source == "upload://router.md"
    assert "LLM unreachable" in info.value.message


def test_other_503_is_an_http_error_not_llm_down() -> None:
    body = {"detail": "too many requests in flight", "error": {"message": "too many requests in flight"}}
    with pytest.raises(ApiHTTPError) as info:
        collect(FakeApi(lambda r: httpx.Response(503, json=body)).client())
    assert info.value.status == 503 and info.value.message == "too many requests in flight"


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (422, {"detail": [{"loc": ["body"]}], "error": {"message": "invalid request: query must not be empty"}},
         "invalid request: query must not be empty"),
        (413, {"detail": "query is 5000 characters"}, "query is 5000 characters"),
        (401, {"detail": "invalid API key", "error": {"message": "invalid API key"}}, "RAG_API_KEY"),
    ],
)  # fmt: skip
def test_4xx_answers_raise_with_the_api_message(status: int, body: dict, expected: str) -> None:
    with pytest.raises(ApiHTTPError) as info:
        collect(FakeApi(lambda r: httpx.Response(status, json=body)).client())
    assert info.value.status == status and expected in info.value.message


def test_unreachable_api_raises_api_down_naming_the_url() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = FakeApi(refuse).client()
    with pytest.raises(ApiDownError, match="http://api.test"):
        collect(client)
    with pytest.raises(ApiDownError):
        asyncio.run(client.list_documents())
    with pytest.raises(ApiDownError):
        asyncio.run(client.readiness())


def test_a_real_refused_port_is_api_down() -> None:
    from llm_server import free_port

    client = ApiClient(f"http://127.0.0.1:{free_port()}", connect_timeout_s=2)
    with pytest.raises(ApiDownError, match="cannot reach the API"):
        asyncio.run(client.list_documents())


def test_readiness_reports_degraded_and_unavailable_without_raising() -> None:
    answers = iter([
        httpx.Response(200, json={"status": "degraded", "checks": {"llm": False, "qdrant": True}}),
        httpx.Response(503, json={"status": "unavailable", "checks": {"qdrant": False}}),
    ])  # fmt: skip
    client = FakeApi(lambda r: next(answers)).client()
    first = asyncio.run(client.readiness("s"))
    second = asyncio.run(client.readiness("s"))
    assert (first.status, first.checks["llm"]) == ("degraded", False)
    assert (second.status, second.checks["qdrant"]) == ("unavailable", False)


def test_documents_list_empty_index_and_delete() -> None:
    doc = {"doc_id": "d1", "source": "upload://a.md", "title": "A", "media_type": "text/markdown", "chunk_count": 2}
    doc |= {"status": "complete", "ingested_at": "2026-11-22T06:00:00", "size_bytes": 10}
    deleted = {"deleted": "d1", "source": "upload://a.md", "chunks_removed": 2}
    answers = iter([httpx.Response(200, json=[]), httpx.Response(200, json=[doc]), httpx.Response(200, json=deleted)])
    fake = FakeApi(lambda r: next(answers))
    client = fake.client()
    assert asyncio.run(client.list_documents("s")) == []
    listed = asyncio.run(client.list_documents("s"))
    assert listed[0].doc_id == "d1" and listed[0].chunk_count == 2
    assert asyncio.run(client.delete_document("d1", "s"))["chunks_removed"] == 2
    assert [(r.method, r.url.path) for r in fake.requests] == [
        ("GET", "/documents"),
        ("GET", "/documents"),
        ("DELETE", "/documents/d1"),
    ]
    assert all(r.headers[SESSION_HEADER] == "s" for r in fake.requests)


def test_delete_unknown_document_is_a_404_error() -> None:
    body = {"detail": "no document with id 'zz'", "error": {"message": "no document with id 'zz'"}}
    client = FakeApi(lambda r: httpx.Response(404, json=body)).client()
    with pytest.raises(ApiHTTPError, match="no document with id") as info:
        asyncio.run(client.delete_document("zz"))
    assert info.value.status == 404


def test_upload_sends_every_file_in_one_multipart_request_and_reports_each(tmp_path: Path) -> None:
    a = tmp_path / "a.md"
    a.write_text("# A\nalpha")
    b = tmp_path / "broken.pdf"
    b.write_bytes(b"%PDF-1.4 broken")
    reply = {"files": [
        {"filename": "a.md", "source": "upload://a.md", "status": "added", "doc_id": "d1", "chunks": 1, "reason": ""},
        {"filename": "broken.pdf", "source": "upload://broken.pdf", "status": "skipped", "doc_id": "", "chunks": 0,
         "reason": "unreadable PDF"},
    ], "seconds": 0.42}  # fmt: skip
    fake = FakeApi(lambda r: httpx.Response(200, json=reply))
    result = asyncio.run(fake.client().upload([a, str(b)], tags="x, y", session_id="s"))

    assert [(o.filename, o.status, o.ok) for o in result.files] == [("a.md", "added", True),
                                                                     ("broken.pdf", "skipped", False)]  # fmt: skip
    assert result.files[1].reason == "unreadable PDF" and result.seconds == pytest.approx(0.42)
    request = fake.requests[0]
    assert request.url.path == "/documents"
    content = request.content
    assert content.count(b'name="files"') == 2
    assert b'filename="a.md"' in content and b'filename="broken.pdf"' in content
    assert b'name="tags"' in content and b"x, y" in content


def test_upload_of_nothing_sends_nothing() -> None:
    fake = FakeApi(lambda r: httpx.Response(500))
    assert asyncio.run(fake.client().upload([])).files == []
    assert fake.requests == []
