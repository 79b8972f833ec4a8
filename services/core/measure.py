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

Confidence intervals resample *items* (queries, cases) with replacement: ``bootstrap_ci`` for one run's mean,
``paired_drop`` for the per-item differences between two runs over the items both hold (which cancels
the items' own difficulty, so a real change stands out from far fewer items). Deterministic for a seed;
no values gives ``(nan, nan, nan)``, one value ``(value, nan, nan)``; non-finite values are left out.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple, TypeVar

import numpy as np

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


# --- confidence intervals (percentile bootstrap) -----------------------------------------------------------

K = TypeVar("K", bound=Hashable)  # a case or query id

# Rows of resampled indices drawn at once: bounds memory (rows x items int64) for large sets.
_MAX_CELLS_PER_BATCH = 2_000_000


class Interval(NamedTuple):
    mean: float
    low: float
    high: float


def bootstrap_ci(
    values: Iterable[float], *, n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> Interval:
    """The mean of ``values`` and its percentile-bootstrap ``confidence`` interval."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be within (0, 1), not {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, not {n_resamples}")
    arr = np.asarray([float(v) for v in values], dtype=float)
    arr = arr[np.isfinite(arr)]
    nan = float("nan")
    if arr.size == 0:
        return Interval(nan, nan, nan)
    mean = float(arr.mean())
    if arr.size == 1:
        return Interval(mean, nan, nan)
    rng = np.random.default_rng(seed)
    batch = max(1, _MAX_CELLS_PER_BATCH // arr.size)
    means = np.empty(n_resamples, dtype=float)
    for start in range(0, n_resamples, batch):
        rows = min(batch, n_resamples - start)
        means[start : start + rows] = arr[rng.integers(0, arr.size, size=(rows, arr.size))].mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    # float rounding can put a bound a hair beyond the mean when every value is equal
    return Interval(mean, min(float(low), mean), max(float(high), mean))


def paired_drop(
    previous: Mapping[K, float],
    current: Mapping[K, float],
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Mean of ``previous[id] - current[id]`` over the ids both hold, with its paired-bootstrap interval.

    Positive means the current run is worse. Ids present in one run only are left out (see ``common_ids``
    for how many pair); items with a non-finite value on either side are left out too.
    """
    diffs = [float(previous[i]) - float(current[i]) for i in common_ids(previous, current)]
    return bootstrap_ci(diffs, n_resamples=n_resamples, confidence=confidence, seed=seed)


def common_ids(previous: Mapping[K, float], current: Mapping[K, float]) -> list[K]:
    """The ids both runs scored with finite values, in a stable order (so the bootstrap is reproducible)."""
    ids = [i for i in previous if i in current and _finite(previous[i]) and _finite(current[i])]
    return sorted(ids, key=str)


def _finite(value: float) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


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


# --- figures in Markdown ----------------------------------------------------------------------------------


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A Markdown table (no trailing newline): one renderer for eval's reports and the generated doc pages.

    Cells are written with ``str``: format numbers before, where the unit and the precision are known.
    """
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt_interval(value: float, low: float | None, high: float | None, digits: int = 3) -> str:
    """``0.743 [0.701, 0.784]``: a metric with its confidence interval; the bare value when it has none."""
    if low is None or high is None:
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"
