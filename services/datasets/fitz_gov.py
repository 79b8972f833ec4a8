"""Evaluation and training data from the packaged fitz-gov set, split once and for all, and cleaned.

The split is a pure function of the **normalised question text** (a hash), so it never changes between
machines, runs or library versions, and no question ever moves between train (reranker and answerability
training), dev (tuning) and test (reporting). It used to hash the query id: fitz-gov repeats the same
question under several ids (66 of the 207 dev/test abstention questions and 115 of the 594 judged test
queries also appeared among train queries), so a model trained on train had seen part of test. Nothing
downstream should re-split.

Two cleanings, both because the data set's annotations leak into what a system would see:
- **Titles that are annotator notes are not content.** Most fitz-gov titles restate the question ("The
  Falcon 9 rocket reliable for commercial satellite launches") or the annotator's rationale ("Query asks
  about X but contexts describe Y"); a retriever or reranker that reads them learns the label, not the
  document. ``content_title`` keeps a title only when it reads like one (short, Title Case, no rationale
  vocabulary): 412 of 3,830 titles survive.
- **A decoy is never relevant.** ``abstain_doc_*`` documents are the near-miss decoys of questions the
  corpus cannot answer, yet 167 abstention mappings list one as "relevant"; ``RetrievalQuery.relevant``
  drops them (they stay available as ``decoys`` for training negatives).
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
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
    decoys: frozenset[str] = frozenset()  # near-miss documents that look relevant and are not


def _data_root() -> Path:
    return Path(str(resources.files("fitz_gov") / "data"))


DECOY_PREFIX = "abstain_doc_"
# Words of an annotator's rationale, never of a document title ("Query asks about X but contexts ...").
_NOTE_WORDS = re.compile(
    r"\b(quer(?:y|ies)|asks?|asking|contexts?|sources? \d|question|answers?|answered|perspective|evidence|"
    r"but|however|whereas|only|cannot|doesn't|does not)\b|(?:\.\.\.|…)$",
    re.IGNORECASE,
)


def normalize_question(text: str) -> str:
    """Case, accents-as-composed, punctuation and spacing removed: the identity of a question."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


def content_title(title: str) -> str:
    """The title if it reads as a document title, else "" (an annotator note restating the question)."""
    title = title.strip()
    words = [w for w in re.findall(r"[A-Za-z][\w'-]*", title) if len(w) > 3]
    title_case = bool(words) and sum(w[0].isupper() for w in words) / len(words) >= 0.6
    return title if title and len(title) <= 90 and title_case and not _NOTE_WORDS.search(title) else ""


def split_of(question: str) -> Split:
    """The split of a question, by its normalised text (the same question under two ids stays together)."""
    key = normalize_question(question)
    bucket = int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:8], 16) % 100
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
                        content_title(row.get("title") or ""),
                        row["content"],
                        row.get("domain", ""),
                        tuple(row.get("tags", ())),
                    )
                )
    return tuple(docs)


@lru_cache(maxsize=1)
def all_queries() -> tuple[RetrievalQuery, ...]:
    raw = json.loads((_data_root() / "queries" / "query_mappings.json").read_text(encoding="utf-8"))
    out = []
    for category, mapping in raw["mappings"].items():
        for qid, row in mapping.items():
            relevant = {d for d in row.get("relevant_docs", ()) if not d.startswith(DECOY_PREFIX)}
            decoys = set(row.get("decoy_docs", ())) | set(row.get("relevant_docs", ())) - relevant
            out.append(RetrievalQuery(qid, row["query"], frozenset(relevant), category, frozenset(decoys)))
    return tuple(sorted(out, key=lambda q: q.id))


def load_queries(split: Split, *, with_judgements_only: bool = True) -> list[RetrievalQuery]:
    """Queries of one split; by default only those with at least one relevant document (IR metrics need one)."""
    return [q for q in all_queries() if split_of(q.text) == split and (q.relevant or not with_judgements_only)]


# --- tier1 RAG cases ---------------------------------------------------------------------------------

Expect = Literal["answer", "abstain"]
# "the context clearly answers" and "the context answers with caveats": both should be answered, not declined
ANSWERABLE = ("trustworthy_direct", "trustworthy_hedged")


@dataclass(frozen=True, slots=True)
class RagCase:
    """A tier1 case the full corpus can be judged on: answer it from ``contexts``, or decline it."""

    id: str
    question: str
    expect: Expect
    category: str
    relevant_docs: tuple[str, ...] = ()
    contexts: tuple[str, ...] = ()  # the passages that hold the answer (none for an abstention)


@lru_cache(maxsize=1)
def _mapping_by_query() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Normalised question -> (first query-mapping id, relevant corpus ids over every id of that question).

    Links a tier1 case to its judgements; decoys are never relevant (``RetrievalQuery.relevant``)."""
    out: dict[str, tuple[str, tuple[str, ...]]] = {}
    for q in all_queries():
        key = normalize_question(q.text)
        qid, relevant = out.get(key, (q.id, ()))
        out[key] = (qid, tuple(sorted(set(relevant) | q.relevant)))
    return out


def _tier1(category: str) -> list[dict]:
    return json.loads((_data_root() / "tier1_core" / f"{category}.json").read_text(encoding="utf-8"))["cases"]


def tier1_cases(category: str, split: Split) -> list[dict]:
    """The raw tier1 cases of one category whose question falls in ``split`` (training data for the models)."""
    return [case for case in _tier1(category) if split_of(case["query"]) == split]


@lru_cache(maxsize=3)
def rag_cases(split: Split = "test") -> tuple[RagCase, ...]:
    """tier1 cases of one split that the full corpus can be judged on.

    A case joins the split of its normalised question (so a question never crosses train/dev/test, whichever
    file or id it comes from). Answerable: every context is a corpus document. Abstain: the corpus holds no
    relevant document for the question.
    """
    mapping = _mapping_by_query()
    corpus_text = {d.content.strip() for d in load_corpus()}
    cases: list[RagCase] = []
    for category in ANSWERABLE:
        for case in _tier1(category):
            linked = mapping.get(normalize_question(case["query"]))
            contexts = tuple(c.strip() for c in case["contexts"])
            if linked and split_of(case["query"]) == split and contexts and all(c in corpus_text for c in contexts):
                cases.append(RagCase(case["id"], case["query"], "answer", category, linked[1], contexts))
    for case in _tier1("abstention"):
        linked = mapping.get(normalize_question(case["query"]))
        if linked and split_of(case["query"]) == split and not linked[1]:
            cases.append(RagCase(case["id"], case["query"], "abstain", "abstention"))
    return tuple(sorted(cases, key=lambda c: c.id))
