"""The out-of-domain set's checker finds each kind of broken line, and passes the committed set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.ood.check_set import HERE, check

pytestmark = pytest.mark.unit


def test_the_committed_set_passes() -> None:
    problems, counts = check(HERE / "python-docs.jsonl", HERE / "corpus")
    assert problems == [] and sum(counts.values()) >= 67


def test_each_broken_line_is_named(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "page.md").write_text("The answer is forty-two.")
    good = {
        "id": "a1",
        "question": "What is it?",
        "expect": "answer",
        "category": "factoid",
        "relevant_docs": ["page"],
        "reference": "42",
        "reference_contexts": ["The answer is forty-two."],
    }
    lines = [
        json.dumps(good),
        json.dumps(good),  # the same id again
        "not json",
        json.dumps(["a list"]),
        json.dumps({"id": "u1", "question": "Who?", "expect": "abstain", "category": "near-miss"}),  # no note
        json.dumps({"id": "x1", "question": "Eh?", "expect": "maybe"}),
    ]
    questions = tmp_path / "q.jsonl"
    questions.write_text("\n".join(lines) + "\n")
    problems, counts = check(questions, corpus)
    text = "\n".join(problems)
    assert "q.jsonl:2 (a1): duplicate id" in text
    assert "q.jsonl:3: not JSON" in text and "q.jsonl:4: not a JSON object" in text
    assert "q.jsonl:5 (u1): unanswerable item needs a note" in text
    assert "q.jsonl:6 (x1): expect must be 'answer' or 'abstain'" in text
    assert "only 2 answerable items" in text and counts[("answer", "factoid")] == 2
