"""eval.generate without models: the keep/drop rules, leave-one-out, the split by document, resuming.

The verifier is the real one in its lexical mode (no cross-encoder), the LLM and the retriever are fakes
(``FakeWriter``, ``FakeSearcher``) that answer from fixed tables.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from eval.generate import (
    ANSWERABLE_PROMPT,
    Deduper,
    GenerateConfig,
    Generator,
    copied_run,
    corpus_version,
    parse_qa,
    read_progress,
    run,
    sample_chunks,
    split_documents,
)
from services.core.grounding.verify import Verifier
from services.core.types import RetrievedChunk

pytestmark = pytest.mark.unit

HEAP = (
    "The heapq module keeps a list as a binary min-heap: heap[0] is always the smallest item. "
    "heappush adds an item in logarithmic time while the heap invariant holds for every index."
)
SQL = (
    "The sqlite3 module talks to SQLite databases stored in a single file. A connection commits a transaction "
    "when commit is called; the default isolation level begins transactions implicitly before changes."
)
BISECT = (  # on the heap's topic (index, element, heap) without what answers the heap question
    "The bisect module finds the insertion index in a sorted list with a binary search, so the list stays sorted "
    "after insort adds an element; unlike a heap it keeps every element in order."
)


def chunk(doc: str, text: str, i: int = 0, section: str | None = None) -> RetrievedChunk:
    return RetrievedChunk(
        f"{doc}-chunk-{i:04d}", text, doc, f"/docs/{doc}.md", doc.title(), section, None, i, [], 0.0,
        content_hash=f"hash-{doc}",
    )  # fmt: skip


class FakeWriter:
    """The LLM: answers each prompt kind from a table keyed by the passage's first words."""

    def __init__(self, answers: dict[str, str], near_misses: dict[str, str] | None = None) -> None:
        self.answers, self.near_misses, self.calls = answers, near_misses or {}, 0

    def __call__(self, prompt: str) -> str:
        self.calls += 1
        table = self.near_misses if "does NOT answer" in prompt else self.answers
        return next((reply for key, reply in table.items() if key in prompt), "I cannot do that.")


class FakeSearcher:
    """The retriever: a fixed ranking per question word, honouring the leave-one-out exclusion."""

    def __init__(self, ranking: Sequence[RetrievedChunk]) -> None:
        self.ranking = list(ranking)
        self.asked: list[tuple[str, tuple[str, ...]]] = []

    def __call__(self, question: str, exclude: Sequence[str] = ()) -> list[RetrievedChunk]:
        self.asked.append((question, tuple(exclude)))
        return [c for c in self.ranking if c.doc_id not in exclude]


def generator(writer: FakeWriter, searcher: FakeSearcher, **config: float) -> Generator:
    verifier = Verifier(None, threshold=0.5, lexical_weight=1.0)
    return Generator(writer, verifier, searcher, GenerateConfig(**config), model="fake-llm")  # type: ignore[arg-type]


# --- parsing, overlap cap, dedupe --------------------------------------------------------------------


def test_the_two_line_format_is_parsed_and_anything_else_refused() -> None:
    assert parse_qa("Q: What does heappush do?\nA: It adds an item.") == ("What does heappush do?", "It adds an item.")
    assert parse_qa("**Question:** Why a heap?\n**Answer:** Speed.") == ("Why a heap?", "Speed.")
    assert parse_qa("Q: Tell me about heaps.\nA: They are trees.") is None  # not a question
    assert parse_qa("Here is a question: what is a heap?") is None
    assert parse_qa("Q: Why?\nA:") is None


def test_the_overlap_cap_measures_the_longest_run_of_copied_words() -> None:
    passage = "heappush adds an item in logarithmic time while the heap invariant holds"
    assert copied_run("Does heappush add an item in logarithmic time?", passage) == 5  # "item in logarithmic time"
    assert copied_run("How fast is pushing onto a heap?", passage) == 1
    assert copied_run("heappush adds an item in logarithmic time while the heap invariant holds?", passage) == 12


def test_a_question_with_the_same_content_words_is_a_duplicate() -> None:
    seen = Deduper(0.7)
    seen.add("What does heappush do to the heap?")
    assert seen.seen("What will heappush do to heaps?")
    assert not seen.seen("Which isolation level does sqlite3 use by default?")


# --- split by document, sampling ---------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 5, 20, 101])
def test_every_document_lies_in_exactly_one_split(n: int) -> None:
    docs = [f"doc-{i}" for i in range(n)]
    splits = split_documents(docs)
    assert set(splits) == set(docs) and set(splits.values()) <= {"train", "dev", "test"}
    if n >= 3:
        assert {"dev", "test"} <= set(splits.values())
    assert split_documents(list(reversed(docs))) == splits  # order-free and deterministic


def test_sampling_takes_turns_over_documents_and_sections_and_skips_scraps() -> None:
    long = " ".join(["word"] * 30)
    docs = {
        "a": [chunk("a", long, i, section=f"s{i // 3}") for i in range(6)],  # two sections of three
        "b": [chunk("b", long, 0), chunk("b", "## A heading", 1)],
    }
    picked = [(c.doc_id, c.chunk_index) for c in sample_chunks(docs, 10)]
    assert picked == [("a", 0), ("b", 0), ("a", 3), ("a", 1), ("a", 4), ("a", 2), ("a", 5)]
    assert len(list(sample_chunks(docs, 2))) == 2


# --- the generator -----------------------------------------------------------------------------------


def test_a_supported_question_is_kept_with_its_leave_one_out_twin() -> None:
    heap, sql = chunk("heapq", HEAP), chunk("sqlite3", SQL)
    writer = FakeWriter(
        {"heapq module": "Q: Which element sits at index zero of the heap?\nA: The smallest item is heap[0]."}
    )
    searcher = FakeSearcher([heap, chunk("bisect", BISECT), sql])
    out = generator(writer, searcher).from_chunk(heap, style="factoid", near_miss=False, split="test")
    assert [r["expect"] for r in out.rows] == ["answer", "abstain"], out.dropped
    answer, twin = out.rows
    assert answer["relevant_docs"] == ["heapq"] and answer["reference_contexts"] == [HEAP]
    assert answer["split"] == twin["split"] == "test" and answer["provenance"]["source_rank"] == 1
    assert answer["provenance"]["prompt_version"] and answer["provenance"]["chunk_id"] == heap.id
    assert twin["exclude_docs"] == ["heapq"] and twin["question"] == answer["question"]
    assert twin["category"] == "leave-one-out" and "relevant_docs" not in twin
    assert ("Which element sits at index zero of the heap?", ("heapq",)) in searcher.asked


def test_an_answer_its_chunk_does_not_support_is_dropped() -> None:
    heap = chunk("heapq", HEAP)
    writer = FakeWriter({"heapq module": "Q: Which company maintains heapq?\nA: Microsoft maintains it since 1998."})
    out = generator(writer, FakeSearcher([heap])).from_chunk(heap, style="factoid", near_miss=False, split="train")
    assert out.rows == [] and out.dropped == ["factoid: answer not supported by its chunk"]


def test_a_question_copying_the_chunk_is_dropped() -> None:
    heap = chunk("heapq", HEAP)
    copied = (
        "Q: Does heappush add an item in logarithmic time while the heap invariant holds?\n"
        "A: Yes, heappush adds an item in logarithmic time."
    )
    out = generator(FakeWriter({"heapq module": copied}), FakeSearcher([heap])).from_chunk(
        heap, style="factoid", near_miss=False, split="train"
    )
    assert out.rows == [] and out.dropped == ["factoid: copies the chunk's wording"]


def test_when_another_document_answers_too_there_is_no_twin_and_it_becomes_relevant() -> None:
    heap, copy = chunk("heapq", HEAP), chunk("heapq-copy", HEAP)
    writer = FakeWriter(
        {"heapq module": "Q: Which element sits at index zero of the heap?\nA: The smallest item is heap[0]."}
    )
    out = generator(writer, FakeSearcher([heap, copy])).from_chunk(heap, style="factoid", near_miss=False, split="dev")
    assert [r["expect"] for r in out.rows] == ["answer"]
    assert out.rows[0]["relevant_docs"] == ["heapq", "heapq-copy"]
    assert out.dropped == ["leave-one-out: another document answers it too"]


def test_a_twin_needs_something_on_topic_to_remain() -> None:
    heap = chunk("heapq", HEAP)
    writer = FakeWriter(
        {"heapq module": "Q: Which element sits at index zero of the heap?\nA: The smallest item is heap[0]."}
    )
    out = generator(writer, FakeSearcher([heap, chunk("sqlite3", SQL)])).from_chunk(
        heap, style="factoid", near_miss=False, split="dev"
    )
    assert [r["expect"] for r in out.rows] == ["answer"]
    assert out.dropped == ["leave-one-out: nothing on topic remains"]


def test_a_near_miss_is_kept_only_on_topic_and_when_no_document_holds_the_guess() -> None:
    heap, bisect = chunk("heapq", HEAP), chunk("bisect", BISECT)
    near = {"heapq module": "Q: What year was the heapq module added to Python?\nA: It was added in 2001."}
    writer = FakeWriter({}, near)
    out = generator(writer, FakeSearcher([heap, bisect])).from_chunk(
        heap, style="factoid", near_miss=True, split="test"
    )
    assert [(r["expect"], r["category"]) for r in out.rows] == [("abstain", "near-miss")]
    assert "exclude_docs" not in out.rows[0]
    # retrieval that does not bring the source's document back: not a near miss of this topic
    out = generator(writer, FakeSearcher([chunk("sqlite3", SQL)])).from_chunk(
        heap, style="factoid", near_miss=True, split="test"
    )
    assert "near-miss: retrieval does not bring its topic back" in out.dropped
    # a guess that a document does hold: possibly answerable, so dropped
    held = {
        "heapq module": "Q: Which item does heap[0] hold in the heapq module?\nA: heap[0] is always the smallest item."
    }
    out = generator(FakeWriter({}, held), FakeSearcher([heap])).from_chunk(
        heap, style="factoid", near_miss=True, split="test"
    )
    assert "near-miss: the documents may hold the answer" in out.dropped


# --- the run: resumable, bounded, versioned -----------------------------------------------------------


def test_a_run_resumes_where_it_stopped_and_writes_its_questions(tmp_path: Path) -> None:
    docs = {d: [chunk(d, text)] for d, text in (("heapq", HEAP), ("sqlite3", SQL), ("bisect", BISECT))}
    writer = FakeWriter(
        {
            "heapq module": "Q: Which element sits at index zero of the heap?\nA: The smallest item is heap[0].",
            "sqlite3 module": "Q: When is a transaction committed?\nA: A connection commits when commit is called.",
            "bisect module": "Q: How are insertion points found?\nA: With a binary search in a sorted list.",
        }
    )
    searcher = FakeSearcher([c for cs in docs.values() for c in cs])
    first = run(docs, generator(writer, searcher, near_miss_every=0), tmp_path, target=1, budget_s=60, max_chunks=10)
    assert first["stopped"] == "target reached" and first["chunks_done"] == 1
    calls = writer.calls
    second = run(docs, generator(writer, searcher, near_miss_every=0), tmp_path, target=99, budget_s=60, max_chunks=10)
    assert second["chunks_done"] == 3 and writer.calls == calls + 2  # the first chunk was not asked again
    rows = [json.loads(line) for line in (tmp_path / "questions.jsonl").read_text().splitlines()]
    answerable = [r for r in rows if r["expect"] == "answer"]
    assert len(answerable) == 3 and len({r["id"] for r in rows}) == len(rows)
    by_doc = {r["relevant_docs"][0]: r["split"] for r in answerable}
    assert by_doc == split_documents(list(docs))
    assert len(read_progress(tmp_path / "progress.jsonl")) == 3


def test_a_torn_progress_line_is_redone_and_the_budget_stops_a_run(tmp_path: Path) -> None:
    (tmp_path / "progress.jsonl").write_text('{"chunk_id": "x", "rows": [], "dropped": []}\n{"chunk_id": "y", "ro')
    assert set(read_progress(tmp_path / "progress.jsonl")) == {"x"}
    docs = {"heapq": [chunk("heapq", HEAP)]}
    out = run(docs, generator(FakeWriter({}), FakeSearcher([])), tmp_path, target=9, budget_s=-1, max_chunks=5)
    assert out["stopped"] == "time budget spent" and out["chunks_done"] == 1  # only the recorded "x"


def test_the_version_follows_the_corpus_model_and_seed() -> None:
    base = corpus_version(["h1", "h2"], "m", 0)
    assert corpus_version(["h2", "h1"], "m", 0) == base
    assert len({base, corpus_version(["h1"], "m", 0), corpus_version(["h1", "h2"], "n", 0)}) == 3


def test_the_prompt_shows_the_passage_and_asks_for_two_lines() -> None:
    text = ANSWERABLE_PROMPT.format(title="Heapq", section="", text=HEAP, style="a question")
    assert HEAP in text and "Q: <the question>" in text and "A: <the answer>" in text


def test_a_question_about_the_passage_itself_is_not_a_users_question() -> None:
    from eval.generate import standalone

    assert not standalone("What is the name of the first enum in the given passage?")
    assert not standalone("According to the text, why is insort slow?")
    assert standalone("Why is insort slow on long lists?") and standalone("Which section of a ZIP file holds names?")


def test_a_near_miss_whose_every_word_the_documents_hold_is_not_trusted() -> None:
    heap = chunk("heapq", HEAP)
    near = {"heapq module": "Q: Which item does heapq keep at heap[0]?\nA: The largest item."}
    out = generator(FakeWriter({}, near), FakeSearcher([heap])).from_chunk(
        heap, style="factoid", near_miss=True, split="test"
    )
    assert out.rows == [] and "near-miss: every word of it is in the top chunks" in out.dropped


def test_adding_a_document_moves_no_other_document_to_another_split() -> None:
    docs = [f"doc-{i}" for i in range(40)]
    before, after = split_documents(docs), split_documents([*docs, "doc-new"])
    assert all(after[d] == before[d] for d in docs)
    assert 0.05 < sum(v == "test" for v in before.values()) / len(docs) < 0.4


def test_a_record_after_a_torn_line_is_not_glued_to_it(tmp_path: Path) -> None:
    (tmp_path / "progress.jsonl").write_text('{"chunk_id": "x", "rows": [], "dropped": []}\n{"chunk_id": "y", "ro')
    docs = {"heapq": [chunk("heapq", HEAP)]}
    writer = FakeWriter({"heapq module": "Q: Which element sits at index zero of the heap?\nA: The smallest item."})
    run(docs, generator(writer, FakeSearcher([chunk("heapq", HEAP)]), near_miss_every=0), tmp_path, target=9,
        budget_s=60, max_chunks=5)  # fmt: skip
    assert set(read_progress(tmp_path / "progress.jsonl")) == {"x", "heapq-chunk-0000"}
