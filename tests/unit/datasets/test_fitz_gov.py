"""The fitz-gov split: deterministic, disjoint, and sized as documented."""

from __future__ import annotations

import pytest

from services.datasets.fitz_gov import SPLIT_BOUNDS, load_corpus, load_queries, split_of

pytestmark = pytest.mark.unit


def test_split_is_pinned_and_follows_the_normalised_question() -> None:
    # Pinned values: a change to the hashing would silently move questions between train (the models'
    # training data) and test (the reported numbers), so it must fail loudly here.
    questions = ["What is the capital of France?", "How does CRISPR gene editing work?"]
    assert [split_of(q) for q in questions] == ["test", "train"]
    assert split_of("  what is the CAPITAL of france ") == split_of("What is the capital of France?")


def test_annotator_notes_are_not_titles_and_decoys_are_never_relevant() -> None:
    from services.datasets.fitz_gov import DECOY_PREFIX, all_queries, content_title

    assert content_title("Query asks about Kubernetes but contexts describe Docker") == ""
    assert content_title("The Falcon 9 rocket reliable for commercial satellite launches") == ""
    assert content_title("January 2024 Service Outage Report") == "January 2024 Service Outage Report"
    titled = [d for d in load_corpus() if d.title]
    assert 300 < len(titled) < 600  # of 3,830 titles, most restate a question or a rationale
    assert not any(d.startswith(DECOY_PREFIX) for q in all_queries() for d in q.relevant)
    assert sum(1 for q in all_queries() if any(d.startswith(DECOY_PREFIX) for d in q.decoys)) >= 150


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
