"""The chunking benchmark's generated handbooks are deterministic and checkable, and its metrics score correctly."""

from __future__ import annotations

import math
import re
from functools import lru_cache
from pathlib import Path

import pytest

from bench import plots
from bench.chunking import (
    chunk_stats,
    doc_labels,
    fact_labels,
    gains_table,
    heading_lines,
    paired_gain,
    results_table,
    score,
)
from bench.handbooks import Fact, StructuredSet, generate_structured_set
from ingest.chunker import Chunker
from ingest.loaders import load_bytes
from services.core.types import RetrievedChunk

pytestmark = pytest.mark.unit


@lru_cache(maxsize=1)
def default_set() -> StructuredSet:
    return generate_structured_set()


def words(text: str) -> int:  # a stand-in tokenizer: no model in unit tests
    return len(text.split())


def chunk(cid: str, text: str, source: str = "/x/doc-a.md") -> RetrievedChunk:
    return RetrievedChunk(cid, text, "d", source, "T", None, None, 0, [], 0.0)


FACT = Fact("doc-a-f00", "doc-a", "Model AB-12", "Warranty", "It lasts 14 months.", named=False, tiny=True)


# -- the generator -------------------------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_set_and_another_seed_another() -> None:
    assert generate_structured_set(6, seed=3) == generate_structured_set(6, seed=3)
    assert generate_structured_set(6, seed=3).manuals != generate_structured_set(6, seed=4).manuals


def test_the_default_set_has_many_short_sections_in_documents_of_6_to_20_kb() -> None:
    sset = default_set()
    described = sset.describe()
    assert described["docs"] == 30 and described["questions"] == 180
    assert described["kb"]["min"] >= 6 and described["kb"]["max"] <= 20
    assert described["sections"] > 40 * described["docs"]
    # entity headings with nothing under them but their subsections
    assert all(re.search(r"\n## [^\n]+\n\n### ", m.text) for m in sset.manuals)
    assert {m.name for m in sset.manuals} == {q.doc for q in sset.questions}


def test_each_fact_appears_exactly_once_in_its_document_and_nowhere_else() -> None:
    sset = default_set()
    everything = "\n".join(m.text for m in sset.manuals)
    by_name = {m.name: m.text for m in sset.manuals}
    for fact in sset.facts.values():
        assert by_name[fact.doc].count(fact.sentence) == 1, fact
        assert everything.count(fact.sentence) == 1, fact


def test_each_fact_sits_under_its_entity_and_attribute_headings() -> None:
    sset = default_set()
    for m in sset.manuals:
        doc = load_bytes(m.text.encode(), f"{m.name}.md", f"mem://{m.name}.md")
        facts = [f for f in sset.facts.values() if f.doc == m.name]
        for fact in facts:
            (block,) = [b for b in doc.blocks if fact.sentence in b.text]
            assert block.section == f"{m.title} > {fact.entity} > {fact.attribute}"
            assert (block.text == fact.sentence) == fact.tiny
            assert (fact.entity in fact.sentence) == fact.named


def test_questions_map_to_facts_name_their_entity_and_do_not_quote_the_fact() -> None:
    sset = default_set()
    assert len({q.id for q in sset.questions}) == len(sset.questions)
    for q in sset.questions:
        fact = sset.facts[q.fact]
        assert fact.doc == q.doc
        assert fact.entity in q.text
        assert fact.sentence.rstrip(".") not in q.text
    asked = [sset.facts[q.fact] for q in sset.questions]
    assert sum(not f.named for f in asked) > len(asked) // 2  # most need the heading path
    assert sum(f.tiny for f in asked) >= len(sset.manuals)  # some answers are a one-sentence section
    assert sum(f.named for f in asked) > 0


def test_the_set_writes_one_markdown_file_per_handbook(tmp_path: Path) -> None:
    sset = generate_structured_set(3)
    (tmp_path / "stale.md").write_text("old")
    folder = sset.write(tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{m.name}.md" for m in sset.manuals)


def test_every_fact_sentence_survives_chunking_whole_merged_or_not() -> None:
    sset = generate_structured_set(5)
    for merge in (True, False):
        chunker = Chunker(words, chunk_size=120, chunk_overlap=20, merge_sections=merge)
        for m in sset.manuals:
            chunks = chunker.split(load_bytes(m.text.encode(), f"{m.name}.md", f"mem://{m.name}.md"))
            for fact in (f for f in sset.facts.values() if f.doc == m.name):
                assert any(fact.sentence in c.text for c in chunks), (merge, fact)


# -- chunk statistics ----------------------------------------------------------------------------------------


def test_chunk_stats_count_heading_only_chunks_only_without_merging(tmp_path: Path) -> None:
    sset = generate_structured_set(2)
    paths = [p for p in sorted(sset.write(tmp_path).glob("*.md"))]
    merged = chunk_stats(paths, Chunker(words, chunk_size=120, chunk_overlap=20).split)
    single = chunk_stats(paths, Chunker(words, chunk_size=120, chunk_overlap=20, merge_sections=False).split)
    assert merged["heading_only_chunks"] == 0 < single["heading_only_chunks"]
    assert single["chunks"] > 2 * merged["chunks"]
    assert merged["mean_chunk_tokens"] > 2 * single["mean_chunk_tokens"]


def test_chunk_stats_skip_a_file_the_ingest_skips(tmp_path: Path) -> None:
    (tmp_path / "empty.md").write_text("   \n")
    (tmp_path / "one.md").write_text("# T\n\nSome text here.\n")
    stats = chunk_stats(sorted(tmp_path.glob("*.md")), Chunker(words, chunk_size=50, chunk_overlap=5).split)
    assert stats["chunks"] == 1 and stats["heading_only_chunks"] == 0


def test_heading_lines_are_the_blocks_that_end_their_own_path() -> None:
    doc = load_bytes(b"# T\n\nIntro.\n\n## A\n\n### B\n\nBody.\n", "t.md", "mem://t.md")
    assert heading_lines(doc) == {"T", "A", "B"}


# -- scoring -------------------------------------------------------------------------------------------------


def test_a_fact_at_rank_three_scores_half_and_is_found() -> None:
    ranked = [chunk("c1", "Other."), chunk("c2", "More."), chunk("c3", "Warranty\nIt lasts 14 months.")]
    labels = fact_labels(ranked, FACT)
    assert labels == ["c1", "c2", FACT.id]
    assert score(labels, {FACT.id}) == {"ndcg@10": pytest.approx(0.5), "recall@10": 1.0}


def test_a_fact_carried_into_two_chunks_counts_once_at_its_best_rank() -> None:
    ranked = [chunk("c1", "x."), chunk("c2", "It lasts 14 months."), chunk("c3", "It lasts 14 months. Then y.")]
    assert score(fact_labels(ranked, FACT), {FACT.id})["ndcg@10"] == pytest.approx(1 / math.log2(3))


def test_a_fact_missing_from_the_top_ten_scores_zero() -> None:
    ranked = [chunk(f"c{i}", "Nothing here.") for i in range(10)] + [chunk("c10", "It lasts 14 months.")]
    assert score(fact_labels(ranked, FACT), {FACT.id}) == {"ndcg@10": 0.0, "recall@10": 0.0}
    # a near miss is not the fact: relevance is the whole sentence
    assert fact_labels([chunk("c", "It lasts 140 months.")], FACT) == ["c"]


def test_documents_rank_by_their_best_chunk() -> None:
    ranked = [chunk("a", "", "/x/b.md"), chunk("b", "", "/x/b.md"), chunk("c", "", "/x/doc-a.md")]
    labels = doc_labels(ranked)
    assert labels == ["b", "b", "doc-a"]
    assert score(labels, {"doc-a"})["ndcg@10"] == pytest.approx(1 / math.log2(3))
    assert score(labels, {"doc-a", "zz"})["recall@10"] == 0.5


def test_a_paired_gain_is_after_minus_before_with_an_interval_around_it() -> None:
    before = {f"q{i}": 0.5 for i in range(40)}
    after = {f"q{i}": 0.5 + (0.5 if i % 2 else 0.0) for i in range(40)}
    gain = paired_gain(before, after)
    assert gain["mean"] == pytest.approx(0.25)
    assert 0 < gain["low"] < 0.25 < gain["high"]
    assert paired_gain(after, before)["mean"] == pytest.approx(-0.25)
    assert paired_gain(before, before) == {"mean": 0.0, "low": 0.0, "high": 0.0}


# -- report --------------------------------------------------------------------------------------------------


def _entry(mean: float) -> dict[str, float]:
    return {"mean": mean, "low": mean - 0.1, "high": mean + 0.1, "n": 10}


def _results() -> dict:
    modes = {
        m: {lvl: {"ndcg@10": _entry(0.5), "recall@10": _entry(0.8)} for lvl in ("chunk", "doc")}
        for m in ("dense", "hybrid")
    }
    config = {"name": "merge on, header off", "chunks": 7, "mean_chunk_tokens": 150.0, "heading_only_chunks": 0}
    gain = {"mean": 0.1, "low": 0.02, "high": 0.2}
    rows = [
        {"merge": True, "mode": "dense", "level": lvl, "metric": "ndcg@10", "off": 0.4, "on": 0.5, "gain": gain}
        for lvl in ("chunk", "doc")
    ]
    return {"structured": {"configs": [{**config, "modes": modes}], "header_gain": rows, "merge_gain": []}}


def test_the_tables_render_every_configuration_and_the_chunk_level_gains() -> None:
    table = results_table(_results())
    assert table.count("\n") == 3  # header, rule, dense and hybrid rows
    assert "| structured | merge on, header off | hybrid | 7 | 150.0 | 0 | 0.500 [0.400, 0.600] |" in table
    gains = gains_table(_results())
    assert gains.count("\n") == 2 and "+0.100 [+0.020, +0.200]" in gains and "chunk ndcg@10" in gains


def test_bars_with_intervals_are_a_png(tmp_path: Path) -> None:
    path = plots.bars_ci(tmp_path / "c.png", {"a": (0.5, 0.4, 0.6), "b": (0.7, 0.65, 0.8)}, title="t", xlabel="x")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
