"""The second stage earns its cost: a case (from the fitz-gov *dev* split) where the bi-encoder ranks a
near-miss first and the cross-encoder puts the document that answers the question on top."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.datasets import load_corpus
from ingest.factory import build_pipeline
from services.core.embedder import SentenceTransformerEmbedder
from services.core.reranker import CrossEncoderReranker
from services.core.retrieval import Retriever
from services.core.settings import Settings
from services.core.store import QdrantStore

pytestmark = pytest.mark.integration

QUERY = "Is the local job market improving?"
RELEVANT = "dispute_doc_604"  # a county report: 12,400 net new jobs in 2024
DISTRACTORS = ("direct_doc_950b", "dispute_doc_795a", "tech_171")  # housing prices, rents, an unemployment dispute


@pytest.fixture(scope="module")
def retriever(embedder: SentenceTransformerEmbedder, tmp_path_factory: pytest.TempPathFactory) -> Retriever:
    folder = tmp_path_factory.mktemp("jobs")
    docs = {d.id: d for d in load_corpus()}
    for doc_id in (RELEVANT, *DISTRACTORS):
        (folder / f"{doc_id}.md").write_text(docs[doc_id].as_markdown())
    store = QdrantStore(path=":memory:")
    build_pipeline(Settings(_env_file=None), embedder, store).ingest_paths([folder])
    reranker = CrossEncoderReranker("fitzgov-minilm-l6")
    reranker.warm_up()
    return Retriever(embedder, store, reranker)


def top_doc(retriever: Retriever, *, rerank: bool) -> str:
    result = retriever.search(QUERY, mode="dense", top_n=4, top_k=4, rerank=rerank)
    return Path(result.chunks[0].source).stem


def test_bi_encoder_alone_ranks_a_near_miss_first(retriever: Retriever) -> None:
    assert top_doc(retriever, rerank=False) != RELEVANT


def test_cross_encoder_moves_the_answering_document_to_the_top(retriever: Retriever) -> None:
    result = retriever.search(QUERY, mode="dense", top_n=4, top_k=4, rerank=True)
    assert result.reranked and result.reranker == "fitzgov-minilm-l6"
    assert Path(result.chunks[0].source).stem == RELEVANT
    scores = [c.rerank_score for c in result.chunks]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] - scores[1] > 0.3  # a confident decision, not a coin flip
