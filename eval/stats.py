"""Confidence intervals for evaluation metrics: a percentile bootstrap, and a paired one between two runs.

A metric over a few hundred items moves by a few points from one run to the next for no reason but the
items (and the sampling of the LLM), so a bare mean cannot tell a regression from noise. Both functions
resample *items* with replacement and read the interval from the percentiles of the resampled means;
the paired version resamples the per-item differences of the items both runs share, which cancels the
items' own difficulty and makes a real change stand out from far fewer items.

The implementation lives in ``services.core.measure`` (bench reports the same intervals and may not import
eval); this module keeps eval's name for it.

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

from services.core.measure import Interval, bootstrap_ci, common_ids, paired_drop

__all__ = ["Interval", "bootstrap_ci", "common_ids", "paired_drop"]
