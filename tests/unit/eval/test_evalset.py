"""Evaluation sets: the fitz-gov RAG cases follow the pinned split, samples are stable, user JSONL is checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.evalset import EvalItem, EvalSet, fitz_gov_rag_cases, fitz_gov_set, read_jsonl, write_jsonl
from services.datasets.fitz_gov import load_corpus

pytestmark = pytest.mark.unit


def test_rag_cases_are_disjoint_across_splits_and_stable() -> None:
    ids = {split: {c.id for c in fitz_gov_rag_cases(split)} for split in ("train", "dev", "test")}
    assert not ids["train"] & ids["dev"] and not ids["train"] & ids["test"] and not ids["dev"] & ids["test"]
    questions = {split: {c.question for c in fitz_gov_rag_cases(split)} for split in ("train", "test")}
    assert not questions["train"] & questions["test"]  # the same question never sits on both sides
    # pinned: a change in how cases are selected or split changes what the reported numbers mean
    test = fitz_gov_rag_cases("test")
    assert (sum(c.expect == "answer" for c in test), sum(c.expect == "abstain" for c in test)) == (71, 94)


def test_no_question_crosses_splits_even_under_another_id_or_spelling() -> None:
    from services.datasets.fitz_gov import load_queries, normalize_question

    train = {normalize_question(q.text) for q in load_queries("train", with_judgements_only=False)}
    for split in ("dev", "test"):
        assert not {normalize_question(c.question) for c in fitz_gov_rag_cases(split)} & train
        assert not {normalize_question(q.text) for q in load_queries(split)} & train


def test_answerable_cases_have_their_evidence_in_the_corpus_and_abstain_cases_have_none() -> None:
    corpus_text = {d.content.strip() for d in load_corpus()}
    for case in fitz_gov_rag_cases("test"):
        if case.expect == "answer":
            assert case.reference_contexts and set(case.reference_contexts) <= corpus_text
            assert case.reference == " ".join(case.reference_contexts) and case.relevant_docs
        else:
            assert not case.relevant_docs and not case.reference


def test_sample_is_deterministic_balanced_and_keyed() -> None:
    full = fitz_gov_set("test")
    a, b = full.sample(10), full.sample(10)
    assert a == b and a.key == b.key and a.key != full.key
    assert len(a.retrieval) == 10
    assert [c.expect for c in a.rag].count("answer") == 5 and [c.expect for c in a.rag].count("abstain") == 5
    assert {i.id for i in a.retrieval} <= {i.id for i in full.retrieval}
    assert full.sample(None) is full


def test_sample_fills_from_the_other_kind_when_one_runs_short() -> None:
    items = (EvalItem("a1", "q", expect="answer"), EvalItem("b1", "q", expect="abstain"),
             EvalItem("b2", "q", expect="abstain"), EvalItem("b3", "q", expect="abstain"))  # fmt: skip
    picked = EvalSet("x", (), items).sample(4)
    assert sorted(i.id for i in picked.rag) == ["a1", "b1", "b2", "b3"]


def test_jsonl_round_trip(tmp_path: Path) -> None:
    items = [
        EvalItem("q1", "Which doc?", relevant_docs=("d1", "d2")),
        EvalItem("q2", "Answer me", expect="answer", reference="yes", reference_contexts=("ctx",)),
        EvalItem("q3", "Unknowable", expect="abstain", relevant_docs=("d3",)),
    ]
    path = tmp_path / "mine.jsonl"
    write_jsonl(items, path)
    loaded = read_jsonl(path)
    assert loaded.name == "mine"
    assert [i.id for i in loaded.retrieval] == ["q1", "q3"] and [i.id for i in loaded.rag] == ["q2", "q3"]
    assert loaded.rag[0] == items[1]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"id": "x", "question": "q"}, "nothing to score"),
        ({"id": "x", "question": "q", "expect": "maybe"}, "'answer' or 'abstain'"),
        ({"id": "", "question": "q", "expect": "answer"}, "non-empty"),
    ],
)
def test_jsonl_rejects_bad_items_with_the_line_number(tmp_path: Path, row: dict, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"id": "ok", "question": "q", "expect": "answer"}) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(ValueError, match=message) as info:
        read_jsonl(path)
    assert "bad.jsonl:2" in str(info.value)


def test_jsonl_rejects_duplicate_ids(tmp_path: Path) -> None:
    path = tmp_path / "dup.jsonl"
    row = json.dumps({"id": "same", "question": "q", "expect": "answer"})
    path.write_text(row + "\n" + row + "\n")
    with pytest.raises(ValueError, match="duplicate"):
        read_jsonl(path)


def test_a_generated_set_keeps_its_split_and_leave_one_out_exclusion(tmp_path: Path) -> None:
    from eval.rag_eval import item_options
    from services.contract.schemas import ChatOptions, Filters

    rows = [
        {"id": "a", "question": "Q1?", "expect": "answer", "relevant_docs": ["d1"], "split": "test"},
        {"id": "b", "question": "Q1?", "expect": "abstain", "exclude_docs": ["d1"], "split": "test"},
        {"id": "c", "question": "Q2?", "expect": "answer", "relevant_docs": ["d2"], "split": "dev"},
        {"id": "d", "question": "Q3?", "expect": "abstain"},  # no split: in every one
    ]
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    test = read_jsonl(path, "test")
    assert [i.id for i in test.rag] == ["a", "b", "d"] and test.name == "questions-test"
    assert [i.id for i in read_jsonl(path).rag] == ["a", "b", "c", "d"]
    twin = test.rag[1]
    assert twin.exclude_docs == ("d1",) and EvalItem.from_json(twin.to_json()) == twin
    sent = item_options(twin, ChatOptions(answerability_gate=False, filters=Filters(tags=["x"])))
    assert sent is not None and sent.chosen() == {
        "answerability_gate": False,
        "filters": {"tags": ["x"], "exclude_doc_id": ["d1"]},
    }
    assert item_options(test.rag[0], None) is None
