"""Validate the out-of-domain evaluation set: ``python eval/ood/check_set.py [python-docs.jsonl] [corpus_dir]``.

Checks, stdlib only, and exits 1 on the first run that finds any problem (all problems are listed):

* every line is a JSON object with a unique, non-empty ``id`` and ``question``;
* ``expect`` is ``"answer"`` or ``"abstain"`` and ``category`` is one this set uses;
* answerable items name existing corpus files in ``relevant_docs``, carry a ``reference`` and at least one
  ``reference_contexts`` entry, and every context is a verbatim substring of one of those files;
* unanswerable items carry no ``relevant_docs``, ``reference`` or ``reference_contexts``, and a ``note``
  saying why the corpus does not answer them;
* the counts meet the floor the set was built to (45 answerable, 22 unanswerable of which 16 near misses)
  and the corpus files stay within their size limits (40 KB each, 450 KB in all).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ANSWER_CATEGORIES = frozenset({"factoid", "why-how", "paraphrase", "multi-sentence"})
ABSTAIN_CATEGORIES = frozenset({"near-miss", "off-topic"})
MIN_ANSWER, MIN_ABSTAIN, MIN_NEAR_MISS = 45, 22, 16
MAX_FILE_BYTES, MAX_TOTAL_BYTES = 40_000, 450_000


def check(questions: Path, corpus: Path) -> tuple[list[str], Counter[tuple[str, str]]]:
    """All problems found, and the count of items by (expect, category)."""
    docs, problems = _check_corpus(corpus)
    seen: set[str] = set()
    counts: Counter[tuple[str, str]] = Counter()
    for n, line in enumerate(questions.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            problems += _check_line(line, f"{questions.name}:{n}", docs, seen, counts)
    return problems + _check_counts(counts), counts


def _check_corpus(corpus: Path) -> tuple[dict[str, str], list[str]]:
    """The corpus pages by name, and what is wrong with their number and sizes."""
    problems: list[str] = []
    docs = {p.stem: p.read_text(encoding="utf-8") for p in sorted(corpus.glob("*.md"))}
    if not docs:
        problems.append(f"{corpus}: no .md corpus files")
    sizes = {path.name: path.stat().st_size for path in sorted(corpus.glob("*.md"))}
    problems += [f"{name}: {size} bytes > {MAX_FILE_BYTES}" for name, size in sizes.items() if size > MAX_FILE_BYTES]
    if sum(sizes.values()) > MAX_TOTAL_BYTES:
        problems.append(f"corpus: {sum(sizes.values())} bytes > {MAX_TOTAL_BYTES}")
    return docs, problems


def _check_line(
    line: str, where: str, docs: dict[str, str], seen: set[str], counts: Counter[tuple[str, str]]
) -> list[str]:
    """One line of the questions file: a JSON object with a new id, a question and a valid expectation."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        return [f"{where}: not JSON ({exc})"]
    if not isinstance(row, dict):
        return [f"{where}: not a JSON object"]
    item_id = str(row.get("id", "")).strip()
    where = f"{where} ({item_id or 'no id'})"
    problems = []
    if not item_id or not str(row.get("question", "")).strip():
        problems.append(f"{where}: needs a non-empty id and question")
    if item_id in seen:
        problems.append(f"{where}: duplicate id")
    seen.add(item_id)
    expect, category = row.get("expect"), row.get("category")
    counts[(str(expect), str(category))] += 1
    if expect == "answer":
        return problems + [f"{where}: {p}" for p in _check_answerable(row, docs)]
    if expect == "abstain":
        return problems + [f"{where}: {p}" for p in _check_abstain(row)]
    return [*problems, f"{where}: expect must be 'answer' or 'abstain', not {expect!r}"]


def _check_counts(counts: Counter[tuple[str, str]]) -> list[str]:
    """Enough items of each kind for the set's intervals to mean something."""
    n_answer = sum(v for (e, _), v in counts.items() if e == "answer")
    n_abstain = sum(v for (e, _), v in counts.items() if e == "abstain")
    n_near = counts[("abstain", "near-miss")]
    problems = []
    if n_answer < MIN_ANSWER:
        problems.append(f"only {n_answer} answerable items (< {MIN_ANSWER})")
    if n_abstain < MIN_ABSTAIN:
        problems.append(f"only {n_abstain} unanswerable items (< {MIN_ABSTAIN})")
    if n_near < MIN_NEAR_MISS:
        problems.append(f"only {n_near} near-miss items (< {MIN_NEAR_MISS})")
    return problems


def _check_answerable(row: dict, docs: dict[str, str]) -> list[str]:
    problems = []
    if row.get("category") not in ANSWER_CATEGORIES:
        problems.append(f"category {row.get('category')!r} not in {sorted(ANSWER_CATEGORIES)}")
    relevant = row.get("relevant_docs") or []
    if not isinstance(relevant, list) or not relevant:
        return [*problems, "answerable item needs a non-empty relevant_docs list"]
    missing = [d for d in relevant if d not in docs]
    if missing:
        problems.append(f"relevant_docs not in the corpus: {missing}")
    if not str(row.get("reference", "")).strip():
        problems.append("answerable item needs a reference")
    contexts = row.get("reference_contexts") or []
    if not isinstance(contexts, list) or not contexts:
        return [*problems, "answerable item needs reference_contexts"]
    texts = [docs[d] for d in relevant if d in docs]
    for ctx in contexts:
        if not isinstance(ctx, str) or not ctx.strip():
            problems.append("empty reference context")
        elif not any(ctx in text for text in texts):
            problems.append(f"context is not a verbatim substring of {relevant}: {ctx[:80]!r}")
    return problems


def _check_abstain(row: dict) -> list[str]:
    problems = []
    if row.get("category") not in ABSTAIN_CATEGORIES:
        problems.append(f"category {row.get('category')!r} not in {sorted(ABSTAIN_CATEGORIES)}")
    for key in ("relevant_docs", "reference", "reference_contexts"):
        if row.get(key):
            problems.append(f"unanswerable item must not carry {key}")
    if not str(row.get("note", "")).strip():
        problems.append("unanswerable item needs a note saying why the corpus does not answer it")
    return problems


def main(argv: list[str]) -> int:
    questions = Path(argv[0]) if argv else HERE / "python-docs.jsonl"
    corpus = Path(argv[1]) if len(argv) > 1 else HERE / "corpus"
    problems, counts = check(questions, corpus)
    for (expect, category), n in sorted(counts.items()):
        print(f"{expect:8} {category:15} {n:4d}")
    for problem in problems:
        print(f"FAIL {problem}", file=sys.stderr)
    print("FAILED" if problems else "OK", f"({sum(counts.values())} items, {len(problems)} problems)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
