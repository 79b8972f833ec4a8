"""The model components keep their configuration in the constructor and load in ``warm_up()``: building one
resolves no path and loads nothing (so a missing model is only reported by ``warm_up``), and using one that
was never warmed up raises instead of loading behind the caller's back."""

from __future__ import annotations

import pytest

from services.core.models.embedder import SentenceTransformerEmbedder
from services.core.models.model_registry import BGE_QUERY_PREFIX, ModelUnavailableError
from services.core.models.reranker import CrossEncoderReranker, NoReranker

pytestmark = pytest.mark.unit


def test_an_embedder_is_built_without_its_model_and_keeps_the_registry_conventions() -> None:
    emb = SentenceTransformerEmbedder("no-such-model")  # would not resolve: nothing looks for it yet
    assert not emb.ready and emb.name == "no-such-model"
    assert SentenceTransformerEmbedder("BAAI/bge-small-en-v1.5").query_prefix == BGE_QUERY_PREFIX


def test_an_embedder_that_was_not_warmed_up_refuses_to_embed() -> None:
    emb = SentenceTransformerEmbedder("no-such-model")
    for use in (lambda: emb.embed_query("q"), lambda: emb.embed_passages(["p"]), lambda: emb.dimension):
        with pytest.raises(RuntimeError, match="warm_up"):
            use()
    with pytest.raises(ModelUnavailableError, match="RAG_EMBED_MODEL"):
        emb.warm_up()
    assert not emb.ready


def test_a_reranker_is_built_without_its_model_and_refuses_to_score_until_warmed_up() -> None:
    rr = CrossEncoderReranker("no-such-model")
    assert not rr.ready
    with pytest.raises(RuntimeError, match="warm_up"):
        rr.score("q", ["p"])
    with pytest.raises(ModelUnavailableError, match="RAG_RERANKER_MODEL"):
        rr.warm_up()


def test_no_reranker_is_always_ready() -> None:
    none = NoReranker()
    none.warm_up()
    assert none.ready
