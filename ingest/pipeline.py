"""Files -> chunks -> vectors -> Qdrant, idempotently.

Invariants, in the order the code keeps them:
1. A file whose content hash matches a *complete* manifest entry is skipped: nothing is written.
2. Before any chunk of a document is written its manifest entry is marked ``pending`` with the new hash,
   so a crash at any later point is seen by the next run, which redoes that document.
3. Chunk ids are deterministic, so redoing a document overwrites instead of duplicating; after the new
   chunks are in, ids not in the new set are deleted, and only then is the entry marked ``complete``.
A document therefore never has chunks without a manifest entry (no orphans), and a re-run converges to
exactly what a clean ingest would have written.

Chunks are embedded in batches that span files, because most documents are much smaller than a batch.

Building the pipeline touches nothing: ``warm_up()`` loads the embedder, sizes the chunker by it and creates
the store's collections. Deleting needs none of that, so it never loads the model.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
from opentelemetry.trace import use_span

from ingest.chunker import Chunker
from ingest.loaders import SUPPORTED_SUFFIXES, LoaderError, LoadLimits, load_bytes, load_path
from services.core.models.embedder import Embedder, TokenEmbedder
from services.core.models.sparse import BM25SparseEncoder
from services.core.observability.tracing import tracer
from services.core.storage.store import VectorStore
from services.core.types import Chunk, DocumentRecord, IngestStatus, LoadedDocument, doc_id_for

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class FileOutcome:
    source: str
    status: IngestStatus
    doc_id: str = ""
    chunks: int = 0
    reason: str = ""
    title: str = ""


@dataclass(slots=True)
class IngestReport:
    outcomes: list[FileOutcome] = field(default_factory=list)
    points_written: int = 0
    points_deleted: int = 0
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(
        default_factory=lambda: {"parse": 0.0, "chunk": 0.0, "embed": 0.0, "upsert": 0.0}
    )

    def count(self, *statuses: IngestStatus) -> int:
        return sum(1 for o in self.outcomes if o.status in statuses)

    @property
    def chunks(self) -> int:
        return sum(o.chunks for o in self.outcomes if o.status in ("added", "updated"))

    @property
    def chunks_per_second(self) -> float:
        return self.chunks / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> dict[str, object]:
        return {
            "files": len(self.outcomes),
            "added": self.count("added"),
            "updated": self.count("updated"),
            "unchanged": self.count("unchanged"),
            "deleted": self.count("deleted"),
            "skipped": self.count("skipped", "failed"),
            "queued": self.count("queued"),
            "chunks": self.chunks,
            "points_written": self.points_written,
            "points_deleted": self.points_deleted,
            "seconds": round(self.seconds, 2),
            "chunks_per_s": round(self.chunks_per_second, 1),
            "stage_seconds": {k: round(v, 2) for k, v in self.stage_seconds.items()},
            "problems": [{"source": o.source, "reason": o.reason} for o in self.outcomes if o.reason],
        }


PROGRESS_SLICE = 256  # chunks embedded between two progress reports (and cancel checks) of a long file


@dataclass(slots=True)
class _Pending:
    record: DocumentRecord
    chunks: list[Chunk]


@dataclass(frozen=True, slots=True)
class IngestProgress:
    """Where an ingest stands, told to an ``on_progress`` callback (an ingest job's status shows it).

    ``parsed``: the file is read and chunked (``pages`` found, ``chunks_total`` to embed); ``embedding``:
    ``chunks_done`` of them embedded; ``writing``: the vectors are about to go to the store (the last point
    where a stop is heard).
    """

    stage: Literal["parsed", "embedding", "writing"]
    pages: int = 0
    chunks_total: int = 0
    chunks_done: int = 0


class IngestCancelled(Exception):
    """Raised by an ``on_progress`` callback to stop an ingest. It is only heard before anything is written,
    so a stopped ingest leaves the store as it was: a document's previous version keeps answering."""


ProgressCallback = Callable[[IngestProgress], None]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def context_header(title: str, section: str | None) -> str:
    """The "title — section path" line (the label citations print) that ``IngestPipeline`` embeds a chunk under
    when ``embed_context_header`` is on; the title is not repeated when the path starts with it (a Markdown H1
    is both), and it is "" when a chunk has neither."""
    section = section or ""
    if title and (section == title or section.startswith(f"{title} > ")):
        section = section[len(title) :].removeprefix(" > ")
    return " — ".join(part for part in (title, section) if part)


def iter_files(root: Path) -> Iterator[Path]:
    """Supported files under ``root`` in a stable order, skipping hidden files and folders."""
    if root.is_file():
        yield root
        return
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.is_file() and path.suffix.lower() in SUPPORTED_SUFFIXES:
            yield path


def delete_document(store: VectorStore, doc_id: str) -> int:
    """Remove a document's chunks, then its manifest entry (so a crash in between is retried, never orphaned).
    The one way a document leaves the store: the API's delete, a sync and the queue-mode watcher all use it."""
    removed = store.delete_chunks(doc_id)
    store.delete_document(doc_id)
    return removed


def delete_vanished(store: VectorStore, root: Path, files: Iterable[Path], report: IngestReport) -> list[str]:
    """Delete each document stored from under ``root`` whose file is no longer among ``files`` (a folder
    sync's last step, in both the pipeline and the queue-mode watcher); returns the sources removed."""
    present = {str(f.resolve()) for f in files}
    prefix = str(root).rstrip("/") + "/"
    removed: list[str] = []
    for record in store.list_documents():
        if record.source.startswith(prefix) and record.source not in present:
            report.points_deleted += delete_document(store, record.doc_id)
            report.outcomes.append(FileOutcome(record.source, "deleted", record.doc_id, title=record.title))
            removed.append(record.source)
    return removed


class IngestPipeline:
    """Usage::

    pipeline = IngestPipeline(embedder, store, chunk_size=200, chunk_overlap=40)  # cheap: loads nothing
    pipeline.warm_up()                                   # the model, the chunker sized by it, the collections
    report = pipeline.ingest_paths([Path("docs/")])
    print(report.summary())
    pipeline.delete_source("/abs/path/docs/old.md")      # needs only the store: no model is ever loaded for it

    The apps build it with ``ingest.factory.build_pipeline`` and call ``warm_up()`` at start-up. The ingest
    entry points (``ingest_paths``, ``ingest_bytes``, ``sync``) still call ``warm_up()`` themselves when nobody
    did: the collections must exist before the first write and the chunker cannot be sized without the
    model, and callers that build a pipeline and ingest at once (the benchmarks, the tests) rely on that.
    It is idempotent and thread-safe, so the call costs nothing once warm.

    ``embed_context_header`` (setting ``RAG_EMBED_CONTEXT_HEADER``) makes the bi-encoder read each chunk
    under a "title — section" line; see ``embedding_text``.
    """

    def __init__(
        self,
        embedder: Embedder,
        store: VectorStore,
        *,
        chunk_size: int,
        chunk_overlap: int,
        sparse: BM25SparseEncoder | None = None,
        limits: LoadLimits | None = None,
        batch_size: int = 64,
        embed_context_header: bool = False,
    ) -> None:
        if chunk_overlap >= chunk_size:
            raise ValueError("chunk_overlap must be smaller than chunk_size")
        self.embedder = embedder
        self.store = store
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self.sparse = sparse or BM25SparseEncoder()
        self.limits = limits or LoadLimits()
        self.batch_size = batch_size
        self.embed_context_header = embed_context_header
        self._chunker: Chunker | None = None
        self._signature = ""
        self._warming = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Whether ``warm_up()`` has run: the model is loaded and the collections exist."""
        return self._chunker is not None

    def warm_up(self) -> None:
        """Load the embedder, size the chunker by its token limit and create the store's collections (once)."""
        if self._chunker is not None:
            return
        with self._warming:
            if self._chunker is not None:
                return
            self.embedder.warm_up()
            chunker = Chunker(
                self.embedder.count_tokens,
                chunk_size=self.chunk_size,
                chunk_overlap=self.chunk_overlap,
                max_tokens=self.embedder.max_tokens,
            )
            self.store.ensure_collections(self.embedder.dimension)
            signature = f"{self.embedder.name}|chunk={chunker.limit}|overlap={chunker.overlap}"
            signature += f"|chunker={chunker.VERSION}"
            if self.embed_context_header:  # other vectors for the same chunks: switching it re-embeds every file
                signature += "|context-header"
            self._signature = signature
            self._chunker = chunker  # last: ready from here on

    @property
    def chunker(self) -> Chunker:
        if self._chunker is None:
            raise RuntimeError("the chunker is sized by the loaded model: call IngestPipeline.warm_up() first")
        return self._chunker

    @property
    def signature(self) -> str:
        """What the stored vectors are made with (model, chunking); a file stored under another is re-embedded."""
        if self._chunker is None:
            raise RuntimeError("the signature depends on the loaded model: call IngestPipeline.warm_up() first")
        return self._signature

    # -- public entry points ------------------------------------------------------------------

    def ingest_paths(self, paths: Iterable[Path], *, progress: bool = False) -> IngestReport:
        self.warm_up()
        files = [f for p in paths for f in iter_files(Path(p))]
        return self._run(((f, None) for f in files), total=len(files), progress=progress)

    def ingest_bytes(
        self,
        data: bytes,
        filename: str,
        source: str,
        tags: Iterable[str] = (),
        *,
        on_progress: ProgressCallback | None = None,
    ) -> IngestReport:
        """One uploaded file. ``on_progress`` hears each stage and may raise ``IngestCancelled`` to stop the
        ingest before it writes (the exception propagates; nothing was changed)."""
        self.warm_up()
        item = iter([(None, (data, filename, source, list(tags)))])
        return self._run(item, total=1, progress=False, on_progress=on_progress)

    def sync(self, root: Path, *, progress: bool = False) -> IngestReport:
        """Mirror a folder: add new files, replace changed ones, delete documents whose file is gone."""
        self.warm_up()
        root = root.resolve()
        files = list(iter_files(root))
        report = self._run(((f, None) for f in files), total=len(files), progress=progress)
        delete_vanished(self.store, root, files, report)
        return report

    def delete(self, doc_id: str) -> int:
        """Remove a document (``delete_document``). Needs only the store: no ``warm_up()``, no embedder."""
        return delete_document(self.store, doc_id)

    def delete_source(self, source: str) -> int:
        return self.delete(doc_id_for(source))

    # -- the loop -------------------------------------------------------------------------------

    def _run(
        self,
        items: Iterator[tuple[Path | None, tuple[bytes, str, str, list[str]] | None]],
        *,
        total: int,
        progress: bool,
        on_progress: ProgressCallback | None = None,
    ) -> IngestReport:
        from tqdm import tqdm

        report = IngestReport()
        started = time.perf_counter()
        pending: list[_Pending] = []
        bar = tqdm(total=total, unit="file", desc="ingest", disable=not progress, dynamic_ncols=True)
        run_span = tracer().start_span("ingest.run", openinference_span_kind="chain")
        run_span.set_attribute("ingest.files", total)
        try:
            for path, raw in items:
                with use_span(run_span, end_on_exit=False):
                    outcome, work = self._traced_prepare(path, raw, report, on_progress)
                report.outcomes.append(outcome)
                if work is not None:
                    pending.append(work)
                if sum(len(p.chunks) for p in pending) >= self.batch_size:
                    with use_span(run_span, end_on_exit=False):
                        self._traced_flush(pending, report, on_progress)
                    pending = []
                bar.update(1)
                bar.set_postfix(chunks=report.chunks, refresh=False)
            with use_span(run_span, end_on_exit=False):
                self._traced_flush(pending, report, on_progress)
        finally:
            bar.close()
            report.seconds = time.perf_counter() - started
            if run_span.is_recording():
                summary = report.summary().items()
                run_span.set_attributes({f"ingest.{k}": v for k, v in summary if isinstance(v, int | float | str)})
            run_span.end()
        return report

    def _traced_prepare(
        self,
        path: Path | None,
        raw: tuple[bytes, str, str, list[str]] | None,
        report: IngestReport,
        on_progress: ProgressCallback | None = None,
    ) -> tuple[FileOutcome, _Pending | None]:
        """One span per file (parse + chunk); its status and reason are what an operator looks for."""
        with tracer().start_as_current_span("ingest.file", openinference_span_kind="chain") as span:
            outcome, work = self._prepare(path, raw, report)
            if work is not None and on_progress is not None:
                pages = len({c.page for c in work.chunks if c.page is not None})
                on_progress(IngestProgress("parsed", pages=pages, chunks_total=len(work.chunks)))
            if span.is_recording():
                span.set_attributes(
                    {
                        "input.value": outcome.source,
                        "ingest.status": outcome.status,
                        "ingest.doc_id": outcome.doc_id,
                        "ingest.chunks": outcome.chunks,
                        "ingest.reason": outcome.reason,
                    }
                )
            return outcome, work

    def _traced_flush(
        self, pending: list[_Pending], report: IngestReport, on_progress: ProgressCallback | None = None
    ) -> None:
        """One span per batch: embedding and upsert of the chunks of several files."""
        if not pending:
            return
        with tracer().start_as_current_span("ingest.batch", openinference_span_kind="chain") as span:
            if span.is_recording():
                span.set_attributes(
                    {
                        "ingest.files": len(pending),
                        "ingest.chunks": sum(len(p.chunks) for p in pending),
                        "embedding.model_name": self.embedder.name,
                    }
                )
            self._flush(pending, report, on_progress)

    def _prepare(
        self, path: Path | None, raw: tuple[bytes, str, str, list[str]] | None, report: IngestReport
    ) -> tuple[FileOutcome, _Pending | None]:
        t0 = time.perf_counter()
        source = str(path.resolve()) if path is not None else raw[2]  # type: ignore[index]
        try:
            if path is not None:
                doc: LoadedDocument = load_path(path, limits=self.limits)
                size = path.stat().st_size
            else:
                data, filename, source, tags = raw  # type: ignore[misc]
                doc = load_bytes(data, filename, source, limits=self.limits)
                doc.tags = tags
                size = len(data)
        except LoaderError as exc:
            logger.warning("skipped %s: %s", source, exc.reason)
            return FileOutcome(source, "skipped", doc_id_for(source), reason=exc.reason), None
        finally:
            report.stage_seconds["parse"] += time.perf_counter() - t0
        existing = self.store.get_document(doc.doc_id)
        if (
            existing
            and existing.content_hash == doc.content_hash
            and existing.status == "complete"
            and existing.index_signature == self.signature
        ):
            return FileOutcome(source, "unchanged", doc.doc_id, existing.chunk_count, title=doc.title), None
        t1 = time.perf_counter()
        chunks = self.chunker.split(doc)
        report.stage_seconds["chunk"] += time.perf_counter() - t1
        if not chunks:
            return FileOutcome(source, "skipped", doc.doc_id, reason="no text after chunking"), None
        record = DocumentRecord(
            doc_id=doc.doc_id,
            source=source,
            title=doc.title,
            content_hash=doc.content_hash,
            media_type=doc.media_type,
            chunk_count=len(chunks),
            status="pending",
            ingested_at=now_iso(),
            tags=list(doc.tags),
            size_bytes=size,
            index_signature=self.signature,
        )
        status: IngestStatus = "updated" if existing else "added"
        outcome = FileOutcome(source, status, doc.doc_id, len(chunks), reason="; ".join(doc.notes), title=doc.title)
        return outcome, _Pending(record, chunks)

    def embedding_text(self, chunk: Chunk) -> str:
        """What the bi-encoder reads for a chunk: its text, or with ``embed_context_header`` its text under
        a "title — section" line (the label citations print), so a chunk that never names its subject
        ("Then restart it.") still lands near questions about that subject.

        Only the dense (and late-interaction token) vectors see the header: the stored text, its BM25
        vector and the prompt are unchanged.
        The title is not repeated when the section path starts with it (a Markdown H1 is both). A header
        that would push the chunk past the model's ``max_tokens`` is left off, because the model would
        then silently cut the end of the chunk itself.
        """
        if not self.embed_context_header:
            return chunk.text
        header = context_header(chunk.title, chunk.section)
        if not header:
            return chunk.text
        text = f"{header}\n{chunk.text}"
        return text if self.embedder.count_tokens(text) <= self.embedder.max_tokens else chunk.text

    def _embed(
        self, texts: list[str], on_progress: ProgressCallback | None
    ) -> tuple[np.ndarray, list[np.ndarray] | None]:
        """Dense (and, for late interaction, per-token) vectors of ``texts``; with a progress callback, in
        slices of ``PROGRESS_SLICE`` chunks so a long file reports (and can be stopped) as it goes."""
        late = getattr(self.store, "late_interaction", False)
        if late and not isinstance(self.embedder, TokenEmbedder):
            raise TypeError("late interaction needs an embedder that returns per-token vectors")
        step = PROGRESS_SLICE if on_progress is not None else max(1, len(texts))
        dense_parts: list[np.ndarray] = []
        tokens: list[np.ndarray] | None = [] if late else None
        for start in range(0, len(texts), step):
            part = texts[start : start + step]
            if tokens is not None:
                vectors, part_tokens = self.embedder.embed_passages_with_tokens(part)  # type: ignore[attr-defined]
                tokens += part_tokens
            else:
                vectors = self.embedder.embed_passages(part)
            dense_parts.append(vectors)
            if on_progress is not None:
                done = min(start + step, len(texts))
                on_progress(IngestProgress("embedding", chunks_total=len(texts), chunks_done=done))
        dense = np.concatenate(dense_parts) if dense_parts else self.embedder.embed_passages([])
        return dense, tokens

    def _flush(
        self, pending: list[_Pending], report: IngestReport, on_progress: ProgressCallback | None = None
    ) -> None:
        if not pending:
            return
        chunks = [c for item in pending for c in item.chunks]
        t0 = time.perf_counter()
        # Embedding first, writing after: an ingest stopped or crashed while it embeds (the long part) has
        # changed nothing, and the document's previous version answers until the new one is complete.
        dense, tokens = self._embed([self.embedding_text(c) for c in chunks], on_progress)
        sparse = [self.sparse.encode_document(c.text) for c in chunks]
        t1 = time.perf_counter()
        report.stage_seconds["embed"] += t1 - t0
        if on_progress is not None:
            on_progress(IngestProgress("writing", chunks_total=len(chunks), chunks_done=len(chunks)))
        for item in pending:
            self.store.put_document(item.record)  # invariant 2: pending before any chunk is written
        ingested_at = now_iso()
        for start in range(0, len(chunks), self.batch_size):
            end = start + self.batch_size
            report.points_written += self.store.upsert_chunks(
                chunks[start:end],
                dense[start:end],
                sparse[start:end],
                ingested_at,
                tokens=tokens[start:end] if tokens is not None else None,
            )
        for item in pending:
            report.points_deleted += self.store.delete_chunks(
                item.record.doc_id, keep={c.point_id for c in item.chunks}
            )
            item.record.status = "complete"
            self.store.put_document(item.record)
        report.stage_seconds["upsert"] += time.perf_counter() - t1
