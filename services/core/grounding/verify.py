"""The answer verifier: which source supports each answer sentence, whatever the model cited.

Why: a 0.5B model rarely writes ``[n]`` and sometimes cites the wrong source. So every answer sentence
is scored against every source the model saw, and the citations shown are the verified ones: a correct
``[n]`` is kept, a wrong one is replaced by the source that does support the sentence (or dropped), an
uncited sentence gets its best source, and a sentence no source supports is marked unsupported.

The citation grammar (``cited``, ``strip_citations``, ...) lives in services/core/grounding/citations.py, shared
with the prompt and the chat UI, and is re-exported here. No model library is imported (numpy only for
type checking): the scorer is handed in.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from services.core.grounding.citations import (
    CITATION_MARKER,
    cited,
    format_citations,
    replace_citations,
    strip_citations,
)
from services.core.grounding.contracts import SentenceSupport, Verification
from services.core.grounding.prompt import declined
from services.core.grounding.text import (
    STOPWORDS,
    ClaimIndex,
    claim_index,
    claims,
    content_words,
    coverage,
    missing_claims,
)

__all__ = [
    "BatchPairScorer",
    "PairScorer",
    "Verifier",
    "cited",
    "lexical_support",
    "replace_citations",
    "sentence_spans",
    "split_sentences",
    "strip_citations",
    "verifier_from_settings",
]

if TYPE_CHECKING:
    import numpy as np

    from services.core.settings import ChatSettings

# --- sentences ---------------------------------------------------------------------------------------

# A list item's or heading's prefix is layout, not sentence text: "- ", "* ", "• ", "1. ", "2) ", "## ".
_LIST_PREFIX = re.compile(r"[ \t]*(?:[-*+•–]|\d{1,3}[.)]|#{1,6})[ \t]+")
# An end of sentence: terminators, closing quotes/brackets, then any citation markers that follow them.
_END = re.compile(r"(?:[.!?…]+)[\"'”’)\]]*(?:[ \t]*" + CITATION_MARKER.pattern + r")*(?=\s|$)")
# After these a period never ends a sentence ("e.g. the", "Dr. Smith"); after the second kind only before a
# number ("Fig. 3", "No. 5", but "The answer is no. The office ...").
_ABBREVIATION_WORDS = "e.g i.e cf vs etc dr mr mrs ms prof sr jr st mt approx dept incl resp jan feb apr aug sept oct"
_ABBREVIATIONS = frozenset(_ABBREVIATION_WORDS.split())
_NUMBER_ABBREVIATIONS = frozenset({"no", "nos", "fig", "figs", "vol", "p", "pp", "art", "sec"})


def _ends_sentence(text: str, start: int, end: int) -> bool:
    """Whether the terminator match ``text[start:end]`` closes a sentence."""
    if text[start] != "." or CITATION_MARKER.search(text, start, end):
        return True  # "!", "?", "…"; and a period the model put a citation after
    following = text[end:].lstrip()
    if following and following[0].islower():
        return False  # "approx. five": an abbreviation we do not list, or a lowercase continuation
    word = re.search(r"[\w.]*$", text[:start]).group(0)  # type: ignore[union-attr]  # always matches
    if not word:
        return True
    if text[start : start + 2] == "..":
        return True  # an ellipsis
    if word.lower() in _ABBREVIATIONS:
        return word.lower() == "etc" and bool(following)  # "…, etc. The next" does end a sentence
    if word.lower() in _NUMBER_ABBREVIATIONS and following[:1].isdigit():
        return False
    if re.fullmatch(r"(?:[A-Za-z]\.)+[A-Za-z]", word):
        return False  # a dotted acronym: "the U.S. Army"
    if re.fullmatch(r"[A-Z]", word):
        # An initial after a name or at the start ("John F. Kennedy", "J. Smith said"), unless a function
        # word follows; else a sentence's last word ("in lot B. Visitors ...", which also splits "and J. Smith").
        before = re.search(r"(\S*)\s*$", text[: start - 1]).group(1)  # type: ignore[union-attr]  # always matches
        after = re.match(r"[A-Za-z']*", following).group(0).lower()  # type: ignore[union-attr]  # always matches
        starts = not before or before[-1] in ".!?:;]"  # the letter opens its sentence
        return after in STOPWORDS or not (starts or before[:1].isupper())
    return True


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` offsets of the sentences in ``text``; what lies between them is layout.

    Every line is split on its own (a list item or a line is never part of the next line's sentence);
    list bullets, numbers and heading marks stay outside the spans; ``[n]`` markers right after a
    sentence's period belong to that sentence; a line holding only markers joins the sentence before it.
    """
    spans: list[tuple[int, int]] = []
    for line in re.finditer(r"[^\n]+", text):
        pos, stop = line.start(), line.end()
        prefix = _LIST_PREFIX.match(text, pos, stop)
        if prefix:
            pos = prefix.end()
        while pos < stop:
            while pos < stop and text[pos].isspace():
                pos += 1
            if pos >= stop:
                break
            end = stop
            for match in _END.finditer(text, pos, stop):
                if _ends_sentence(text, match.start(), match.end()):
                    end = match.end()
                    break
            piece = text[pos:end].rstrip()
            if strip_citations(piece).strip(" \t.,;:!?…-*•"):
                spans.append((pos, pos + len(piece)))
            elif spans:  # markers (or punctuation) alone: they belong to the sentence before
                spans[-1] = (spans[-1][0], pos + len(piece))
            pos = end
    return spans


def split_sentences(text: str) -> list[str]:
    """The answer's sentences, each with its own ``[n]`` markers; list items and lines split too.

    >>> split_sentences("Revenue rose 3.5% in the U.S. market [1]. Costs fell.\\n- Item one\\n- Item two")
    ['Revenue rose 3.5% in the U.S. market [1].', 'Costs fell.', 'Item one', 'Item two']
    """
    return [text[a:b] for a, b in sentence_spans(text)]


# --- lexical support ---------------------------------------------------------------------------------


def lexical_support(sentence: str | set[str], source: str | set[str]) -> float:
    """Share of the sentence's content words that occur in the source (0.0 for a sentence without any).

    Words as ``services.core.grounding.text`` has them (stopwords and markers out, crude stem); either side may be
    given as its ``content_words`` already (the verifier computes each source's once).
    """
    words = content_words(sentence) if isinstance(sentence, str) else sentence
    if not words:
        return 0.0
    return coverage(words, content_words(source) if isinstance(source, str) else source)


# --- the verifier ------------------------------------------------------------------------------------


class PairScorer(Protocol):
    """Scores how well each passage supports the query, as probabilities in [0, 1].

    ``CrossEncoderReranker.score`` (services/core/models/reranker.py) is one: the verifier reuses the
    reranker's cross-encoder, already in memory, with the sentence as the query.
    """

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray: ...


@runtime_checkable
class BatchPairScorer(Protocol):
    """A scorer that also takes arbitrary (query, passage) pairs: one call then scores a whole answer."""

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray: ...

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray: ...


class Verifier:
    """Attributes and verifies each answer sentence; implements ``AnswerVerifier``.

    Support of (sentence, source) = ``(1 - lexical_weight) * scorer(sentence, source) + lexical_weight *
    lexical(sentence, source)``, where lexical is the share of the sentence's content words found in
    the source; without a scorer, lexical alone. A source supports a sentence when that reaches
    ``threshold``. Per sentence:

    - each model citation ``[n]`` whose source supports the sentence is kept; the others (wrong or out
      of range, like ``[7]`` with 3 sources) are dropped;
    - when none is kept (wrong citations, or none written), the best-supporting source is cited if it
      supports the sentence; otherwise the sentence is ``supported=False`` with no citations.

    Specifics are a constraint, not a score (``strict_claims``, on by default): a source that lacks one of a
    sentence's numbers, dates or names (``services.core.grounding.text.missing_claims``) gives that sentence support 0,
    whatever the cross-encoder and the word overlap say, so it can neither be cited nor count as support. Why:
    "... has 10,000 parameters [1]" scored 0.76 against a chunk with no number in it, and a named company's share
    price scored 0.58 against an unnamed stock whose previous close was that figure; a cross-encoder reads both as
    on topic, and one wrong number barely moves word overlap. Names the question used count like any other (the
    question's names also make an answer's first word a name: "Acme's share price ..."); so does a number
    the question used: "It does not open at 8 am" is unsupported by a source that only says 9 am.

    Sentences that are not judged:

    - a refusal ("I don't know ...", as ``prompt.declined`` tells) claims nothing: supported, no
      citations, score 1.0, and any marker the model put on it is removed;
    - a sentence with fewer than ``min_content_words`` content words ("Yes.", "It is.") cannot be
      judged on its own: it takes the verdict, citations and score of the nearest judged sentence
      before it (else after it), without repeating the markers in the text. When the answer has no
      other sentence to lean on, it is judged like any other. With ``strict_claims``, one holding a
      specific that no source has ("It has 10,000.") is unsupported instead (score 0, no citations);
      the same holds for an echo.
    - with the ``question`` given, a sentence that only restates it (no content word the question lacks:
      "The teams played in the 2030 Super Bowl.") is an echo: it leans on its neighbours like a short
      one. An answer of echoes alone ("PostgreSQL is faster for reads." to "Which is faster for reads,
      PostgreSQL or MySQL?") is judged by the scorer alone, since word overlap says nothing about it;
      without a scorer it is unsupported (score 0). And the lexical
      part of the support counts only the words a sentence adds to the question: a small model that
      parrots the question onto a near-miss source otherwise borrows the question's words as support.

    The scorer is called once per judged sentence with all sources as passages (the cross-encoder reads
    the sentence as its query, which is what it was trained on), or once per answer when it also has
    ``score_pairs``. ``Verification.answer`` is the answer with the model's markers replaced by the
    verified ones, placed before each sentence's final punctuation; the text between sentences (line
    breaks, list bullets) is kept. ``SentenceSupport.text`` is that rebuilt sentence.

    Usage::

        verifier = Verifier(None, threshold=0.5, lexical_weight=1.0)   # or the reranker as the scorer
        result = verifier.verify(
            "Visitors park at the main entrance [1]. Staff park in lot B.",
            ["Office hours: the office opens at 9 am.", "Staff park in lot B; visitors use the main entrance."],
        )
        result.answer     # 'Visitors park at the main entrance [2]. Staff park in lot B [2].'
        [s.supported for s in result.sentences]   # [True, True]
    """

    def __init__(
        self,
        scorer: PairScorer | None,
        *,
        threshold: float,
        lexical_weight: float,
        min_content_words: int = 3,
        strict_claims: bool = True,
    ) -> None:
        if not 0.0 <= threshold <= 1.0 or not 0.0 <= lexical_weight <= 1.0:
            raise ValueError("threshold and lexical_weight must lie in [0, 1]")
        self.scorer = scorer
        self.threshold = threshold
        self.lexical_weight = lexical_weight if scorer is not None else 1.0
        self.min_content_words = min_content_words
        self.strict_claims = strict_claims
        scorer_name = getattr(scorer, "name", type(scorer).__name__) if scorer is not None else ""
        if scorer is None or self.lexical_weight == 1.0:
            self.name = "lexical"
        else:
            self.name = scorer_name + ("+lexical" if self.lexical_weight > 0 else "")

    def verify(self, answer: str, sources: Sequence[str], question: str | None = None) -> Verification:
        spans = sentence_spans(answer)
        originals = [answer[a:b] for a, b in spans]
        asked = content_words(question) if question else set()
        kinds = [self._kind(s, asked) for s in originals]
        if "judge" not in kinds:  # nothing to lean on: short sentences are judged after all
            kinds = ["judge" if k == "short" else k for k in kinds]
        echoes_only = "judge" not in kinds and "echo" in kinds and self.scorer is not None and self.lexical_weight < 1
        if echoes_only:  # an answer that picks among the question's own words: the scorer alone can tell
            kinds = ["judge" if k == "echo" else k for k in kinds]
        judged = [i for i, k in enumerate(kinds) if k == "judge"]
        scores = self._support([strip_citations(originals[i]) for i in judged], sources, asked, lexical=not echoes_only)
        unfounded: dict[int, set[str]] = {}  # per sentence, the specifics that no source holds
        if self.strict_claims:  # a constraint on the scores: a source lacking a sentence's specific gives it 0
            indexes = [claim_index(src) for src in sources]
            known = _names(question, originals)
            gaps = {i: self._missing(originals[i], indexes, known) for i, k in enumerate(kinds) if k != "refusal"}
            said = {i: claims(originals[i], known_names=known).all for i in judged}
            scores = [self._constrained(row, gaps[i], said[i]) for i, row in zip(judged, scores, strict=True)]
            unfounded = {  # for the sentences that lean on a neighbour: a specific in no source is no support
                i: set.intersection(*lacking) if lacking else set(claims(originals[i], known_names=known).all)
                for i, lacking in gaps.items()
                if kinds[i] != "judge"
            }

        verdicts: dict[int, SentenceSupport] = {}
        for i, row in zip(judged, scores, strict=True):
            verdicts[i] = self._judge(originals[i], row)
        for i, kind in enumerate(kinds):
            if kind == "refusal":
                verdicts[i] = SentenceSupport(strip_citations(originals[i]), (), True, 1.0, cited(originals[i]))
            elif kind in ("short", "echo") and (unfounded.get(i) or not judged):  # unfounded, or only an echo
                verdicts[i] = SentenceSupport(strip_citations(originals[i]), (), False, 0.0, cited(originals[i]))
            elif kind in ("short", "echo"):
                before = [j for j in judged if j < i]
                source = verdicts[before[-1] if before else next(j for j in judged if j > i)]
                verdicts[i] = SentenceSupport(
                    strip_citations(originals[i]),
                    source.citations,
                    source.supported,
                    source.score,
                    cited(originals[i]),
                )
        sentences = tuple(verdicts[i] for i in range(len(spans)))
        return Verification(sentences, _rebuild(answer, spans, sentences))

    def _constrained(self, row: Sequence[float], lacking: Sequence[set[str]], said: frozenset[str]) -> list[float]:
        """A sentence's support from each source under the claims rule: only sources holding every specific of it
        may support it, the others get 0. Except when no supporting source holds them all and the supporting
        sources hold them between them ("founded by Jane Doe [1], employs 5,000 [2]"): then each of those that
        holds at least one keeps its score, and one holding none of them (the wrong source cited for a number)
        gets 0."""
        if not said:
            return list(row)
        supporting = [j for j, value in enumerate(row) if value >= self.threshold]
        unheld = set(said)
        for j in supporting:
            unheld &= lacking[j]
        if unheld or not supporting or any(not lacking[j] for j in supporting):
            return [0.0 if lacking[j] else value for j, value in enumerate(row)]
        return [0.0 if lacking[j] >= said else value for j, value in enumerate(row)]

    @staticmethod
    def _missing(sentence: str, indexes: Sequence[ClaimIndex], known: frozenset[str]) -> list[set[str]]:
        """The sentence's specifics each source lacks (one set per source; empty sets where it holds them all)."""
        said = claims(sentence, known_names=known)
        return [missing_claims(said, index) for index in indexes] if said else [set() for _ in indexes]

    def _kind(self, sentence: str, asked: set[str]) -> str:
        plain = strip_citations(sentence).replace("’", "'")
        if declined(plain):
            return "refusal"
        words = content_words(plain)
        if asked and not words - asked:
            return "echo"
        return "short" if len(words) < self.min_content_words else "judge"

    def _support(
        self, sentences: Sequence[str], sources: Sequence[str], asked: set[str], *, lexical: bool = True
    ) -> list[list[float]]:
        """The support matrix, ``[sentence][source]``, in [0, 1]; lexically, only what a sentence adds to
        the question (``asked``) counts; ``lexical=False``: the scorer alone."""
        if not sentences or not sources:
            return [[] for _ in sentences]
        w = self.lexical_weight if lexical else 0.0
        source_words = [content_words(src) for src in sources]
        rows = [[w * lexical_support(content_words(s) - asked, found) for found in source_words] for s in sentences]
        if self.scorer is None or w >= 1.0:
            return rows
        if isinstance(self.scorer, BatchPairScorer):
            flat = self.scorer.score_pairs([(s, src) for s in sentences for src in sources])
            ce = [[float(flat[i * len(sources) + j]) for j in range(len(sources))] for i in range(len(sentences))]
        else:
            ce = [[float(x) for x in self.scorer.score(s, list(sources))] for s in sentences]
        return [
            [lex + (1 - w) * min(1.0, max(0.0, c)) for lex, c in zip(row, ce_row, strict=True)]
            for row, ce_row in zip(rows, ce, strict=True)
        ]

    def _judge(self, sentence: str, support: Sequence[float]) -> SentenceSupport:
        model = cited(sentence)
        kept = tuple(n for n in model if 1 <= n <= len(support) and support[n - 1] >= self.threshold)
        best = max(range(len(support)), key=lambda j: support[j], default=None)  # first of equals wins
        best_score = support[best] if best is not None else 0.0
        if not kept and best is not None and best_score >= self.threshold:
            kept = (best + 1,)
        text = _with_markers(strip_citations(sentence), kept)
        return SentenceSupport(text, kept, bool(kept), float(best_score), model)


def _names(question: str | None, sentences: Sequence[str]) -> frozenset[str]:
    """Names the question and the answer use inside a sentence: a sentence's first word is a name when it is one of
    these ("Acme's share price is ..." to "What is the share price of Acme?")."""
    found: set[str] = set()
    for text in (question or "", *sentences):
        found |= claims(text).names
    return frozenset(found)


_TAIL = re.compile(r"[.!?…:;]+[\"'”’)\]]*$")


def _with_markers(sentence: str, numbers: Sequence[int]) -> str:
    """ "Visitors park here." + (2,) -> "Visitors park here [2].": markers go before the final punctuation."""
    if not numbers:
        return sentence
    tail = _TAIL.search(sentence)
    cut = tail.start() if tail else len(sentence)
    return f"{sentence[:cut].rstrip()} {format_citations(numbers)}{sentence[cut:]}"


def _rebuild(answer: str, spans: Sequence[tuple[int, int]], sentences: Sequence[SentenceSupport]) -> str:
    """The sentences' texts joined by the original layout between them (markers removed from it)."""
    parts: list[str] = []
    pos = 0
    for (start, end), sentence in zip(spans, sentences, strict=True):
        parts.append(CITATION_MARKER.sub("", answer[pos:start]))
        parts.append(sentence.text)
        pos = end
    parts.append(CITATION_MARKER.sub("", answer[pos:]))
    return "".join(parts).strip()


def verifier_from_settings(settings: ChatSettings, scorer: PairScorer | None) -> Verifier:
    """The verifier the settings ask for; ``settings.verify_answers`` says whether the caller runs it."""
    return Verifier(
        scorer,
        threshold=settings.verify_threshold,
        lexical_weight=settings.verify_lexical_weight,
        strict_claims=settings.verify_strict_claims,
    )
