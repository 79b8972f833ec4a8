"""IR metrics against cases computed by hand."""

from __future__ import annotations

import math

import pytest

from eval.metrics import latency_summary, mrr_at_k, ndcg_at_k, percentile, recall_at_k

pytestmark = pytest.mark.unit


def test_ndcg_perfect_ranking_is_one() -> None:
    assert ndcg_at_k(["a", "b", "x"], {"a", "b"}) == pytest.approx(1.0)


def test_ndcg_hand_computed() -> None:
    # relevant at ranks 2 and 4: DCG = 1/log2(3) + 1/log2(5); ideal = 1/log2(2) + 1/log2(3)
    expected = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(["x", "a", "y", "b"], {"a", "b"}) == pytest.approx(expected)


def test_ndcg_cuts_at_k_and_counts_a_document_once() -> None:
    assert ndcg_at_k(["x", "y", "a"], {"a"}, k=2) == 0.0
    # two chunks of one irrelevant doc must not push the relevant one down a rank
    assert ndcg_at_k(["x", "x", "a"], {"a"}) == pytest.approx(1 / math.log2(3))


def test_mrr_and_recall_hand_computed() -> None:
    assert mrr_at_k(["x", "y", "a", "b"], {"a", "b"}) == pytest.approx(1 / 3)
    assert mrr_at_k(["x"] * 3, {"a"}) == 0.0
    assert recall_at_k(["a", "x", "b"], {"a", "b", "c"}, k=2) == pytest.approx(1 / 3)
    assert recall_at_k(["a", "x", "b"], {"a", "b", "c"}, k=3) == pytest.approx(2 / 3)


def test_no_judgements_scores_zero() -> None:
    assert ndcg_at_k(["a"], set()) == 0.0 and recall_at_k(["a"], set(), 10) == 0.0


def test_percentiles_interpolate_between_ranks_like_numpy() -> None:
    # [10, 20, 30, 40]: p50 sits halfway between 20 and 30; p95 at rank 0.95 * 3 = 2.85 -> 30 + 0.85 * 10
    assert percentile([40, 10, 30, 20], 50) == pytest.approx(25.0)
    assert percentile([10, 20, 30, 40], 95) == pytest.approx(38.5)
    assert percentile(range(1, 101), 99) == pytest.approx(99.01)
    assert percentile([7.0], 99) == 7.0 and percentile([], 50) == 0.0
    with pytest.raises(ValueError):
        percentile([1, 2], 101)


def test_latency_summary_names_p50_p95_p99() -> None:
    summary = latency_summary([100.0, 200.0, 300.0])
    assert summary == {"p50": 200.0, "p95": 290.0, "p99": 298.0, "mean": 200.0}
