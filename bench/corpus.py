"""The slice of fitz-gov a benchmark runs on: test-split queries plus their documents and distractors.

Ranking quality needs the relevant documents in the index; distractors make the ranking non-trivial.
Seeded, so every backend and every run sees the same slice.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from services.datasets.fitz_gov import CorpusDoc, RetrievalQuery, load_corpus, load_queries


@dataclass(frozen=True)
class Slice:
    queries: list[RetrievalQuery]
    docs: list[CorpusDoc]

    def write(self, folder: Path) -> Path:
        """One Markdown file per document (the same files ``make eval-retrieval`` ingests), and nothing else."""
        folder.mkdir(parents=True, exist_ok=True)
        wanted = {f"{doc.id}.md": doc for doc in self.docs}
        for stale in folder.glob("*.md"):  # a previous run's slice must not leak into this one
            if stale.name not in wanted:
                stale.unlink()
        for name, doc in wanted.items():
            path = folder / name
            if not path.exists():
                path.write_text(doc.as_markdown(), encoding="utf-8")
        return folder


def make_slice(n_queries: int, n_docs: int, seed: int = 0) -> Slice:
    """``n_queries`` test queries (0 = all) whose relevant documents are all in the slice, padded to ``n_docs``."""
    rng = random.Random(seed)
    test = load_queries("test")
    queries = rng.sample(test, min(n_queries, len(test))) if n_queries else list(test)
    corpus = {d.id: d for d in load_corpus()}
    wanted = {doc_id for q in queries for doc_id in q.relevant if doc_id in corpus}
    others = sorted(set(corpus) - wanted)
    extra = rng.sample(others, max(0, min(len(others), n_docs - len(wanted))))
    ids = sorted(wanted | set(extra))
    return Slice(queries, [corpus[i] for i in ids])
