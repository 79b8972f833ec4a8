"""Producers other than the API: the folder watcher in queue mode hands files to the workers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.jobs.model import DONE, IngestJob
from ingest.jobs.queue import JobQueue
from ingest.jobs.spool import UploadSpool
from ingest.pipeline import FileOutcome, IngestReport, delete_vanished, iter_files
from services.core.types import doc_id_for, sha256_hex

if TYPE_CHECKING:
    from services.core.storage.store import VectorStore


class FolderProducer:
    """The folder watcher's ``sync`` in queue mode: it hands files to the workers instead of ingesting them.

    A file whose bytes match its complete manifest entry is unchanged; a new or changed file is spooled and
    queued (once per content: a file still waiting is not queued again on every pass); a document whose
    file is gone is deleted here and now (the store alone, no model). Same sources as ``IngestPipeline.sync``
    (the resolved path), so a folder moved between the two modes is not ingested twice."""

    def __init__(self, queue: JobQueue, spool: UploadSpool, store: VectorStore) -> None:
        self.queue = queue
        self.spool = spool
        self.store = store
        self._queued: dict[str, str] = {}  # source -> content hash of its job still waiting or running

    def sync(self, root: Path) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport()
        root = root.resolve()
        files = list(iter_files(root))
        known = {r.source: r for r in self.store.list_documents()}
        for path in files:
            source = str(path.resolve())
            try:
                data = path.read_bytes()
            except OSError as exc:
                report.outcomes.append(FileOutcome(source, "skipped", doc_id_for(source), reason=str(exc)))
                continue
            digest = sha256_hex(data)
            record = known.get(source)
            if record is not None and record.status == "complete" and record.content_hash == digest:
                report.outcomes.append(FileOutcome(source, "unchanged", record.doc_id))
                continue
            waiting = self.queue.status(doc_id_for(source))
            if self._queued.get(source) == digest and waiting is not None and waiting.state not in DONE:
                report.outcomes.append(FileOutcome(source, "queued", waiting.doc_id))
                continue
            job = IngestJob.new(filename=path.name, source=source)
            self.spool.put(job.blob, data)
            self.queue.submit(job)
            self._queued[source] = digest
            report.outcomes.append(FileOutcome(source, "queued", job.doc_id))
        for source in delete_vanished(self.store, root, files, report):
            self._queued.pop(source, None)
        report.seconds = time.perf_counter() - started
        return report
