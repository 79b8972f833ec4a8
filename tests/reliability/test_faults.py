"""Faults in each dependency, against the app over real components: the real llama.cpp server killed,
frozen (SIGSTOP) and brought back; a Qdrant server that is not there; Phoenix down; a reranker that fails.
Each gives the documented degraded behaviour, and the API recovers without a restart.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import LLM_ALIAS, build, close, closed_port_url, corpus_files, rel_settings, replace
from fastapi.testclient import TestClient
from llm_server import REPO_ROOT, free_port, start_llm_server, stop
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.api.app import create_app
from services.api.components import Components
from services.core.factory import build_llm, build_reranker
from services.core.models.embedder import SentenceTransformerEmbedder
from services.core.models.reranker import CrossEncoderReranker
from services.core.observability import tracing
from services.core.retrieval import Retriever
from services.core.storage.store import QdrantStore

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

QUESTION = {"messages": [{"role": "user", "content": "How do I restart my router when the internet stops?"}]}


class LLMProcess:
    """The real SmolLM2 server on a fixed port, so it can be killed and started again at the same address."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: Any = None
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> None:
        self.proc, url = start_llm_server(LLM_ALIAS, port=self.port)
        assert url == self.base_url

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                os.kill(self.proc.pid, signal.SIGCONT)
            stop(self.proc)


@pytest.fixture(scope="module")
def llm() -> Iterator[LLMProcess]:
    server = LLMProcess()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def components(embedder: SentenceTransformerEmbedder, llm: LLMProcess) -> Iterator[Components]:
    settings = rel_settings(llm_base_url=llm.base_url, llm_timeout_s=120.0, llm_max_tokens=16)
    built = build(settings, embedder)
    yield built
    close(built)


@pytest.fixture(scope="module")
def client(components: Components) -> Iterator[TestClient]:
    with TestClient(create_app(components=components)) as c:
        r = c.post("/documents", files=corpus_files())
        assert r.status_code == 200 and {f["status"] for f in r.json()["files"]} == {"added"}
        yield c


def assert_search_works(client: TestClient) -> None:
    r = client.post("/search", json={"query": "internet box froze, how to reboot it"})
    assert r.status_code == 200 and r.json()["results"][0]["source"] == "upload://router.md"


def test_llm_killed_then_back_without_restarting_the_api(client: TestClient, llm: LLMProcess) -> None:
    assert client.post("/chat", json=QUESTION).status_code == 200
    llm.kill()
    r = client.post("/chat", json=QUESTION)
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"]
    body = r.json()
    assert "LLM unreachable" in body["error"]["message"] and "/search" in body["error"]["message"]
    assert body["sources"][0]["source"] == "upload://router.md"  # what was found still reaches the user
    stream = client.post("/chat", json={**QUESTION, "stream": True})
    assert stream.status_code == 503 and stream.json()["sources"]
    assert client.post("/v1/chat/completions", json=QUESTION).status_code == 503
    assert_search_works(client)
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "degraded" and "LLM" in ready.json()["reason"]

    llm.start()  # same port: the API's client reconnects by itself
    r = client.post("/chat", json=QUESTION)
    assert r.status_code == 200, r.text
    assert r.json()["answer"] and r.json()["sources"]
    assert client.get("/readyz").json()["status"] == "ready"


def test_frozen_llm_is_bounded_by_the_timeout_then_recovers(
    client: TestClient, components: Components, llm: LLMProcess
) -> None:
    assert client.post("/chat", json=QUESTION).status_code == 200  # warm: the prompt is in llama.cpp's cache
    short = build_llm(components.settings.model_copy(update={"llm_timeout_s": 3.0}))
    with TestClient(create_app(components=replace(components, llm=short))) as c:
        os.kill(llm.proc.pid, signal.SIGSTOP)  # accepts connections (kernel backlog) but never answers
        try:
            r = c.post("/chat", json=QUESTION)
            assert r.status_code == 503, r.text
            assert "timed out" in r.json()["error"]["message"]
            assert r.json()["sources"]
            stream = c.post("/chat", json={**QUESTION, "stream": True})
            assert stream.status_code == 503 and "timed out" in stream.json()["error"]["message"]
            assert_search_works(c)
        finally:
            os.kill(llm.proc.pid, signal.SIGCONT)
        # Thawed, the server first drains what queued in its backlog while frozen (the abandoned requests), so
        # a 3 s client may time out once or twice more; recovery means it answers again without a restart.
        deadline = time.monotonic() + 90
        while (r := c.post("/chat", json=QUESTION)).status_code != 200 and time.monotonic() < deadline:
            assert r.status_code == 503 and "timed out" in r.json()["error"]["message"], r.text
            time.sleep(1)
        assert r.status_code == 200, r.text
        assert r.json()["answer"]


def test_failing_reranker_is_skipped_with_a_reason(client: TestClient, components: Components, tmp_path: Path) -> None:
    # The real cross-encoder over a copy of the shipped model whose weights file got truncated (a bad disk,
    # a half-finished copy). The app would refuse to start with it (warm_up loads at start-up); never warmed,
    # it fails when it first scores, at request time, which is what the fallback has to survive.
    model = tmp_path / "reranker-corrupt"
    shutil.copytree(REPO_ROOT / "models" / "reranker-fitzgov-minilm-l6", model)
    (model / "model.safetensors").write_bytes((model / "model.safetensors").read_bytes()[:4096])
    broken = build_reranker(
        components.settings.model_copy(update={"reranker": "cross-encoder", "reranker_model": str(model)})
    )
    assert isinstance(broken, CrossEncoderReranker) and not broken.ready
    app = create_app(
        components=replace(
            components,
            reranker=broken,
            retriever=Retriever(components.embedder, components.store, broken),
            llm=build_llm(components.settings),  # one httpx client per event loop (one loop per TestClient)
        )
    )
    with TestClient(app) as c:
        r = c.post("/search", json={"query": "internet box froze, how to reboot it"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["reranked"] is False
        assert body["rerank_skipped_reason"].startswith("reranker failed")
        assert body["results"][0]["source"] == "upload://router.md"  # first-stage order still answers
        chat = c.post("/chat", json=QUESTION)
        assert chat.status_code == 200
        assert chat.json()["retrieval"]["reranked"] is False and chat.json()["retrieval"]["rerank_skipped_reason"]


def test_qdrant_server_down_gives_503_with_a_reason(embedder: SentenceTransformerEmbedder, llm: LLMProcess) -> None:
    url = closed_port_url("")
    settings = rel_settings(qdrant_url=url, llm_base_url=llm.base_url)
    store = QdrantStore(url=url, collection=settings.collection, timeout_s=1, retries=0)
    components = build(settings, embedder, store)  # starts although Qdrant is not there
    try:
        with TestClient(create_app(components=components)) as c:
            for method, path, kwargs in (
                ("POST", "/search", {"json": {"query": "router"}}),
                ("POST", "/chat", {"json": QUESTION}),
                ("GET", "/documents", {}),
                ("POST", "/documents", {"files": corpus_files()[:1]}),
            ):
                r = c.request(method, path, **kwargs)
                assert r.status_code == 503, (path, r.status_code, r.text)
                assert "Qdrant unavailable" in r.json()["error"]["message"], (path, r.text)
                assert r.headers["retry-after"]
            ready = c.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["qdrant"] is False and "Qdrant" in ready.json()["reason"]
            assert c.get("/healthz").status_code == 200
    finally:
        close(components)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    yield InMemorySpanExporter()
    tracing.install(None)


def test_phoenix_down_requests_still_succeed(client: TestClient, spans: InMemorySpanExporter) -> None:
    settings = rel_settings(tracing_endpoint=closed_port_url("/v1/traces"), tracing_export_timeout_s=0.5)
    provider = tracing.setup_tracing(settings, "api", processors=[SimpleSpanProcessor(spans)])
    assert provider is not None
    assert_search_works(client)
    assert client.post("/chat", json=QUESTION).status_code == 200
    provider.force_flush(timeout_millis=2000)  # the OTLP export to the closed port fails quietly
    provider.shutdown()
    names = {s.name for s in spans.get_finished_spans()}
    assert {"embed_query", "retrieve"} <= names, names  # spans were made; only their export failed
