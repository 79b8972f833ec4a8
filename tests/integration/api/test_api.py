"""The HTTP API end to end: real embedder, in-memory Qdrant, real SmolLM2 llama.cpp server, real OpenAI SDK
(and, where a test must know the exact prompt, the fake LLM server that records it over the same components)."""

from __future__ import annotations

import dataclasses
import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fake_llm import FakeOpenAIServer
from fastapi.testclient import TestClient
from pydantic import SecretStr

from services.api.app import create_app
from services.api.components import Components
from services.core.grounding.evidence import EvidenceSelector
from services.core.models.llm import OpenAICompatibleLLM

pytestmark = pytest.mark.integration

PARAPHRASES = [
    ("my internet box froze, how do I reboot it?", "router.md"),
    ("how long should the bread dough rise before it goes in the oven?", "sourdough.md"),
    ("when is the last day to send in my yearly return to the government?", "tax.md"),
    ("what makes a mountain spew out lava and ash?", "volcano.md"),
    ("what happens during a new hire's first week at the company?", "onboarding.md"),
    ("I can't remember how to log in, how do I get new credentials?", "password.md"),
]
ROUTER_QUESTION = "How do I restart my router when the internet stops working?"


def sse_events(text: str) -> list[tuple[str | None, Any]]:
    """Parse a text/event-stream body into (event name, decoded data) pairs."""
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


def without_markers(text: str) -> str:
    """The answer's words: the verifier moves and replaces [n] markers, never the text between them."""
    return " ".join(re.sub(r"\s*\[\s*\d+(?:\s*,\s*\d+)*\s*\]", "", text).split())


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- search ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["dense", "hybrid"])
def test_search_finds_the_right_document_for_paraphrases(
    client: TestClient, corpus: dict[str, str], components: Components, mode: str
) -> None:
    top_k = components.settings.top_k
    for question, filename in PARAPHRASES:
        r = client.post("/search", json={"query": question, "mode": mode})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["mode"] == mode
        assert body["results"], question
        assert body["results"][0]["source"] == f"upload://{filename}", (question, body["results"][0]["source"])
        assert body["results"][0]["doc_id"] == corpus[filename]
        assert len(body["results"]) <= top_k
        assert body["candidates"] >= top_k
        assert {"embed", "retrieve", "rerank", "total"} <= set(body["timings_ms"])


def test_search_filter_by_source(client: TestClient, corpus: dict[str, str]) -> None:
    r = client.post(
        "/search", json={"query": "how do I reboot the router?", "filters": {"source": ["upload://tax.md"]}}
    )
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert results and {c["source"] for c in results} == {"upload://tax.md"}
    r = client.post("/search", json={"query": "bread", "filters": {"doc_id": [corpus["volcano.md"]]}})
    assert {c["doc_id"] for c in r.json()["results"]} == {corpus["volcano.md"]}
    r = client.post("/search", json={"query": "bread", "filters": {"tags": ["no-such-tag"]}})
    assert r.status_code == 200 and r.json()["results"] == []


def test_unknown_filter_field_is_rejected(client: TestClient, corpus: dict[str, str]) -> None:
    r = client.post("/search", json={"query": "bread", "filters": {"author": ["me"]}})
    assert r.status_code == 422
    assert "author" in r.json()["error"]["message"]


def test_search_without_rerank_says_so(client: TestClient, corpus: dict[str, str]) -> None:
    r = client.post("/search", json={"query": "sourdough starter", "rerank": False, "top_k": 2})
    assert r.status_code == 200
    body = r.json()
    assert body["reranked"] is False and len(body["results"]) == 2


# --- bad requests ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"query": ""},
        {"query": "   \n\t"},
        {},
        {"query": "x", "top_k": 0},
        {"query": "x", "mode": "fuzzy"},
        {"query": "x", "surprise": 1},
        {"query": ["not", "a", "string"]},
    ],
)
def test_invalid_search_bodies_are_422(client: TestClient, body: dict[str, Any]) -> None:
    r = client.post("/search", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["message"].startswith("invalid request")


def test_top_k_above_top_n_is_422(client: TestClient) -> None:
    r = client.post("/search", json={"query": "x", "top_k": 5, "top_n": 2})
    assert r.status_code == 422
    assert "top_k" in r.json()["error"]["message"]


def test_malformed_json_is_422(client: TestClient) -> None:
    r = client.post("/search", content=b'{"query": "x",', headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert "JSON" in r.json()["error"]["message"]


def test_query_over_max_query_chars_is_413(client: TestClient, components: Components) -> None:
    limit = components.settings.max_query_chars
    r = client.post("/search", json={"query": "word " * (limit // 5 + 10)})
    assert r.status_code == 413
    assert str(limit) in r.json()["error"]["message"]
    r = client.post("/chat", json={"messages": [{"role": "user", "content": "q" * (limit + 1)}]})
    assert r.status_code == 413


def test_body_over_max_body_bytes_is_413(client: TestClient, components: Components) -> None:
    limit = components.settings.max_body_bytes
    r = client.post("/search", json={"query": "x" * (limit + 10)})
    assert r.status_code == 413
    assert str(limit) in r.json()["error"]["message"]


def test_chat_needs_a_final_user_message(client: TestClient) -> None:
    r = client.post("/chat", json={"messages": [{"role": "assistant", "content": "hello"}]})
    assert r.status_code == 422
    r = client.post("/chat", json={"messages": []})
    assert r.status_code == 422


# --- auth --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def authed_client(components: Components) -> Iterator[TestClient]:
    settings = components.settings.model_copy(update={"api_key": SecretStr("s3cret")})
    with TestClient(create_app(components=dataclasses.replace(components, settings=settings))) as c:
        yield c


def test_api_key_is_enforced(authed_client: TestClient, corpus: dict[str, str]) -> None:
    body = {"query": "sourdough"}
    r = authed_client.post("/search", json=body)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert "API key" in r.json()["error"]["message"]
    assert authed_client.post("/search", json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert authed_client.post("/search", json=body, headers={"Authorization": "s3cret"}).status_code == 401
    r = authed_client.post("/search", json=body, headers={"Authorization": "Bearer s3cret"})
    assert r.status_code == 200 and r.json()["results"]
    assert authed_client.get("/documents").status_code == 401
    assert authed_client.get("/v1/models").status_code == 401
    assert authed_client.get("/healthz").status_code == 200


# --- documents -----------------------------------------------------------------------------------------


def test_documents_are_listed(client: TestClient, corpus: dict[str, str]) -> None:
    r = client.get("/documents")
    assert r.status_code == 200
    docs = {d["doc_id"]: d for d in r.json()}
    for filename, doc_id in corpus.items():
        doc = docs[doc_id]
        assert doc["source"] == f"upload://{filename}"
        assert doc["status"] == "complete"
        assert doc["chunk_count"] >= 1
        assert doc["media_type"] == "text/markdown"
        assert doc["tags"] == ["corpus"]
        assert doc["title"]


def test_upload_reports_each_file_and_delete(client: TestClient, corpus: dict[str, str]) -> None:
    good = (
        "files",
        ("lighthouse.md", b"# Lighthouses\n\nA lighthouse keeper trims the lamp wick at dusk.\n", "text/markdown"),
    )
    bad = ("files", ("broken.pdf", b"%PDF-1.4\nthis is not really a pdf\n%%EOF", "application/pdf"))
    evil = ("files", ("../../evil.md", b"# Evil\n\nA file that tried to escape its folder.\n", "text/markdown"))
    r = client.post("/documents", files=[good, bad, evil])
    assert r.status_code == 200, r.text
    outcomes = {o["filename"]: o for o in r.json()["files"]}
    assert outcomes["lighthouse.md"]["status"] == "added" and outcomes["lighthouse.md"]["chunks"] >= 1
    assert outcomes["broken.pdf"]["status"] == "skipped" and outcomes["broken.pdf"]["reason"]
    assert outcomes["evil.md"]["status"] == "added"
    assert outcomes["evil.md"]["source"] == "upload://evil.md"

    r = client.post("/documents", files=[good])
    assert [o["status"] for o in r.json()["files"]] == ["unchanged"]

    sources = {d["source"]: d["doc_id"] for d in client.get("/documents").json()}
    assert "upload://evil.md" in sources and "upload://broken.pdf" not in sources
    assert not any(".." in s for s in sources)

    for name in ("upload://lighthouse.md", "upload://evil.md"):
        doc_id = sources[name]
        r = client.delete(f"/documents/{doc_id}")
        assert r.status_code == 200
        assert r.json()["deleted"] == doc_id and r.json()["chunks_removed"] >= 1
        r = client.delete(f"/documents/{doc_id}")
        assert r.status_code == 404
        assert doc_id in r.json()["error"]["message"]
    remaining = {d["source"] for d in client.get("/documents").json()}
    assert remaining == {f"upload://{name}" for name in corpus}
    hits = client.post("/search", json={"query": "lighthouse keeper lamp wick"}).json()["results"]
    assert all(h["source"] != "upload://lighthouse.md" for h in hits)


# --- chat with the real SmolLM2 server -------------------------------------------------------------------


def test_readyz_with_everything_up(client: TestClient) -> None:
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["status"] == "ready"
    assert r.json()["checks"]["llm"] is True and r.json()["checks"]["qdrant"] is True
    assert r.json()["checks"]["embedder"] is True  # the embedder's public ``ready``, set by warm_up


def test_chat_answers_with_sources(client: TestClient, corpus: dict[str, str], components: Components) -> None:
    r = client.post("/chat", json={"messages": [{"role": "user", "content": ROUTER_QUESTION}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["answer"].strip()
    sources = body["sources"]
    assert 1 <= len(sources) <= components.settings.top_k
    assert [s["n"] for s in sources] == list(range(1, len(sources) + 1))
    assert sources[0]["source"] == "upload://router.md"
    ids = {s["chunk_id"] for s in sources}
    for c in body["citations"]:
        assert 1 <= c["n"] <= len(sources)
        assert c["chunk_id"] in ids
        assert c["chunk_id"] == sources[c["n"] - 1]["chunk_id"]
    assert body["model"]
    assert body["usage"].get("completion_tokens", 0) >= 1
    assert {"embed", "retrieve", "generate", "total"} <= set(body["timings_ms"])
    # The grounding fields: the shipped gate judged the sources, the verifier each sentence (when built).
    if components.gate is not None:
        assert body["answerability"]["band"] in ("answer", "verify") and "gate" in body["timings_ms"]
    if components.verifier is not None and not body["declined"]:
        assert body["sentences"] and "verify" in body["timings_ms"]
        assert [c["n"] for c in body["citations"]] == list(
            dict.fromkeys(n for s in body["sentences"] for n in s["citations"])
        )
    assert body["decline_reason"] in (None, "unsupported_answer", "model_declined")


def test_chat_stream(client: TestClient, corpus: dict[str, str]) -> None:
    r = client.post("/chat", json={"messages": [{"role": "user", "content": ROUTER_QUESTION}], "stream": True})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    names = [name for name, _ in events]
    assert names[0] == "sources"
    assert names[-1] == "done", events[-1]
    tokens = [data["text"] for name, data in events if name == "token"]
    assert len(tokens) >= 1
    assert set(names[1:-1]) == {"token"}
    assert events[0][1][0]["source"] == "upload://router.md"
    done = events[-1][1]
    # done.answer carries the verified [n] markers; the streamed tokens are the model's words, or (gate band
    # "verify") the verified answer as one token.
    assert without_markers(done["answer"]) == without_markers("".join(tokens)) or done["declined"]
    assert done["sources"] == events[0][1]
    assert {"sentences", "decline_reason", "answerability"} <= set(done)


# --- the OpenAI-compatible surface, driven by the official SDK ------------------------------------------------


class ViaTestClient(httpx.BaseTransport):
    """An httpx transport that hands each request to the TestClient.

    Starlette's TestClient subclasses ``httpx2.Client`` here, not ``httpx.Client``, so the SDK (which
    insists on an ``httpx.Client``) cannot take it directly; this bridge keeps the requests in process.
    """

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        r = self.client.request(
            request.method, str(request.url), headers=request.headers.multi_items(), content=request.read()
        )
        headers = [(k, v) for k, v in r.headers.multi_items() if k.lower() != "content-encoding"]
        return httpx.Response(r.status_code, headers=headers, content=r.content, request=request)


@pytest.fixture(scope="module")
def sdk(client: TestClient) -> Iterator[openai.OpenAI]:
    http_client = client if isinstance(client, httpx.Client) else httpx.Client(transport=ViaTestClient(client))
    sdk = openai.OpenAI(
        base_url=f"{str(client.base_url).rstrip('/')}/v1", api_key="x", http_client=http_client, max_retries=0
    )
    yield sdk
    if http_client is not client:
        http_client.close()


def test_openai_models(sdk: openai.OpenAI, components: Components) -> None:
    ids = [m.id for m in sdk.models.list()]
    assert ids == [f"rag:{components.settings.llm_model}"]


def test_openai_chat_completion(sdk: openai.OpenAI, corpus: dict[str, str]) -> None:
    completion = sdk.chat.completions.create(
        model="anything", messages=[{"role": "user", "content": ROUTER_QUESTION}], max_tokens=32
    )
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content.strip()
    assert completion.choices[0].finish_reason in ("stop", "length")  # the LLM's own reason (32 tokens may cut)
    extra = completion.model_extra or {}
    sources = extra.get("sources")
    assert sources and sources[0]["source"] == "upload://router.md"
    assert {"citations", "sentences", "declined", "decline_reason", "answerability"} <= set(extra)


def test_openai_chat_completion_stream(sdk: openai.OpenAI, corpus: dict[str, str]) -> None:
    stream = sdk.chat.completions.create(
        model="anything", messages=[{"role": "user", "content": ROUTER_QUESTION}], max_tokens=32, stream=True
    )
    chunks = list(stream)
    assert chunks
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    final = chunks[-1]
    assert final.choices[0].finish_reason in ("stop", "length")
    extra = final.model_extra or {}
    citations = extra.get("citations")
    assert isinstance(citations, list)
    assert all(c["n"] >= 1 and c["chunk_id"] for c in citations)
    if extra["declined"]:
        assert "Sources:" not in text and "Not supported" not in text
        return
    # The streamed words are the verified answer's; a plain client then reads the cited sources, and how many
    # sentences none supports.
    unsupported = sum(not s["supported"] for s in extra["sentences"])
    answer, footer = text, ""
    if citations or unsupported:
        start = "\n\nSources:\n" if citations else "\n\nNot supported by these sources"
        answer, found, rest = text.rpartition(start)
        footer = found + rest
    assert without_markers(extra["answer"]) == without_markers(answer)
    if citations:
        assert footer.startswith(f"\n\nSources:\n[{citations[0]['n']}] ") and "router.md" in footer
    assert ("Not supported by these sources" in footer) == bool(unsupported)


# --- what the model read: the sources' excerpts are the prompt's evidence ------------------------------------


def prompt_sources(prompt: str) -> dict[int, str]:
    """Each numbered source's body as the prompt held it (format: services/core/grounding/prompt.py)."""
    sources = prompt.split("Sources:\n<<<\n", 1)[1].split("\n>>>", 1)[0]
    blocks = re.split(r"\n\n(?=\[\d+\] )", sources)
    return {int(b[1 : b.index("]")]): b.split("\n", 1)[1] for b in blocks}


@pytest.fixture(scope="module")
def fake_llm() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as srv:
        yield srv


TIGHT_BUDGET = 60


@pytest.fixture(scope="module", params=[None, TIGHT_BUDGET], ids=["configured budget", "tight budget"])
def evidence_budget(request: pytest.FixtureRequest) -> int | None:
    """The corpus' chunks are short: the configured budget keeps every sentence of them, a tight one cuts them."""
    return request.param


@pytest.fixture(scope="module")
def fake_llm_client(
    components: Components, fake_llm: FakeOpenAIServer, evidence_budget: int | None
) -> Iterator[TestClient]:
    """The real embedder, store, reranker, evidence selector, gate and verifier; a fake LLM that keeps its prompts."""
    evidence = components.evidence
    assert evidence is not None  # the default: evidence sentences, not whole chunks, in the prompt
    if evidence_budget is not None:
        evidence = EvidenceSelector(evidence.scorer, budget_tokens=evidence_budget, neighbours=0)
    llm = OpenAICompatibleLLM(fake_llm.base_url, model="fake-llm", max_retries=0)
    with TestClient(create_app(components=dataclasses.replace(components, llm=llm, evidence=evidence))) as c:
        yield c


ASKED = {"messages": [{"role": "user", "content": ROUTER_QUESTION}]}
UNGATED = {"answerability_gate": False}  # the LLM is called whatever the gate would say


def test_streamed_sources_carry_the_excerpt_the_llm_read_for_each_number(
    fake_llm: FakeOpenAIServer, fake_llm_client: TestClient, corpus: dict[str, str], evidence_budget: int | None
) -> None:
    fake_llm.reset()
    r = fake_llm_client.post("/chat", json={**ASKED, **UNGATED, "stream": True})
    assert r.status_code == 200, r.text
    events = sse_events(r.text)
    assert events[0][0] == "sources" and events[-1][0] == "done", events[-1]
    sources = events[0][1]
    assert len(fake_llm.requests) == 1
    held = prompt_sources(fake_llm.requests[0]["messages"][-1]["content"])
    assert sources and [s["n"] for s in sources] == sorted(held)
    assert {s["n"]: s["excerpt"] for s in sources} == held
    for s in sources:  # each excerpt is cut from its own chunk
        assert set(s["excerpt"].replace("…", " ").split()) <= set(s["text"].split())
    if evidence_budget == TIGHT_BUDGET:
        assert any(len(s["excerpt"].split()) < len(s["text"].split()) for s in sources)  # sentences left out
    assert events[-1][1]["sources"] == sources


@pytest.mark.parametrize("stream", [False, True])
def test_openai_extension_sources_carry_the_excerpt_the_llm_read(
    fake_llm: FakeOpenAIServer, fake_llm_client: TestClient, corpus: dict[str, str], stream: bool
) -> None:
    fake_llm.reset()
    r = fake_llm_client.post("/v1/chat/completions", json={**ASKED, "rag": UNGATED, "stream": stream})
    assert r.status_code == 200, r.text
    final = sse_events(r.text)[-2][1] if stream else r.json()
    held = prompt_sources(fake_llm.requests[0]["messages"][-1]["content"])
    assert final["sources"] and {s["n"]: s["excerpt"] for s in final["sources"]} == held
    assert all(c["excerpt"] == held[c["n"]] for c in final["citations"])


# --- the LLM is down ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def down_client(components: Components) -> Iterator[TestClient]:
    llm = OpenAICompatibleLLM(f"http://127.0.0.1:{closed_port()}/v1", model="x", max_retries=0, connect_timeout_s=0.5)
    with TestClient(create_app(components=dataclasses.replace(components, llm=llm))) as c:
        yield c


def test_llm_down_chat_is_503_with_sources(down_client: TestClient, corpus: dict[str, str]) -> None:
    r = down_client.post("/chat", json={"messages": [{"role": "user", "content": ROUTER_QUESTION}]})
    assert r.status_code == 503
    assert r.headers["retry-after"]
    body = r.json()
    assert "unreachable" in body["error"]["message"]
    assert body["sources"] and body["sources"][0]["source"] == "upload://router.md"


def test_llm_down_stream_is_503_before_any_event(down_client: TestClient, corpus: dict[str, str]) -> None:
    r = down_client.post("/chat", json={"messages": [{"role": "user", "content": ROUTER_QUESTION}], "stream": True})
    assert r.status_code == 503
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["sources"]


def test_llm_down_openai_surface_is_503(down_client: TestClient, corpus: dict[str, str]) -> None:
    r = down_client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": ROUTER_QUESTION}]})
    assert r.status_code == 503
    assert r.json()["error"]["type"] == "service_unavailable"


def test_llm_down_search_and_readiness(down_client: TestClient, corpus: dict[str, str]) -> None:
    r = down_client.post("/search", json={"query": ROUTER_QUESTION})
    assert r.status_code == 200 and r.json()["results"][0]["source"] == "upload://router.md"
    r = down_client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["status"] == "degraded"
    assert r.json()["checks"]["llm"] is False and r.json()["checks"]["qdrant"] is True
    r = down_client.get("/readyz", params={"strict": "true"})
    assert r.status_code == 503
    assert down_client.get("/healthz").status_code == 200


# -- uploads as jobs (ingest/jobs/): answer at once, poll the status ------------------------------------------


def test_an_upload_that_does_not_wait_answers_queued_and_its_status_reaches_complete(client: TestClient) -> None:
    doc = ("files", ("tides.md", b"# Tides\n\nThe moon's pull raises two tidal bulges a day.\n", "text/markdown"))
    r = client.post("/documents", files=[doc], params={"wait_s": 0})
    assert r.status_code == 200, r.text
    [outcome] = r.json()["files"]
    assert outcome["status"] in ("queued", "processing", "added"), outcome  # "added" only if the worker won a race
    assert outcome["doc_id"] and outcome["job_id"]
    deadline = time.monotonic() + 120
    while True:
        status = client.get(f"/documents/{outcome['doc_id']}")
        assert status.status_code == 200, status.text
        body = status.json()
        if body["state"] in ("complete", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert body["state"] == "complete" and body["outcome"] == "added" and body["chunks"] >= 1, body
    assert body["job_id"] == outcome["job_id"] and body["attempts"] == 1
    assert body["document"]["source"] == "upload://tides.md" and body["document"]["status"] == "complete"


def test_a_skipped_file_has_a_failed_status_with_its_reason(client: TestClient) -> None:
    bad = ("files", ("empty-deck.pdf", b"%PDF-1.4\nnot a pdf at all\n%%EOF", "application/pdf"))
    [outcome] = client.post("/documents", files=[bad]).json()["files"]
    assert outcome["status"] == "skipped" and outcome["reason"]
    body = client.get(f"/documents/{outcome['doc_id']}").json()
    assert body["state"] == "failed" and body["outcome"] == "skipped" and body["reason"] == outcome["reason"]
    assert body["document"] is None


def test_the_status_of_an_unknown_document_is_404_and_of_an_old_one_comes_from_the_manifest(
    client: TestClient, components: Components
) -> None:
    assert client.get("/documents/00000000-0000-4000-8000-000000000000").status_code == 404
    report = components.pipeline.ingest_bytes(b"# Folder\n\nIngested without a job.\n", "folder.md", "mem://folder.md")
    doc_id = report.outcomes[0].doc_id
    body = client.get(f"/documents/{doc_id}").json()
    assert body["state"] == "complete" and body["job_id"] == "" and body["document"]["source"] == "mem://folder.md"


def test_an_unreachable_queue_refuses_the_upload_with_503_and_keeps_nothing(components: Components) -> None:
    from ingest.jobs import RedisQueue

    spool = components.jobs()[1]
    before = set(spool.root.iterdir()) if spool.root.exists() else set()
    queue, components.queue = components.queue, RedisQueue("redis://127.0.0.1:1/0")
    try:
        doc = ("files", ("lost.md", b"# Lost\n\nnever accepted\n", "text/markdown"))
        with TestClient(create_app(components=components)) as client:  # no "never a 5xx" hook: this one is
            r = client.post("/documents", files=[doc])
        assert r.status_code == 503, r.text
        assert "ingest queue is unavailable" in r.json()["error"]["message"]
    finally:
        components.queue = queue
    after = set(spool.root.iterdir()) if spool.root.exists() else set()
    assert after == before  # the spooled bytes of the refused file were removed


def test_cancel_stops_a_queued_upload_and_says_404_or_409_when_there_is_nothing_to_stop(
    components: Components, tmp_path: Path
) -> None:
    """A queue with no worker holds the job queued (the API's worker thread serves the original queue)."""
    from ingest.jobs import JobRunner, LocalQueue

    held = LocalQueue(tmp_path / "held-spool")
    queue, components.queue = components.queue, held
    try:
        with TestClient(create_app(components=components)) as client:
            doc = ("files", ("draft.md", b"# Draft\n\nnot ready yet\n", "text/markdown"))
            [outcome] = client.post("/documents", files=[doc], params={"wait_s": 0}).json()["files"]
            assert outcome["status"] == "queued"
            r = client.post(f"/documents/{outcome['doc_id']}/cancel")
            assert r.status_code == 200, r.text
            assert r.json()["state"] == "cancelled" and r.json()["job_id"] == outcome["job_id"]
            assert client.get(f"/documents/{outcome['doc_id']}").json()["state"] == "cancelled"
            ended = JobRunner(held, components.jobs()[1], components.pipeline).run_once(5)
            assert ended is not None and ended.state == "cancelled"  # the worker ends it without ingesting
            assert client.get(f"/documents/{outcome['doc_id']}").json()["document"] is None
            again = client.post(f"/documents/{outcome['doc_id']}/cancel")
            assert again.status_code == 409 and "already ended" in again.json()["error"]["message"]
            assert client.post("/documents/00000000-0000-4000-8000-000000000000/cancel").status_code == 404
    finally:
        components.queue = queue
        held.close()
