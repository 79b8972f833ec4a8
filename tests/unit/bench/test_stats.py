"""Bench latency summaries (the percentile itself is pinned in tests/unit/core/test_measure.py)."""

from __future__ import annotations

import pytest

from bench.stats import ratio, summarize

pytestmark = pytest.mark.unit


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
