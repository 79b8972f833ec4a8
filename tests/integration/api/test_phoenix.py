"""A real Phoenix collector receives the span tree of a real /chat request; read back over its REST API."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from phoenix_server import phoenix_screenshot, read_spans, start_phoenix, stop

from services.api.components import Components
from services.core.observability import tracing
from services.core.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc, url = start_phoenix(tmp_path_factory.mktemp("phoenix"))
    try:
        yield url
    finally:
        stop(proc)


def test_chat_trace_lands_in_phoenix(
    phoenix: str, client: TestClient, corpus: dict[str, str], components: Components, tmp_path: Path
) -> None:
    settings = Settings(_env_file=None, tracing_endpoint=f"{phoenix}/v1/traces", tracing_project="ragstack-test")
    tracing.setup_tracing(settings, "api")
    try:
        body = {"messages": [{"role": "user", "content": "How long is the password reset link valid?"}]}
        r = client.post("/chat", json=body, headers={"X-Session-Id": "phoenix-session-1"})
        assert r.status_code == 200, r.text
    finally:
        tracing.shutdown()  # flushes the batch exporter

    spans = read_spans(
        phoenix, "ragstack-test", expect=5, names={"rag.chat", "embed_query", "retrieve", "rerank", "generate"}
    )
    by_name = {s["name"]: s for s in spans}
    assert {"rag.chat", "embed_query", "retrieve", "rerank", "generate"} <= set(by_name)
    root = by_name["rag.chat"]
    assert root["span_kind"] == "CHAIN" and root["parent_id"] is None
    kinds = {"embed_query": "EMBEDDING", "retrieve": "RETRIEVER", "rerank": "RERANKER", "generate": "LLM"}
    for name, kind in kinds.items():
        span = by_name[name]
        assert span["span_kind"] == kind, name
        assert span["parent_id"] == root["context"]["span_id"], name
        assert span["context"]["trace_id"] == root["context"]["trace_id"]

    attrs = {name: flat(span["attributes"]) for name, span in by_name.items()}
    assert attrs["rag.chat"]["session.id"] == "phoenix-session-1"
    cited = {c["chunk_id"] for c in r.json()["sources"]}
    retrieved = {v for k, v in attrs["retrieve"].items() if k.startswith("retrieval.documents.") and k.endswith(".id")}
    assert cited <= retrieved  # the chunks given to the model are among the retrieved ones
    reranked = [v for k, v in attrs["rerank"].items() if k.startswith("reranker.output_documents.") and "score" in k]
    assert reranked and all(0.0 <= float(s) <= 1.0 for s in reranked)
    llm = attrs["generate"]
    assert int(llm["llm.token_count.prompt"]) > 100
    assert int(llm["llm.token_count.completion"]) >= 1
    assert llm["llm.model_name"] == "smollm2-135m"

    keep_screenshot(trace_screenshot(phoenix, root["context"]["trace_id"], tmp_path), "phoenix-trace.png")


def test_a_thumbs_down_becomes_an_annotation_on_the_answers_root_span(
    phoenix: str, client: TestClient, corpus: dict[str, str], components: Components, tmp_path: Path
) -> None:
    """POST /feedback stores the verdict and annotates the chat's root span in Phoenix (read back over REST), so
    the dashboard can filter traces by thumbs."""
    settings = Settings(_env_file=None, tracing_endpoint=f"{phoenix}/v1/traces", tracing_project="ragstack-feedback")
    tracing.setup_tracing(settings, "api")
    saved = components.settings
    components.settings = saved.model_copy(update={"tracing_endpoint": settings.tracing_endpoint})
    try:
        body = {"messages": [{"role": "user", "content": "How long is the password reset link valid?"}]}
        r = client.post("/chat", json=body, headers={"X-Session-Id": "feedback-session"})
        assert r.status_code == 200, r.text
        answer_id = r.json()["id"]
        tracing.shutdown()  # the root span reaches Phoenix now; the annotation waits for it otherwise
        feedback = {"id": answer_id, "rating": "down", "reason": "wrong_source", "comment": "cites the FAQ"}
        r = client.post("/feedback", json=feedback)
        assert r.status_code == 201, r.text
    finally:
        components.settings = saved
        tracing.shutdown()

    [root] = [
        s for s in read_spans(phoenix, "ragstack-feedback", expect=1, names={"rag.chat"}) if s["name"] == "rag.chat"
    ]
    span_id = root["context"]["span_id"]
    assert flat(root["attributes"])["rag.answer_id"] == answer_id
    got = httpx.get(
        f"{phoenix}/v1/projects/ragstack-feedback/span_annotations", params={"span_ids": [span_id]}, timeout=10
    )
    assert got.status_code == 200, got.text
    [annotation] = [a for a in got.json()["data"] if a["name"] == "user_feedback"]
    assert annotation["annotator_kind"] == "HUMAN"
    assert annotation["result"]["label"] == "thumbs_down" and annotation["result"]["score"] == 0.0
    assert (
        "wrong_source" in annotation["result"]["explanation"] and "cites the FAQ" in annotation["result"]["explanation"]
    )
    assert components.app_state().turn(answer_id).feedback.annotated  # type: ignore[union-attr]

    def show(page: Any) -> None:  # the trace, its root span's annotations open
        page.get_by_text("ragstack-feedback").first.click()
        page.get_by_text("rag.chat").first.click()
        page.get_by_text("Annotations").first.wait_for(timeout=30_000)
        page.get_by_text("user_feedback").first.wait_for(timeout=30_000)

    keep_screenshot(phoenix_screenshot(phoenix, "/projects", tmp_path / "feedback.png", show), "phoenix-feedback.png")


def flat(attributes: dict, prefix: str = "") -> dict[str, object]:
    """Phoenix returns attributes either dotted or nested; compare them dotted."""
    out: dict[str, object] = {}
    for key, value in attributes.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat(value, name + "."))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for i, item in enumerate(value):
                out.update(flat(item, f"{name}.{i}."))
        else:
            out[name] = value
    return out


def trace_screenshot(url: str, trace_id: str, tmp_path: Path) -> Path | None:
    """The /chat trace's span tree in Phoenix's UI."""

    def show(page: Any) -> None:
        page.get_by_text("ragstack-test").first.click()
        page.get_by_text("rag.chat").first.click()
        page.get_by_text("generate").first.wait_for(timeout=30_000)

    return phoenix_screenshot(url, "/projects", tmp_path / "phoenix-trace.png", show)


def keep_screenshot(shot: Path | None, name: str) -> None:
    if shot is not None and os.environ.get("RAG_UPDATE_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, SCREENSHOTS / name)
