"""The LLM answerability probe's arithmetic: P(yes) from the first token's alternatives, and its scoring."""

from __future__ import annotations

import math

import numpy as np
import pytest

from train.answerability_probe import declined_at, p_yes, probe_messages, summarize

pytestmark = pytest.mark.unit


def test_p_yes_normalises_over_yes_and_no_and_ignores_case_and_spaces() -> None:
    alts = [
        {"token": "Yes", "logprob": math.log(0.3)},
        {"token": " yes", "logprob": math.log(0.1)},
        {"token": "no", "logprob": math.log(0.4)},
        {"token": "maybe", "logprob": math.log(0.2)},
    ]
    assert p_yes(alts) == pytest.approx(0.4 / 0.8)
    assert p_yes([{"token": "perhaps", "logprob": 0.0}]) == 0.5


def test_the_prompt_numbers_at_most_three_cut_passages() -> None:
    messages = probe_messages("Who?", ["a" * 900, "b", "c", "d"])
    user = messages[1]["content"]
    assert "[3] c" in user and "[4]" not in user and "a" * 501 not in user and user.endswith("Reply yes or no.")


def test_declined_at_keeps_the_asked_share_of_answerable_cases() -> None:
    labels = np.array([1] * 10 + [0] * 10)
    scores = np.array([*range(10, 20), *range(0, 10)], dtype=float)  # perfectly separated
    assert declined_at(scores, labels, 0.9) == 1.0
    assert declined_at(-scores, labels, 0.9) == 0.0  # inverted: nothing unanswerable falls below


def test_a_useless_probe_adds_nothing_and_a_perfect_one_separates() -> None:
    rng = np.random.default_rng(0)
    labels = np.array([1] * 50 + [0] * 50)
    gate = np.clip(0.5 + 0.2 * (labels - 0.5) + rng.normal(0, 0.2, 100), 0.01, 0.99)
    noise = summarize(gate, rng.uniform(0.01, 0.99, 100), labels)
    assert abs(noise["probe"]["roc_auc"] - 0.5) < 0.15
    perfect = summarize(gate, np.where(labels == 1, 0.99, 0.01), labels)
    assert perfect["gate+1.0*probe"]["roc_auc"] == 1.0 > perfect["gate"]["roc_auc"]
