"""``RAG_INGEST_QUEUE=local``: the in-process queue, journalled next to the spool (``make run``)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from dataclasses import asdict
from pathlib import Path

from ingest.jobs.model import DONE, IngestJob, JobStatus, cancelling
from ingest.jobs.queue import Delivery
from services.core.types import IngestQueueKind

logger = logging.getLogger(__name__)


class LocalQueue:
    """The in-process queue: a deque and a condition, journalled to ``<spool>/jobs/<job_id>.json``.

    A journal file exists exactly while its job is unfinished, and counts its deliveries, so a restart queues
    every unfinished job again and a job that killed the process ``max_attempts`` times is failed, not rerun.
    Statuses of finished jobs are kept in memory (the manifest in the store is the durable record)."""

    kind: IngestQueueKind = "local"

    def __init__(self, spool_dir: Path, *, max_attempts: int = 3, retry_backoff_s: float = 5.0) -> None:
        self.max_attempts = max_attempts
        self.retry_backoff_s = retry_backoff_s
        self.journal = Path(spool_dir) / "jobs"
        self._jobs: deque[IngestJob] = deque()
        self._due: dict[str, float] = {}  # job id -> monotonic time before which a retried job is not handed out
        self._running: dict[str, IngestJob] = {}
        self._status: dict[str, JobStatus] = {}
        self._cancelled: set[str] = set()  # job ids asked to stop (journalled with their job)
        self._cond = threading.Condition()
        self._closed = False
        self._recover()

    def _entry(self, job_id: str) -> Path:
        return self.journal / f"{job_id}.json"

    def _write(self, job: IngestJob, deliveries: int) -> None:
        self.journal.mkdir(parents=True, exist_ok=True)
        path = self._entry(job.job_id)
        tmp = path.with_suffix(".tmp")
        record = {"job": asdict(job), "deliveries": deliveries, "cancelled": job.job_id in self._cancelled}
        tmp.write_text(json.dumps(record), encoding="utf-8")
        tmp.replace(path)

    def _deliveries(self, job_id: str) -> int:
        try:
            return int(json.loads(self._entry(job_id).read_text(encoding="utf-8"))["deliveries"])
        except (OSError, ValueError, KeyError):
            return 0

    def _recover(self) -> None:
        if not self.journal.is_dir():
            return
        entries = []
        for path in self.journal.glob("*.json"):
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
                entries.append((IngestJob(**record["job"]), int(record["deliveries"])))
                if record.get("cancelled"):
                    self._cancelled.add(entries[-1][0].job_id)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                logger.warning("ignoring an unreadable job journal entry %s: %s", path, exc)
        for job, deliveries in sorted(entries, key=lambda e: e[0].submitted_at):
            self._jobs.append(job)
            status = JobStatus.of(job, "queued", attempts=deliveries)
            self._status[job.doc_id] = cancelling(status) if job.job_id in self._cancelled else status
        if entries:
            logger.info("queued again %d unfinished ingest job(s) from %s", len(entries), self.journal)

    def submit(self, job: IngestJob) -> JobStatus:
        self._write(job, 0)
        status = JobStatus.of(job, "queued")
        with self._cond:
            self._jobs.append(job)
            self._status[job.doc_id] = status
            self._cond.notify()
        return status

    def _next_due(self) -> tuple[IngestJob | None, float]:
        """The first job that may run now, else how long until one may (called holding the condition)."""
        now = time.monotonic()
        wait = float("inf")
        for job in self._jobs:
            due = self._due.get(job.job_id, 0.0)
            if due <= now:
                self._jobs.remove(job)
                self._due.pop(job.job_id, None)
                return job, 0.0
            wait = min(wait, due - now)
        return None, wait

    def reserve(self, consumer: str, timeout_s: float) -> Delivery | None:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                job, wait = self._next_due()
                if job is not None:
                    break
                left = deadline - time.monotonic()
                if self._closed or left <= 0:
                    return None
                self._cond.wait(min(left, wait))
            self._running[job.job_id] = job
        attempt = self._deliveries(job.job_id) + 1
        self._write(job, attempt)  # counted before the work: a crash during it still counts
        if not self.cancel_requested(job.job_id):  # a cancelled one is only handed out to be ended
            self._set(JobStatus.of(job, "processing", attempts=attempt))
        return Delivery(job, attempt)

    def extend(self, delivery: Delivery) -> None:
        return None  # one process: nobody else could take the job over

    def _set(self, status: JobStatus) -> None:
        with self._cond:
            current = self._status.get(status.doc_id)
            # A newer upload of the same document owns its status; an older job's end must not hide it.
            if current is None or current.job_id == status.job_id or current.state in DONE:
                self._status[status.doc_id] = status

    def finish(self, delivery: Delivery, status: JobStatus) -> None:
        self._set(status)
        with self._cond:
            self._running.pop(delivery.job.job_id, None)
            self._cancelled.discard(delivery.job.job_id)
        self._entry(delivery.job.job_id).unlink(missing_ok=True)

    def requeue(self, delivery: Delivery, status: JobStatus, delay_s: float) -> None:
        job = delivery.job
        self._set(status)
        with self._cond:
            self._running.pop(job.job_id, None)
            self._due[job.job_id] = time.monotonic() + delay_s
            self._jobs.append(job)
            self._cond.notify()

    def status(self, doc_id: str) -> JobStatus | None:
        with self._cond:
            return self._status.get(doc_id)

    def report(self, status: JobStatus) -> None:
        self._set(status)

    def cancel(self, doc_id: str) -> JobStatus | None:
        with self._cond:
            status = self._status.get(doc_id)
            if status is None or status.state in DONE:
                return status
            self._cancelled.add(status.job_id)
            waiting = (j for j in self._jobs if j.job_id == status.job_id)
            job = self._running.get(status.job_id) or next(waiting, None)
            self._status[doc_id] = stopped = cancelling(status)
        if job is not None:  # journalled: a restart does not run it again
            self._write(job, self._deliveries(job.job_id))
        return stopped

    def cancel_requested(self, job_id: str) -> bool:
        with self._cond:
            return job_id in self._cancelled

    def depth(self) -> int:
        with self._cond:
            return len(self._jobs) + len(self._running)

    def ping(self) -> bool:
        return not self._closed

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
