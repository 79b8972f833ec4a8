"""What a worker does with one delivery, the same in the API's thread and in ``ingest.worker``."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from ingest.jobs.model import JobStatus
from ingest.jobs.queue import Delivery, JobQueue, backoff
from ingest.jobs.spool import UploadSpool
from ingest.pipeline import IngestCancelled, IngestProgress, ProgressCallback
from services.core.types import JobState

if TYPE_CHECKING:
    from ingest.maintenance import IndexMaintainer
    from ingest.pipeline import IngestPipeline

logger = logging.getLogger(__name__)


class JobRunner:
    """What a worker does with one delivery, the same in the API's thread and in ``ingest.worker``: read the
    spooled bytes, run the idempotent pipeline (with a heartbeat for long files), record the outcome, free the
    spool, and ask for index upkeep once chunks were written."""

    def __init__(
        self,
        queue: JobQueue,
        spool: UploadSpool,
        pipeline: IngestPipeline,
        *,
        maintainer: IndexMaintainer | None = None,
        consumer: str | None = None,
        heartbeat_s: float = 30.0,
        progress_s: float = 1.0,
    ) -> None:
        self.queue = queue
        self.spool = spool
        self.pipeline = pipeline
        self.maintainer = maintainer
        self.consumer = consumer or f"worker-{os.uname().nodename}-{os.getpid()}"
        self.heartbeat_s = heartbeat_s
        self.progress_s = progress_s  # the least time between two progress writes of one job
        self.done = 0
        self._wrote = False  # chunks were written since the last index upkeep request
        self._paused = False  # the store did not answer at the last look: no job is taken meanwhile

    def _end(self, delivery: Delivery, status: JobStatus) -> JobStatus:
        self.queue.finish(delivery, status)
        self.spool.discard(delivery.job.blob)
        self.done += 1
        return status

    @contextlib.contextmanager
    def _heartbeat(self, delivery: Delivery) -> Iterator[None]:
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.heartbeat_s):
                try:
                    self.queue.extend(delivery)
                except Exception as exc:  # the queue is down: the job may be redelivered, which is harmless
                    logger.warning("ingest job heartbeat failed: %s", exc)

        thread = threading.Thread(target=beat, name="ingest-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(5)

    def store_available(self) -> bool:
        """A store that is down pauses the worker: the jobs stay queued, no attempt is spent on them."""
        ok = self.pipeline.store.ping()
        if ok == self._paused:  # log the change only
            if ok:
                logger.info("the store answers again: taking ingest jobs")
            else:
                logger.warning("the store does not answer: ingest jobs wait in the queue until it does")
        self._paused = not ok
        return ok

    def run_once(self, timeout_s: float = 1.0) -> JobStatus | None:
        if not self.store_available():
            time.sleep(timeout_s)
            return None
        delivery = self.queue.reserve(self.consumer, timeout_s)
        if delivery is None:
            self._upkeep()
            return None
        job = delivery.job
        if delivery.attempt > self.queue.max_attempts:
            reason = f"gave up after {delivery.attempt - 1} deliveries: the worker stopped during each (poison file?)"
            logger.error("ingest job %s (%s): %s", job.job_id, job.source, reason)
            return self._end(delivery, JobStatus.of(job, "failed", attempts=delivery.attempt - 1, reason=reason))
        if self.queue.cancel_requested(job.job_id):
            reason = "cancelled before it ran"
            return self._end(delivery, JobStatus.of(job, "cancelled", attempts=delivery.attempt, reason=reason))
        try:
            data = self.spool.read(job.blob)
        except FileNotFoundError:
            reason = "the uploaded file is no longer in the spool (RAG_UPLOAD_DIR): upload it again"
            return self._end(delivery, JobStatus.of(job, "failed", attempts=delivery.attempt, reason=reason))
        try:
            with self._heartbeat(delivery):
                watch = self._progress(delivery)
                report = self.pipeline.ingest_bytes(data, job.filename, job.source, job.tags, on_progress=watch)
        except IngestCancelled:
            reason = "cancelled while it ran, before it wrote anything: a previous version still answers"
            logger.info("ingest job %s (%s) %s", job.job_id, job.source, reason)
            return self._end(delivery, JobStatus.of(job, "cancelled", attempts=delivery.attempt, reason=reason))
        except Exception as exc:  # the store or the model failed: worth another try
            logger.warning("ingest job %s (%s) failed on attempt %d: %s", job.job_id, job.source, delivery.attempt, exc)
            reason = f"{type(exc).__name__}: {exc}"
            if delivery.attempt >= self.queue.max_attempts:
                return self._end(delivery, JobStatus.of(job, "failed", attempts=delivery.attempt, reason=reason))
            status = JobStatus.of(job, "queued", attempts=delivery.attempt, reason=reason)
            self.queue.requeue(delivery, status, backoff(self.queue.retry_backoff_s, delivery.attempt))
            return status
        outcome = report.outcomes[0] if report.outcomes else None
        if outcome is None or outcome.status not in ("added", "updated", "unchanged", "skipped", "failed"):
            said = outcome.status if outcome else "nothing"
            reason = f"the pipeline reported {said} for one file (a bug: one file ends added, updated, unchanged, "
            reason += "skipped or failed)"
            status = JobStatus.of(job, "failed", attempts=delivery.attempt, reason=reason)
            return self._end(delivery, status)
        state: JobState = "failed" if outcome.status in ("skipped", "failed") else "complete"
        status = JobStatus.of(
            job,
            state,
            attempts=delivery.attempt,
            outcome=outcome.status,
            chunks=outcome.chunks,
            reason=outcome.reason,
        )
        self._end(delivery, status)
        self._wrote |= outcome.status in ("added", "updated")
        self._upkeep()
        return status

    def _progress(self, delivery: Delivery) -> ProgressCallback:
        """The pipeline's progress callback for this job: it stops the ingest when a cancel was asked for,
        and records the progress in the job's status (at most every ``progress_s``, and at each stage)."""
        job, last = delivery.job, {"at": 0.0, "pages": 0}

        def report(progress: IngestProgress) -> None:
            if self.queue.cancel_requested(job.job_id):
                raise IngestCancelled(job.job_id)
            last["pages"] = progress.pages or last["pages"]
            now = time.monotonic()
            if progress.stage == "embedding" and now - last["at"] < self.progress_s:
                return
            last["at"] = now
            status = JobStatus.of(
                job,
                "processing",
                attempts=delivery.attempt,
                stage=progress.stage,
                pages=int(last["pages"]),
                chunks_done=progress.chunks_done,
                chunks_total=progress.chunks_total,
            )
            self.queue.report(status)

        return report

    def _upkeep(self) -> None:
        """Index upkeep once the queue is drained, not after every job of a batch (one build, not N)."""
        if self._wrote and self.maintainer is not None and self.queue.depth() == 0:
            self._wrote = False
            self.maintainer.schedule()

    def run(
        self, stop: threading.Event, *, poll_s: float = 1.0, on_health: Callable[[bool], None] | None = None
    ) -> None:
        """Jobs until ``stop`` is set; the job in hand is finished first (a graceful stop loses nothing).
        ``on_health`` hears whether the queue answered (a worker's heartbeat stops while it does not)."""
        while not stop.is_set():
            try:
                self.run_once(poll_s)
            except Exception as exc:  # the queue itself is unreachable: wait and try again
                if on_health is not None:
                    on_health(False)
                logger.warning("ingest queue unavailable (%s); retrying in 5 s", exc)
                stop.wait(5)
            else:
                if on_health is not None:
                    on_health(True)
