"""Ingestion as jobs: an upload is stored durably, a job for it goes on a queue, workers run it, and each
document has a status a client can poll (queued → processing → complete | failed, with the reason).

Two queues behind one ``JobQueue`` interface, picked by ``RAG_INGEST_QUEUE``:

- ``local`` (default, ``make run``): in the API process, a worker thread; jobs are journalled as JSON files
  next to the spooled uploads, so a crash or restart loses nothing: the next start queues them again.
- ``redis``: a Redis stream with a consumer group (docs/scaling.md says why Redis Streams and not Celery).
  Workers are separate processes (``python -m ingest.worker``, the ``worker`` service in compose) that scale
  by count. A worker killed mid-job leaves its entry pending; another worker claims it once it has been idle
  for ``RAG_INGEST_VISIBILITY_TIMEOUT_S`` (a live worker keeps its long jobs alive by re-claiming them).

Delivery is at least once; the ingest pipeline is idempotent (deterministic ids, pending/complete manifest),
so a job run twice leaves exactly what one run leaves. A job that kills its worker every time (a poison
file) or keeps failing is marked ``failed`` after ``RAG_INGEST_MAX_ATTEMPTS`` deliveries and never blocks
the queue. Uploads live in the spool (``<RAG_DATA_DIR>/uploads``, a volume shared with the workers in
compose) until their job ends.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ingest.pipeline import FileOutcome, IngestReport, iter_files
from services.core.types import IngestQueueKind, JobState, doc_id_for, sha256_hex

if TYPE_CHECKING:
    from ingest.maintenance import IndexMaintainer
    from ingest.pipeline import IngestPipeline
    from services.core.store import VectorStore

logger = logging.getLogger(__name__)

BLOB_NAME = re.compile(r"[0-9a-f]{32}")
DONE: tuple[JobState, ...] = ("complete", "failed")


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
    outcome: str = ""
    chunks: int = 0
    reason: str = ""
    updated_at: str = field(default_factory=now)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> JobStatus:
        return cls(**json.loads(text))

    @classmethod
    def of(cls, job: IngestJob, state: JobState, **extra: Any) -> JobStatus:
        return cls(job.doc_id, job.job_id, job.source, state, **extra)


class UploadSpool:
    """Uploaded bytes on disk until their job ends: one file per job, written atomically (temporary file,
    fsync, rename), so a crash never leaves a half-written upload under a job's name."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, blob: str) -> Path:
        """A blob is a job id (32 hex digits): a job read from the queue can never name another path."""
        if not BLOB_NAME.fullmatch(blob):
            raise ValueError(f"not a spool blob name: {blob!r}")
        return self.root / blob

    def put(self, blob: str, data: bytes) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self._path(blob)
        tmp = path.with_name(f".{blob}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)

    def read(self, blob: str) -> bytes:
        return self._path(blob).read_bytes()

    def discard(self, blob: str) -> None:
        self._path(blob).unlink(missing_ok=True)


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

    def depth(self) -> int:
        """Jobs waiting or running."""
        ...

    def ping(self) -> bool: ...

    def close(self) -> None: ...


def backoff(base_s: float, attempt: int) -> float:
    """Seconds before a job that failed its ``attempt``-th delivery is handed out again: base, 2x, 4x, ... 5 min."""
    return min(300.0, base_s * 2 ** max(0, attempt - 1))


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
        self._cond = threading.Condition()
        self._closed = False
        self._recover()

    def _entry(self, job_id: str) -> Path:
        return self.journal / f"{job_id}.json"

    def _write(self, job: IngestJob, deliveries: int) -> None:
        self.journal.mkdir(parents=True, exist_ok=True)
        path = self._entry(job.job_id)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"job": asdict(job), "deliveries": deliveries}), encoding="utf-8")
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
            except (OSError, ValueError, KeyError, TypeError) as exc:
                logger.warning("ignoring an unreadable job journal entry %s: %s", path, exc)
        for job, deliveries in sorted(entries, key=lambda e: e[0].submitted_at):
            self._jobs.append(job)
            self._status[job.doc_id] = JobStatus.of(job, "queued", attempts=deliveries)
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

    def depth(self) -> int:
        with self._cond:
            return len(self._jobs) + len(self._running)

    def ping(self) -> bool:
        return not self._closed

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class RedisQueue:
    """Jobs on a Redis stream read by the consumer group ``workers``; statuses as keys with a TTL.

    - ``reserve`` first claims an entry another consumer left pending for longer than the visibility timeout
      (XAUTOCLAIM: that worker died), then reads new ones (XREADGROUP, blocking);
    - the delivery count Redis keeps per pending entry is the attempt number, crashes included;
    - ``finish`` acknowledges and deletes the entry; ``retry`` acknowledges it and adds the job again, with
      its attempts carried in the entry, so a retried job goes to the back of the queue.
    """

    kind: IngestQueueKind = "redis"
    GROUP = "workers"

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "ragstack:ingest",
        max_attempts: int = 3,
        visibility_timeout_s: float = 300.0,
        retry_backoff_s: float = 5.0,
        status_ttl_s: int = 7 * 24 * 3600,
    ) -> None:
        import redis

        # Any: redis-py types every command as sync-or-async; this client is the sync one.
        self.redis: Any = redis.Redis.from_url(
            url, socket_timeout=30, socket_connect_timeout=5, health_check_interval=30
        )
        self.stream = f"{prefix}:jobs"
        self.delayed = f"{prefix}:delayed"  # retried jobs by due time (a sorted set), moved to the stream when due
        self.retry_backoff_s = retry_backoff_s
        self.prefix = prefix
        self.max_attempts = max_attempts
        self.visibility_ms = int(visibility_timeout_s * 1000)
        self.status_ttl_s = status_ttl_s
        self._group_ready = False

    def _group(self) -> None:
        if self._group_ready:
            return
        import redis

        try:
            self.redis.xgroup_create(self.stream, self.GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def _key(self, doc_id: str) -> str:
        return f"{self.prefix}:status:{doc_id}"

    def _set(self, status: JobStatus, *, latest_only: bool = True) -> None:
        """Write a status unless a newer job of the same document owns it (a re-upload while one runs)."""
        key = self._key(status.doc_id)
        if latest_only:
            current = self.status(status.doc_id)
            if current is not None and current.job_id != status.job_id and current.state not in DONE:
                return
        self.redis.set(key, status.to_json(), ex=self.status_ttl_s)

    def submit(self, job: IngestJob) -> JobStatus:
        self._group()
        status = JobStatus.of(job, "queued")
        self._set(status, latest_only=False)
        self.redis.xadd(self.stream, {"job": job.to_json(), "retries": "0"})
        return status

    def _delivery(self, entry_id: bytes | str, fields: dict[Any, Any], deliveries: int) -> Delivery:
        token = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        get = {(k.decode() if isinstance(k, bytes) else k): v for k, v in fields.items()}
        job = IngestJob.from_json(get["job"])
        retries = int(get.get("retries", 0))
        return Delivery(job, retries + deliveries, token)

    def _times_delivered(self, token: str) -> int:
        pending = self.redis.xpending_range(self.stream, self.GROUP, min=token, max=token, count=1)
        return int(pending[0]["times_delivered"]) if pending else 1

    def _promote_due(self) -> None:
        """Move retried jobs whose backoff has passed onto the stream. ZREM is the claim: of several workers
        promoting at once, only the one that removed an entry adds it."""
        for member in self.redis.zrangebyscore(self.delayed, 0, time.time(), start=0, num=20):
            if self.redis.zrem(self.delayed, member):
                job_json, _, retries = (member.decode() if isinstance(member, bytes) else member).rpartition("\n")
                self.redis.xadd(self.stream, {"job": job_json, "retries": retries})

    def reserve(self, consumer: str, timeout_s: float) -> Delivery | None:
        self._group()
        self._promote_due()
        claimed = self.redis.xautoclaim(self.stream, self.GROUP, consumer, self.visibility_ms, "0-0", count=1)
        entries = claimed[1] if len(claimed) > 1 else []
        entries = [e for e in entries if e and e[1]]  # an entry deleted meanwhile comes back empty
        if entries:
            entry_id, fields = entries[0]
            token = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
            delivery = self._delivery(entry_id, fields, self._times_delivered(token))
            logger.warning("took over ingest job %s (%s) left by a worker that stopped", token, delivery.job.source)
        else:
            block = max(1, int(timeout_s * 1000))
            read = self.redis.xreadgroup(self.GROUP, consumer, {self.stream: ">"}, count=1, block=block)
            if not read:
                return None
            entry_id, fields = read[0][1][0]
            delivery = self._delivery(entry_id, fields, 1)
        self._set(JobStatus.of(delivery.job, "processing", attempts=delivery.attempt))
        return delivery

    def extend(self, delivery: Delivery) -> None:
        # Re-claiming our own entry resets its idle time (and adds no delivery with JUSTID).
        consumer = f"heartbeat-{os.getpid()}"
        self.redis.xclaim(self.stream, self.GROUP, consumer, 0, [delivery.token], justid=True)

    def finish(self, delivery: Delivery, status: JobStatus) -> None:
        self._set(status)
        pipe = self.redis.pipeline()
        pipe.xack(self.stream, self.GROUP, delivery.token)
        pipe.xdel(self.stream, delivery.token)
        pipe.execute()

    def requeue(self, delivery: Delivery, status: JobStatus, delay_s: float) -> None:
        self._set(status)
        pipe = self.redis.pipeline(transaction=True)
        pipe.zadd(self.delayed, {f"{delivery.job.to_json()}\n{delivery.attempt}": time.time() + delay_s})
        pipe.xack(self.stream, self.GROUP, delivery.token)
        pipe.xdel(self.stream, delivery.token)
        pipe.execute()

    def status(self, doc_id: str) -> JobStatus | None:
        raw = self.redis.get(self._key(doc_id))
        return JobStatus.from_json(raw) if raw else None

    def depth(self) -> int:
        self._group()
        return int(self.redis.xlen(self.stream)) + int(self.redis.zcard(self.delayed))

    def ping(self) -> bool:
        try:
            return bool(self.redis.ping())
        except Exception:
            return False

    def close(self) -> None:
        self.redis.close()


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
    ) -> None:
        self.queue = queue
        self.spool = spool
        self.pipeline = pipeline
        self.maintainer = maintainer
        self.consumer = consumer or f"worker-{os.uname().nodename}-{os.getpid()}"
        self.heartbeat_s = heartbeat_s
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
        try:
            data = self.spool.read(job.blob)
        except FileNotFoundError:
            reason = "the uploaded file is no longer in the spool (RAG_UPLOAD_DIR): upload it again"
            return self._end(delivery, JobStatus.of(job, "failed", attempts=delivery.attempt, reason=reason))
        try:
            with self._heartbeat(delivery):
                report = self.pipeline.ingest_bytes(data, job.filename, job.source, job.tags)
        except Exception as exc:  # the store or the model failed: worth another try
            logger.warning("ingest job %s (%s) failed on attempt %d: %s", job.job_id, job.source, delivery.attempt, exc)
            reason = f"{type(exc).__name__}: {exc}"
            if delivery.attempt >= self.queue.max_attempts:
                return self._end(delivery, JobStatus.of(job, "failed", attempts=delivery.attempt, reason=reason))
            status = JobStatus.of(job, "queued", attempts=delivery.attempt, reason=reason)
            self.queue.requeue(delivery, status, backoff(self.queue.retry_backoff_s, delivery.attempt))
            return status
        outcome = report.outcomes[0] if report.outcomes else None
        state: JobState = "failed" if outcome is None or outcome.status in ("skipped", "failed") else "complete"
        status = JobStatus.of(
            job,
            state,
            attempts=delivery.attempt,
            outcome=outcome.status if outcome else "",
            chunks=outcome.chunks if outcome else 0,
            reason=outcome.reason if outcome else "the pipeline reported nothing",
        )
        self._end(delivery, status)
        self._wrote |= outcome is not None and outcome.status in ("added", "updated")
        self._upkeep()
        return status

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
        present = {str(f.resolve()) for f in files}
        prefix = str(root).rstrip("/") + "/"
        for source, record in known.items():
            if source.startswith(prefix) and source not in present:
                report.points_deleted += self.store.delete_chunks(record.doc_id)
                self.store.delete_document(record.doc_id)
                self._queued.pop(source, None)
                report.outcomes.append(FileOutcome(source, "deleted", record.doc_id, title=record.title))
        report.seconds = time.perf_counter() - started
        return report


def ended(job: IngestJob, status: JobStatus) -> bool:
    """Whether a job is over for its submitter: it ended, or a newer job of the same document replaced it."""
    return status.state in DONE or status.job_id != job.job_id


def wait_for(queue: JobQueue, jobs: list[IngestJob], timeout_s: float, *, poll_s: float = 0.1) -> list[JobStatus]:
    """Each job's status once every one has ended, or as they stand at the deadline. A status that belongs to
    a newer job of the same document (uploaded again meanwhile) stands for that document's latest word."""
    deadline = time.monotonic() + timeout_s
    while True:
        statuses = [queue.status(job.doc_id) or JobStatus.of(job, "queued") for job in jobs]
        if all(map(ended, jobs, statuses)) or time.monotonic() >= deadline:
            return statuses
        time.sleep(poll_s)
