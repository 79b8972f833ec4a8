"""Percentile maths: the numbers every latency claim rests on."""

from __future__ import annotations

import pytest

from bench.stats import percentile, ratio, summarize

pytestmark = pytest.mark.unit


def test_percentile_interpolates_between_ranks_like_numpy() -> None:
    values = [15.0, 20.0, 35.0, 40.0, 50.0]
    assert percentile(values, 50) == 35.0
    assert percentile(values, 0) == 15.0
    assert percentile(values, 100) == 50.0
    assert percentile(values, 40) == pytest.approx(29.0)  # rank 1.6: 20 + 0.6 * 15
    assert percentile(values, 95) == pytest.approx(48.0)


def test_percentile_ignores_input_order_and_rejects_nonsense() -> None:
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_summarize_reports_tail_latencies() -> None:
    s = summarize([float(x) for x in range(1, 101)])
    assert s["n"] == 100
    assert s["p50"] == 50.5
    assert s["p95"] == pytest.approx(95.0, abs=0.1)
    assert s["p99"] == pytest.approx(99.0, abs=0.1)
    assert s["max"] == 100.0


def test_ratio_is_zero_without_baseline() -> None:
    assert ratio(30.0, 10.0) == 3.0
    assert ratio(5.0, 0.0) == 0.0
