"""The regression gate: a real drop fails, noise and equal runs pass, missing per-item values are reported."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from eval.gate import (
    MIN_PAIRED_ITEMS,
    Verdict,
    compare,
    comparison_key,
    previous_comparable,
    previous_items,
    read_history,
)

pytestmark = pytest.mark.unit

N = 200


def run(values: dict[str, float], latency: float = 200.0) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """A run's flat metrics and per-item values for one quality metric, ndcg@10, plus an ungated latency."""
    return {"ndcg@10": float(np.mean(list(values.values()))), "search_latency_ms_p95": latency}, {"ndcg@10": values}


def items(seed: int, shift: float = 0.0, n: int = N) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    return {f"q{i}": float(np.clip(v - shift, 0, 1)) for i, v in enumerate(rng.uniform(0.2, 1.0, size=n))}


def gate(previous: dict[str, float], current: dict[str, float], threshold: float = 0.05, latency: float = 200.0
         ) -> Verdict:  # fmt: skip
    prev_metrics, prev_items = run(previous)
    cur_metrics, cur_items = run(current, latency)
    return compare(cur_metrics, prev_metrics, threshold, "prev", current_items=cur_items, previous_items=prev_items)


def test_an_equal_run_passes_with_a_zero_width_interval() -> None:
    verdict = gate(items(0), items(0))
    assert verdict.compared and not verdict.failed
    change = verdict.as_dict()["changes"]["ndcg@10"]
    assert change["delta"] == 0 and change["delta_ci"] == [0.0, 0.0] and change["paired"] == N


def test_a_constructed_regression_fires_and_names_the_metric_with_its_interval() -> None:
    before = items(0)
    after = {k: v - 0.15 for k, v in before.items()}  # every item 0.15 worse
    verdict = gate(before, after)
    assert verdict.failed and [c.metric for c in verdict.regressions] == ["ndcg@10"]
    regression = verdict.as_dict()["regressions"][0]
    assert regression["metric"] == "ndcg@10" and regression["delta"] == pytest.approx(-0.15, abs=1e-4)
    low, high = regression["delta_ci"]
    assert low <= high < -0.05 and regression["paired"] == N


def test_a_noisy_regression_of_the_same_size_also_fires() -> None:
    before = items(0)
    rng = np.random.default_rng(9)
    after = {k: v - 0.15 + float(rng.normal(0, 0.2)) for k, v in before.items()}
    assert gate(before, after).failed


def test_noise_does_not_fire() -> None:
    # two runs from the same distribution: items drawn independently each time, with different seeds
    for seed in range(20):
        verdict = gate(items(seed), items(seed + 100))
        assert not verdict.failed, verdict.as_dict()["changes"]["ndcg@10"]


def test_a_clear_drop_smaller_than_the_threshold_passes() -> None:
    before = items(0)
    verdict = gate(before, {k: v - 0.03 for k, v in before.items()})  # certain, but within 0.05
    assert not verdict.failed
    assert verdict.as_dict()["changes"]["ndcg@10"]["delta_ci"] == pytest.approx([-0.03, -0.03], abs=1e-3)


def test_twenty_items_cannot_tell_a_noisy_drop_beyond_the_threshold_from_noise() -> None:
    rng = np.random.default_rng(4)
    before = {f"q{i}": float(v) for i, v in enumerate(rng.uniform(size=20))}
    after = {k: float(np.clip(v - 0.07 + rng.normal(0, 0.3), 0, 1)) for k, v in before.items()}
    verdict = gate(before, after)
    assert not verdict.failed
    low, high = verdict.as_dict()["changes"]["ndcg@10"]["delta_ci"]
    assert low < -0.05 < high


def test_latency_is_reported_but_never_gated() -> None:
    verdict = gate(items(0), items(0), latency=5000.0)
    change = verdict.as_dict()["changes"]["search_latency_ms_p95"]
    assert not verdict.failed and change == {"previous": 200.0, "current": 5000.0, "delta": 4800.0, "gated": False}


def test_first_run_is_a_baseline() -> None:
    metrics, per_item = run(items(0))
    verdict = compare(metrics, None, 0.05, None, current_items=per_item)
    assert not verdict.failed and verdict.previous_run is None and "baseline" in verdict.reason


def test_missing_per_item_values_are_reported_as_no_comparison() -> None:
    before, after = run(items(0)), run({k: 0.0 for k in items(0)})
    verdict = compare(after[0], before[0], 0.05, "prev", current_items=after[1], previous_items=None)
    assert not verdict.failed and not verdict.compared
    assert "no per-item values" in verdict.as_dict()["reason"]
    assert verdict.as_dict()["changes"]["ndcg@10"]["note"] == "not tested"


def test_a_metric_without_items_on_one_side_or_with_too_few_pairs_is_not_tested() -> None:
    few = {f"q{i}": 1.0 for i in range(MIN_PAIRED_ITEMS - 1)}
    current = {"ndcg@10": 0.0, "rouge_l": 0.0}
    previous = {"ndcg@10": 1.0, "rouge_l": 1.0}
    verdict = compare(
        current, previous, 0.05, "prev",
        current_items={"ndcg@10": {k: 0.0 for k in few}}, previous_items={"ndcg@10": few, "rouge_l": few},
    )  # fmt: skip
    changes = verdict.as_dict()["changes"]
    assert not verdict.failed
    assert "only 9 paired items" in changes["ndcg@10"]["note"] and "no per-item" in changes["rouge_l"]["note"]


def test_metrics_missing_on_either_side_are_not_compared() -> None:
    verdict = compare({"ndcg@10": 0.1}, {"faithfulness": 0.9}, 0.05, "prev", current_items={}, previous_items={})
    assert not verdict.failed and verdict.changes == []


def test_previous_items_come_from_the_saved_report_or_say_why_not(tmp_path: Path) -> None:
    items_, reason = previous_items(tmp_path, "r1")
    assert items_ is None and "missing" in reason
    run_dir = tmp_path / "runs" / "r1"
    run_dir.mkdir(parents=True)
    (run_dir / "report.json").write_text(json.dumps({"metrics": {"ndcg@10": 0.5}, "per_query": []}))
    items_, reason = previous_items(tmp_path, "r1")
    assert items_ is None and "kept no per-item values" in reason
    report = {
        "metrics": {"ndcg@10": 0.5, "answer_rate": 0.5, "rouge_l": 0.3},
        "per_query": [{"id": "q1", "ndcg@10": 1.0}, {"id": "q2", "ndcg@10": 0.0}, {"id": "q3", "error": "503"}],
        # a schema-1 case: no answer_rate in its scores, rebuilt from expect and declined
        "per_case": [{"id": "c1", "expect": "answer", "declined": True, "error": "", "scores": {"rouge_l": 0.3}}],
    }
    (run_dir / "report.json").write_text(json.dumps(report))
    items_, reason = previous_items(tmp_path, "r1")
    assert reason == "" and items_ == {
        "ndcg@10": {"q1": 1.0, "q2": 0.0}, "answer_rate": {"c1": 0.0}, "rouge_l": {"c1": 0.3}
    }  # fmt: skip


def test_gate_off_runs_have_their_own_comparison_key() -> None:
    assert comparison_key("fitz:aaa") == comparison_key("fitz:aaa", {}) == "fitz:aaa"
    assert comparison_key("fitz:aaa", {"answerability_gate": False}) == "fitz:aaa|answerability_gate=off"
    assert comparison_key("fitz:aaa", {"verify": False, "answerability_gate": False}) == (
        "fitz:aaa|answerability_gate=off|verify=off"
    )


def test_previous_comparable_run_is_the_latest_complete_one_with_the_same_key(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    rows = [
        {"run_id": "r1", "dataset_key": "fitz:aaa", "metrics": {}},  # before compare keys existed
        {"run_id": "r2", "dataset_key": "fitz:bbb", "metrics": {}},
        {"run_id": "r3", "dataset_key": "fitz:aaa", "metrics": {}, "complete": False},
        {"run_id": "r4", "dataset_key": "fitz:aaa", "compare_key": "fitz:aaa|answerability_gate=off", "metrics": {}},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n{cut by a cra")
    history = read_history(path)
    assert [r["run_id"] for r in history] == ["r1", "r2", "r3", "r4"]
    assert previous_comparable(history, "fitz:aaa")["run_id"] == "r1"
    assert previous_comparable(history, "fitz:aaa|answerability_gate=off")["run_id"] == "r4"
    assert previous_comparable(history, "fitz:bbb")["run_id"] == "r2"
    assert previous_comparable(history, "other") is None
    assert read_history(tmp_path / "none.jsonl") == []
