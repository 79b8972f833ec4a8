"""Confidence intervals for evaluation metrics: a percentile bootstrap, and a paired one between two runs.

A metric over a few hundred items moves by a few points from one run to the next for no reason but the
items (and the sampling of the LLM), so a bare mean cannot tell a regression from noise. Both functions
resample *items* with replacement and read the interval from the percentiles of the resampled means;
the paired version resamples the per-item differences of the items both runs share, which cancels the
items' own difficulty and makes a real change stand out from far fewer items.

Deterministic: the same values and seed give the same interval. Edge cases: no values gives
``(nan, nan, nan)``; a single value gives ``(value, nan, nan)`` (one item has no spread to resample, so
its interval is undefined and it can neither pass nor fail a test of confidence). Non-finite values are
left out.

Usage::

    mean, low, high = bootstrap_ci([0.8, 0.6, 1.0, 0.7])
    drop, low, high = paired_drop({"q1": 0.9, "q2": 0.8}, {"q1": 0.7, "q2": 0.8})
    regressed = low > 0.05    # with 95 % confidence the metric dropped by more than 0.05
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping
from typing import NamedTuple, TypeVar

import numpy as np

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
