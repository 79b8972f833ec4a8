"""Bootstrap intervals: deterministic, covering the mean, narrowing with more items, safe on tiny inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from eval.stats import bootstrap_ci, common_ids, paired_drop

pytestmark = pytest.mark.unit


def test_interval_holds_the_mean_and_is_deterministic_for_a_seed() -> None:
    values = np.random.default_rng(1).uniform(size=200).tolist()
    mean, low, high = bootstrap_ci(values)
    assert mean == pytest.approx(float(np.mean(values)))
    assert low < mean < high
    assert bootstrap_ci(values) == (mean, low, high)
    assert bootstrap_ci(values, seed=1) != (mean, low, high)


def test_interval_is_close_to_the_normal_approximation_and_narrows_with_more_items() -> None:
    rng = np.random.default_rng(2)
    small, large = rng.uniform(size=50), rng.uniform(size=800)
    _, low, high = bootstrap_ci(large)
    se = float(np.std(large) / math.sqrt(len(large)))
    assert high - low == pytest.approx(2 * 1.96 * se, rel=0.15)
    _, s_low, s_high = bootstrap_ci(small)
    assert s_high - s_low > high - low
    _, n_low, n_high = bootstrap_ci(large, confidence=0.5)
    assert n_high - n_low < high - low


def test_equal_values_have_a_zero_width_interval() -> None:
    assert bootstrap_ci([0.7] * 30) == pytest.approx((0.7, 0.7, 0.7))


def test_empty_and_single_inputs_do_not_crash() -> None:
    assert all(math.isnan(x) for x in bootstrap_ci([]))
    mean, low, high = bootstrap_ci([0.4])
    assert mean == 0.4 and math.isnan(low) and math.isnan(high)
    assert bootstrap_ci([0.4, float("nan")])[0] == 0.4  # non-finite values are left out
    assert all(math.isnan(x) for x in paired_drop({}, {"a": 1.0}))


def test_invalid_arguments_are_rejected() -> None:
    with pytest.raises(ValueError):
        bootstrap_ci([1.0, 2.0], confidence=1.0)
    with pytest.raises(ValueError):
        bootstrap_ci([1.0, 2.0], n_resamples=0)


def test_paired_drop_pairs_by_id_and_is_positive_when_worse() -> None:
    previous = {f"q{i}": 0.8 for i in range(20)} | {"only-before": 0.0}
    current = {f"q{i}": 0.6 for i in range(20)} | {"only-now": 1.0}
    assert common_ids(previous, current) == sorted(f"q{i}" for i in range(20))
    assert paired_drop(previous, current) == pytest.approx((0.2, 0.2, 0.2))


def test_pairing_cancels_item_difficulty() -> None:
    # items differ a lot from one another, but each dropped by about 0.05: paired, the drop is clear
    rng = np.random.default_rng(3)
    base = rng.uniform(size=100)
    previous = {str(i): float(v) for i, v in enumerate(base)}
    current = {str(i): float(v - 0.05 + rng.normal(0, 0.01)) for i, v in enumerate(base)}
    drop, low, high = paired_drop(previous, current)
    assert 0.04 < low < drop < high < 0.06
    _, unpaired_low, unpaired_high = bootstrap_ci(base)
    assert unpaired_high - unpaired_low > 5 * (high - low)
