"""IR metrics with binary relevance, written out so they can be checked against hand-computed cases.

Conventions follow trec_eval: nDCG uses log2(rank + 1) discounts and the ideal ranking of all judged
relevant documents; recall@k divides by the number of relevant documents; MRR@k is 0 without a hit.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


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


def mean(values: Iterable[float]) -> float:
    vals = list(values)
    return sum(vals) / len(vals) if vals else 0.0


def percentile(values: Iterable[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between ranks, as numpy's default does.

    p50 of [10, 20, 30, 40] is 25; p95 of 1..100 is 95.05. Empty input gives 0.
    """
    vals = sorted(values)
    if not vals:
        return 0.0
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, not {q}")
    pos = (len(vals) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(vals) - 1)
    return vals[lo] + (vals[hi] - vals[lo]) * (pos - lo)


def latency_summary(latencies_ms: Sequence[float]) -> dict[str, float]:
    return {f"p{q}": round(percentile(latencies_ms, q), 1) for q in (50, 95, 99)} | {
        "mean": round(mean(latencies_ms), 1)
    }
