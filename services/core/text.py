"""Light lexical tools shared by the answerability gate and the answer verifier (no models, no I/O).

Why lexical at all beside a cross-encoder: a fitz-gov-style near miss ("the Battle of Cannae" for a question
about Zama) is on topic, so a relevance model scores it high; the missing name or number is exactly what a
word-level check sees.
"""

from __future__ import annotations

import re

STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have having he
    her here hers him his how i if in into is it its itself just me more most my no nor not now of off on once
    only or other our ours out over own same she should so some such than that the their theirs them then there
    these they this those through to too under until up very was we were what when where which while who whom
    why will with would you your yours yes ok per via vs versus did specific specifically currently current""".split()  # noqa: SIM905 - a word list reads best as text
)
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’.-]*[A-Za-z0-9]|[A-Za-z0-9]")
_CITATION = re.compile(r"\[\d{1,3}(?:\s*,\s*\d{1,3})*\]")


def stem(word: str) -> str:
    """A deliberately crude stem (plural and a few suffixes) so "tactics" matches "tactic"."""
    w = word.lower().strip(".'’-")
    for suffix in ("ies", "es", "s"):
        if len(w) > 4 and w.endswith(suffix) and not w.endswith("ss"):
            return w[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return w


def words(text: str) -> list[str]:
    return _WORD.findall(_CITATION.sub(" ", text))


def content_words(text: str) -> set[str]:
    """Stemmed words that carry meaning: stopwords and [n] markers removed."""
    return {stem(w) for w in words(text) if w.lower() not in STOPWORDS and len(w) > 1 or w.isdigit()}


def specific_words(text: str) -> set[str]:
    """Names and numbers: capitalised words past the first, and anything with a digit (years, amounts)."""
    out: set[str] = set()
    for i, w in enumerate(words(text)):
        if any(ch.isdigit() for ch in w) or (i > 0 and w[0].isupper() and w.lower() not in STOPWORDS):
            out.add(stem(w))
    return out


def coverage(needles: set[str], haystack: str | set[str]) -> float:
    """Share of ``needles`` found in ``haystack`` (its content words); 1.0 when there is nothing to find."""
    if not needles:
        return 1.0
    hay = haystack if isinstance(haystack, set) else content_words(haystack) | specific_words(haystack)
    return len(needles & hay) / len(needles)
