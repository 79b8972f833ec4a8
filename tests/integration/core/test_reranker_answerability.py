"""What the shipped cross-encoder is trained for: "this passage holds the answer", not "this passage is on
topic". fitz-gov's abstention cases come with same-topic contexts that lack the answer (Hannibal at Cannae for
a question about Zama); on the *dev* split (never trained on), the answerable cases' contexts must score
above them. A reranker trained on topical relevance alone does not separate the two."""

from __future__ import annotations

import numpy as np
import pytest

from services.core.models.reranker import CrossEncoderReranker
from services.datasets.fitz_gov import tier1_cases
from train.answerability import roc_auc

pytestmark = pytest.mark.integration
# measured 0.895 on dev (629 pairs) for the shipped weights; the old topical reranker is what this guards against
AUC_FLOOR = 0.85


@pytest.fixture(scope="module")
def scored() -> tuple[np.ndarray, np.ndarray]:
    reranker = CrossEncoderReranker("fitzgov-minilm-l6")
    reranker.warm_up()
    pairs: list[tuple[str, str]] = []
    labels: list[int] = []
    for category, label in (("trustworthy_direct", 1), ("trustworthy_hedged", 1), ("abstention", 0)):
        for case in tier1_cases(category, "dev"):
            for context in case["contexts"]:
                pairs.append((case["query"], context))
                labels.append(label)
    return reranker.score_pairs(pairs), np.asarray(labels)


def test_answer_holding_contexts_outscore_same_topic_near_misses_on_dev(scored: tuple[np.ndarray, np.ndarray]) -> None:
    scores, labels = scored
    assert labels.sum() > 50 and (1 - labels).sum() > 100
    assert roc_auc(scores, labels) >= AUC_FLOOR


def test_scores_are_probabilities_that_mean_something(scored: tuple[np.ndarray, np.ndarray]) -> None:
    scores, labels = scored
    assert float(scores.min()) >= 0.0 and float(scores.max()) <= 1.0
    assert float(np.median(scores[labels == 1])) > float(np.median(scores[labels == 0]))
