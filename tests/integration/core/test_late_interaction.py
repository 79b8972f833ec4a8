"""Late interaction (ColBERT-style): per-token vectors stored as a Qdrant multivector, MaxSim re-scoring, in
both embedded engines."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from ingest.factory import build_pipeline
from ingest.loaders import load_bytes
from services.core.factory import build_store
from services.core.models.embedder import SentenceTransformerEmbedder
from services.core.retrieval import LateInteractionUnavailableError, Retriever, SearchSpec
from services.core.settings import Settings
from services.core.storage.store import QdrantStore, VectorStore

pytestmark = pytest.mark.integration

DOCS = {
    "router": "To restart the router, unplug its power cable for thirty seconds and plug it back in.",
    "bread": "Sourdough bread rises with a starter of flour and water instead of commercial yeast.",
    "tax": "Individual income tax returns must be filed by April 15 of the following year.",
}


def maxsim(q: np.ndarray, d: np.ndarray) -> float:
    return float((q @ d.T).max(axis=1).sum())


def test_token_vectors_are_normalised_and_exclude_special_tokens(embedder: SentenceTransformerEmbedder) -> None:
    q = embedder.embed_query_tokens("reset the router")
    assert q.shape == (embedder.count_tokens("reset the router"), embedder.dimension)
    assert np.allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-4)
    dense, tokens = embedder.embed_passages_with_tokens(list(DOCS.values()))
    assert np.allclose(dense, embedder.embed_passages(list(DOCS.values())), atol=1e-4)  # one pass, same vectors
    assert [len(t) for t in tokens] == [embedder.count_tokens(t) for t in DOCS.values()]


EMBEDDED: dict[str, str] = {}  # source -> the text the pipeline's bi-encoder read for it (header included)


@pytest.fixture(scope="module", params=["edge", "local"])
def li_store(embedder: SentenceTransformerEmbedder, request: pytest.FixtureRequest) -> Iterator[VectorStore]:
    """The same documents in each embedded engine (qdrant-edge, qdrant-client local mode)."""
    settings = Settings(
        _env_file=None, qdrant_path=":memory:", qdrant_embedded_engine=request.param, late_interaction=True
    )
    store = build_store(settings)
    pipeline = build_pipeline(settings, embedder, store)
    for name, text in DOCS.items():
        pipeline.ingest_bytes(text.encode(), f"{name}.txt", f"mem://{name}")
        doc = load_bytes(text.encode(), f"{name}.txt", f"mem://{name}")
        (chunk,) = pipeline.chunker.split(doc)  # each document is one short chunk
        EMBEDDED[f"mem://{name}"] = pipeline.embedding_text(chunk)
    yield store
    store.close()


@pytest.mark.parametrize("mode", ["dense", "hybrid"])
def test_maxsim_stage_rescores_first_stage_candidates(
    li_store: VectorStore, embedder: SentenceTransformerEmbedder, mode: str
) -> None:
    retriever = Retriever(embedder, li_store)
    query = "my internet box froze, how do I reboot it?"
    result = retriever.search(query, SearchSpec(mode, 3, 3, rerank=False, late_interaction=True))
    assert result.late_interaction and result.chunks[0].source == "mem://router"
    # Qdrant's MaxSim equals the one computed by hand from the same token vectors.
    q = embedder.embed_query_tokens(query)
    _, tokens = embedder.embed_passages_with_tokens([EMBEDDED["mem://router"]])
    assert result.chunks[0].late_interaction_score == pytest.approx(maxsim(q, tokens[0]), rel=2e-3)
    scores = [c.late_interaction_score for c in result.chunks]
    assert scores == sorted(scores, reverse=True)


def test_late_interaction_on_a_collection_without_token_vectors_is_a_clear_error(
    embedder: SentenceTransformerEmbedder,
) -> None:
    store = QdrantStore(path=":memory:")
    store.ensure_collections(embedder.dimension)
    with pytest.raises(LateInteractionUnavailableError, match="RAG_LATE_INTERACTION"):
        Retriever(embedder, store).search("q", SearchSpec("dense", 3, 3, late_interaction=True))
    reopened = QdrantStore(path=":memory:", late_interaction=True)
    reopened.client = store.client  # the same collection, now opened by a store that expects token vectors
    with pytest.raises(ValueError, match="RAG_LATE_INTERACTION"):
        reopened.ensure_collections(embedder.dimension)
