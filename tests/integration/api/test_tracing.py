"""The span tree of real requests (real models, real LLM), captured in memory, and tracing's cost when off or down."""

from __future__ import annotations

import json
import re
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.api.components import Components
from services.core.observability import tracing
from services.core.settings import Settings

pytestmark = pytest.mark.integration

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"
HEADERS = {"traceparent": f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01", "X-Session-Id": "chat-42"}


@pytest.fixture
def exporter(components: Components) -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    tracing.setup_tracing(components.settings, "api", processors=[SimpleSpanProcessor(memory)])
    try:
        yield memory
    finally:
        tracing.install(None)


def without_markers(text: str) -> str:
    return " ".join(re.sub(r"\s*\[\s*\d+(?:\s*,\s*\d+)*\s*\]", "", text).split())


def kind(span: ReadableSpan) -> str:
    return str(span.attributes.get("openinference.span.kind"))


def by_name(spans: list[ReadableSpan]) -> dict[str, ReadableSpan]:
    names = [s.name for s in spans]
    assert len(names) == len(set(names)), names
    return {s.name: s for s in spans}


def indexed(span: ReadableSpan, prefix: str, field: str) -> list[Any]:
    """``prefix.0.field``, ``prefix.1.field`` ... as a list."""
    values, i = [], 0
    while f"{prefix}.{i}.{field}" in span.attributes:
        values.append(span.attributes[f"{prefix}.{i}.{field}"])
        i += 1
    return values


def assert_retrieval_tree(spans: dict[str, ReadableSpan], root: str, candidates: int) -> None:
    chain = spans[root]
    assert kind(chain) == "CHAIN"
    assert format(chain.context.trace_id, "032x") == TRACE_ID  # continues the caller's (frontend's) trace
    assert format(chain.parent.span_id, "016x") == PARENT_SPAN_ID
    for name, expected in (("embed_query", "EMBEDDING"), ("retrieve", "RETRIEVER"), ("rerank", "RERANKER")):
        span = spans[name]
        assert kind(span) == expected
        assert span.parent.span_id == chain.context.span_id, name
        assert span.attributes["session.id"] == "chat-42"
    assert chain.attributes["session.id"] == "chat-42"
    assert spans["embed_query"].attributes["embedding.model_name"] == "all-MiniLM-L6-v2"

    retrieved = indexed(spans["retrieve"], "retrieval.documents", "document.id")
    assert len(retrieved) == candidates > 3
    scores = indexed(spans["retrieve"], "retrieval.documents", "document.score")
    assert len(scores) == candidates and all(isinstance(s, float) for s in scores)
    rerank = spans["rerank"]
    inputs = indexed(rerank, "reranker.input_documents", "document.id")
    outputs = indexed(rerank, "reranker.output_documents", "document.id")
    assert inputs == retrieved
    assert len(outputs) == 3 and set(outputs) <= set(inputs)
    out_scores = indexed(rerank, "reranker.output_documents", "document.score")
    assert len(out_scores) == 3 and all(0.0 <= s <= 1.0 for s in out_scores)
    assert rerank.attributes["reranker.top_k"] == 3


def test_search_span_tree(client: TestClient, corpus: dict[str, str], exporter: InMemorySpanExporter) -> None:
    r = client.post("/search", json={"query": "How do I rotate the API signing keys?"}, headers=HEADERS)
    assert r.status_code == 200
    spans = by_name(list(exporter.get_finished_spans()))
    assert set(spans) == {"rag.search", "embed_query", "retrieve", "rerank"}
    assert_retrieval_tree(spans, "rag.search", r.json()["candidates"])
    assert json.loads(spans["rag.search"].attributes["output.value"]) == [c["id"] for c in r.json()["results"]]


def test_chat_span_tree_has_llm_with_token_counts(
    client: TestClient, corpus: dict[str, str], exporter: InMemorySpanExporter, components: Components
) -> None:
    body = {"messages": [{"role": "user", "content": "How long is the password reset link valid?"}]}
    r = client.post("/chat", json=body, headers=HEADERS)
    assert r.status_code == 200, r.text
    body = r.json()
    spans = by_name(list(exporter.get_finished_spans()))
    grounding = {"gate"} if components.gate is not None else set()
    if components.verifier is not None and not body["declined"]:
        grounding.add("verify")
    if components.evidence is not None:
        grounding.add("evidence")
    assert set(spans) == {"rag.chat", "embed_query", "retrieve", "rerank", "generate"} | grounding
    if "evidence" in spans:  # the prompt's sentences were picked inside the chat request
        assert spans["evidence"].parent.span_id == spans["rag.chat"].context.span_id
        assert spans["evidence"].attributes["evidence.sources"] >= 1
    assert_retrieval_tree(spans, "rag.chat", body["retrieval"]["candidates"])
    llm = spans["generate"]
    assert kind(llm) == "LLM"
    assert llm.parent.span_id == spans["rag.chat"].context.span_id
    assert llm.attributes["llm.model_name"] == "smollm2-135m"
    assert llm.attributes["llm.input_messages.0.message.role"] == "system"
    assert llm.attributes["llm.token_count.prompt"] > 100  # system rules + numbered sources
    assert llm.attributes["llm.token_count.completion"] >= 1
    # The LLM span holds the model's own text; the answer has the verified [n] markers in its place.
    content = llm.attributes["llm.output_messages.0.message.content"]
    assert without_markers(content) == without_markers(body["answer"]) or body["declined"]
    assert spans["rag.chat"].attributes["output.value"] == body["answer"]
    if "gate" in spans:
        gate = spans["gate"]
        assert kind(gate) == "GUARDRAIL" and gate.parent.span_id == spans["rag.chat"].context.span_id
        assert gate.attributes["gate.band"] == body["answerability"]["band"]
        assert gate.attributes["gate.score"] == body["answerability"]["score"]
    if "verify" in spans:
        verify = spans["verify"]
        assert kind(verify) == "EVALUATOR" and verify.parent.span_id == spans["rag.chat"].context.span_id
        assert verify.attributes["verify.sentences"] == len(body["sentences"])


def test_streamed_chat_records_time_to_first_token(
    client: TestClient, corpus: dict[str, str], exporter: InMemorySpanExporter
) -> None:
    body = {"stream": True, "messages": [{"role": "user", "content": "How long is the password reset link valid?"}]}
    with client.stream("POST", "/chat", json=body, headers=HEADERS) as r:
        assert r.status_code == 200
        text = "".join(r.iter_text())
    assert "event: done" in text
    spans = by_name(list(exporter.get_finished_spans()))
    llm = spans["generate"]
    assert llm.attributes["llm.time_to_first_token_ms"] > 0
    assert llm.attributes["llm.token_count.completion"] >= 1
    assert [e.name for e in llm.events] == ["first_token"]
    chain = spans["rag.chat"]
    assert llm.parent.span_id == chain.context.span_id
    assert chain.end_time >= llm.end_time  # the request span covers the whole stream


def test_ingest_is_traced_per_file_and_batch(
    client: TestClient, exporter: InMemorySpanExporter, components: Components
) -> None:
    files = [
        ("files", ("traced-a.md", b"# Alpha\n\nAlpha text about tracing.", "text/markdown")),
        ("files", ("traced-b.txt", b"\x00\x01\x02binary", "text/plain")),
    ]
    r = client.post("/documents", files=files[:1])
    r2 = client.post("/documents", files=files[1:])
    assert r.status_code == r2.status_code == 200
    spans = list(exporter.get_finished_spans())
    file_spans = [s for s in spans if s.name == "ingest.file"]
    assert [s.attributes["ingest.status"] for s in file_spans] == ["added", "skipped"]
    assert "binary" in file_spans[1].attributes["ingest.reason"]
    batch = next(s for s in spans if s.name == "ingest.batch")
    assert batch.attributes["ingest.chunks"] >= 1
    runs = [s for s in spans if s.name == "ingest.run"]
    assert len(runs) == 2 and file_spans[0].parent.span_id == runs[0].context.span_id
    for doc in r.json()["files"]:
        client.delete(f"/documents/{doc['doc_id']}")


def test_tracing_off_records_nothing(client: TestClient, corpus: dict[str, str]) -> None:
    tracing.install(None)
    assert not tracing.enabled()
    with tracing.tracer().start_as_current_span("x", openinference_span_kind="chain") as span:
        assert not span.is_recording()
    assert client.post("/search", json={"query": "signing keys"}).status_code == 200


def blackhole() -> tuple[socket.socket, int]:
    """A collector that accepts connections and never answers: the worst kind of "down"."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    return server, server.getsockname()[1]


def search_ms(client: TestClient, i: int) -> float:
    t0 = time.perf_counter()
    assert client.post("/search", json={"query": f"signing keys rotation {i}"}).status_code == 200
    return (time.perf_counter() - t0) * 1000


def test_collector_down_neither_fails_nor_slows_requests(
    client: TestClient, corpus: dict[str, str], components: Components
) -> None:
    server, port = blackhole()
    settings = Settings(
        _env_file=None,
        tracing_endpoint=f"http://127.0.0.1:{port}/v1/traces",
        tracing_export_timeout_s=1.0,
        tracing_queue_size=32,
    )
    dead = tracing.build_provider(settings, "api")
    off, on = [], []
    try:
        # Interleaved, so the load of a shared 2-core machine hits both series alike. 20 traced requests make
        # 80 spans, more than the queue holds: the surplus is dropped, never waited for.
        for i in range(20):
            tracing.install(None)
            off.append(search_ms(client, i))
            tracing.install(dead)
            on.append(search_ms(client, i))
    finally:
        tracing.install(None)
        t0 = time.perf_counter()
        dead.shutdown()
        shutdown_s = time.perf_counter() - t0
        server.close()
    # Export runs on the batch processor's thread; the request path only enqueues. A blocking exporter would
    # add >= 1000 ms (its timeout) to a request; the bound is loose because the machine is shared.
    assert statistics.median(on) < statistics.median(off) * 1.5 + 50, (statistics.median(off), statistics.median(on))
    assert shutdown_s < 10
