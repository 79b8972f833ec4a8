"""The job model: an ingest job, where it stands (``JobStatus``), and when it is over for its submitter."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, get_args

from services.core.types import JobOutcome, JobState, doc_id_for

DONE: tuple[JobState, ...] = ("complete", "failed", "cancelled")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(slots=True)
class IngestJob:
    """One uploaded file to ingest. ``blob`` names its bytes in the spool."""

    job_id: str
    doc_id: str
    source: str
    filename: str
    blob: str
    tags: list[str] = field(default_factory=list)
    submitted_at: str = ""

    @classmethod
    def new(cls, *, filename: str, source: str, tags: list[str] | None = None) -> IngestJob:
        job_id = uuid.uuid4().hex
        return cls(job_id, doc_id_for(source), source, filename, job_id, list(tags or []), now())

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> IngestJob:
        return cls(**json.loads(text))


@dataclass(slots=True)
class JobStatus:
    """Where a document's latest job stands; ``outcome`` is the pipeline's word once it ran (added, updated,
    unchanged, skipped) and ``reason`` says why a job failed or was retried."""

    doc_id: str
    job_id: str
    source: str
    state: JobState
    attempts: int = 0
    outcome: JobOutcome = ""
    chunks: int = 0
    reason: str = ""
    updated_at: str = field(default_factory=now)
    # progress while it runs (pipeline.IngestProgress): pages read, chunks embedded of the file's total
    stage: str = ""
    pages: int = 0
    chunks_done: int = 0
    chunks_total: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> JobStatus:
        status = cls(**json.loads(text))
        if status.state not in get_args(JobState) or status.outcome not in get_args(JobOutcome):
            raise ValueError(f"not a job status: state {status.state!r}, outcome {status.outcome!r}")
        return status

    @classmethod
    def of(cls, job: IngestJob, state: JobState, **extra: Any) -> JobStatus:
        return cls(job.doc_id, job.job_id, job.source, state, **extra)


def ended(job: IngestJob, status: JobStatus) -> bool:
    """Whether a job is over for its submitter: it ended, or a newer job of the same document replaced it."""
    return status.state in DONE or status.job_id != job.job_id


def cancelling(status: JobStatus) -> JobStatus:
    """The status a cancel request leaves (both queues): a queued job is over at once, a running one says it is
    stopping (it ends ``cancelled`` at its next progress report, before it writes)."""
    if status.state == "queued":
        return replace(status, state="cancelled", reason="cancelled before it ran", updated_at=now())
    return replace(status, reason="cancelling: it stops before it writes anything", updated_at=now())
