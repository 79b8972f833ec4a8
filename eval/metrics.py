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
