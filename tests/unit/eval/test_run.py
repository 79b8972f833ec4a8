"""A whole evaluation run against FakeRagApi: metrics, report files and schema, history, the gate, tracing."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_rag_api import FakeRagApi
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from eval.client import ApiClient
from eval.evalset import EvalItem, EvalSet
from eval.report import REPORT_FILES, REQUIRED_KEYS
from eval.run import EXIT_OK, EXIT_REGRESSION, evaluate, exit_code
from services.core import tracing
from services.core.settings import Settings

pytestmark = pytest.mark.unit

CTX = "The Krebs cycle occurs in the mitochondrial matrix and produces electron carriers."
EVALSET = EvalSet(
    "tiny",
    retrieval=(
        EvalItem("r1", "where is the krebs cycle", relevant_docs=("bio_001",)),
        EvalItem("r2", "french revolution start", relevant_docs=("hist_001", "hist_002")),
    ),
    rag=(
        EvalItem("a1", "Where does the Krebs cycle occur?", expect="answer", reference=CTX, reference_contexts=(CTX,)),
        EvalItem("x1", "What is Tesla's stock price today?", expect="abstain"),
    ),
)
GOOD = {"where is the krebs cycle": ["bio_001", "x"], "french revolution start": ["x", "hist_001", "y", "hist_002"]}


def fake(rankings: dict[str, list[str]], declines_abstain: bool = True) -> FakeRagApi:
    answers = {
        "Where does the Krebs cycle occur?": ("In the mitochondrial matrix [1].", [CTX, "Unrelated text."], False),
        "What is Tesla's stock price today?": ("I don't know.", ["Ford sells cars."], True)
        if declines_abstain
        else ("$200.", ["Ford sells cars."], False),
    }
    return FakeRagApi(rankings=rankings, answers=answers)


def run(api: FakeRagApi, reports: Path) -> dict:
    report, _ = evaluate(
        ApiClient(api.client()), EVALSET, Settings(_env_file=None), reports_dir=reports, threshold=0.05
    )
    return report


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    tracing.setup_tracing(Settings(_env_file=None), "eval", processors=[SimpleSpanProcessor(memory)])
    try:
        yield memory
    finally:
        tracing.install(None)


def test_metrics_match_hand_computed_values(tmp_path: Path) -> None:
    report = run(fake(GOOD), tmp_path)
    m = report["metrics"]
    # r1: hit at rank 1 -> nDCG 1, RR 1. r2: hits at ranks 2 and 4 of 2 relevant -> the textbook case
    r2_ndcg = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert m["ndcg@10"] == pytest.approx((1 + r2_ndcg) / 2, abs=1e-4)
    assert m["mrr@10"] == pytest.approx((1 + 0.5) / 2)
    assert (m["recall@1"], m["recall@5"], m["recall@10"]) == (0.5, 1.0, 1.0)
    assert m["abstention_accuracy"] == 1.0 and m["answer_rate"] == 1.0
    # one of two retrieved chunks matches the reference context, at rank 1 -> AP 1; the one reference found
    assert m["non_llm_context_precision"] == pytest.approx(1.0) and m["non_llm_context_recall"] == 1.0
    assert 0 < m["rouge_l"] < 1 and 0 < m["string_similarity"] < 1 and "faithfulness" not in m
    assert m["search_latency_ms_p50"] > 0 and m["chat_latency_ms_p99"] >= m["chat_latency_ms_p50"]
    assert report["complete"] and exit_code(report) == EXIT_OK


def test_report_files_schema_latest_copy_and_history(tmp_path: Path) -> None:
    report = run(fake(GOOD), tmp_path)
    run_dir = tmp_path / "runs" / report["run_id"]
    for name in REPORT_FILES:
        assert (run_dir / name).stat().st_size > 0
        assert (tmp_path / "latest" / name).read_bytes() == (run_dir / name).read_bytes()
    assert (run_dir / "metrics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((run_dir / "report.json").read_text())
    assert all(key in saved for key in REQUIRED_KEYS) and saved["schema_version"] == 1
    assert saved["dataset"] == {"name": "tiny", "key": EVALSET.key, "retrieval_queries": 2, "rag_cases": 2}
    assert [q["id"] for q in saved["per_query"]] == ["r1", "r2"] and saved["per_case"][1]["declined"] is True
    assert "| ndcg@10 |" in (run_dir / "report.md").read_text() and "baseline" in (run_dir / "report.md").read_text()
    history = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert len(history) == 1 and history[0]["run_id"] == report["run_id"] and history[0]["metrics"] == saved["metrics"]


def test_an_equal_run_passes_the_gate_and_a_worse_one_fails(tmp_path: Path) -> None:
    first = run(fake(GOOD), tmp_path)
    second = run(fake(GOOD), tmp_path)
    assert second["run_id"] != first["run_id"]
    assert second["gate"]["previous_run"] == first["run_id"] and not second["gate"]["failed"]
    assert exit_code(second) == EXIT_OK
    worse = {"where is the krebs cycle": ["x", "y", "z"], **{k: v for k, v in GOOD.items() if k.startswith("french")}}
    third = run(fake(worse, declines_abstain=False), tmp_path)
    regressed = {r["metric"] for r in third["gate"]["regressions"]}
    assert {"ndcg@10", "mrr@10", "abstention_accuracy"} <= regressed
    assert third["gate"]["previous_run"] == second["run_id"]
    assert exit_code(third) == EXIT_REGRESSION
    assert "**REGRESSION**" in (tmp_path / "latest" / "report.md").read_text()
    assert len((tmp_path / "history.jsonl").read_text().splitlines()) == 3


def test_failed_requests_make_the_run_incomplete_and_fail(tmp_path: Path) -> None:
    api = fake(GOOD)
    api.fail_queries = {"french revolution start"}
    report = run(api, tmp_path)
    assert report["retrieval"]["errors"] == 1 and not report["complete"]
    assert report["metrics"]["ndcg@10"] == 1.0  # the failed query is left out, not scored as zero
    assert exit_code(report) == EXIT_REGRESSION


def test_the_run_is_one_evaluator_span_with_the_metrics(tmp_path: Path, spans: InMemorySpanExporter) -> None:
    report = run(fake(GOOD), tmp_path)
    finished = {s.name: s for s in spans.get_finished_spans()}
    root = finished["eval.run"]
    assert root.attributes["openinference.span.kind"] == "EVALUATOR"
    assert root.attributes["eval.metric.ndcg@10"] == report["metrics"]["ndcg@10"]
    children = [s for s in spans.get_finished_spans() if s.parent and s.parent.span_id == root.context.span_id]
    assert sorted({s.name for s in children}) == ["eval.chat", "eval.search"]
