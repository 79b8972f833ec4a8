"""BM25-style sparse vectors for Qdrant's hybrid search.

Documents get the BM25 term-frequency saturation weight; Qdrant multiplies in the IDF at query time
(``Modifier.IDF``), so the collection's statistics stay correct as documents come and go without any
re-encoding. Queries are bags of unique terms with weight 1, which makes the dot product exactly BM25.
Term ids are a stable 31-bit hash of the (lower-cased, stemmed-lite) term: no vocabulary file to keep.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from dataclasses import dataclass

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)

# A short English stop list: BM25's IDF already discounts common words, but dropping the
# commonest keeps sparse vectors small.
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "can",
        "did",
        "do",
        "does",
        "for",
        "from",
        "has",
        "have",
        "he",
        "her",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "she",
        "so",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
    ]
)


def _stem(term: str) -> str:
    # Light plural/verb folding: enough that "passwords"/"password" and "resetting"/"reset" meet,
    # without a stemmer dependency whose output would change the hash ids between versions.
    for suffix in ("ing", "ed", "es", "s"):
        if len(term) > len(suffix) + 3 and term.endswith(suffix):
            stem = term[: -len(suffix)]
            if suffix in ("ing", "ed") and len(stem) > 3 and stem[-1] == stem[-2] and stem[-1] not in "aeiouls":
                stem = stem[:-1]  # resett -> reset, stopp -> stop (but keep "call", "pass")
            return stem
    return term


def terms(text: str) -> list[str]:
    return [_stem(t) for t in (m.group(0).lower() for m in _TOKEN.finditer(text)) if t not in STOPWORDS]


def term_id(term: str) -> int:
    return zlib.crc32(term.encode("utf-8")) & 0x7FFFFFFF


@dataclass(frozen=True, slots=True)
class SparseVector:
    indices: list[int]
    values: list[float]


class BM25SparseEncoder:
    """Usage: ``enc = BM25SparseEncoder(); enc.encode_document("text")``, ``enc.encode_query("q")``."""

    def __init__(self, k1: float = 1.2, b: float = 0.75, avg_doc_len: float = 120.0) -> None:
        self.k1, self.b, self.avg_doc_len = k1, b, avg_doc_len

    def encode_document(self, text: str) -> SparseVector:
        tokens = terms(text)
        if not tokens:
            return SparseVector([], [])
        norm = self.k1 * (1 - self.b + self.b * len(tokens) / self.avg_doc_len)
        weights: dict[int, float] = {}
        for term, tf in Counter(tokens).items():
            # Hash collisions merge two terms: sum their weights rather than lose one.
            idx = term_id(term)
            weights[idx] = weights.get(idx, 0.0) + tf * (self.k1 + 1) / (tf + norm)
        return SparseVector(list(weights), list(weights.values()))

    def encode_query(self, text: str) -> SparseVector:
        ids = sorted({term_id(t) for t in terms(text)})
        return SparseVector(ids, [1.0] * len(ids))
