"""``python -m eval.generate`` (``make generate``): question sets written from the deployment's own documents.

Why: every learned part of the answer layer was fitted and measured on fitz-gov, and on documents unlike it the
stack declined questions they answer word for word, with nothing to show it. A deployment needs questions about
*its* documents, with labels, to measure (``eval.run --dataset``) and to calibrate on. This writes them:

1. **Sample** chunks across documents and sections (round-robin over documents, spread over each one's
   sections; headings and scraps are skipped).
2. **Write** with the configured LLM (own prompts, ``PROMPT_VERSION``): for each chunk one question that it
   answers, in a style taken in turn: ``factoid``, ``why-how``, ``paraphrase``, ``multi-sentence``; and for every
   ``--near-miss-every``-th chunk one *near miss*: same topic, a detail the passage does not give.
3. **Keep** a question only when it stands on its own (no "in the passage") and, when answerable, when
   (a) the verifier (services/core/grounding/verify.py, the API's own: cross-encoder + word overlap, numbers and names
   must be in the source) finds every sentence of its reference answer supported by the source chunk, (b) it
   does not copy the chunk's wording (no run of more than ``--max-copied-run`` words in a row from it: a copied
   question only tests string matching), and (c) it is no duplicate of a kept one (``--dedupe`` share of shared
   content words).
4. **Unanswerable twins**: (a) *leave-one-out*: the same question asked of the corpus without its source
   document (``exclude_docs``; the API narrows retrieval with ``filters.exclude_doc_id``), kept when what remains
   is on topic (a near miss, not nothing) and the verifier finds the reference answer in none of the top chunks;
   when another document does support it, that document joins the question's relevant documents instead.
   (b) the LLM's near miss, kept when retrieval brings the source's topic back, the verifier finds the answer
   the LLM imagined in none of the top chunks, and some word of the question is in none of them either (else
   nothing shows the detail is missing: the guess may just be wrong).
5. **Split by document** into train/dev/test (``split_documents``: no document in two splits), so a model tuned
   on train/dev is measured on documents it never saw.

Output, versioned in the data dir: ``<data dir>/generated/<version>/questions.jsonl`` (``eval/evalset.py``
rows: id, question, expect, relevant_docs (doc ids), reference, reference_contexts, category, split,
exclude_docs, and ``provenance``: chunk id, document, model, prompt version, time) and ``manifest.json``
(counts, drops by reason, seconds, settings); ``generated/latest`` names the newest. The version is a hash of the
corpus (content hashes), the LLM, the prompt version and the seed: the same inputs resume the same folder
(``progress.jsonl`` records every chunk done), a changed corpus starts a new one. ``--budget-min`` stops
cleanly when the time is up; a progress bar shows the chunks.

    make generate                                    # the data dir's store, the configured LLM (booted if down)
    python -m eval.generate --target 300 --budget-min 60
    python -m eval.run --dataset .data/generated/latest/questions.jsonl --split test

The store must not be in use by a running API when it is the embedded one (one process owns its folder): stop
``make run`` first, or point ``RAG_QDRANT_URL`` at a Qdrant server, which any number of clients share.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ingest.sample import SAMPLE_MARK
from services.core.grounding.text import content_words, coverage, specific_words, words
from services.core.models.reranker import titled_passage
from services.core.processes import interrupt_on_sigterm
from services.core.types import RetrievedChunk

if TYPE_CHECKING:
    from services.core.grounding.verify import Verifier
    from services.core.models.llm import LLMClient
    from services.core.settings import Settings

logger = logging.getLogger("eval.generate")

PROMPT_VERSION = "gen-v2"  # v2: split and style by hash, leave-one-out checked on the top chunks together
Split = Literal["train", "dev", "test"]
SPLITS: tuple[Split, ...] = ("train", "dev", "test")
STYLES: dict[str, str] = {
    "factoid": "a short factual question whose answer is a specific name, number, value, term or date stated in "
    "the passage",
    "why-how": "a 'why' or 'how' question that the passage explains",
    "paraphrase": "a question asked in your own words, as someone who has not read the passage would ask it, "
    "using different words from the passage",
    "multi-sentence": "a question whose answer needs two different sentences of the passage together",
}
SYSTEM = "You write exam questions about technical documents. Follow the output format exactly."
ANSWERABLE_PROMPT = """Passage from "{title}"{section}:
\"\"\"
{text}
\"\"\"

Write {style}. The passage must answer it. Then write the answer, using only facts from the passage.
Reply with exactly two lines and nothing else:
Q: <the question>
A: <the answer>"""
NEAR_MISS_PROMPT = """Passage from "{title}"{section}:
\"\"\"
{text}
\"\"\"

Write a question on the same topic that this passage does NOT answer: it asks for a specific detail (a number,
a name, a date, a setting, a reason) that the passage does not give. Then write the answer someone might guess.
Reply with exactly two lines and nothing else:
Q: <the question>
A: <a guessed answer>"""

_QA = re.compile(
    r"^\s*\**\s*Q(?:uestion)?\s*\**\s*[:.]\s*\**\s*(?P<q>.+?)\s*$"  # "Q: ...", "**Question:** ..."
    r".*?^\s*\**\s*A(?:nswer)?\s*\**\s*[:.]\s*\**\s*(?P<a>.+?)\s*$",
    re.IGNORECASE | re.MULTILINE | re.DOTALL,
)


# --- pure parts (unit-tested) --------------------------------------------------------------------------


def parse_qa(text: str) -> tuple[str, str] | None:
    """``(question, answer)`` from the model's two lines, or None when it did not follow the format."""
    match = _QA.search(text)
    if not match:
        return None
    question = match.group("q").strip().strip('"*').strip()
    answer = match.group("a").strip().strip('"*').strip()
    if not question.endswith("?") or not 3 <= len(question.split()) <= 40 or not answer:
        return None
    return question, answer


def _tokens(text: str) -> list[str]:
    return [w.lower() for w in words(text)]


# A question must stand on its own: a user asks the corpus, not "the passage" a writer was shown.
_NOT_STANDALONE = re.compile(
    r"\b(?:the|this|given|above|following|provided)\s+(?:passage|text|excerpt|document|section|paragraph|snippet)\b"
    r"|\b(?:according to|in) the (?:passage|text|author)\b",
    re.IGNORECASE,
)


def standalone(question: str) -> bool:
    """False for a question that points at the text it was written from ("the first enum in the given passage")."""
    return not _NOT_STANDALONE.search(question)


def copied_run(question: str, passage: str) -> int:
    """The longest run of consecutive question words that occurs, in order and contiguous, in the passage."""
    q, p = _tokens(question), _tokens(passage)
    best = 0
    previous = [0] * (len(p) + 1)  # longest common substring over words, O(len(q) * len(p))
    for i in range(1, len(q) + 1):
        current = [0] * (len(p) + 1)
        for j in range(1, len(p) + 1):
            if q[i - 1] == p[j - 1]:
                current[j] = previous[j - 1] + 1
                best = max(best, current[j])
        previous = current
    return best


def similarity(a: str | set[str], b: str | set[str]) -> float:
    """Jaccard share of content words (stemmed): how alike two questions are, whatever their word order."""
    wa = content_words(a) if isinstance(a, str) else a
    wb = content_words(b) if isinstance(b, str) else b
    if not wa or not wb:
        return 1.0 if wa == wb else 0.0
    return len(wa & wb) / len(wa | wb)


class Deduper:
    """Remembers kept questions; ``seen`` says whether a new one is (nearly) one of them."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.kept: list[set[str]] = []

    def seen(self, question: str) -> bool:
        words_q = content_words(question)
        return any(similarity(words_q, other) >= self.threshold for other in self.kept)

    def add(self, question: str) -> None:
        self.kept.append(content_words(question))


def _unit(key: str) -> float:
    """A stable number in [0, 1) for ``key``: the same document always draws the same one."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 16**8


def split_documents(doc_ids: Sequence[str], shares: tuple[float, float, float] = (0.6, 0.2, 0.2)) -> dict[str, Split]:
    """Each document in exactly one split, decided by its own hash: adding documents never moves another one (a
    model adapted on one version's train documents is not then measured on them as another version's test).
    Corpora too small for every split to draw a document (fewer than 10, or a split left empty) are split by
    hash order instead, dev and test one document each at least when there are three or more."""
    unique = sorted(set(doc_ids))
    drawn: dict[str, Split] = {
        d: "test" if _unit(d) < shares[2] else "dev" if _unit(d) < shares[2] + shares[1] else "train" for d in unique
    }
    if len(unique) >= 10 and set(drawn.values()) == set(SPLITS):
        return drawn
    ordered = sorted(unique, key=_unit)
    n = len(ordered)
    n_test = max(1, round(n * shares[2])) if n >= 3 else 0
    n_dev = max(1, round(n * shares[1])) if n >= 3 else 0
    return {doc: "test" if i < n_test else "dev" if i < n_test + n_dev else "train" for i, doc in enumerate(ordered)}


def sample_chunks(
    docs: Mapping[str, Sequence[RetrievedChunk]], n: int, *, min_words: int = 25
) -> Iterator[RetrievedChunk]:
    """Up to ``n`` chunks, round-robin over documents; within a document its sections take turns (first chunk
    of each section, then the second, ...), so a long first section does not crowd out the rest."""
    queues: list[list[RetrievedChunk]] = []
    for doc_id in sorted(docs):
        by_section: dict[str, list[RetrievedChunk]] = {}
        for chunk in docs[doc_id]:
            if len(chunk.text.split()) >= min_words:
                by_section.setdefault(chunk.section or "", []).append(chunk)
        spread: list[RetrievedChunk] = []
        rounds = max((len(v) for v in by_section.values()), default=0)
        for r in range(rounds):
            spread.extend(v[r] for v in by_section.values() if r < len(v))
        if spread:
            queues.append(spread)
    given = 0
    while given < n and any(queues):
        for queue in queues:
            if queue and given < n:
                given += 1
                yield queue.pop(0)


# --- the generator -------------------------------------------------------------------------------------


class Searcher(Protocol):
    """Top chunks for a question, optionally without some documents (``Retriever.search`` in the CLI)."""

    def __call__(self, question: str, exclude: Sequence[str] = ()) -> list[RetrievedChunk]: ...


class Writer(Protocol):
    """The LLM: one prompt in, its text out."""

    def __call__(self, prompt: str) -> str: ...


@dataclass
class GenerateConfig:
    max_copied_run: int = 6  # longest run of the chunk's words a question may copy
    dedupe: float = 0.7  # content-word Jaccard at or above which two questions are the same question
    near_miss_every: int = 2  # one LLM near miss per this many chunks (0: none)
    on_topic: float = 0.5  # share of the question's content words the remaining top chunks must cover
    top_k: int = 5  # chunks the verifier reads when checking that an answer is absent


@dataclass(slots=True)
class Outcome:
    """What one chunk gave: kept rows and the reasons the rest was dropped."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


def _passages(chunks: Sequence[RetrievedChunk]) -> list[str]:
    return [titled_passage(c.title, c.text) for c in chunks]


def _fully_supported(verifier: Verifier, answer: str, passages: Sequence[str], question: str) -> bool:
    result = verifier.verify(answer, passages, question)
    return bool(result.sentences) and all(s.supported for s in result.sentences)


def _any_supported(verifier: Verifier, answer: str, passages: Sequence[str], question: str) -> bool:
    result = verifier.verify(answer, passages, question)
    return any(s.supported and s.citations for s in result.sentences)


class Generator:
    """Questions from one chunk at a time (``from_chunk``), with every keep/drop rule of the module docstring.

    Usage::

        gen = Generator(writer, verifier, searcher, GenerateConfig(), model="qwen2.5-coder-0.5b")
        outcome = gen.from_chunk(chunk, style="factoid", near_miss=True, split="test")
        outcome.rows      # answerable row, its leave-one-out twin, a near miss (each only when kept)
        outcome.dropped   # e.g. ["answer not supported by its chunk"]
    """

    def __init__(
        self, writer: Writer, verifier: Verifier, searcher: Searcher, config: GenerateConfig, *, model: str
    ) -> None:
        self.writer, self.verifier, self.searcher, self.config = writer, verifier, searcher, config
        self.model = model
        self.deduper = Deduper(config.dedupe)

    def _prompt(self, template: str, chunk: RetrievedChunk, style: str = "") -> str:
        section = f', section "{chunk.section}"' if chunk.section else ""
        return template.format(title=chunk.title or chunk.source, section=section, text=chunk.text, style=style)

    def _checked_question(self, raw: str, chunk: RetrievedChunk, out: Outcome, kind: str) -> tuple[str, str] | None:
        parsed = parse_qa(raw)
        if parsed is None:
            out.dropped.append(f"{kind}: not in the Q/A format")
            return None
        question, answer = parsed
        if not standalone(question):
            out.dropped.append(f"{kind}: points at the passage")
            return None
        if copied_run(question, chunk.text) > self.config.max_copied_run:
            out.dropped.append(f"{kind}: copies the chunk's wording")
            return None
        if self.deduper.seen(question):
            out.dropped.append(f"{kind}: duplicate")
            return None
        return question, answer

    def _row(self, chunk: RetrievedChunk, suffix: str, question: str, **fields: Any) -> dict[str, Any]:
        return {
            "id": f"gen-{chunk.id[:12]}-{suffix}",
            "question": question,
            **fields,
            "provenance": {
                "chunk_id": chunk.id,
                "doc_id": chunk.doc_id,
                "source": chunk.source,
                "title": chunk.title,
                "section": chunk.section,
                "model": self.model,
                "prompt_version": PROMPT_VERSION,
                "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            },
        }

    def from_chunk(self, chunk: RetrievedChunk, *, style: str, near_miss: bool, split: Split) -> Outcome:
        out = Outcome()
        self._answerable(chunk, style, split, out)
        if near_miss:
            self._near_miss(chunk, split, out)
        return out

    def _answerable(self, chunk: RetrievedChunk, style: str, split: Split, out: Outcome) -> None:
        checked = self._checked_question(
            self.writer(self._prompt(ANSWERABLE_PROMPT, chunk, STYLES[style])), chunk, out, style
        )
        if checked is None:
            return
        question, answer = checked
        source = titled_passage(chunk.title, chunk.text)
        if not _fully_supported(self.verifier, answer, [source], question):
            out.dropped.append(f"{style}: answer not supported by its chunk")
            return
        self.deduper.add(question)
        hits = self.searcher(question)
        rank = next((i + 1 for i, h in enumerate(hits) if h.doc_id == chunk.doc_id), None)
        relevant = [chunk.doc_id]
        row = self._row(
            chunk, "a", question, expect="answer", relevant_docs=relevant, reference=answer,
            reference_contexts=[chunk.text], category=style, split=split,
        )  # fmt: skip
        row["provenance"]["source_rank"] = rank
        out.rows.append(row)
        # (a) leave-one-out: the same question without its document. A near miss only when something on topic
        # remains and none of it holds the answer; another document that does hold it is relevant too.
        rest = self.searcher(question, exclude=[chunk.doc_id])[: self.config.top_k]
        if not rest:
            out.dropped.append("leave-one-out: nothing left to retrieve")
            return
        # the remaining top chunks together, as the API's verifier would read them: an answer another document
        # words differently or spreads over two chunks still counts as found
        found = self.verifier.verify(answer, _passages(rest), question)
        if found.sentences and all(s.supported for s in found.sentences):
            others = {rest[n - 1].doc_id for s in found.sentences for n in s.citations}
            relevant.extend(sorted(others - set(relevant)))
            out.dropped.append("leave-one-out: another document answers it too")
            return
        if coverage(content_words(question), " ".join(_passages(rest[:3]))) < self.config.on_topic:
            out.dropped.append("leave-one-out: nothing on topic remains")
            return
        out.rows.append(
            self._row(
                chunk,
                "loo",
                question,
                expect="abstain",
                exclude_docs=[chunk.doc_id],
                reference="",
                category="leave-one-out",
                split=split,
            )  # fmt: skip
        )

    def _near_miss(self, chunk: RetrievedChunk, split: Split, out: Outcome) -> None:
        checked = self._checked_question(self.writer(self._prompt(NEAR_MISS_PROMPT, chunk)), chunk, out, "near-miss")
        if checked is None:
            return
        question, guess = checked
        hits = self.searcher(question)[: self.config.top_k]
        if not hits or chunk.doc_id not in {h.doc_id for h in hits[:3]}:
            out.dropped.append("near-miss: retrieval does not bring its topic back")
            return
        if _any_supported(self.verifier, guess, _passages(hits), question):
            out.dropped.append("near-miss: the documents may hold the answer")
            return
        asked = content_words(question) | specific_words(question)
        if coverage(asked, " ".join(_passages(hits))) >= 1.0:
            # every word of it is in the top chunks: nothing shows the asked-for detail is missing, and the LLM's
            # guess may simply be wrong ("Which library provides specialized container datatypes?")
            out.dropped.append("near-miss: every word of it is in the top chunks")
            return
        self.deduper.add(question)
        out.rows.append(
            self._row(chunk, "nm", question, expect="abstain", reference="", category="near-miss", split=split)
        )


# --- the run: versioned, resumable, time-bounded -------------------------------------------------------


def corpus_version(content_hashes: Sequence[str], model: str, seed: int) -> str:
    """Same documents, LLM, prompts and seed: same version (and folder), so a second run resumes."""
    key = json.dumps([sorted(content_hashes), model, PROMPT_VERSION, seed])
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def read_progress(path: Path) -> dict[str, dict[str, Any]]:
    """Chunk id -> its recorded outcome; a torn last line (a crash mid-write) is ignored, that chunk redone."""
    done: dict[str, dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            done[row["chunk_id"]] = row
    return done


def run(
    docs: Mapping[str, Sequence[RetrievedChunk]],
    generator: Generator,
    out_dir: Path,
    *,
    target: int,
    budget_s: float,
    max_chunks: int,
) -> dict[str, Any]:
    """Generate into ``out_dir`` until ``target`` rows are kept, the chunks run out or ``budget_s`` is spent."""
    from tqdm import tqdm

    out_dir.mkdir(parents=True, exist_ok=True)
    progress_path = out_dir / "progress.jsonl"
    done = read_progress(progress_path)
    for row in done.values():  # resumed: the kept questions count as seen
        for kept in row["rows"]:
            generator.deduper.add(kept["question"])
    splits = split_documents(list(docs))
    styles = list(STYLES)
    started = time.monotonic()
    kept = sum(len(r["rows"]) for r in done.values())
    stopped = "chunks exhausted"
    chunks = list(sample_chunks(docs, max_chunks))
    if progress_path.exists() and progress_path.read_bytes()[-1:] not in (b"", b"\n"):
        with progress_path.open("a", encoding="utf-8") as torn:  # a crash mid-line: the next record starts afresh
            torn.write("\n")
    with (
        progress_path.open("a", encoding="utf-8") as log,
        tqdm(total=len(chunks), initial=len(done), desc="generate", unit="chunk", dynamic_ncols=True) as bar,
    ):
        for chunk in chunks:
            if chunk.id in done:
                continue
            if kept >= target:
                stopped = "target reached"
                break
            if time.monotonic() - started > budget_s:
                stopped = "time budget spent"
                break
            # style and near miss drawn per chunk, not by position: the round-robin over documents would otherwise
            # give each document one style, and near misses to every other document only
            every = generator.config.near_miss_every
            near = bool(every) and _unit("near-miss:" + chunk.id) < 1 / every
            outcome = generator.from_chunk(
                chunk, style=styles[int(_unit(chunk.id) * len(styles))], near_miss=near, split=splits[chunk.doc_id]
            )
            record = {"chunk_id": chunk.id, "rows": outcome.rows, "dropped": outcome.dropped}
            log.write(json.dumps(record, ensure_ascii=False) + "\n")
            log.flush()
            done[chunk.id] = record
            kept += len(outcome.rows)
            bar.update(1)
            bar.set_postfix(kept=kept)
    rows = [row for r in done.values() for row in r["rows"]]
    (out_dir / "questions.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    dropped = Counter(reason for r in done.values() for reason in r["dropped"])
    return {
        "stopped": stopped,
        "seconds_this_run": round(time.monotonic() - started, 1),
        "chunks_done": len(done),
        "chunks_available": len(chunks),
        "documents": len(docs),
        "kept": len(rows),
        "kept_by": dict(Counter(f"{r['expect']}/{r['category']}" for r in rows)),
        "kept_by_split": dict(Counter(r["split"] for r in rows)),
        "dropped_by_reason": dict(dropped.most_common()),
        "documents_by_split": dict(Counter(splits.values())),
    }


# --- the CLI: the deployment's store, retriever, verifier and LLM, in this process -----------------------


def main(argv: list[str] | None = None) -> int:
    from services.core.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None, help="the deployment's data dir (default RAG_DATA_DIR)")
    parser.add_argument("--target", type=int, default=300, help="stop after this many kept questions")
    parser.add_argument("--budget-min", type=float, default=60.0, help="stop after this many minutes")
    parser.add_argument("--max-chunks", type=int, default=2000, help="chunks sampled at most")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--boot-llm", action="store_true", help="start the local LLM server when none answers")
    parser.add_argument(
        "--include-sample",
        action="store_true",
        help="also write questions on the fitz-gov sample corpus (left out by default when the store holds other "
        "documents: the shipped models were fitted on fitz-gov already)",
    )
    parser.add_argument("--max-copied-run", type=int, default=GenerateConfig.max_copied_run)
    parser.add_argument("--dedupe", type=float, default=GenerateConfig.dedupe)
    parser.add_argument("--near-miss-every", type=int, default=GenerateConfig.near_miss_every)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = Settings(data_dir=Path(args.data_dir)) if args.data_dir else Settings()
    # SIGTERM ends the run like Ctrl-C: the LLM this run started is stopped, and progress.jsonl resumes it
    interrupt_on_sigterm()
    llm_proc = None
    llm_url = settings.llm_base_url
    if args.boot_llm:
        from eval.local_stack import ensure_llm

        llm_url, llm_proc = ensure_llm(llm_url, settings.data_dir)
    from services.core.factory import build_verifier, open_retriever

    try:
        with open_retriever(settings) as (store, retriever):
            verifier = build_verifier(settings, retriever.reranker)
            records = store.list_documents()
            own = [r for r in records if SAMPLE_MARK not in r.source]
            picked = records if args.include_sample or not own else own
            docs = {r.doc_id: store.document_chunks(r.doc_id) for r in picked}
            docs = {d: c for d, c in docs.items() if c}
            if not docs:
                print(f"eval.generate: the store of {settings.data_dir} holds no documents", file=sys.stderr)
                return 2
            hashes = [c[0].content_hash for c in docs.values()]
            version = corpus_version(hashes, settings.llm_model, args.seed)
            root = settings.data_dir / "generated"
            out_dir = root / version
            summary = asyncio.run(_generate(args, settings, llm_url, retriever, verifier, docs, out_dir))
    except RuntimeError as exc:  # the store is held by a running API, or the LLM never came up
        print(f"eval.generate: {exc}", file=sys.stderr)
        return 2
    finally:
        if llm_proc is not None:
            from services.core.processes import stop_all

            stop_all([llm_proc], grace_s=10)
    manifest = {
        "version": version,
        "model": settings.llm_model,
        "prompt_version": PROMPT_VERSION,
        "seed": args.seed,
        "settings": {k: getattr(args, k) for k in ("target", "budget_min", "max_chunks", "max_copied_run", "dedupe")},
        "retrieval": {"mode": settings.retrieval_mode, "top_n": settings.top_n, "top_k": settings.top_k},
        "verifier": {"threshold": settings.verify_threshold, "lexical_weight": settings.verify_lexical_weight},
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **summary,
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    (root / "latest").unlink(missing_ok=True)
    (root / "latest").symlink_to(version, target_is_directory=True)
    print(json.dumps(manifest, indent=2))
    print(f"eval.generate: {manifest['kept']} questions in {out_dir / 'questions.jsonl'} ({summary['stopped']})")
    return 0


async def _generate(
    args: argparse.Namespace,
    settings: Settings,
    llm_url: str,
    retriever: Any,
    verifier: Verifier,
    docs: Mapping[str, Sequence[RetrievedChunk]],
    out_dir: Path,
) -> dict[str, Any]:
    from services.core.factory import build_llm, searcher

    llm: LLMClient = build_llm(settings.model_copy(update={"llm_base_url": llm_url}))
    loop = asyncio.get_running_loop()
    seed = args.seed  # llama.cpp samples reproducibly with a seed: the same corpus gives the same set

    def write(prompt: str) -> str:
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]
        future = asyncio.run_coroutine_threadsafe(
            llm.complete(messages, max_tokens=160, temperature=0.3, seed=seed), loop
        )
        return future.result().text

    search = searcher(retriever, settings)

    config = GenerateConfig(
        max_copied_run=args.max_copied_run, dedupe=args.dedupe, near_miss_every=args.near_miss_every
    )
    generator = Generator(write, verifier, search, config, model=settings.llm_model)
    try:  # the model work runs in a thread; the LLM calls on this loop
        return await asyncio.to_thread(
            run, docs, generator, out_dir, target=args.target, budget_s=args.budget_min * 60, max_chunks=args.max_chunks
        )
    finally:
        await llm.aclose()


if __name__ == "__main__":
    sys.exit(main())
