"""Shared measurement: IR metrics against cases computed by hand, and the one percentile, pinned."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from services.core.measure import (
    cpu_name,
    fmt_interval,
    latency_summary,
    markdown_table,
    mean,
    mrr_at_k,
    ndcg_at_k,
    percentile,
    recall_at_k,
)

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


def test_no_judgements_scores_zero_and_the_mean_of_nothing_is_zero() -> None:
    assert ndcg_at_k(["a"], set()) == 0.0 and recall_at_k(["a"], set(), 10) == 0.0
    assert mean([]) == 0.0 and mean([1.0, 2.0]) == 1.5


def test_percentile_interpolates_linearly_between_the_closest_ranks() -> None:
    # [10, 20, 30, 40]: p50 sits halfway between 20 and 30; p95 at rank 0.95 * 3 = 2.85 -> 30 + 0.85 * 10
    assert percentile([40, 10, 30, 20], 50) == pytest.approx(25.0)
    assert percentile([10, 20, 30, 40], 95) == pytest.approx(38.5)
    values = [15.0, 20.0, 35.0, 40.0, 50.0]
    assert percentile(values, 0) == 15.0 and percentile(values, 100) == 50.0 and percentile(values, 50) == 35.0
    assert percentile(values, 40) == pytest.approx(29.0)  # rank 1.6: 20 + 0.6 * 15
    assert percentile(range(1, 101), 99) == pytest.approx(99.01)
    assert percentile([7.0], 99) == 7.0


def test_percentile_is_numpys_default_and_the_inclusive_quantile_not_nearest_rank() -> None:
    rng = np.random.default_rng(0)
    for n in (1, 2, 5, 20, 101):
        sample = rng.exponential(100.0, n).tolist()
        for q in (0, 1, 25, 50, 90, 95, 99, 100):
            assert percentile(sample, q) == pytest.approx(float(np.percentile(sample, q)))
        if n >= 2:
            assert percentile(sample, 95) == pytest.approx(statistics.quantiles(sample, n=20, method="inclusive")[-1])
    # the truncated nearest-rank p95 of 20 values is the 19th value; interpolation moves towards the 20th
    twenty = [float(x) for x in range(1, 21)]
    assert percentile(twenty, 95) == pytest.approx(19.05)


def test_percentile_of_nothing_or_outside_0_100_is_an_error_not_a_zero() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0, 2.0], 101)
    with pytest.raises(ValueError):
        percentile([1.0], -1)


def test_latency_summary_names_p50_p95_p99_and_is_zero_for_no_samples() -> None:
    assert latency_summary([100.0, 200.0, 300.0]) == {"p50": 200.0, "p95": 290.0, "p99": 298.0, "mean": 200.0}
    assert latency_summary([]) == {"p50": 0.0, "p95": 0.0, "p99": 0.0, "mean": 0.0}


def test_cpu_name_is_never_empty() -> None:
    assert cpu_name().strip()


def test_markdown_table_writes_header_rule_and_rows() -> None:
    assert markdown_table(["a", "b"], [[1, "x"], [2.5, ""]]) == "| a | b |\n|---|---|\n| 1 | x |\n| 2.5 |  |"


def test_fmt_interval_shows_the_bounds_or_the_bare_value() -> None:
    assert fmt_interval(0.7431, 0.701, 0.7851) == "0.743 [0.701, 0.785]"
    assert fmt_interval(0.5, None, None) == "0.500"
    assert fmt_interval(0.5, 0.25, 0.75, digits=2) == "0.50 [0.25, 0.75]"
