"""Measurement every tool shares (eval, bench, train): IR metrics, percentiles, the machine measured on.

One copy of each, in the core so any layer may use it; it imports nothing of ours.

IR metrics use binary relevance and are written out so they can be checked against hand-computed cases.
Conventions follow trec_eval: nDCG uses log2(rank + 1) discounts and the ideal ranking of all judged
relevant documents; recall@k divides by the number of relevant documents; MRR@k is 0 without a hit.

Percentiles interpolate linearly between the closest ranks (numpy's default, Hyndman & Fan type 7,
``statistics.quantiles(method="inclusive")``), on purpose rather than nearest-rank: the samples here are small
(a few dozen timed queries), where nearest-rank jumps from one observed value to the next as ``q`` or ``n``
moves and a p95 of 20 values is simply the 19th; interpolation moves smoothly, matches ``numpy.percentile``
(so any figure can be recomputed from the raw timings in one line) and is what the committed bench and eval
reports already used.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Iterable, Sequence
from pathlib import Path

# --- IR metrics -------------------------------------------------------------------------------------------


def ndcg_at_k(ranked: Sequence[str], relevant: Iterable[str], k: int = 10) -> float:
    rel = set(relevant)
    if not rel:
        return 0.0
    dcg = sum(1.0 / math.log2(i + 2) for i, doc in enumerate(_dedup(ranked)[:k]) if doc in rel)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(rel), k)))
    return dcg / ideal


def mrr_at_k(ranked: Sequence[str], relevant: Iterable[str], k: int = 10) -> float:
    rel = set(relevant)
    for i, doc in enumerate(_dedup(ranked)[:k]):
        if doc in rel:
            return 1.0 / (i + 1)
    return 0.0


def recall_at_k(ranked: Sequence[str], relevant: Iterable[str], k: int) -> float:
    rel = set(relevant)
    if not rel:
        return 0.0
    return len(rel.intersection(_dedup(ranked)[:k])) / len(rel)


def _dedup(ranked: Sequence[str]) -> list[str]:
    # Several chunks of one document may be retrieved; a document counts once, at its best rank.
    seen: set[str] = set()
    out = []
    for doc in ranked:
        if doc not in seen:
            seen.add(doc)
            out.append(doc)
    return out


# --- summaries --------------------------------------------------------------------------------------------


def mean(values: Iterable[float]) -> float:
    """The arithmetic mean; 0 for no values (a metric averaged over no queries reports 0)."""
    vals = list(values)
    return sum(vals) / len(vals) if vals else 0.0


def percentile(values: Iterable[float], q: float) -> float:
    """The q-th percentile (0..100), interpolating linearly between the closest ranks (numpy's default).

    p50 of [10, 20, 30, 40] is 25; p95 of 1..100 is 95.05. No values has no percentile: ``ValueError``, as
    for a ``q`` outside 0..100 (a silent 0 would read as "0 ms" in a report).
    """
    if not 0 <= q <= 100:
        raise ValueError(f"q must be within 0..100, not {q}")
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def latency_summary(latencies_ms: Sequence[float]) -> dict[str, float]:
    """p50, p95, p99 and mean of a latency sample (ms, rounded to 0.1); all 0 for an empty sample."""
    if not latencies_ms:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "mean": 0.0}
    return {f"p{q}": round(percentile(latencies_ms, q), 1) for q in (50, 95, 99)} | {
        "mean": round(mean(latencies_ms), 1)
    }


# --- the machine ------------------------------------------------------------------------------------------


def cpu_name() -> str:
    """The CPU model ("Intel(R) Xeon(R) ..."): the one reader of /proc/cpuinfo for eval and bench."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
