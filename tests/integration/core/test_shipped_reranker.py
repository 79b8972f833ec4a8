"""The committed cross-encoder weights are intact and actually rerank."""

from __future__ import annotations

import hashlib

import pytest

from services.core.models.model_registry import MODELS_DIR
from services.core.models.reranker import CrossEncoderReranker
from services.core.types import RetrievedChunk

pytestmark = pytest.mark.integration
SHIPPED = MODELS_DIR / "reranker-fitzgov-minilm-l6"


def chunk(text: str, title: str = "") -> RetrievedChunk:
    return RetrievedChunk(text, text, "d", "s", title, None, None, 0, [], 0.0)


def test_shipped_weights_match_their_checksum() -> None:
    expected = (SHIPPED / "SHA256SUMS").read_text().split()[0]
    assert hashlib.sha256((SHIPPED / "model.safetensors").read_bytes()).hexdigest() == expected


@pytest.fixture(scope="module")
def reranker() -> CrossEncoderReranker:
    rr = CrossEncoderReranker("fitzgov-minilm-l6", fusion_weight=0.0)  # the cross-encoder's own order
    rr.warm_up()
    return rr


def test_shipped_reranker_scores_relevant_pair_above_irrelevant(reranker: CrossEncoderReranker) -> None:
    query = "What powers the cell by producing ATP?"
    relevant = "The mitochondria is the powerhouse of the cell, producing ATP through cellular respiration."
    irrelevant = "Q3 sales reached $4.2 million, up 23% from Q2, the strongest quarter in company history."
    scores = reranker.score(query, [irrelevant, relevant])
    assert scores[1] > scores[0]
    assert float(scores.min()) >= 0.0 and float(scores.max()) <= 1.0  # sigmoid scores, so thresholds mean something


def test_rerank_orders_by_score_and_applies_threshold(reranker: CrossEncoderReranker) -> None:
    query = "How long do employees wait before health insurance starts?"
    candidates = [
        chunk("The office kitchen is cleaned every Friday afternoon.", "Facilities"),
        chunk("New employees become eligible for health insurance after a 30-day waiting period.", "Benefits"),
        chunk("Quarterly revenue grew by 12 percent year over year.", "Finance"),
    ]
    ranked = reranker.rerank(query, candidates, top_k=3)
    assert ranked[0].title == "Benefits"
    scores = [c.rerank_score for c in ranked]
    assert scores == sorted(scores, reverse=True)
    kept = reranker.rerank(query, candidates, top_k=3, min_score=float(scores[0]) - 1e-6)
    assert [c.title for c in kept] == ["Benefits"]


def test_first_stage_order_scores_only_the_kept_chunks_and_gives_the_same_result(
    reranker: CrossEncoderReranker, monkeypatch: pytest.MonkeyPatch
) -> None:
    query = "How long do employees wait before health insurance starts?"
    texts = [f"Policy note {i}: health insurance waiting periods differ by plan {i}." for i in range(8)]
    candidates = [chunk(t, f"T{i}") for i, t in enumerate(texts)]
    for i, c in enumerate(candidates):
        c.retrieval_score = [0.3, 0.9, 0.5, 0.7, 0.1, 0.8, 0.2, 0.6][i]
    monkeypatch.setattr(reranker, "fusion_weight", 0.999999)  # scores all, same order
    expected = [(c.title, c.rerank_score) for c in reranker.rerank(query, [*candidates], top_k=3)]
    calls: list[int] = []
    original = reranker.score
    monkeypatch.setattr(reranker, "fusion_weight", 1.0)
    monkeypatch.setattr(reranker, "score", lambda q, passages: calls.append(len(passages)) or original(q, passages))
    kept = reranker.rerank(query, [*candidates], top_k=3)
    assert calls == [3]  # top_k pairs, not all eight
    assert [c.title for c in kept] == ["T1", "T5", "T3"]
    assert [c.title for c in kept] == [t for t, _ in expected]
    assert [c.rerank_score for c in kept] == pytest.approx([score for _, score in expected], abs=1e-5)
