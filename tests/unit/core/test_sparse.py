"""BM25 sparse encoder: terms, ids and weights."""

from __future__ import annotations

import pytest

from services.core.models.sparse import STOPWORDS, BM25SparseEncoder, SparseVector, term_id, terms

pytestmark = pytest.mark.unit


def weight_of(vector: SparseVector, term: str) -> float:
    return dict(zip(vector.indices, vector.values, strict=True))[term_id(term)]


def fillers(n: int) -> str:
    return " ".join(f"filler{i}" for i in range(n))


def test_stopwords_are_dropped_from_terms_and_vectors() -> None:
    assert terms("How do I reset the password of my router?") == ["reset", "password", "router"]
    assert BM25SparseEncoder().encode_query("what is it to them") == SparseVector([], [])
    assert {"the", "how", "my"} <= STOPWORDS


def test_query_weights_are_all_one_and_each_term_appears_once() -> None:
    query = BM25SparseEncoder().encode_query("reset password reset PASSWORD router")
    assert sorted(query.indices) == sorted({term_id("reset"), term_id("password"), term_id("router")})
    assert query.values == [1.0, 1.0, 1.0]


def test_plurals_and_verb_forms_fold_onto_the_same_term() -> None:
    encoder = BM25SparseEncoder()
    assert encoder.encode_query("passwords").indices == encoder.encode_query("password").indices
    assert encoder.encode_document("passwords").indices == encoder.encode_document("password").indices
    assert terms("resets routers") == terms("reset router")
    assert terms("printing") == terms("print")


def test_doubled_consonant_verb_forms_fold_onto_the_stem() -> None:
    assert terms("resetting") == terms("reset")


def test_term_ids_are_deterministic_31_bit_hashes() -> None:
    # Ids are stored in Qdrant: they must not change between runs, processes or library versions.
    assert term_id("password") == 901924565
    assert term_id("reset") == 1352515405
    assert BM25SparseEncoder().encode_query("password").indices == [901924565]
    assert all(0 <= term_id(t) < 2**31 for t in ("", "a", "ünïcödé", "x" * 1000))


def test_document_weight_saturates_with_term_frequency() -> None:
    encoder = BM25SparseEncoder()
    once = weight_of(encoder.encode_document(f"password {fillers(9)}"), "password")
    ten_times = weight_of(encoder.encode_document(" ".join(["password"] * 10)), "password")
    assert once < ten_times < 10 * once
    assert ten_times < encoder.k1 + 1  # the BM25 ceiling


def test_longer_documents_get_lower_weight_per_term() -> None:
    encoder = BM25SparseEncoder()
    short = weight_of(encoder.encode_document(f"password {fillers(5)}"), "password")
    long = weight_of(encoder.encode_document(f"password {fillers(300)}"), "password")
    assert long < short


def test_empty_or_stopword_only_document_has_no_terms() -> None:
    encoder = BM25SparseEncoder()
    assert encoder.encode_document("") == SparseVector([], [])
    assert encoder.encode_document("the and of") == SparseVector([], [])
