"""eval.run's evaluation against the real API: packaged embedder and reranker, Qdrant, the real SmolLM2 server.

A handful of fitz-gov documents are uploaded as ``<fitz-gov id>.md`` (as the full-corpus index names them),
then two retrieval queries, one case to answer and one to decline go through ``/search`` and ``/chat``, once
with the server's settings and once with the answerability gate off.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from llm_server import start_llm_server, stop

from eval.evalset import EvalSet, fitz_gov_rag_cases, fitz_gov_set
from eval.run import evaluate
from services.api.app import create_app
from services.api.components import build_components
from services.contract.client import ApiClient
from services.contract.schemas import ChatOptions, ChatRequest
from services.core.models.embedder import SentenceTransformerEmbedder
from services.core.settings import Settings
from services.core.storage.store import QdrantStore
from services.datasets.fitz_gov import load_corpus

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[3]
RERANKER = REPO_ROOT / "models" / "reranker-fitzgov-minilm-l6" / "model.safetensors"


def small_set() -> EvalSet:
    retrieval = fitz_gov_set("test").retrieval[:2]
    cases = fitz_gov_rag_cases("test")
    answer = next(c for c in cases if c.expect == "answer" and len(c.relevant_docs) == 1)
    abstain = next(c for c in cases if c.expect == "abstain")
    return EvalSet("fitz-gov-test-tiny", retrieval, (answer, abstain))


@pytest.fixture(scope="module")
def api(embedder: SentenceTransformerEmbedder) -> Iterator[TestClient]:
    proc, base_url = start_llm_server("smollm2-135m")
    settings = Settings(
        _env_file=None,
        qdrant_path=":memory:",
        reranker="cross-encoder" if RERANKER.exists() else "none",
        llm_base_url=base_url,
        llm_model="smollm2-135m",
        llm_max_tokens=40,
        top_n=20,
        top_k=3,
    )
    components = build_components(
        settings, embedder=embedder, store=QdrantStore(path=":memory:", collection=settings.collection)
    )
    components.warm_up()
    try:
        with TestClient(create_app(components=components)) as client:
            yield client
    finally:
        components.close_sync()
        stop(proc)


def test_eval_run_against_the_real_api(api: TestClient, tmp_path: Path) -> None:
    evalset = small_set()
    wanted = {d for item in evalset.retrieval + evalset.rag for d in item.relevant_docs}
    by_id = {d.id: d for d in load_corpus()}
    decoys = [d for d in load_corpus() if d.domain == "finance"][:4]  # something to rank the relevant ones above
    docs = {doc_id: by_id[doc_id] for doc_id in wanted} | {d.id: d for d in decoys}
    files = [("files", (f"{i}.md", d.as_markdown().encode(), "text/markdown")) for i, d in docs.items()]
    assert api.post("/documents", files=files).status_code == 200

    report, run_dir = evaluate(
        ApiClient(http=api), evalset, Settings(_env_file=None), reports_dir=tmp_path, threshold=0.05,
        api_url="testclient",
    )  # fmt: skip

    assert report["complete"], report["per_query"] + report["per_case"]
    m = report["metrics"]
    # every relevant document is in a 6-10 document index, so recall@10 is 1; the ranks depend on the models
    assert m["recall@10"] == 1.0 and 0 < m["ndcg@10"] <= 1 and 0 < m["mrr@10"] <= 1
    answer, abstain = report["per_case"]
    assert answer["expect"] == "answer" and answer["answer"] and isinstance(answer["declined"], bool)
    assert abstain["expect"] == "abstain" and m["abstention_accuracy"] in (0.0, 1.0)
    if not answer["declined"]:  # string metrics need an answer; retrieval recall of the reference context need not
        assert 0 <= m["rouge_l"] <= 1
    assert m["non_llm_context_recall"] == 1.0  # the answer's evidence document was given to the model
    assert json.loads((run_dir / "report.json").read_text())["run_id"] == report["run_id"]
    assert (tmp_path / "latest" / "metrics.png").exists()
    assert report["metrics_ci"]["recall@10"] == {"mean": 1.0, "low": 1.0, "high": 1.0, "n": 2}
    assert report["gate"]["previous_run"] is None  # the first run is the baseline
    for name in ("sentence_supported", "citation_coverage", "citation_precision"):
        assert 0 <= m.get(name, 0) <= 1
    assert isinstance(answer["sentences"], list)  # empty when the server did not verify the answer
    if report["rag"]["grounding_reported"] and not answer["declined"]:
        assert answer["sentences"] and "sentence_supported" in answer["scores"]
    if abstain["declined"]:
        assert abstain["decline_reason"] in (None, "no_relevant_sources", "unsupported_answer", "model_declined")

    if "answerability_gate" not in ChatRequest.model_fields:
        return  # an API without the per-request override: the gate-off run would be rejected (422)
    off, _ = evaluate(
        ApiClient(http=api), evalset, Settings(_env_file=None), reports_dir=tmp_path, threshold=0.05,
        chat_options=ChatOptions(answerability_gate=False),
    )  # fmt: skip
    assert off["complete"] and off["dataset"]["gate"] == "off"
    assert off["gate"]["previous_run"] is None  # not compared with the gate-on run
    assert all(c["decline_reason"] != "no_relevant_sources" for c in off["per_case"])  # the gate never declined
