"""What one evaluation run asks the API: retrieval queries with judgements, and RAG cases to answer or decline.

The default set comes from the packaged fitz-gov data, on the **test** split of ``services/datasets/fitz_gov.py`` (never
used for training or tuning). Users bring their own set as JSONL, one object per line::

    {"id": "q1", "question": "How did Q3 sales compare with Q2?",
     "relevant_docs": ["q3-report"],                 # optional: IR metrics (matched to a result's source
                                                     #   file name without extension, its source, or doc_id)
     "expect": "answer",                             # optional: "answer" or "abstain" -> asked through /chat
     "reference": "Q3 sales rose 12% over Q2.",      # optional: reference answer (string metrics)
     "reference_contexts": ["Q3 revenue was ..."],   # optional: passages a good retrieval returns
     "exclude_docs": ["<doc_id>"],                   # optional: asked of the corpus without these documents
                                                     #   (a leave-one-out near miss, eval/generate.py)
     "split": "test"}                                # optional: train/dev/test; eval.run --split picks one

An item with ``relevant_docs`` is scored on ``/search``; an item with ``expect`` is asked on ``/chat``;
one item can be both.

fitz-gov has no reference *answers*. Its answerable cases (``trustworthy_direct``: "the context clearly
and unambiguously answers the question"; ``trustworthy_hedged``: it answers with caveats) carry the
contexts that hold the answer, so those contexts are the reference contexts and, joined, the reference
text that ROUGE/BLEU/string similarity compare against: they measure how much of the evidence's wording
the answer carries, not exact correctness. Abstention cases are those whose query has no relevant
document in the corpus: the right behaviour is to decline.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

from services.datasets.fitz_gov import Expect, Split, load_queries, rag_cases

FITZ_GOV = "fitz-gov"


@dataclass(frozen=True, slots=True)
class EvalItem:
    id: str
    question: str
    relevant_docs: tuple[str, ...] = ()
    expect: Expect | None = None
    reference: str = ""
    reference_contexts: tuple[str, ...] = ()
    category: str = ""
    exclude_docs: tuple[str, ...] = ()  # doc ids the question is asked without (filters.exclude_doc_id)
    split: str = ""  # "", or the split of a generated set (by document: eval/generate.py)

    @classmethod
    def from_json(cls, row: dict) -> EvalItem:
        if not str(row.get("id", "")).strip() or not str(row.get("question", "")).strip():
            raise ValueError("every item needs a non-empty 'id' and 'question'")
        expect = row.get("expect")
        if expect not in (None, "answer", "abstain"):
            raise ValueError(f"item {row['id']!r}: 'expect' must be 'answer' or 'abstain', not {expect!r}")
        relevant = row.get("relevant_docs") or ()
        if not relevant and expect is None:
            raise ValueError(f"item {row['id']!r} has neither 'relevant_docs' nor 'expect': nothing to score")
        return cls(
            id=str(row["id"]),
            question=str(row["question"]),
            relevant_docs=tuple(str(d) for d in relevant),
            expect=expect,
            reference=str(row.get("reference") or ""),
            reference_contexts=tuple(str(c) for c in row.get("reference_contexts") or ()),
            category=str(row.get("category") or ""),
            exclude_docs=tuple(str(d) for d in row.get("exclude_docs") or ()),
            split=str(row.get("split") or ""),
        )

    def to_json(self) -> dict:
        row = asdict(self)
        row["relevant_docs"] = list(self.relevant_docs)
        row["reference_contexts"] = list(self.reference_contexts)
        row["exclude_docs"] = list(self.exclude_docs)
        return {k: v for k, v in row.items() if v not in ("", (), [], None)}


@dataclass(frozen=True, slots=True)
class EvalSet:
    name: str
    retrieval: tuple[EvalItem, ...]
    rag: tuple[EvalItem, ...]
    notes: dict[str, object] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Identifies exactly which items were asked: only runs with the same key are compared."""
        ids = ",".join(i.id for i in self.retrieval) + "|" + ",".join(i.id for i in self.rag)
        return f"{self.name}:{hashlib.sha256(ids.encode()).hexdigest()[:12]}"

    def sample(self, n: int | None, seed: int = 0) -> EvalSet:
        """A deterministic sample of ``n`` retrieval items and ``n`` RAG cases (half to answer, half to decline)."""
        if not n:
            return self
        rng = random.Random(seed)
        retrieval = _pick(self.retrieval, n, rng)
        answer = [i for i in self.rag if i.expect == "answer"]
        abstain = [i for i in self.rag if i.expect == "abstain"]
        n_abstain = min(len(abstain), n // 2)
        n_answer = min(len(answer), n - n_abstain)
        n_abstain = min(len(abstain), n - n_answer)
        rag = _pick(answer, n_answer, random.Random(seed + 1)) + _pick(abstain, n_abstain, random.Random(seed + 2))
        return EvalSet(self.name, tuple(retrieval), tuple(rag), {**self.notes, "sample": n})


def _pick(items: Sequence[EvalItem], n: int, rng: random.Random) -> list[EvalItem]:
    ordered = sorted(items, key=lambda i: i.id)
    return sorted(rng.sample(ordered, min(n, len(ordered))), key=lambda i: i.id)


# --- user JSONL -----------------------------------------------------------------------------------


def read_jsonl(path: Path, split: str | None = None) -> EvalSet:
    """A user's (or a generated) set; ``split``: only its items of that split (items without one always count)."""
    items = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(EvalItem.from_json(json.loads(line)))
        except (ValueError, TypeError, AttributeError) as exc:
            raise ValueError(f"{path}:{n}: {exc}") from exc
    if len({i.id for i in items}) != len(items):
        raise ValueError(f"{path}: duplicate item ids")
    if split:
        items = [i for i in items if i.split in ("", split)]
    return EvalSet(
        name=path.stem if not split or not any(i.split for i in items) else f"{path.stem}-{split}",
        retrieval=tuple(i for i in items if i.relevant_docs),
        rag=tuple(i for i in items if i.expect),
        notes={"source": str(path)},
    )


def write_jsonl(items: Iterable[EvalItem], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(i.to_json(), ensure_ascii=False) + "\n" for i in items), encoding="utf-8")


# --- fitz-gov ---------------------------------------------------------------------------------------


@lru_cache(maxsize=3)
def fitz_gov_rag_cases(split: Split = "test") -> tuple[EvalItem, ...]:
    """The fitz-gov RAG cases of one split (``services.datasets.fitz_gov.rag_cases``) as evaluation items.

    An answerable case's contexts are its reference contexts and, joined, its reference text."""
    return tuple(
        EvalItem(
            id=case.id,
            question=case.question,
            relevant_docs=case.relevant_docs,
            expect=case.expect,
            reference=" ".join(case.contexts),
            reference_contexts=case.contexts,
            category=case.category,
        )
        for case in rag_cases(split)
    )


def fitz_gov_set(split: Split = "test") -> EvalSet:
    retrieval = tuple(
        EvalItem(id=q.id, question=q.text, relevant_docs=tuple(sorted(q.relevant)), category=q.category)
        for q in load_queries(split)
    )
    return EvalSet(f"{FITZ_GOV}-{split}", retrieval, fitz_gov_rag_cases(split), {"split": split})
