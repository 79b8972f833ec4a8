"""Evidence, not whole chunks, in the prompt: the sentences of the top chunks that bear on the question.

Why: on a 2-core CPU the local LLM reads its prompt at ~140 tokens/s, so five whole chunks (~1,500 tokens)
cost ~10 s before the first token. Most of a chunk is context the answer does not need. The selector scores
every sentence of the chunks against the question (the cross-encoder when there is one, plus word overlap),
keeps the best ones with a neighbour on each side for coherence while a token budget lasts, and puts them
back in document order. Each source keeps its number, title and section; a chunk none of whose sentences
made the cut is left out of the prompt (the sources the client sees are the ones the model saw).

Tokens are estimated (``approx_tokens``: ~4 characters per token for English with the small LLMs' BPE
vocabularies); the exact ``prompt_tokens`` the LLM counted comes back in the response timings.

Usage::

    selector = EvidenceSelector(scorer=reranker, budget_tokens=350)
    excerpts = selector.select("When was the bridge built?", chunks)   # one Excerpt per kept chunk
    for e in excerpts: print(e.chunk.title, e.text)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from services.core.grounding.text import content_words, coverage
from services.core.grounding.verify import PairScorer, sentence_spans
from services.core.models.reranker import titled_passage
from services.core.types import RetrievedChunk

if TYPE_CHECKING:
    from services.core.settings import ChatSettings

GAP = " … "


def approx_tokens(text: str) -> int:
    """A tokenizer-free estimate (~4 characters per token); good to ~15% on English prose."""
    return max(1, math.ceil(len(text) / 4)) if text else 0


@dataclass(frozen=True, slots=True)
class Excerpt:
    """The part of ``chunk`` put into the prompt (whole sentences; `` … `` where sentences were skipped)."""

    chunk: RetrievedChunk
    text: str
    sentences: int  # how many of the chunk's sentences were kept
    best: str = ""  # its sentence that bears most on the question (the extractive answer's quote)
    best_score: float = 0.0


@dataclass(slots=True)
class _Sentence:
    chunk: int
    index: int  # position within its chunk
    text: str
    tokens: int
    score: float = 0.0


class EvidenceSelector:
    """Pick the question's evidence from ranked chunks within ``budget_tokens`` (see the module docstring).

    ``scorer`` scores (question, passage) pairs (the cross-encoder; any ``PairScorer``); without one, word
    overlap with the question alone ranks the sentences. ``lexical_weight`` mixes the two (cross-encoder
    logits go through a sigmoid first). ``neighbours`` sentences on each side of a chosen one are added
    when the budget allows, so a pronoun keeps its antecedent.
    """

    def __init__(
        self,
        scorer: PairScorer | None = None,
        *,
        budget_tokens: int = 350,
        neighbours: int = 1,
        lexical_weight: float = 0.3,
        rank_prior: float = 0.02,
        count_tokens: Callable[[str], int] = approx_tokens,
    ) -> None:
        if budget_tokens < 1:
            raise ValueError("budget_tokens must be positive")
        self.scorer = scorer
        self.budget = budget_tokens
        self.neighbours = max(0, neighbours)
        self.lexical_weight = lexical_weight if scorer is not None else 1.0
        self.rank_prior = rank_prior
        self.count_tokens = count_tokens

    def select(self, question: str, chunks: Sequence[RetrievedChunk]) -> list[Excerpt]:
        sentences = self._sentences(chunks)
        if not sentences:
            return []
        self._score(question, chunks, sentences)
        chosen = self._choose(sentences)
        return self._excerpts(chunks, sentences, chosen)

    # --- steps --------------------------------------------------------------------------------------

    def _sentences(self, chunks: Sequence[RetrievedChunk]) -> list[_Sentence]:
        """Every sentence of the chunks, each text once: the first (best-ranked) chunk that holds it keeps it.

        Why: chunks overlap (``RAG_CHUNK_OVERLAP``) and neighbouring chunks of one section repeat each
        other: on the out-of-domain set (eval/ood) a prompt often showed the same sentence as sources 1 and 2
        and again as 4 and 5, spending the budget twice and giving the small LLM a noisier prompt.
        """
        out: list[_Sentence] = []
        seen: set[str] = set()
        for i, chunk in enumerate(chunks):
            for j, (a, b) in enumerate(sentence_spans(chunk.text)):
                text = chunk.text[a:b]
                key = " ".join(text.split()).casefold()
                if key in seen:
                    continue
                seen.add(key)
                out.append(_Sentence(i, j, text, self.count_tokens(text) + 1))
        return out

    def _score(self, question: str, chunks: Sequence[RetrievedChunk], sentences: list[_Sentence]) -> None:
        needles = content_words(question)
        lexical = np.array([coverage(needles, s.text) if needles else 0.0 for s in sentences])
        if self.scorer is not None and self.lexical_weight < 1.0:
            # the title travels with the sentence: "It opened in 1932." says nothing without "Harbour Bridge"
            passages = [titled_passage(chunks[s.chunk].title, s.text) for s in sentences]
            logits = np.asarray(self.scorer.score(question, passages), dtype=np.float64)
            model = 1.0 / (1.0 + np.exp(-logits))
        else:
            model = np.zeros(len(sentences))
        w = self.lexical_weight
        # a small prior for the retriever's order breaks ties towards the better-ranked chunk
        prior = np.array([-self.rank_prior * s.chunk for s in sentences])
        for s, score in zip(sentences, (1 - w) * model + w * lexical + prior, strict=True):
            s.score = float(score)

    def _choose(self, sentences: list[_Sentence]) -> set[int]:
        """Indices into ``sentences``: the best first with their neighbours, while the budget lasts."""
        position = {(s.chunk, s.index): k for k, s in enumerate(sentences)}
        order = sorted(range(len(sentences)), key=lambda k: (-sentences[k].score, k))
        chosen: set[int] = set()
        spent = 0

        def take(k: int) -> bool:
            nonlocal spent
            if k in chosen:
                return True
            cost = sentences[k].tokens
            if spent + cost > self.budget:
                return False
            chosen.add(k)
            spent += cost
            return True

        # best first, each with its neighbours (nearest first): context around a strong hit beats a weak hit
        # elsewhere; a sentence that does not fit is skipped, not cut, and a smaller one may still fit
        for k in order:
            if not take(k):
                continue
            s = sentences[k]
            for d in range(1, self.neighbours + 1):
                for idx in (s.index - d, s.index + d):
                    n = position.get((s.chunk, idx))
                    if n is not None:
                        take(n)
        if not chosen:  # every sentence alone exceeds the budget: the best one, cut to the budget
            return {order[0]}
        return chosen

    def _excerpts(
        self, chunks: Sequence[RetrievedChunk], sentences: list[_Sentence], chosen: set[int]
    ) -> list[Excerpt]:
        by_chunk: dict[int, list[_Sentence]] = {}
        for k in sorted(chosen):
            by_chunk.setdefault(sentences[k].chunk, []).append(sentences[k])
        excerpts: list[Excerpt] = []
        for i in sorted(by_chunk):  # rank order of the chunks
            kept = sorted(by_chunk[i], key=lambda s: s.index)
            parts: list[str] = []
            for prev, cur in zip([None, *kept[:-1]], kept, strict=True):
                if prev is not None:
                    parts.append(" " if cur.index == prev.index + 1 else GAP)
                elif cur.index > 0:
                    parts.append("… ")
                parts.append(cur.text)
            text = "".join(parts)
            if len(chosen) == 1 and self.count_tokens(text) > self.budget:
                text = _cut(text, self.budget * 4)
            top = max(kept, key=lambda s: s.score)
            excerpts.append(Excerpt(chunks[i], text, len(kept), top.text, top.score))
        return excerpts


def _cut(text: str, max_chars: int) -> str:
    head = text[:max_chars].rsplit(" ", 1)[0]
    return head + " …"


def evidence_from_settings(settings: ChatSettings, scorer: PairScorer | None) -> EvidenceSelector | None:
    """The selector the chat pipeline uses; None (whole chunks in the prompt) when the budget is 0."""
    if settings.evidence_max_tokens <= 0:
        return None
    return EvidenceSelector(scorer, budget_tokens=settings.evidence_max_tokens, neighbours=settings.evidence_neighbours)


def extractive_answer(excerpts: Sequence[Excerpt]) -> str | None:
    """The evidence sentence that bears most on the question, quoted and cited with its source number.

    What the chat pipeline answers when the gate is confident the sources hold the answer and the model
    still says it does not know (small models refuse answerable questions often): the user gets the
    passage instead of a refusal. ``None`` without evidence.
    """
    if not excerpts:
        return None
    n, best = max(enumerate(excerpts, start=1), key=lambda e: (e[1].best_score, -e[0]))
    quote = best.best.strip()
    if not quote:
        return None
    return f"From the sources: “{quote}” [{n}]"
