"""The regression gate: a worse run fails, an equal or better one passes, and only like is compared with like."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.gate import compare, previous_comparable, read_history

pytestmark = pytest.mark.unit

BASE = {"ndcg@10": 0.80, "abstention_accuracy": 0.60, "rouge_l": 0.30, "search_latency_ms_p95": 200.0}


def test_an_equal_run_passes() -> None:
    verdict = compare(dict(BASE), dict(BASE), 0.05, "prev")
    assert not verdict.failed and verdict.regressions == []
    assert all(c.delta == 0 for c in verdict.changes)


def test_a_worse_run_fails_and_names_the_metric() -> None:
    worse = {**BASE, "ndcg@10": 0.70}
    verdict = compare(worse, BASE, 0.05, "prev")
    assert verdict.failed
    assert [(c.metric, c.delta) for c in verdict.regressions] == [("ndcg@10", -0.1)]
    assert verdict.as_dict()["regressions"][0] == {"metric": "ndcg@10", "previous": 0.8, "current": 0.7, "delta": -0.1}


def test_a_drop_within_the_threshold_passes_and_one_just_beyond_fails() -> None:
    assert not compare({**BASE, "rouge_l": 0.25}, BASE, 0.05, "prev").failed  # exactly the threshold
    assert compare({**BASE, "rouge_l": 0.249}, BASE, 0.05, "prev").failed


def test_better_runs_and_slower_latency_do_not_fail() -> None:
    better = {**BASE, "ndcg@10": 0.95, "search_latency_ms_p95": 2000.0}
    verdict = compare(better, BASE, 0.05, "prev")
    assert not verdict.failed
    assert verdict.as_dict()["changes"]["search_latency_ms_p95"]["delta"] == 1800.0


def test_first_run_is_a_baseline() -> None:
    verdict = compare(BASE, None, 0.05, None)
    assert not verdict.failed and verdict.previous_run is None


def test_metrics_missing_on_either_side_are_not_compared() -> None:
    verdict = compare({"ndcg@10": 0.1}, {"faithfulness": 0.9}, 0.05, "prev")
    assert not verdict.failed and verdict.changes == []


def test_previous_comparable_run_is_the_latest_complete_one_over_the_same_items(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    rows = [
        {"run_id": "r1", "dataset_key": "fitz:aaa", "metrics": {}},
        {"run_id": "r2", "dataset_key": "fitz:bbb", "metrics": {}},
        {"run_id": "r3", "dataset_key": "fitz:aaa", "metrics": {}, "complete": False},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n{cut by a cra")
    history = read_history(path)
    assert [r["run_id"] for r in history] == ["r1", "r2", "r3"]
    assert previous_comparable(history, "fitz:aaa")["run_id"] == "r1"
    assert previous_comparable(history, "fitz:bbb")["run_id"] == "r2"
    assert previous_comparable(history, "other") is None
    assert read_history(tmp_path / "none.jsonl") == []
