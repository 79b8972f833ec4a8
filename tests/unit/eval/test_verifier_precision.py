"""The verifier measured against labels read by a person: matching sentences, precision, recall, refusals."""

from __future__ import annotations

import pytest

from eval.verifier_precision import labelling_rows, scores, verdicts
from services.core.grounding.verify import Verifier

pytestmark = pytest.mark.unit


def test_precision_counts_what_the_verifier_keeps_and_recall_what_the_reader_keeps() -> None:
    labels = ["supported", "supported", "unsupported", "unsupported", "refusal"]
    verdict: list[bool | None] = [True, False, True, False, True]
    out = scores(labels, verdict)
    assert out["precision"]["value"] == 0.5 and out["precision"]["n"] == 2  # kept 2, one of them fabricated
    assert out["recall"]["value"] == 0.5 and out["unsupported_caught"]["value"] == 0.5
    assert out["judged"] == 4  # the refusal claims nothing


def test_the_verifier_is_rerun_on_each_labelled_answer_and_matched_by_sentence() -> None:
    report = {
        "per_case": [
            {"id": "a", "expect": "answer", "question": "What is at heap[0]?", "declined": False,
             "answer": "The smallest item is at heap[0] [1]. It was added in Python 2.3.",
             "sources": [{"n": 1, "title": "Heapq", "read": "heap[0] is always the smallest item of the heap."}]},
            {"id": "b", "expect": "abstain", "question": "Why?", "declined": True, "answer": "I don't know."},
        ]
    }  # fmt: skip
    rows = labelling_rows(report)
    assert [r["sentence"] for r in rows] == ["The smallest item is at heap[0] [1].", "It was added in Python 2.3."]
    assert rows[0]["sources"] == ["Heapq\nheap[0] is always the smallest item of the heap."]
    verdict = verdicts(Verifier(None, threshold=0.5, lexical_weight=1.0), rows)
    assert verdict == [True, False]  # the version number is in no source
