"""The seam between producers (the API, the folder watcher) and workers: ``JobQueue``, and what it hands out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ingest.jobs.model import IngestJob, JobStatus
from services.core.types import IngestQueueKind


@dataclass(slots=True)
class Delivery:
    """A job handed to one worker. ``attempt`` counts deliveries, redeliveries after a crash included."""

    job: IngestJob
    attempt: int
    token: str = ""


class JobQueue(Protocol):
    """The seam between the API (producer), the folder watcher (producer) and the workers (consumers)."""

    kind: IngestQueueKind
    max_attempts: int
    retry_backoff_s: float

    def submit(self, job: IngestJob) -> JobStatus: ...

    def reserve(self, consumer: str, timeout_s: float) -> Delivery | None:
        """The next job for this worker (marked processing), or None after ``timeout_s``."""
        ...

    def extend(self, delivery: Delivery) -> None:
        """Keep a long job claimed (a heartbeat): without it another worker takes the job over."""
        ...

    def finish(self, delivery: Delivery, status: JobStatus) -> None:
        """The job's end (complete or failed): it is never delivered again."""
        ...

    def requeue(self, delivery: Delivery, status: JobStatus, delay_s: float) -> None:
        """Hand the job out again, no sooner than ``delay_s`` from now, recording ``status`` (queued, why)."""
        ...

    def status(self, doc_id: str) -> JobStatus | None: ...

    def report(self, status: JobStatus) -> None:
        """Record a running job's progress (its status, still ``processing``)."""
        ...

    def cancel(self, doc_id: str) -> JobStatus | None:
        """Ask the document's latest job to stop: a queued one is ``cancelled`` at once and never runs, a
        running one stops at its next progress report, before it writes. Returns the status now (an ended
        job's as it is: nothing to stop), None when there is no job for the document."""
        ...

    def cancel_requested(self, job_id: str) -> bool: ...

    def depth(self) -> int:
        """Jobs waiting or running."""
        ...

    def ping(self) -> bool: ...

    def close(self) -> None: ...


def backoff(base_s: float, attempt: int) -> float:
    """Seconds before a job that failed its ``attempt``-th delivery is handed out again: base, 2x, 4x, ... 5 min."""
    return min(300.0, base_s * 2 ** max(0, attempt - 1))
