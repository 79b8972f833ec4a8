"""Latency summaries in the shape every benchmark result stores (the percentile is ``services.core.measure``'s)."""

from __future__ import annotations

from collections.abc import Sequence

from services.core.measure import percentile


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
