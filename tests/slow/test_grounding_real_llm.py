"""The grounding guarantees with the real local LLM (Qwen2.5-Coder 0.5B via llama.cpp), in-process: the app
over the packaged embedder, the shipped cross-encoder, in-memory Qdrant holding ``API_CORPUS``, the shipped
verifier and an answerability gate; spans captured in memory.

- A question the corpus cannot answer is declined by the gate before any LLM call (no ``generate`` span).
- An answerable question whose answer the model writes without any ``[n]`` still comes back with a verified
  citation on each supported sentence, pointing to the document that holds the fact.

The gate here is a ``CalibratedGate`` over a hand-written ``GateModel`` that follows the cross-encoder's top
probability (as in tests/unit/core/test_answerability.py), so these tests do not wait for the shipped gate
file; ``test_the_shipped_gate_declines_it_too`` checks that file when it exists.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fixtures_docs import API_CORPUS
from llm_server import start_llm_server, stop
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.api.app import create_app
from services.api.components import Components, build_components
from services.core.grounding.answerability import DEFAULT_GATE, FEATURES, CalibratedGate, GateModel, gate_from_settings
from services.core.grounding.citations import CITATION_MARKER, cited
from services.core.models.embedder import SentenceTransformerEmbedder
from services.core.models.reranker import CrossEncoderReranker
from services.core.observability import tracing
from services.core.settings import Settings
from services.core.storage.store import QdrantStore

pytestmark = pytest.mark.slow

LLM_ALIAS = "qwen2.5-coder-0.5b"
UNANSWERABLE = "What is the capital of Australia?"
# The instruction makes the model answer without the [n] the prompt asks for (checked on its raw output below).
ANSWERABLE = "How long is the password reset link valid? Answer in one plain sentence without brackets or numbers."
ANSWER_SOURCE = "upload://password.md"


def top1_gate(reranker: str) -> CalibratedGate:
    """p(answerable) = the cross-encoder's top probability: decline below 0.3, answer from 0.5.

    On ``API_CORPUS`` the shipped cross-encoder gives an off-corpus question about 0.09 and the password
    question about 0.83, far from both thresholds.
    """
    return CalibratedGate(
        GateModel(
            name="test-top1-gate",
            reranker=reranker,
            features=FEATURES,
            mean=(0.0,) * len(FEATURES),
            scale=(1.0,) * len(FEATURES),
            coef=(1.0,) + (0.0,) * (len(FEATURES) - 1),  # only ce_top1_logit counts
            intercept=0.0,
            platt_a=1.0,
            platt_b=0.0,
            decline_below=0.3,
            answer_above=0.5,
        )
    )


@pytest.fixture(scope="module")
def llm_base_url() -> Iterator[str]:
    proc, base_url = start_llm_server(LLM_ALIAS, threads=2, ctx=4096, timeout_s=180)
    try:
        yield base_url
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def components(llm_base_url: str, embedder: SentenceTransformerEmbedder) -> Iterator[Components]:
    settings = Settings(
        _env_file=None,
        qdrant_path=":memory:",
        reranker="cross-encoder",
        llm_base_url=llm_base_url,
        llm_model=LLM_ALIAS,
        llm_max_tokens=96,
        llm_max_retries=0,
        top_n=20,
        top_k=3,
    )
    built = build_components(
        settings, embedder=embedder, store=QdrantStore(path=":memory:", collection=settings.collection)
    )
    built.warm_up()
    assert isinstance(built.reranker, CrossEncoderReranker), "the shipped cross-encoder is required"
    assert built.verifier is not None and settings.verify_answers
    built.gate = top1_gate(built.reranker.name)
    try:
        yield built
    finally:
        with contextlib.suppress(Exception):  # its connections belong to the TestClient's finished loop
            asyncio.run(built.llm.aclose())  # type: ignore[attr-defined]
        built.close_sync()


@pytest.fixture(scope="module")
def client(components: Components) -> Iterator[TestClient]:
    with TestClient(create_app(components=components)) as c:
        files = [("files", (name, text.encode(), "text/markdown")) for name, text in API_CORPUS.items()]
        r = c.post("/documents", files=files)
        assert r.status_code == 200 and {f["status"] for f in r.json()["files"]} == {"added"}, r.text
        yield c


@pytest.fixture
def exporter(client: TestClient, components: Components) -> Iterator[InMemorySpanExporter]:
    """Installed after the app's lifespan set up tracing, so this test's spans land here."""
    memory = InMemorySpanExporter()
    tracing.setup_tracing(components.settings, "api", processors=[SimpleSpanProcessor(memory)])
    try:
        yield memory
    finally:
        tracing.install(None)


def chat(client: TestClient, question: str) -> dict[str, Any]:
    body = {"messages": [{"role": "user", "content": question}], "temperature": 0}
    r = client.post("/chat", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def named(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def test_a_question_the_corpus_cannot_answer_is_declined_without_an_llm_call(
    client: TestClient, exporter: InMemorySpanExporter
) -> None:
    body = chat(client, UNANSWERABLE)
    assert body["declined"] and body["decline_reason"] == "no_relevant_sources", body["answer"]
    assert body["answerability"]["band"] == "decline" and body["answerability"]["model"] == "test-top1-gate"
    assert body["sources"], "a decline still shows the nearest sources found"
    assert body["model"] == "" and not body["citations"] and not body["sentences"]

    spans = list(exporter.get_finished_spans())
    assert len(named(spans, "rag.chat")) == 1
    assert not named(spans, "generate"), "the LLM was called for a declined question"
    (gate,) = named(spans, "gate")
    assert gate.attributes["gate.band"] == "decline"
    assert gate.attributes["gate.score"] == body["answerability"]["score"] < 0.3


def test_the_shipped_gate_declines_it_too(client: TestClient, components: Components) -> None:
    """The shipped gate's score says "unanswerable" here too. These uploaded documents are not the fitz-gov ones it
    was calibrated on, so by default it does not decline before generation (the verifier decides: "Canberra" is in
    no source, so the answer is withheld); trusted everywhere, as before calibration domains, it declines."""
    if not DEFAULT_GATE.exists():
        pytest.skip(f"{DEFAULT_GATE} is not shipped yet (make answerability)")
    shipped = gate_from_settings(components.settings, components.reranker)
    assert shipped is not None, f"{DEFAULT_GATE} was fitted for another reranker than the shipped one"
    previous = components.gate
    try:
        components.gate = shipped
        body = chat(client, UNANSWERABLE)
        components.gate = CalibratedGate(shipped.model, outside_domain="decline")
        trusted = chat(client, UNANSWERABLE)
    finally:
        components.gate = previous
    assert body["answerability"]["model"] == shipped.name
    assert body["answerability"]["calibrated"] is False and body["answerability"]["band"] == "verify"
    assert body["answerability"]["score"] < shipped.model.decline_below
    assert body["declined"] and body["decline_reason"] in ("unsupported_answer", "model_declined"), body["answer"]
    assert trusted["answerability"]["band"] == "decline", trusted["answerability"]
    assert trusted["declined"] and trusted["decline_reason"] == "no_relevant_sources"


def test_an_answer_written_without_citations_comes_back_cited_on_each_sentence(
    client: TestClient, exporter: InMemorySpanExporter
) -> None:
    """The constructed case: the model is told to write no brackets; the verifier supplies the citations."""
    body = chat(client, ANSWERABLE)
    assert not body["declined"], body["answer"]
    assert body["answerability"]["band"] == "answer"
    (generate,) = named(list(exporter.get_finished_spans()), "generate")
    raw = str(generate.attributes["output.value"])
    assert "hour" in raw.lower(), raw  # the fact is in the answer ("valid for one hour")
    assert not CITATION_MARKER.search(raw), f"the construction failed: the model cited on its own: {raw!r}"

    sources = {s["n"]: s["source"] for s in body["sources"]}
    sentences = body["sentences"]
    assert sentences and any(s["supported"] for s in sentences), sentences
    for sentence in sentences:
        if sentence["supported"]:
            assert sentence["citations"], f"a supported sentence without a citation: {sentence}"
            assert {sources[n] for n in sentence["citations"]} == {ANSWER_SOURCE}, (sentence, sources)
        else:
            assert not sentence["citations"], sentence
    assert body["citations"] and {c["source"] for c in body["citations"]} == {ANSWER_SOURCE}
    # The verified citations are in the answer text, where the model wrote none.
    assert cited(body["answer"]) and {sources[n] for n in cited(body["answer"])} == {ANSWER_SOURCE}
