"""A whole evaluation run against FakeRagApi: metrics and intervals, report files and schema, history, the gate,
gate-off runs, tracing."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_rag_api import FakeRagApi
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from eval.evalset import EvalItem, EvalSet
from eval.report import REPORT_FILES, REQUIRED_KEYS, SCHEMA_VERSION, side_by_side
from eval.run import EXIT_OK, EXIT_REGRESSION, evaluate, exit_code, parse_args, sample_set
from services.contract.client import ApiClient
from services.contract.schemas import ChatOptions
from services.core.observability import tracing
from services.core.settings import EvalSettings

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
# enough items for the gate to test a metric (eval.gate.MIN_PAIRED_ITEMS): 12 queries and 12 cases to decline
BIG = EvalSet(
    "big",
    retrieval=tuple(EvalItem(f"r{i:02}", f"query {i}", relevant_docs=(f"doc_{i}",)) for i in range(12)),
    rag=tuple(EvalItem(f"x{i:02}", f"unanswerable {i}?", expect="abstain") for i in range(12)),
)
BIG_GOOD = {f"query {i}": [f"doc_{i}", "x"] for i in range(12)}
SUPPORTED = {"text": "In the mitochondrial matrix [1].", "citations": [1], "supported": True, "score": 0.9}
UNSUPPORTED = {"text": "It makes glucose [2].", "citations": [2], "supported": False, "score": 0.2}
UNCITED = {"text": "It is a cycle.", "citations": [], "supported": True, "score": 0.6}


def fake(rankings: dict[str, list[str]], declines_abstain: bool = True) -> FakeRagApi:
    answers = {
        "Where does the Krebs cycle occur?": ("In the mitochondrial matrix [1].", [CTX, "Unrelated text."], False),
        "What is Tesla's stock price today?": ("I don't know.", ["Ford sells cars."], True)
        if declines_abstain
        else ("$200.", ["Ford sells cars."], False),
    }
    return FakeRagApi(rankings=rankings, answers=answers)


def run(api: FakeRagApi, reports: Path, evalset: EvalSet = EVALSET, options: ChatOptions | None = None) -> dict:
    report, _ = evaluate(
        ApiClient(http=api.client()), evalset, EvalSettings(_env_file=None), reports_dir=reports, threshold=0.05,
        chat_options=options,
    )  # fmt: skip
    return report


def big_fake(rankings: dict[str, list[str]], declines: bool = True) -> FakeRagApi:
    answers = {item.question: ("I don't know.", [], True) if declines else ("Yes.", ["ctx"], False) for item in BIG.rag}
    return FakeRagApi(rankings=rankings, answers=answers)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    tracing.setup_tracing(EvalSettings(_env_file=None), "eval", processors=[SimpleSpanProcessor(memory)])
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
    # answers the server did not verify (no sentences): no grounding metrics, no error
    assert not {"sentence_supported", "citation_coverage", "citation_precision"} & set(m)
    assert not report["rag"]["grounding_reported"]
    assert report["rag"]["decline_reasons"] == {"unspecified": 1}


def test_every_quality_metric_has_an_interval_and_its_per_item_values(tmp_path: Path) -> None:
    report = run(fake(GOOD), tmp_path)
    ci = report["metrics_ci"]
    assert set(ci) == {k for k in report["metrics"] if "latency" not in k}
    assert ci["mrr@10"] == {"mean": 0.75, "low": 0.5, "high": 1.0, "n": 2}  # RR 1 and 0.5: resampled means
    assert ci["abstention_accuracy"] == {"mean": 1.0, "low": None, "high": None, "n": 1}  # one case: no interval
    assert all(v["mean"] == pytest.approx(report["metrics"][k], abs=1e-4) for k, v in ci.items())
    answer, abstain = report["per_case"]
    assert answer["scores"]["answer_rate"] == 1.0 and abstain["scores"] == {"abstention_accuracy": 1.0}
    assert answer["sentences"] == [] and {"rouge_l", "bleu", "non_llm_context_recall"} <= set(answer["scores"])
    assert report["per_query"][1]["mrr@10"] == 0.5


def test_grounding_fields_give_sentence_citation_and_decline_metrics(tmp_path: Path) -> None:
    api = fake(GOOD)
    api.grounding = {
        "Where does the Krebs cycle occur?": {
            "sentences": [SUPPORTED, UNSUPPORTED, UNCITED], "decline_reason": None,
            "answerability": {"score": 0.9, "band": "answer", "model": "logreg"},
        },
        "What is Tesla's stock price today?": {
            "sentences": [], "decline_reason": "no_relevant_sources",
            "answerability": {"score": 0.02, "band": "decline", "model": "logreg"},
        },
    }  # fmt: skip
    report = run(api, tmp_path)
    m = report["metrics"]
    # 2 of 3 sentences supported; 2 of 3 carry a citation; of the 2 citations, 1 is on a supported sentence
    assert m["sentence_supported"] == pytest.approx(2 / 3, abs=1e-4)
    assert m["citation_coverage"] == pytest.approx(2 / 3, abs=1e-4) and m["citation_precision"] == 0.5
    assert report["rag"]["grounding_reported"] and report["rag"]["decline_reasons"] == {"no_relevant_sources": 1}
    assert report["rag"]["decline_reasons_by_expect"] == {"answer": {}, "abstain": {"no_relevant_sources": 1}}
    answer, abstain = report["per_case"]
    assert answer["scores"]["citation_precision"] == 0.5 and answer["sentences"][1]["supported"] is False
    assert abstain["decline_reason"] == "no_relevant_sources" and abstain["answerability"]["band"] == "decline"
    assert "sentence_supported" not in abstain["scores"]  # a declined case has no answer to ground
    assert report["metrics_ci"]["citation_precision"]["n"] == 1
    assert "no_relevant_sources 1" in (tmp_path / "latest" / "report.md").read_text()


def test_report_files_schema_latest_copy_and_history(tmp_path: Path) -> None:
    report = run(fake(GOOD), tmp_path)
    run_dir = tmp_path / "runs" / report["run_id"]
    for name in REPORT_FILES:
        assert (run_dir / name).stat().st_size > 0
        assert (tmp_path / "latest" / name).read_bytes() == (run_dir / name).read_bytes()
    assert (run_dir / "metrics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((run_dir / "report.json").read_text())
    assert all(key in saved for key in REQUIRED_KEYS) and saved["schema_version"] == SCHEMA_VERSION
    assert saved["dataset"] == {"name": "tiny", "key": EVALSET.key, "retrieval_queries": 2, "rag_cases": 2}
    assert saved["compare_key"] == EVALSET.key and saved["chat_options"] == {}
    assert saved["api_info"] == {"status": "ready", "checks": {"reranker": "fake", "llm": True}}  # what was measured
    assert [q["id"] for q in saved["per_query"]] == ["r1", "r2"] and saved["per_case"][1]["declined"] is True
    md = (run_dir / "report.md").read_text()
    assert "| mrr@10 | 0.750 [0.500, 1.000] (n=2) |" in md and "baseline" in md
    history = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert len(history) == 1 and history[0]["run_id"] == report["run_id"] and history[0]["metrics"] == saved["metrics"]
    assert history[0]["compare_key"] == EVALSET.key and history[0]["metrics_ci"]["mrr@10"] == [0.5, 1.0]


def test_an_equal_run_passes_the_gate_and_a_worse_one_fails(tmp_path: Path) -> None:
    first = run(big_fake(BIG_GOOD), tmp_path, BIG)
    second = run(big_fake(BIG_GOOD), tmp_path, BIG)
    assert second["run_id"] != first["run_id"]
    assert second["gate"]["previous_run"] == first["run_id"] and not second["gate"]["failed"]
    assert second["gate"]["compared"] and second["gate"]["changes"]["ndcg@10"]["delta_ci"] == [0.0, 0.0]
    assert exit_code(second) == EXIT_OK
    worse = {**BIG_GOOD, **{f"query {i}": ["x", "y"] for i in range(6)}}  # half the queries lose their hit
    third = run(big_fake(worse, declines=False), tmp_path, BIG)
    regressed = {r["metric"]: r for r in third["gate"]["regressions"]}
    assert {"ndcg@10", "mrr@10", "recall@1", "abstention_accuracy"} <= set(regressed)
    assert regressed["abstention_accuracy"]["delta_ci"] == [-1.0, -1.0] and regressed["ndcg@10"]["paired"] == 12
    low, high = regressed["ndcg@10"]["delta_ci"]
    assert low < -0.5 < high < -0.05
    assert third["gate"]["previous_run"] == second["run_id"]
    assert exit_code(third) == EXIT_REGRESSION
    md = (tmp_path / "latest" / "report.md").read_text()
    assert "**REGRESSION**" in md and "with 95% confidence" in md and "(n=12)" in md
    assert len((tmp_path / "history.jsonl").read_text().splitlines()) == 3


def test_a_tiny_set_cannot_fail_the_gate_on_noise(tmp_path: Path) -> None:
    run(fake(GOOD), tmp_path)
    worse = run(fake({}, declines_abstain=False), tmp_path)  # every metric down, but over 1-2 items
    assert not worse["gate"]["failed"] and worse["gate"]["compared"]
    assert "only 2 paired items" in worse["gate"]["changes"]["ndcg@10"]["note"]


def test_a_previous_run_without_its_report_is_no_comparison(tmp_path: Path) -> None:
    first = run(big_fake(BIG_GOOD), tmp_path, BIG)
    (tmp_path / "runs" / first["run_id"] / "report.json").unlink()
    second = run(big_fake({}, declines=False), tmp_path, BIG)
    gate = second["gate"]
    assert gate["previous_run"] == first["run_id"] and not gate["failed"] and not gate["compared"]
    assert "missing" in gate["reason"] and gate["changes"]["ndcg@10"]["delta"] == -1.0
    assert "No comparison item by item" in (tmp_path / "latest" / "report.md").read_text()


def test_gate_off_runs_are_recorded_and_compared_only_with_gate_off_runs(tmp_path: Path) -> None:
    api = big_fake(BIG_GOOD)
    api.ungated = {item.question: ("A guess.", ["ctx"], False) for item in BIG.rag}
    on = run(api, tmp_path, BIG)
    off = run(api, tmp_path, BIG, ChatOptions(answerability_gate=False))
    chats = [json.loads(r.content) for r in api.requests if r.url.path == "/chat"]
    assert all("answerability_gate" not in c for c in chats[:12]) and all(
        c["answerability_gate"] is False for c in chats[12:]
    )
    assert off["dataset"]["gate"] == "off" and off["chat_options"] == {"answerability_gate": False}
    assert off["compare_key"] == f"{BIG.key}|answerability_gate=off" and "gate" not in on["dataset"]
    # abstention 1 -> 0, but against a gate-on run it is by design, not a regression: no previous run
    assert off["metrics"]["abstention_accuracy"] == 0.0 and off["gate"]["previous_run"] is None
    again = run(api, tmp_path, BIG, ChatOptions(answerability_gate=False))
    assert again["gate"]["previous_run"] == off["run_id"] and not again["gate"]["failed"]
    assert run(api, tmp_path, BIG)["gate"]["previous_run"] == on["run_id"]
    table = side_by_side(on, off)
    assert f"`{on['run_id']}` (server settings) vs `{off['run_id']}` (answerability_gate off)" in table
    assert "| abstention_accuracy | 1.000 [1.000, 1.000] (n=12) | 0.000 [0.000, 0.000] (n=12) | -1.000" in table


def test_default_sizes_are_200_queries_and_every_rag_case_and_sample_shrinks_both() -> None:
    settings = EvalSettings(_env_file=None)
    assert (settings.eval_sample_size, settings.eval_rag_sample_size) == (200, 0)
    args = parse_args([], settings)
    assert (args.sample, args.rag_sample, args.gate_off) == (None, None, False)
    assert parse_args(["--gate-off", "--rag-sample", "3"], settings).gate_off
    part = sample_set(BIG, 5, 0)
    assert len(part.retrieval) == 5 and part.rag == BIG.rag and part.notes == {"sample": 5, "rag_sample": "all"}
    assert len(sample_set(BIG, 5, 4).rag) == 4


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


def test_the_first_citation_is_right_when_it_names_a_judged_document() -> None:
    from eval.rag_eval import CaseOutcome, citation_scores
    from services.contract.schemas import SentenceOut

    item = EvalItem("a", "Where does the Krebs cycle occur?", relevant_docs=("bio_001",), expect="answer")
    outcome = CaseOutcome("a", "answer", item.question, answer="In the matrix [2]. It cycles [1].")
    outcome.sources = [
        {"n": 1, "doc": "x", "title": "", "read": ""},
        {"n": 2, "doc": "bio_001", "title": "", "read": ""},
    ]
    outcome.sentences = [
        SentenceOut(text="Its matrix [2].", citations=[2], supported=True, score=0.9),
        SentenceOut(text="It cycles [1].", citations=[1], supported=True, score=0.9),
    ]
    assert citation_scores(outcome, item) == {"first_citation_correct": 1.0}
    outcome.sentences = list(reversed(outcome.sentences))
    assert citation_scores(outcome, item) == {"first_citation_correct": 0.0}
    outcome.sentences = [SentenceOut(text="Uncited.", citations=[], supported=False, score=0.1)]
    assert citation_scores(outcome, item) == {"first_citation_correct": 0.0}  # answered without any citation
    outcome.declined = True
    assert citation_scores(outcome, item) == {}
