"""The evidence selector: the question's best sentences, their neighbours, a budget, document order."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from fake_chat import chunk as fake_chunk

from services.core.grounding.evidence import (
    GAP,
    EvidenceSelector,
    approx_tokens,
    evidence_from_settings,
    extractive_answer,
)
from services.core.grounding.prompt import build_messages
from services.core.settings import Settings
from services.core.types import RetrievedChunk

pytestmark = pytest.mark.unit


def chunk(i: int, text: str, title: str) -> RetrievedChunk:
    return fake_chunk(i, title, text)


class FakeScorer:
    """Scores a passage by the keywords it holds (a stand-in for the cross-encoder's logits)."""

    def __init__(self, keywords: dict[str, float]) -> None:
        self.keywords = keywords
        self.calls: list[tuple[str, list[str]]] = []

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        self.calls.append((query, list(passages)))
        return np.array([sum(v for k, v in self.keywords.items() if k in p) - 4.0 for p in passages])


FILLER = [f"Filler sentence number {n} talks about the weather in general terms." for n in range(12)]
BRIDGE = chunk(
    0,
    " ".join(FILLER[:5] + ["The bridge opened to traffic in 1932.", "It carries eight lanes."] + FILLER[5:9]),
    "Harbour Bridge",
)
TOWER = chunk(1, " ".join(FILLER[9:12] + ["The tower is 324 metres tall."]), "Tower")
NOISE = chunk(2, " ".join(FILLER), "Weather")


def test_the_best_sentence_and_its_neighbours_in_document_order() -> None:
    scorer = FakeScorer({"1932": 10.0})
    excerpts = EvidenceSelector(scorer, budget_tokens=45, neighbours=1).select(
        "When did the bridge open?", [BRIDGE, TOWER]
    )
    first = excerpts[0]
    assert first.chunk is BRIDGE
    assert "The bridge opened to traffic in 1932. It carries eight lanes." in first.text
    # the neighbour before it, then the seed, then the one after, in the chunk's order
    assert first.text.index(FILLER[4]) < first.text.index("1932") < first.text.index("eight lanes")
    assert first.text.startswith("… ")  # the excerpt does not start at the chunk's start
    # the title went along with each sentence to the scorer
    assert all(p.startswith(("Harbour Bridge\n", "Tower\n")) for p in scorer.calls[0][1])


@pytest.mark.parametrize("budget", [20, 50, 120, 350])
def test_the_budget_holds(budget: int) -> None:
    excerpts = EvidenceSelector(FakeScorer({"1932": 10.0, "324": 5.0}), budget_tokens=budget).select(
        "How tall is the tower and when did the bridge open?", [BRIDGE, TOWER, NOISE]
    )
    assert excerpts
    assert sum(approx_tokens(e.text) for e in excerpts) <= budget


def test_chunks_without_evidence_are_left_out_and_rank_order_kept() -> None:
    excerpts = EvidenceSelector(FakeScorer({"1932": 10.0, "324": 9.0}), budget_tokens=20, neighbours=0).select(
        "bridge opening and tower height", [NOISE, BRIDGE, TOWER]
    )
    assert [e.chunk.title for e in excerpts] == ["Harbour Bridge", "Tower"]
    assert [e.sentences for e in excerpts] == [1, 1]
    messages, used = build_messages(
        "q", [], [e.chunk for e in excerpts], max_chars=6000, texts=[e.text for e in excerpts]
    )
    prompt = messages[-1]["content"]
    assert "[1] Harbour Bridge\n… The bridge opened to traffic in 1932. …" not in prompt  # no trailing marker
    assert "[1] Harbour Bridge\n… The bridge opened to traffic in 1932." in prompt
    assert "[2] Tower\n… The tower is 324 metres tall." in prompt
    assert "Filler" not in prompt
    assert used == [BRIDGE, TOWER]


def test_skipped_sentences_are_marked_inside_an_excerpt() -> None:
    text = "Alpha one is here. Beta two is there. Gamma three is near. Delta four is far."
    excerpts = EvidenceSelector(FakeScorer({"Alpha": 9.0, "Delta": 8.0}), budget_tokens=12, neighbours=0).select(
        "q", [chunk(0, text, "Letters")]
    )
    assert excerpts[0].text == f"Alpha one is here.{GAP}Delta four is far."


def test_a_sentence_longer_than_the_budget_is_cut_not_dropped() -> None:
    long = chunk(0, "word " * 400 + "end.", "Long")
    (excerpt,) = EvidenceSelector(None, budget_tokens=50).select("word", [long])
    assert approx_tokens(excerpt.text) <= 52 and excerpt.text.endswith("…")


def test_without_a_scorer_word_overlap_ranks() -> None:
    excerpts = EvidenceSelector(None, budget_tokens=15, neighbours=0).select(
        "How tall is the tower in metres?", [BRIDGE, TOWER]
    )
    assert [e.text for e in excerpts] == ["… The tower is 324 metres tall."]


def test_nothing_to_select() -> None:
    assert EvidenceSelector(None).select("q", []) == []
    assert EvidenceSelector(None).select("q", [chunk(0, "", "Empty")]) == []


def test_from_settings_off_at_zero_budget() -> None:
    assert evidence_from_settings(Settings(evidence_max_tokens=0), None) is None
    selector = evidence_from_settings(Settings(evidence_max_tokens=200, evidence_neighbours=2), None)
    assert selector is not None and selector.budget == 200 and selector.neighbours == 2


def test_the_extractive_answer_quotes_the_best_sentence_with_its_source_number() -> None:
    excerpts = EvidenceSelector(FakeScorer({"324": 10.0, "1932": 5.0}), budget_tokens=60).select(
        "How tall is the tower?", [BRIDGE, TOWER]
    )
    assert extractive_answer(excerpts) == "From the sources: “The tower is 324 metres tall.” [2]"
    assert extractive_answer([]) is None


def test_a_sentence_repeated_by_overlapping_chunks_is_shown_once_under_the_better_ranked_chunk() -> None:
    shared = "The bridge opened to traffic in 1932."
    first = chunk(0, f"{FILLER[0]} {shared}", "Harbour Bridge")
    overlap = chunk(1, f"{shared}  It carries eight lanes.", "Harbour Bridge")
    excerpts = EvidenceSelector(FakeScorer({"1932": 10.0, "lanes": 9.0}), budget_tokens=40, neighbours=0).select(
        "when did the bridge open and how many lanes", [first, overlap]
    )
    texts = " ".join(e.text for e in excerpts)
    assert texts.count("1932") == 1
    assert excerpts[0].chunk is first and "1932" in excerpts[0].text
    assert excerpts[1].text.endswith("It carries eight lanes.") and "1932" not in excerpts[1].text
