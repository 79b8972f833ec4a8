"""Evaluation and training data from the packaged fitz-gov set, split once and for all.

The split is a pure function of the query id (a hash), so it never changes between machines, runs or
library versions, and no query ever moves between train (reranker training), dev (tuning) and test
(reporting). Nothing downstream should re-split.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

Split = Literal["train", "dev", "test"]
# Percent of queries per split, by hash bucket: [0, 60) train, [60, 80) dev, [80, 100) test.
SPLIT_BOUNDS: dict[Split, tuple[int, int]] = {"train": (0, 60), "dev": (60, 80), "test": (80, 100)}


@dataclass(frozen=True, slots=True)
class CorpusDoc:
    id: str
    title: str
    content: str
    domain: str
    tags: tuple[str, ...]

    def as_markdown(self) -> str:
        return f"# {self.title}\n\n{self.content}\n" if self.title else f"{self.content}\n"


@dataclass(frozen=True, slots=True)
class RetrievalQuery:
    id: str
    text: str
    relevant: frozenset[str]
    category: str


def _data_root() -> Path:
    return Path(str(resources.files("fitz_gov") / "data"))


def split_of(query_id: str) -> Split:
    bucket = int(hashlib.sha256(query_id.encode("utf-8")).hexdigest()[:8], 16) % 100
    for name, (lo, hi) in SPLIT_BOUNDS.items():
        if lo <= bucket < hi:
            return name
    raise AssertionError("bounds cover 0..99")


@lru_cache(maxsize=1)
def load_corpus() -> tuple[CorpusDoc, ...]:
    docs = []
    with (_data_root() / "corpus" / "documents.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                docs.append(
                    # about a fifth of the documents have no title (only metadata about their source case)
                    CorpusDoc(
                        row["id"],
                        row.get("title") or "",
                        row["content"],
                        row.get("domain", ""),
                        tuple(row.get("tags", ())),
                    )
                )
    return tuple(docs)


@lru_cache(maxsize=1)
def _all_queries() -> tuple[RetrievalQuery, ...]:
    raw = json.loads((_data_root() / "queries" / "query_mappings.json").read_text(encoding="utf-8"))
    out = []
    for category, mapping in raw["mappings"].items():
        for qid, row in mapping.items():
            out.append(RetrievalQuery(qid, row["query"], frozenset(row.get("relevant_docs", ())), category))
    return tuple(sorted(out, key=lambda q: q.id))


def load_queries(split: Split, *, with_judgements_only: bool = True) -> list[RetrievalQuery]:
    """Queries of one split; by default only those with at least one relevant document (IR metrics need one)."""
    return [q for q in _all_queries() if split_of(q.id) == split and (q.relevant or not with_judgements_only)]
