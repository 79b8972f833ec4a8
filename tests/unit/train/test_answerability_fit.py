"""Fitting the gate: the logistic regression learns, thresholds honour the dev targets."""

from __future__ import annotations

import numpy as np
import pytest

from train.answerability import choose_thresholds, fit_logistic, roc_auc

pytestmark = pytest.mark.unit


def test_logistic_regression_recovers_the_direction_of_a_separable_signal() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 2))
    y = (x[:, 0] + 0.1 * rng.normal(size=400) > 0).astype(float)
    coef, _ = fit_logistic(x, y, l2=1.0)
    assert coef[0] > 2 * abs(coef[1]) and coef[0] > 0


def test_roc_auc_of_perfect_random_and_reversed_scores() -> None:
    y = np.array([0, 0, 1, 1])
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), y) == 1.0
    assert roc_auc(np.array([0.5, 0.5, 0.5, 0.5]), y) == 0.5
    assert roc_auc(np.array([0.9, 0.8, 0.2, 0.1]), y) == 0.0


def test_thresholds_keep_the_answer_rate_and_bound_the_leak() -> None:
    p = np.array([0.05, 0.1, 0.2, 0.3, 0.6, 0.4, 0.5, 0.7, 0.8, 0.9])
    y = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    low, high = choose_thresholds(p, y, answer_rate=0.8, leak_rate=0.0)
    answered = (p[y == 1] >= low).mean()
    assert answered >= 0.8 and low == pytest.approx(0.5)
    assert (p[y == 0] >= high).sum() == 0 and high >= low
