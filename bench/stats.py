"""Latency summaries: the percentile maths every benchmark shares."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be in [0, 100], got {q}")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarize(latencies_ms: Sequence[float]) -> dict[str, float]:
    """n, mean, p50, p95, p99 and max of a latency sample (milliseconds, rounded to 0.1)."""
    return {
        "n": len(latencies_ms),
        "mean": round(sum(latencies_ms) / len(latencies_ms), 1),
        "p50": round(percentile(latencies_ms, 50), 1),
        "p95": round(percentile(latencies_ms, 95), 1),
        "p99": round(percentile(latencies_ms, 99), 1),
        "max": round(max(latencies_ms), 1),
    }


def ratio(value: float, baseline: float) -> float:
    """value / baseline, rounded; 0 when there is no baseline to compare with."""
    return round(value / baseline, 3) if baseline else 0.0
