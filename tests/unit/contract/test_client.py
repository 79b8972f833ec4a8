"""The API's one client (``services.contract.client``) against a FAKE API (httpx.MockTransport).

Both faces: ``AsyncApiClient`` (the chat UI: SSE parsing, documents, uploads) and ``ApiClient`` (the evaluation:
``/search`` and ``/chat`` in one body). Typed failures, headers (session id, bearer key, traceparent), the options
sent only when set. Every fake payload is built from the contract's own models, so a fake cannot drift from what
the API serves.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import BaseModel

from services.contract.client import (
    ApiClient,
    ApiClientError,
    ApiDownError,
    ApiHTTPError,
    ApiResponseError,
    AsyncApiClient,
    LLMDownError,
    SourcesEvent,
    SSEParser,
    StreamErrorEvent,
    TokenEvent,
    parse_event,
)
from services.contract.schemas import (
    AnswerabilityOut,
    ChatOptions,
    ChatResponse,
    ChunkOut,
    Citation,
    DocumentOut,
    ErrorBody,
    ErrorDetail,
    Filters,
    IngestOutcome,
    IngestResponse,
    Readiness,
    SearchRequest,
    SearchResponse,
    SentenceOut,
    StreamError,
)
from services.core.observability import tracing
from services.core.observability.tracing import SESSION_HEADER
from services.core.settings import FrontendSettings

pytestmark = pytest.mark.unit

QUESTION = [{"role": "user", "content": "how do I restart the router?"}]


def dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")


def citation(n: int = 1, **changes: Any) -> Citation:
    base: dict[str, Any] = {
        "n": n,
        "chunk_id": f"c{n}",
        "doc_id": f"d{n}",
        "source": "upload://router.md",
        "title": "Restarting the home router",
        "section": "Restarting the home router",
        "page": None,
        "text": "Unplug the router's power cable, wait thirty seconds.",
        "rerank_score": 0.91,
        "retrieval_score": 0.55,
    }
    return Citation(**(base | changes))


SOURCE = citation()


def reply(answer: str, **changes: Any) -> ChatResponse:
    base: dict[str, Any] = {
        "answer": answer,
        "citations": [SOURCE],
        "sources": [SOURCE],
        "declined": False,
        "model": "m",
        "usage": {"completion_tokens": 3},
        "timings_ms": {"total": 12.0},
    }
    return ChatResponse(**(base | changes))


def error_body(status: int, message: str, detail: Any = None, **extra: Any) -> dict[str, Any]:
    """An error answer shaped as the API's (``services.api.errors``): ``detail`` plus OpenAI's ``error``."""
    error = ErrorDetail(message=message, type="error", code=status)
    return dump(ErrorBody(detail=message if detail is None else detail, error=error, **extra))


def sse(*events: tuple[str, Any]) -> bytes:
    return b"".join(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events)


def stream_of(*events: tuple[str, Any]) -> httpx.Response:
    return httpx.Response(200, content=sse(*events), headers={"content-type": "text/event-stream"})


def document(doc_id: str = "d1", **changes: Any) -> DocumentOut:
    base: dict[str, Any] = {
        "doc_id": doc_id,
        "source": "upload://a.md",
        "title": "A",
        "media_type": "text/markdown",
        "chunk_count": 2,
        "status": "complete",
        "ingested_at": "2026-11-22T06:00:00",
        "size_bytes": 10,
    }
    return DocumentOut(**(base | changes))


def chunk(name: str, rank: int) -> ChunkOut:
    return ChunkOut(
        id=f"{name}#0",
        doc_id=f"uuid-{name}",
        source=f"/data/eval/corpus/{name}.md",
        title=name,
        section=None,
        page=None,
        chunk_index=0,
        text=f"text of {name}",
        retrieval_score=1.0 - rank / 10,
    )


class FakeApi:
    """A FAKE of the RAG API: answers each request with ``handler`` and records what it received."""

    def __init__(self, handler: Callable[[httpx.Request], httpx.Response]) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    def client(self, **kwargs: Any) -> AsyncApiClient:
        return AsyncApiClient("http://api.test/", transport=httpx.MockTransport(self), **kwargs)

    def blocking(self, **kwargs: Any) -> ApiClient:
        http = httpx.Client(transport=httpx.MockTransport(self), base_url="http://api.test")
        return ApiClient(http=http, **kwargs)

    def bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies sent (GET /readyz has none)."""
        return [json.loads(r.content) for r in self.requests if r.method == "POST"]


def collect(client: AsyncApiClient, options: ChatOptions | None = None, session: str = "s-1") -> list[Any]:
    async def run() -> list[Any]:
        return [e async for e in client.stream_chat(QUESTION, options or ChatOptions(), session)]

    return asyncio.run(run())


# --- server-sent events ---------------------------------------------------------------------------


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


def test_events_parse_into_the_contract_models_and_unknown_or_unreadable_ones_are_skipped() -> None:
    sources = parse_event("sources", json.dumps([dump(SOURCE)]))
    assert sources == SourcesEvent([SOURCE])
    assert parse_event("token", '{"text": "Unplug"}') == TokenEvent("Unplug")
    assert parse_event("done", reply("x").model_dump_json()) == reply("x")
    error = StreamError(message="LLM died", partial_answer="Unpl").model_dump_json()
    assert parse_event("error", error) == StreamErrorEvent("LLM died", "Unpl")
    assert parse_event("progress", "{}") is None  # an event for newer clients
    assert parse_event("done", '{"answer": "no sources, no model"}') is None
    assert parse_event("sources", "not json") is None


# --- streamed chat (AsyncApiClient) ----------------------------------------------------------------


def test_stream_chat_yields_sources_tokens_then_the_chat_response_and_sends_the_contract() -> None:
    fake = FakeApi(lambda r: stream_of(("sources", [dump(SOURCE)]), ("token", {"text": "Unplug it "}),
                                       ("token", {"text": "[1]"}), ("done", dump(reply("Unplug it [1]")))))  # fmt: skip
    options = ChatOptions(mode="dense", rerank=False, top_k=3, filters=Filters(source=["a.md"]))
    events = collect(fake.client(api_key="k3y"), options)

    assert [type(e) for e in events] == [SourcesEvent, TokenEvent, TokenEvent, ChatResponse]
    assert events[0].sources[0].title == "Restarting the home router"
    assert events[0].sources[0].rerank_score == pytest.approx(0.91)
    assert "".join(e.text for e in events if isinstance(e, TokenEvent)) == events[-1].answer
    assert events[-1] == reply("Unplug it [1]") and events[-1].citations[0].source == "upload://router.md"

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


def test_the_final_event_carries_the_verified_sentences_decline_reason_and_answerability() -> None:
    sentences = [
        SentenceOut(text="Unplug it [1].", citations=[1], supported=True, score=0.93),
        SentenceOut(text="It is magic.", citations=[], supported=False, score=0.1),
    ]
    gate = AnswerabilityOut(score=0.8, band="answer", model="gate-v1")
    verified = reply("Unplug it [1]. It is magic.", sentences=sentences, answerability=gate)
    declined = reply("I don't know.", declined=True, decline_reason="no_relevant_sources")
    answers = iter([stream_of(("sources", [dump(SOURCE)]), ("done", dump(r))) for r in (verified, declined)])
    client = FakeApi(lambda r: next(answers)).client()

    done = collect(client)[-1]
    assert isinstance(done, ChatResponse)
    assert done.sentences == sentences and done.sentences[1].citations == []
    assert done.decline_reason is None
    assert done.answerability == gate and done.answerability.band == "answer"
    assert collect(client)[-1].decline_reason == "no_relevant_sources"


def test_an_answer_that_was_not_verified_has_no_sentences_and_the_whole_text_was_read() -> None:
    """Only the required fields (``RAG_VERIFY_ANSWERS=false``, no gate): the rest takes the contract's defaults."""
    bare = reply("Unplug it [1]").model_dump(mode="json", exclude_defaults=True)
    assert not {"sentences", "decline_reason", "answerability"} & set(bare)
    assert "excerpt" not in bare["sources"][0]
    done = collect(FakeApi(lambda r: stream_of(("sources", []), ("done", bare))).client())[-1]
    assert isinstance(done, ChatResponse)
    assert (done.sentences, done.decline_reason, done.answerability, done.extractive) == ([], None, None, False)
    assert done.sources[0].excerpt is None  # no ``excerpt``: the model read the whole text


def test_sources_carry_the_excerpt_the_model_read() -> None:
    read = citation(excerpt="Hold the button … then wait.")
    (event,) = collect(FakeApi(lambda r: stream_of(("sources", [dump(read)]))).client())[:1]
    assert isinstance(event, SourcesEvent)
    assert event.sources[0].excerpt == "Hold the button … then wait." and event.sources[0].text == SOURCE.text
    assert citation(excerpt=None).excerpt is None


def test_no_source_filter_sends_no_filters_and_no_key_sends_no_authorization() -> None:
    fake = FakeApi(lambda r: stream_of(("sources", []), ("done", dump(reply("x")))))
    collect(fake.client())
    assert fake.bodies()[0] == {"messages": QUESTION, "stream": True}  # the server's settings apply
    assert "authorization" not in fake.requests[0].headers


def test_chat_options_chosen_omits_none_and_unset_fields() -> None:
    assert ChatOptions().chosen() == {}
    assert ChatOptions(mode=None, top_k=None, verify=None, filters=None).chosen() == {}
    assert ChatOptions(rerank=True).chosen() == {"rerank": True}  # set, even to the default: sent
    assert ChatOptions(answerability_gate=False, verify=None, top_k=4).chosen() == {"answerability_gate": False,
                                                                                   "top_k": 4}  # fmt: skip
    assert ChatOptions(filters=Filters(source=["upload://a.md"])).chosen() == {"filters": {"source": ["upload://a.md"]}}


def test_each_request_carries_the_traceparent_of_the_current_span() -> None:
    memory = InMemorySpanExporter()
    tracing.setup_tracing(FrontendSettings(), "frontend", processors=[SimpleSpanProcessor(memory)])
    try:
        fake = FakeApi(lambda r: stream_of(("sources", []), ("done", dump(reply("x")))))
        with tracing.tracer().start_as_current_span("caller") as span:
            collect(fake.client())
        traceparent = fake.requests[0].headers["traceparent"]
    finally:
        tracing.install(None)
    assert traceparent.split("-")[1] == format(span.get_span_context().trace_id, "032x")
    assert traceparent.split("-")[2] == format(span.get_span_context().span_id, "016x")


def test_error_event_after_tokens_keeps_the_partial_answer() -> None:
    error = StreamError(message="LLM stream broke", partial_answer="Unplug")
    body = (("sources", [dump(SOURCE)]), ("token", {"text": "Unplug"}), ("error", dump(error)))
    events = collect(FakeApi(lambda r: stream_of(*body)).client())
    assert events[-1] == StreamErrorEvent("LLM stream broke", "Unplug")


def test_stream_ending_without_a_final_event_is_reported_with_the_partial_answer() -> None:
    body = (("sources", [dump(SOURCE)]), ("token", {"text": "Unplug "}), ("token", {"text": "the"}))
    events = collect(FakeApi(lambda r: stream_of(*body)).client())
    assert isinstance(events[-1], StreamErrorEvent)
    assert events[-1].partial_answer == "Unplug the" and "ended the answer early" in events[-1].message


def test_a_final_event_without_its_blank_line_still_ends_the_answer() -> None:
    content = sse(("sources", [dump(SOURCE)])) + f"event: done\ndata: {reply('x').model_dump_json()}".encode()
    events = collect(FakeApi(lambda r: httpx.Response(200, content=content)).client())
    assert [type(e) for e in events] == [SourcesEvent, ChatResponse]


class FakeBrokenStream(httpx.AsyncByteStream):
    """A response body whose connection drops after ``head`` was sent."""

    def __init__(self, head: bytes) -> None:
        self.head = head

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.head
        raise httpx.ReadError("connection reset by peer")


def test_a_connection_lost_mid_answer_ends_with_the_partial_answer_not_an_exception() -> None:
    head = sse(("sources", [dump(SOURCE)]), ("token", {"text": "Unplug "}))
    events = collect(FakeApi(lambda r: httpx.Response(200, stream=FakeBrokenStream(head))).client())
    assert [type(e) for e in events] == [SourcesEvent, TokenEvent, StreamErrorEvent]
    assert events[-1] == StreamErrorEvent("lost the connection to the API (ReadError)", "Unplug ")


def test_llm_down_503_raises_with_the_retrieved_sources() -> None:
    message = "LLM unreachable; retrieval still works (POST /search)"
    body = error_body(503, message, sources=[dump(SOURCE)])
    fake = FakeApi(lambda r: httpx.Response(503, json=body, headers={"Retry-After": "5"}))
    with pytest.raises(LLMDownError) as info:
        collect(fake.client())
    assert info.value.sources == [SOURCE] and info.value.sources[0].source == "upload://router.md"
    assert "LLM unreachable" in info.value.message
    with pytest.raises(LLMDownError) as blocking:
        fake.blocking().chat(QUESTION)
    assert blocking.value.sources == [SOURCE]


def test_other_503_is_an_http_error_not_llm_down() -> None:
    body = error_body(503, "too many requests in flight")
    with pytest.raises(ApiHTTPError) as info:
        collect(FakeApi(lambda r: httpx.Response(503, json=body)).client())
    assert info.value.status == 503 and info.value.message == "too many requests in flight"


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (422, error_body(422, "invalid request: query must not be empty", detail=[{"loc": ["body"]}]),
         "invalid request: query must not be empty"),
        (413, {"detail": "query is 5000 characters"}, "query is 5000 characters"),
        (401, error_body(401, "invalid API key"), "RAG_API_KEY"),
        (502, {"detail": [{"msg": "bad gateway"}]}, "bad gateway"),
    ],
)  # fmt: skip
def test_refused_requests_raise_with_the_api_message(status: int, body: dict, expected: str) -> None:
    with pytest.raises(ApiHTTPError) as info:
        collect(FakeApi(lambda r: httpx.Response(status, json=body)).client())
    assert info.value.status == status and expected in info.value.message


def test_a_non_json_error_page_is_reported_by_its_text() -> None:
    fake = FakeApi(lambda r: httpx.Response(502, text="<html>Bad Gateway</html>"))
    with pytest.raises(ApiHTTPError, match="Bad Gateway") as info:
        asyncio.run(fake.client().list_documents())
    assert info.value.status == 502


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
    assert issubclass(ApiDownError, ApiClientError)


def test_a_real_refused_port_is_api_down() -> None:
    from llm_server import free_port

    client = AsyncApiClient(f"http://127.0.0.1:{free_port()}", connect_timeout_s=2)
    with pytest.raises(ApiDownError, match="cannot reach the API"):
        asyncio.run(client.list_documents())


# --- readiness -------------------------------------------------------------------------------------


def test_readiness_reports_degraded_and_unavailable_without_raising() -> None:
    degraded = Readiness(status="degraded", checks={"llm": False, "qdrant": True}, reason="LLM unreachable")
    down = Readiness(status="unavailable", checks={"qdrant": False}, reason="Qdrant unreachable")
    answers = iter([httpx.Response(200, json=dump(degraded)), httpx.Response(503, json=dump(down))])
    fake = FakeApi(lambda r: next(answers))
    client = fake.client()
    first = asyncio.run(client.readiness("s"))
    second = asyncio.run(client.readiness("s"))
    assert first == degraded and first.checks["llm"] is False
    assert second == down and (second.status, second.checks["qdrant"]) == ("unavailable", False)
    assert [(r.method, r.url.path, r.headers[SESSION_HEADER]) for r in fake.requests] == [("GET", "/readyz", "s")] * 2


def test_readyz_503_is_parsed_as_unavailable_and_is_not_ready() -> None:
    down = Readiness(status="unavailable", checks={"qdrant": False, "embedder": True})
    fake = FakeApi(lambda r: httpx.Response(503, json=down.model_dump(mode="json", exclude_none=True)))
    api = fake.blocking()
    readiness = api.readiness()
    assert isinstance(readiness, Readiness) and readiness.status == "unavailable" and readiness.reason is None
    assert readiness.checks == {"qdrant": False, "embedder": True}
    assert api.ready() is False


def test_readyz_answering_anything_but_200_or_503_is_an_http_error() -> None:
    fake = FakeApi(lambda r: httpx.Response(401, json=error_body(401, "invalid API key")))
    with pytest.raises(ApiHTTPError, match="invalid API key") as info:
        asyncio.run(fake.client().readiness())
    assert info.value.status == 401
    assert fake.blocking().ready() is False


# --- documents and uploads -------------------------------------------------------------------------


def test_documents_list_empty_index_and_delete() -> None:
    deleted = {"deleted": "d1", "source": "upload://a.md", "chunks_removed": 2}
    answers = iter(
        [httpx.Response(200, json=[]), httpx.Response(200, json=[dump(document())]), httpx.Response(200, json=deleted)]
    )
    fake = FakeApi(lambda r: next(answers))
    client = fake.client()
    assert asyncio.run(client.list_documents("s")) == []
    listed = asyncio.run(client.list_documents("s"))
    assert listed == [document()] and listed[0].doc_id == "d1" and listed[0].chunk_count == 2
    assert asyncio.run(client.delete_document("d1", "s"))["chunks_removed"] == 2
    assert [(r.method, r.url.path) for r in fake.requests] == [
        ("GET", "/documents"),
        ("GET", "/documents"),
        ("DELETE", "/documents/d1"),
    ]
    assert all(r.headers[SESSION_HEADER] == "s" for r in fake.requests)


def test_delete_unknown_document_is_a_404_error() -> None:
    client = FakeApi(lambda r: httpx.Response(404, json=error_body(404, "no document with id 'zz'"))).client()
    with pytest.raises(ApiHTTPError, match="no document with id") as info:
        asyncio.run(client.delete_document("zz"))
    assert info.value.status == 404


def test_upload_sends_every_file_in_one_multipart_request_and_reports_each(tmp_path: Path) -> None:
    a = tmp_path / "a.md"
    a.write_text("# A\nalpha")
    b = tmp_path / "broken.pdf"
    b.write_bytes(b"%PDF-1.4 broken")
    answer = IngestResponse(
        files=[
            IngestOutcome(filename="a.md", source="upload://a.md", status="added", doc_id="d1", chunks=1),
            IngestOutcome(filename="broken.pdf", source="upload://broken.pdf", status="skipped",
                          reason="unreadable PDF"),
        ],
        seconds=0.42,
    )  # fmt: skip
    fake = FakeApi(lambda r: httpx.Response(200, json=dump(answer)))
    result = asyncio.run(fake.client().upload([a, str(b)], tags="x, y", session_id="s"))

    assert result == answer
    assert [(o.filename, o.status, o.chunks) for o in result.files] == [("a.md", "added", 1),
                                                                       ("broken.pdf", "skipped", 0)]  # fmt: skip
    assert result.files[1].reason == "unreadable PDF" and result.seconds == pytest.approx(0.42)
    request = fake.requests[0]
    assert request.method == "POST" and request.url.path == "/documents"
    assert request.headers[SESSION_HEADER] == "s"
    content = request.content
    assert content.count(b'name="files"') == 2
    assert b'filename="a.md"' in content and b'filename="broken.pdf"' in content
    assert b"Content-Type: text/markdown" in content and b"Content-Type: application/pdf" in content
    assert b'name="tags"' in content and b"x, y" in content


def test_upload_without_tags_sends_no_tags_field(tmp_path: Path) -> None:
    a = tmp_path / "a.md"
    a.write_text("# A")
    fake = FakeApi(lambda r: httpx.Response(200, json=dump(IngestResponse(files=[], seconds=0.0))))
    asyncio.run(fake.client().upload([a], tags="  "))
    assert b'name="tags"' not in fake.requests[0].content


def test_upload_of_nothing_sends_nothing() -> None:
    fake = FakeApi(lambda r: httpx.Response(500))
    assert asyncio.run(fake.client().upload([])) == IngestResponse(files=[], seconds=0.0)
    assert fake.requests == []


# --- a 2xx body that is not the contract --------------------------------------------------------------


def test_a_2xx_body_that_is_not_the_contract_raises_a_readable_response_error() -> None:
    proxy_page = "<html><body>Welcome to nginx!</body></html>"
    fake = FakeApi(lambda r: httpx.Response(200, text=proxy_page))
    with pytest.raises(ApiResponseError) as info:
        fake.blocking().search(SearchRequest(query="q"))
    message = info.value.message
    assert message.startswith("POST /search returned a body that does not match SearchResponse")
    assert "Welcome to nginx!" in message and str(info.value) == message
    assert isinstance(info.value, ApiClientError)  # callers that catch every client failure catch it too

    older = FakeApi(lambda r: httpx.Response(200, json={"answer": "x", "sources": "none"}))
    with pytest.raises(ApiResponseError, match=r"POST /chat returned a body that does not match ChatResponse \(\d+"):
        older.blocking().chat(QUESTION)


@pytest.mark.parametrize(
    ("call", "body", "expected"),
    [
        ("readiness", {"status": "fine", "checks": {}}, "GET /readyz returned a body that does not match Readiness"),
        ("list_documents", {"documents": []}, "GET /documents returned a body that is not a document list"),
        ("upload", {"uploaded": 1}, "POST /documents returned a body that does not match IngestResponse"),
    ],
)
def test_every_async_call_checks_its_2xx_body(tmp_path: Path, call: str, body: dict, expected: str) -> None:
    path = tmp_path / "a.md"
    path.write_text("# A")
    client = FakeApi(lambda r: httpx.Response(200, json=body)).client()
    method = getattr(client, call)
    with pytest.raises(ApiResponseError, match=expected):
        asyncio.run(method([path]) if call == "upload" else method())


# --- search and chat in one body (ApiClient) -----------------------------------------------------------


@pytest.fixture
def fake_rag() -> FakeApi:
    """``/readyz``, ``/search`` (two chunks) and ``/chat`` (a verified answer) as the API answers them."""
    answer = reply(
        "Because [1].",
        citations=[citation(1, text="ctx one")],
        sources=[citation(1, text="ctx one"), citation(2, text="ctx two")],
        sentences=[SentenceOut(text="Because [1].", citations=[1], supported=True, score=0.9)],
        answerability=AnswerabilityOut(score=0.8, band="answer", model="logreg"),
    )

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/readyz":
            return httpx.Response(200, json=dump(Readiness(status="ready", checks={"reranker": "fake", "llm": True})))
        if request.url.path == "/search":
            query = json.loads(request.content)["query"]
            results = [chunk("bio_001", 0), chunk("hist_002", 1)]
            found = SearchResponse(query=query, mode="hybrid", reranker="fake", reranked=True, candidates=2,
                                   results=results, timings_ms={"total": 5.0})  # fmt: skip
            return httpx.Response(200, json=dump(found))
        return httpx.Response(200, json=dump(answer))

    return FakeApi(handler)


def test_search_and_chat_are_parsed_and_carry_the_bearer_key(fake_rag: FakeApi) -> None:
    with fake_rag.blocking(api_key="s3cret") as api:
        result = api.search(SearchRequest(query="q", top_k=10, top_n=30))
        assert [h.doc_id for h in result.results] == ["uuid-bio_001", "uuid-hist_002"]
        assert result.results[0].source == "/data/eval/corpus/bio_001.md" and result.timings_ms == {"total": 5.0}
        chat = api.chat([{"role": "user", "content": "Why?"}])
        assert (chat.answer, [s.text for s in chat.sources], chat.declined) == ("Because [1].", ["ctx one", "ctx two"],
                                                                                 False)  # fmt: skip
        assert [c.chunk_id for c in chat.citations] == ["c1"]
        assert chat.sentences == [SentenceOut(text="Because [1].", citations=[1], supported=True, score=0.9)]
        assert chat.answerability == AnswerabilityOut(score=0.8, band="answer", model="logreg")
        assert api.ready() and api.readiness().checks["reranker"] == "fake"
    assert all(r.headers["authorization"] == "Bearer s3cret" for r in fake_rag.requests)
    search, chat_body = fake_rag.bodies()[:2]
    assert search == {"query": "q", "top_k": 10, "top_n": 30}  # only what the caller set
    assert chat_body == {"messages": [{"role": "user", "content": "Why?"}], "stream": False}


def test_chat_options_are_sent_only_when_set(fake_rag: FakeApi) -> None:
    api = fake_rag.blocking()
    api.chat(QUESTION)
    api.chat(QUESTION, ChatOptions())
    api.chat(QUESTION, ChatOptions(answerability_gate=False))
    api.chat(QUESTION, ChatOptions(answerability_gate=False, verify=False))
    api.chat(QUESTION, ChatOptions(answerability_gate=None, verify=None, top_k=None))
    bodies = fake_rag.bodies()
    for body in (bodies[0], bodies[1], bodies[4]):
        assert "answerability_gate" not in body and "verify" not in body  # an older server rejects them
        assert set(body) == {"messages", "stream"}
    assert bodies[2]["answerability_gate"] is False and "verify" not in bodies[2]
    assert (bodies[3]["answerability_gate"], bodies[3]["verify"]) == (False, False)


def test_api_errors_raise_with_the_status_and_no_key_sends_no_authorization() -> None:
    fake = FakeApi(lambda r: httpx.Response(503, json=error_body(503, "busy")))
    api = fake.blocking()
    with pytest.raises(ApiHTTPError, match="busy") as info:
        api.search(SearchRequest(query="boom"))
    assert info.value.status == 503
    assert "authorization" not in fake.requests[0].headers


def test_the_blocking_client_takes_its_base_url_from_the_given_http_client(fake_rag: FakeApi) -> None:
    assert fake_rag.blocking().base_url == "http://api.test"
    with ApiClient("http://127.0.0.1:8000/") as api:
        assert api.base_url == "http://127.0.0.1:8000" and str(api.http.base_url) == "http://127.0.0.1:8000"


def test_unreachable_api_is_not_ready_and_calls_raise_api_down() -> None:
    from llm_server import free_port

    with ApiClient(f"http://127.0.0.1:{free_port()}", timeout_s=1.0, connect_timeout_s=1.0) as api:
        assert not api.ready()
        with pytest.raises(ApiDownError, match="cannot reach the API at http://127.0.0.1"):
            api.search(SearchRequest(query="q"))
        with pytest.raises(ApiDownError):
            api.readiness()
