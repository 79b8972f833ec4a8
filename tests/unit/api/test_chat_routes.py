"""/chat, /v1/chat/completions and /search over fakes (retriever, gate, verifier, LLM server): the routes are
thin encoders of one pipeline, so the same question gives the same final fields on every surface."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from fake_chat import BREAD, REFUSAL, ROUTER, FakeGate, FakeRetriever, FakeVerifier
from fake_llm import FakeOpenAIServer
from fastapi.testclient import TestClient

from services.api.app import create_app
from services.api.components import Components
from services.api.rag import sources_footer, without_sources_footer
from services.contract.schemas import ChatResponse
from services.core.grounding.evidence import EvidenceSelector
from services.core.grounding.prompt import NO_ANSWER
from services.core.models.llm import OpenAICompatibleLLM
from services.core.models.reranker import NoReranker
from services.core.settings import ApiSettings
from services.core.types import RetrievedChunk

pytestmark = pytest.mark.unit

QUESTION = "How do I reset the router?"
MESSAGES = [{"role": "user", "content": QUESTION}]
FINAL_FIELDS = ("answer", "citations", "sources", "sentences", "declined", "decline_reason", "answerability")


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def components(server: FakeOpenAIServer) -> Components:
    """Components of fakes only: no model is loaded; the tests swap retriever, gate and verifier."""
    return Components(
        settings=ApiSettings(_env_file=None, top_k=5, top_n=10),
        embedder=None,  # type: ignore[arg-type]
        store=None,  # type: ignore[arg-type]
        reranker=NoReranker(),
        llm=OpenAICompatibleLLM(server.base_url, model="fake-llm", max_retries=0),
        retriever=FakeRetriever([ROUTER, BREAD]),  # type: ignore[arg-type]
        pipeline=None,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def client(components: Components) -> Iterator[TestClient]:
    with TestClient(create_app(components=components)) as c:
        yield c


def use(
    components: Components,
    *,
    chunks: Sequence[RetrievedChunk] = (ROUTER, BREAD),
    gate: FakeGate | None = None,
    verifier: FakeVerifier | None = None,
    evidence: EvidenceSelector | None = None,
) -> None:
    components.retriever = FakeRetriever(chunks)  # type: ignore[assignment]
    components.gate = gate
    components.verifier = verifier
    components.evidence = evidence


@pytest.fixture(autouse=True)
def _reset(server: FakeOpenAIServer, components: Components) -> None:
    server.reset()
    use(components, gate=FakeGate("answer"), verifier=FakeVerifier())


def sse_events(text: str) -> list[tuple[str | None, Any]]:
    """A text/event-stream body as (event name, decoded data) pairs."""
    events: list[tuple[str | None, Any]] = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        payload = "\n".join(data)
        events.append((name, payload if payload == "[DONE]" else json.loads(payload)))
    return events


def final_fields(body: dict[str, Any]) -> dict[str, Any]:
    return {k: body[k] for k in FINAL_FIELDS}


def chat(client: TestClient, **body: Any) -> dict[str, Any]:
    r = client.post("/chat", json={"messages": MESSAGES, **body})
    assert r.status_code == 200, r.text
    return r.json()


def chat_stream(client: TestClient, **body: Any) -> list[tuple[str | None, Any]]:
    r = client.post("/chat", json={"messages": MESSAGES, "stream": True, **body})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/event-stream")
    return sse_events(r.text)


def openai(client: TestClient, **body: Any) -> dict[str, Any]:
    r = client.post("/v1/chat/completions", json={"messages": MESSAGES, **body})
    assert r.status_code == 200, r.text
    return r.json()


def openai_stream(client: TestClient, **body: Any) -> list[tuple[str | None, Any]]:
    r = client.post("/v1/chat/completions", json={"messages": MESSAGES, "stream": True, **body})
    assert r.status_code == 200, r.text
    return sse_events(r.text)


SCENARIOS: dict[str, dict[str, Any]] = {
    "answer band": {"gate": FakeGate("answer"), "verifier": FakeVerifier()},
    "verify band, kept": {"gate": FakeGate("verify"), "verifier": FakeVerifier()},
    "verify band, unsupported": {"gate": FakeGate("verify"), "verifier": FakeVerifier(supported=False)},
    "decline band": {"gate": FakeGate("decline"), "verifier": FakeVerifier()},
    "no chunks": {"chunks": (), "gate": FakeGate("answer"), "verifier": FakeVerifier()},
    "model declined": {"chunks": (REFUSAL, BREAD), "gate": FakeGate("answer"), "verifier": FakeVerifier()},
    "no gate, no verifier": {},
    "evidence": {
        "gate": FakeGate("answer"),
        "verifier": FakeVerifier(),
        "evidence": EvidenceSelector(budget_tokens=12),
    },
    "evidence, declined": {"gate": FakeGate("decline"), "evidence": EvidenceSelector(budget_tokens=12)},
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_surface_gives_the_same_final_fields(client: TestClient, components: Components, scenario: str) -> None:
    use(components, **SCENARIOS[scenario])
    plain = final_fields(chat(client))

    events = chat_stream(client)
    names = [name for name, _ in events]
    assert names[0] == "sources" and names[-1] == "done" and set(names[1:-1]) == {"token"}
    streamed = final_fields(events[-1][1])
    assert events[0][1] == streamed["sources"]

    # A plain OpenAI client reads only content: the answer, then the cited sources (none for a refusal).
    footer = sources_footer(ChatResponse.model_validate(chat(client)))
    unsupported = any(not sentence["supported"] for sentence in plain["sentences"])
    assert bool(footer) == (not plain["declined"] and bool(plain["citations"] or unsupported))
    completion = openai(client)
    content = completion["choices"][0]["message"]["content"]
    assert content.endswith(footer)
    v1 = final_fields({**completion, "answer": content.removesuffix(footer)})

    chunks = openai_stream(client)
    assert chunks[-1][1] == "[DONE]"
    final = chunks[-2][1]
    assert final["choices"][0]["finish_reason"] == "stop"
    v1_streamed = final_fields(final)
    deltas = [c[1]["choices"][0]["delta"].get("content") for c in chunks[:-2]]
    if footer:
        assert deltas[-1] == footer
    assert "Sources:" not in "".join(d or "" for d in deltas[:-1])

    assert plain == streamed == v1 == v1_streamed
    assert plain["sources"] or scenario == "no chunks"


def test_the_sources_footer_names_each_cited_source_and_counts_unsupported_sentences(
    client: TestClient, components: Components
) -> None:
    use(components, gate=FakeGate("answer"), verifier=FakeVerifier())
    body = openai(client)
    assert body["choices"][0]["message"]["content"] == (
        "Hold the reset button for ten seconds [1].\n\nSources:\n[1] Router guide (router-guide.md)"
    )
    answer = ChatResponse.model_validate(chat(client))
    unsupported = answer.model_copy(
        update={"sentences": [s.model_copy(update={"supported": False}) for s in answer.sentences]}
    )
    assert sources_footer(unsupported).endswith("\nNot supported by these sources: 1 of 1 sentences.")
    uncited = unsupported.model_copy(update={"citations": []})
    assert sources_footer(uncited) == "\n\nNot supported by these sources: 1 of 1 sentences."
    paged = answer.model_copy(
        update={"citations": [answer.citations[0].model_copy(update={"page": 4, "section": "Resetting"})]}
    )
    assert sources_footer(paged).endswith("\n[1] Router guide › Resetting (router-guide.md, p. 4)")
    assert sources_footer(answer.model_copy(update={"declined": True})) == ""
    for variant in (answer, unsupported, uncited, paged):  # what the API adds, it can take off again
        assert without_sources_footer(variant.answer + sources_footer(variant)) == variant.answer


def test_a_client_sending_its_history_back_does_not_show_the_model_old_footers(
    client: TestClient, components: Components, server: FakeOpenAIServer
) -> None:
    use(components, gate=FakeGate("answer"), verifier=FakeVerifier())
    earlier = openai(client)["choices"][0]["message"]["content"]
    assert "\n\nSources:\n[1] Router guide" in earlier
    history = [*MESSAGES, {"role": "assistant", "content": earlier}, {"role": "user", "content": "And then?"}]
    openai(client, messages=history)
    sent = [m["content"] for m in server.requests[-1]["messages"] if m["role"] == "assistant"]
    assert "Hold the reset button for ten seconds [1]." in sent and not any("Sources:" in m for m in sent)


@pytest.mark.parametrize(
    "text",
    [
        "Hold it [1].\n\nSources:\n[1] Router guide (router.md)\n[2] Bread › Proofing (bread.pdf, p. 4)",
        "Hold it [1].\n\nSources:\n[1] Router guide (router.md)\nNot supported by these sources: 1 of 2 sentences.",
        "Hold it.\n\nNot supported by these sources: 2 of 2 sentences.",
    ],
)
def test_without_sources_footer_takes_off_exactly_the_footer(text: str) -> None:
    assert without_sources_footer(text) == text.split("\n\n")[0]
    # An answer of the model's own that merely mentions sources keeps every word.
    for own in ("Sources: the manual.", "Step one.\n\nSources:\nsee the manual", "Hold it.\n\nSources:\n[1] x\nmore"):
        assert without_sources_footer(own) == own


def test_the_sources_footer_can_be_turned_off(
    client: TestClient, components: Components, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(components, gate=FakeGate("answer"), verifier=FakeVerifier())
    monkeypatch.setattr(components.settings, "openai_sources_footer", False)
    assert openai(client)["choices"][0]["message"]["content"] == "Hold the reset button for ten seconds [1]."
    streamed = [c[1]["choices"][0]["delta"].get("content") or "" for c in openai_stream(client)[:-2]]
    assert "Sources:" not in "".join(streamed)


def test_chat_answer_band_body(client: TestClient) -> None:
    body = chat(client)
    assert body["answer"] == "Hold the reset button for ten seconds [1]."
    assert body["sentences"] == [
        {"text": "Hold the reset button for ten seconds [1].", "citations": [1], "supported": True, "score": 1.0}
    ]
    assert [c["n"] for c in body["citations"]] == [1] and body["citations"][0]["chunk_id"] == ROUTER.id
    assert [s["n"] for s in body["sources"]] == [1, 2]
    assert body["answerability"] == {"score": 0.9, "band": "answer", "model": "fake-gate", "calibrated": True}
    assert body["declined"] is False and body["decline_reason"] is None
    assert {"gate", "generate", "verify", "total"} <= set(body["timings_ms"])
    assert body["retrieval"]["reranker"] == "fake-reranker"
    assert body["usage"]["prompt_tokens"] > 0  # one completion: the server's full usage, not a chunk count


def test_chat_stream_streams_raw_tokens_and_done_carries_the_verified_answer(client: TestClient) -> None:
    events = chat_stream(client)
    tokens = [data["text"] for name, data in events if name == "token"]
    assert len(tokens) > 1 and "".join(tokens) == "Hold the reset button for ten seconds. [1]"
    assert events[-1][1]["answer"] == "Hold the reset button for ten seconds [1]."


def test_declined_stream_sends_the_refusal_as_one_token(
    server: FakeOpenAIServer, client: TestClient, components: Components
) -> None:
    use(components, gate=FakeGate("decline"))
    events = chat_stream(client)
    assert [name for name, _ in events] == ["sources", "token", "done"]
    assert events[1][1] == {"text": NO_ANSWER}
    assert events[-1][1]["decline_reason"] == "no_relevant_sources" and events[-1][1]["model"] == ""
    assert server.requests == []


def test_request_toggles_reach_the_pipeline(client: TestClient, components: Components) -> None:
    use(components, gate=FakeGate("decline"), verifier=FakeVerifier())
    assert chat(client)["declined"] is True
    body = chat(client, answerability_gate=False, verify=False)
    assert body["declined"] is False and body["answerability"] is None and body["sentences"] == []
    completion = openai(client, rag={"answerability_gate": False})
    assert completion["declined"] is False and completion["sentences"]


EVIDENCE = "Hold the reset button for ten seconds."  # ROUTER's first sentence: all a 12-token budget holds


def test_every_surface_carries_what_the_model_read_of_each_source(
    server: FakeOpenAIServer, client: TestClient, components: Components
) -> None:
    use(components, gate=FakeGate("answer"), verifier=FakeVerifier(), evidence=EvidenceSelector(budget_tokens=12))
    body = chat(client)
    assert [(s["chunk_id"], s["text"], s["excerpt"]) for s in body["sources"]] == [(ROUTER.id, ROUTER.text, EVIDENCE)]
    assert body["citations"][0]["excerpt"] == EVIDENCE
    assert f"[1] Router guide\n{EVIDENCE}\n>>>" in server.requests[-1]["messages"][-1]["content"]
    events = chat_stream(client)
    assert events[0][0] == "sources" and [s["excerpt"] for s in events[0][1]] == [EVIDENCE]
    assert [s["excerpt"] for s in events[-1][1]["sources"]] == [EVIDENCE]
    assert [s["excerpt"] for s in openai(client)["sources"]] == [EVIDENCE]
    final = openai_stream(client)[-2][1]
    assert [s["excerpt"] for s in final["sources"]] == [EVIDENCE]
    assert [c["excerpt"] for c in final["citations"]] == [EVIDENCE]
    server.fail_status = 503
    r = client.post("/chat", json={"messages": MESSAGES})
    assert r.status_code == 503 and [s["excerpt"] for s in r.json()["sources"]] == [EVIDENCE]


def test_without_evidence_selection_the_excerpt_is_null(client: TestClient) -> None:
    body = chat(client)
    assert [s["excerpt"] for s in body["sources"]] == [None, None]
    assert [s["excerpt"] for s in chat_stream(client)[0][1]] == [None, None]


def test_search_rejects_the_chat_only_toggles(client: TestClient) -> None:
    r = client.post("/search", json={"query": "router", "answerability_gate": False})
    assert r.status_code == 422


# --- errors -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_llm_down_is_503_with_the_sources(server: FakeOpenAIServer, client: TestClient, stream: bool) -> None:
    server.fail_status = 503
    r = client.post("/chat", json={"messages": MESSAGES, "stream": stream})
    assert r.status_code == 503 and r.headers["retry-after"] == "5"
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert "retrieval still works" in body["error"]["message"] and body["error"]["type"] == "service_unavailable"
    assert [s["chunk_id"] for s in body["sources"]] == [ROUTER.id, BREAD.id]
    r = client.post("/v1/chat/completions", json={"messages": MESSAGES, "stream": stream})
    assert r.status_code == 503 and r.json()["error"]["type"] == "service_unavailable"


def test_llm_failure_mid_stream(server: FakeOpenAIServer, client: TestClient) -> None:
    server.stream_cut = "error"
    events = chat_stream(client)
    assert [name for name, _ in events] == ["sources", "token", "error"]
    assert events[-1][1] == {"message": "LLM failed mid-stream: fake: KV cache full", "partial_answer": "Hold "}
    chunks = openai_stream(client)
    assert chunks[-1][1] == "[DONE]"
    assert chunks[-2][1]["error"]["code"] == 503 and "KV cache full" in chunks[-2][1]["error"]["message"]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"messages": [{"role": "assistant", "content": "hi"}]}, 422, "non-empty user message"),
        ({"messages": [{"role": "user", "content": "q" * 2001}]}, 413, "RAG_MAX_QUERY_CHARS"),
        ({"messages": MESSAGES, "top_k": 5, "top_n": 2}, 422, "top_k (5) must be <= top_n (2)"),
    ],
)
@pytest.mark.parametrize("path", ["/chat", "/v1/chat/completions"])
@pytest.mark.parametrize("stream", [False, True])
def test_domain_errors_map_to_http(
    client: TestClient, path: str, stream: bool, body: dict[str, Any], status: int, message: str
) -> None:
    if path.startswith("/v1") and "top_k" in body:
        body = {"messages": MESSAGES, "rag": {"top_k": 5, "top_n": 2}}
    r = client.post(path, json={**body, "stream": stream})
    assert r.status_code == status, r.text
    assert message in r.json()["error"]["message"]
    if status == 422:  # the validation shape the OpenAPI document promises for every 422
        assert r.json()["detail"][0]["msg"] == r.json()["error"]["message"]


def test_search_is_unchanged(client: TestClient, components: Components) -> None:
    r = client.post("/search", json={"query": "router", "top_k": 1, "mode": "dense"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [c["id"] for c in body["results"]] == [ROUTER.id] and body["mode"] == "dense"
    assert body["timings_ms"]["total"] == 6.0
    call = components.retriever.calls[-1]  # type: ignore[attr-defined]
    assert (call["top_k"], call["top_n"], call["rerank"], call["filters"]) == (1, 10, True, None)
    r = client.post("/search", json={"query": "q" * 2001})
    assert r.status_code == 413 and "RAG_MAX_QUERY_CHARS" in r.json()["error"]["message"]
    r = client.post("/search", json={"query": "x", "top_k": 5, "top_n": 2})
    assert r.status_code == 422 and "top_k" in r.json()["error"]["message"]


def test_openapi_documents_the_grounding_fields(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert {"sentences", "decline_reason", "answerability"} <= set(schemas["ChatResponse"]["properties"])
    assert "what the model read" in schemas["Citation"]["properties"]["excerpt"]["description"]
    assert "excerpt" not in schemas["Citation"].get("required", [])  # optional: older clients are unaffected
    assert {"answerability_gate", "verify"} <= set(schemas["ChatRequest"]["properties"])


@pytest.mark.parametrize("path", ["/chat", "/v1/chat/completions"])
def test_openapi_documents_both_media_types_of_a_chat(client: TestClient, path: str) -> None:
    """``stream: true`` answers text/event-stream: a schema-driven client (schemathesis) must find it declared."""
    ok = client.get("/openapi.json").json()["paths"][path]["post"]["responses"]["200"]["content"]
    assert {"application/json", "text/event-stream"} <= set(ok)
