"""The fitz-gov split: deterministic, disjoint, and sized as documented."""

from __future__ import annotations

import pytest

from eval.datasets import SPLIT_BOUNDS, load_corpus, load_queries, split_of

pytestmark = pytest.mark.unit


def test_split_is_pinned() -> None:
    # Pinned values: a change to the hashing would silently move queries between train (the reranker's
    # training data) and test (the reported numbers), so it must fail loudly here.
    ids = [f"abstain_medium_00{i}" for i in range(1, 7)]
    assert [split_of(i) for i in ids] == ["train", "dev", "dev", "dev", "train", "dev"]


def test_splits_are_disjoint_and_cover_all_queries() -> None:
    ids = {s: {q.id for q in load_queries(s, with_judgements_only=False)} for s in SPLIT_BOUNDS}
    assert not ids["train"] & ids["dev"] and not ids["train"] & ids["test"] and not ids["dev"] & ids["test"]
    total = sum(len(v) for v in ids.values())
    assert total == 3800
    assert 0.55 < len(ids["train"]) / total < 0.65 and 0.15 < len(ids["test"]) / total < 0.25


def test_judged_queries_point_at_documents_in_the_corpus() -> None:
    corpus = {d.id for d in load_corpus()}
    queries = load_queries("test")
    assert queries and all(q.relevant and q.relevant <= corpus for q in queries)
