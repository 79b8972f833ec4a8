"""The ingestion job queue, one suite over both queues that run here: the in-process ``LocalQueue`` and
``RedisQueue`` on a real ``redis-server``. The pipeline is a ``FakePipeline`` (what a job does to the store
is the pipeline's own suite); what is proven here is the queue's contract: statuses, at-least-once delivery,
redelivery after a dead worker, bounded retries, and a poison job that never blocks the others."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from redis_server import redis_server

from ingest.jobs import (
    FolderProducer,
    IngestJob,
    JobQueue,
    JobRunner,
    JobStatus,
    LocalQueue,
    RedisQueue,
    UploadSpool,
    ended,
)
from ingest.pipeline import FileOutcome, IngestProgress, IngestReport, ProgressCallback
from services.core.types import DocumentRecord, doc_id_for, sha256_hex

pytestmark = pytest.mark.integration


def wait_for(queue: JobQueue, jobs: list[IngestJob], timeout_s: float, *, poll_s: float = 0.1) -> list[JobStatus]:
    """Each job's status once every one has ended, or as they stand at the deadline. A status that belongs to
    a newer job of the same document (uploaded again meanwhile) stands for that document's latest word."""
    deadline = time.monotonic() + timeout_s
    while True:
        statuses = [queue.status(job.doc_id) or JobStatus.of(job, "queued") for job in jobs]
        if all(map(ended, jobs, statuses)) or time.monotonic() >= deadline:
            return statuses
        time.sleep(poll_s)  # the API route polls the same way, asynchronously


class FakePingStore:
    def __init__(self) -> None:
        self.up = True

    def ping(self) -> bool:
        return self.up


class FakePipeline:
    """Records what it ingested; a file named ``boom*`` raises (the store failing), ``bad*`` is skipped."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []
        self.fail_times: dict[str, int] = {}
        self.store = FakePingStore()
        self.between: Callable[[], None] = lambda: None  # runs between two progress reports
        self.seen: list[IngestProgress] = []

    def ingest_bytes(
        self,
        data: bytes,
        filename: str,
        source: str,
        tags: list[str] | tuple[str, ...] = (),
        *,
        on_progress: ProgressCallback | None = None,
    ):
        self.calls.append((source, data))
        if on_progress is not None:  # as the real pipeline: parsed, embedding in slices, writing
            for progress in (
                IngestProgress("parsed", pages=3, chunks_total=4),
                IngestProgress("embedding", chunks_total=4, chunks_done=2),
                IngestProgress("embedding", chunks_total=4, chunks_done=4),
                IngestProgress("writing", chunks_total=4, chunks_done=4),
            ):
                on_progress(progress)
                self.seen.append(progress)
                self.between()
        if filename.startswith("boom") and self.fail_times.get(filename, 99) > 0:
            self.fail_times[filename] = self.fail_times.get(filename, 99) - 1
            raise ConnectionError("store unavailable")
        if filename.startswith("bad"):
            return IngestReport([FileOutcome(source, "skipped", reason="unsupported file type")])
        return IngestReport([FileOutcome(source, "added", doc_id="d", chunks=len(data) // 10 + 1)])


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture(params=["local", "redis"])
def queue(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobQueue]:
    if request.param == "local":
        q: JobQueue = LocalQueue(tmp_path / "spool", max_attempts=3, retry_backoff_s=0)
    else:
        url = request.getfixturevalue("redis_url")
        q = RedisQueue(
            url, prefix=f"test:{request.node.name}", max_attempts=3, visibility_timeout_s=0.5, retry_backoff_s=0
        )
    yield q
    q.close()


def submit(queue: JobQueue, spool: UploadSpool, name: str, data: bytes = b"hello world") -> IngestJob:
    job = IngestJob.new(filename=name, source=f"upload://{name}", tags=["t"])
    spool.put(job.blob, data)
    queue.submit(job)
    return job


def test_a_job_goes_queued_processing_complete_and_frees_its_upload(queue: JobQueue, tmp_path: Path) -> None:
    spool, pipeline = UploadSpool(tmp_path / "spool"), FakePipeline()
    job = submit(queue, spool, "a.md", b"x" * 95)
    assert queue.status(job.doc_id).state == "queued"  # type: ignore[union-attr]
    assert queue.depth() == 1
    status = JobRunner(queue, spool, pipeline).run_once(5)  # type: ignore[arg-type]
    assert status is not None and status.state == "complete" and status.outcome == "added" and status.chunks == 10
    assert queue.status(job.doc_id) == status
    assert pipeline.calls == [("upload://a.md", b"x" * 95)]
    assert not (tmp_path / "spool" / job.blob).exists()
    assert queue.depth() == 0
    assert JobRunner(queue, spool, pipeline).run_once(0.2) is None  # nothing left


def test_a_file_the_pipeline_skips_fails_with_the_reason_and_is_not_retried(queue: JobQueue, tmp_path: Path) -> None:
    spool, pipeline = UploadSpool(tmp_path / "spool"), FakePipeline()
    job = submit(queue, spool, "bad.exe")
    status = JobRunner(queue, spool, pipeline).run_once(5)  # type: ignore[arg-type]
    assert status is not None and status.state == "failed" and status.reason == "unsupported file type"
    assert queue.status(job.doc_id).state == "failed"  # type: ignore[union-attr]
    assert len(pipeline.calls) == 1 and queue.depth() == 0


def test_a_failing_store_is_retried_then_the_job_completes(queue: JobQueue, tmp_path: Path) -> None:
    spool, pipeline = UploadSpool(tmp_path / "spool"), FakePipeline()
    pipeline.fail_times["boom.md"] = 1
    job = submit(queue, spool, "boom.md")
    runner = JobRunner(queue, spool, pipeline)  # type: ignore[arg-type]
    first = runner.run_once(5)
    assert first is not None and first.state == "queued" and "store unavailable" in first.reason
    assert first.attempts == 1
    second = runner.run_once(5)
    assert second is not None and second.state == "complete" and second.attempts == 2
    assert queue.status(job.doc_id).state == "complete"  # type: ignore[union-attr]


def test_retries_are_bounded_and_a_poison_job_does_not_block_the_queue(queue: JobQueue, tmp_path: Path) -> None:
    spool, pipeline = UploadSpool(tmp_path / "spool"), FakePipeline()
    poison = submit(queue, spool, "boom-forever.md")
    good = submit(queue, spool, "good.md")
    runner = JobRunner(queue, spool, pipeline)  # type: ignore[arg-type]
    for _ in range(6):
        runner.run_once(1)
    bad = queue.status(poison.doc_id)
    assert bad is not None and bad.state == "failed" and bad.attempts == 3 and "store unavailable" in bad.reason
    assert queue.status(good.doc_id).state == "complete"  # type: ignore[union-attr]
    assert sum(1 for s, _ in pipeline.calls if s == poison.source) == 3
    assert queue.depth() == 0 and not (tmp_path / "spool" / poison.blob).exists()


def test_a_newer_upload_of_the_same_document_owns_its_status(queue: JobQueue, tmp_path: Path) -> None:
    spool, pipeline = UploadSpool(tmp_path / "spool"), FakePipeline()
    first = submit(queue, spool, "same.md", b"one")
    runner = JobRunner(queue, spool, pipeline)  # type: ignore[arg-type]
    runner.run_once(5)
    second = submit(queue, spool, "same.md", b"two")
    assert queue.status(second.doc_id).job_id == second.job_id  # type: ignore[union-attr]
    assert queue.status(first.doc_id).state == "queued"  # type: ignore[union-attr]
    statuses = wait_for(queue, [second], 0.2)
    assert statuses[0].state == "queued"  # the deadline passed: as it stands
    threading.Thread(target=runner.run_once, args=(5,)).start()
    statuses = wait_for(queue, [second], 10)
    assert statuses[0].state == "complete" and statuses[0].job_id == second.job_id


def test_a_retried_job_waits_out_its_backoff_while_others_run(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    spool, pipeline = UploadSpool(tmp_path / "spool"), FakePipeline()
    pipeline.fail_times["boom.md"] = 1
    queues: list[JobQueue] = [
        LocalQueue(tmp_path / "local", retry_backoff_s=1.0),
        RedisQueue(request.getfixturevalue("redis_url"), prefix="test:backoff", retry_backoff_s=1.0),
    ]
    for queue in queues:
        flaky, other = submit(queue, spool, "boom.md"), submit(queue, spool, "other.md")
        runner = JobRunner(queue, spool, pipeline)  # type: ignore[arg-type]
        assert runner.run_once(1).state == "queued"  # type: ignore[union-attr]  # boom.md failed once
        assert runner.run_once(1).job_id == other.job_id  # type: ignore[union-attr]  # not boom.md again at once
        assert runner.run_once(0.2) is None and queue.depth() == 1  # still backing off
        time.sleep(1.0)
        again = runner.run_once(2)
        assert again is not None and again.job_id == flaky.job_id and again.state == "complete"
        pipeline.fail_times["boom.md"] = 1
        queue.close()


def test_a_store_that_is_down_pauses_the_worker_and_spends_no_attempt(queue: JobQueue, tmp_path: Path) -> None:
    spool, pipeline = UploadSpool(tmp_path / "spool"), FakePipeline()
    job = submit(queue, spool, "wait.md")
    runner = JobRunner(queue, spool, pipeline)  # type: ignore[arg-type]
    pipeline.store.up = False
    assert runner.run_once(0.1) is None and runner.run_once(0.1) is None
    assert queue.status(job.doc_id).state == "queued" and pipeline.calls == []  # type: ignore[union-attr]
    pipeline.store.up = True
    status = runner.run_once(5)
    assert status is not None and status.state == "complete" and status.attempts == 1


def test_wait_for_returns_as_soon_as_every_job_ended(queue: JobQueue, tmp_path: Path) -> None:
    spool, pipeline = UploadSpool(tmp_path / "spool"), FakePipeline()
    jobs = [submit(queue, spool, f"w{i}.md") for i in range(3)]
    stop = threading.Event()
    worker = threading.Thread(target=JobRunner(queue, spool, pipeline).run, args=(stop,), kwargs={"poll_s": 0.1})  # type: ignore[arg-type]
    worker.start()
    try:
        started = time.monotonic()
        statuses = wait_for(queue, jobs, 30)
        assert [s.state for s in statuses] == ["complete"] * 3
        assert time.monotonic() - started < 30
    finally:
        stop.set()
        worker.join(10)


# -- what only one of them has to prove --------------------------------------------------------------------


def test_local_queue_a_restart_queues_unfinished_jobs_again_and_counts_crashes(tmp_path: Path) -> None:
    spool, pipeline = UploadSpool(tmp_path / "spool"), FakePipeline()
    queue = LocalQueue(tmp_path / "spool", max_attempts=2)
    job = submit(queue, spool, "crash.md")  # dies during the job twice, without a retry (no backoff involved)
    assert queue.reserve("w", 1) is not None  # the process "dies" during the job: nothing finishes it
    queue.close()
    again = LocalQueue(tmp_path / "spool", max_attempts=2)
    assert again.status(job.doc_id).state == "queued" and again.depth() == 1  # type: ignore[union-attr]
    assert again.reserve("w", 1) is not None  # and dies again
    third = LocalQueue(tmp_path / "spool", max_attempts=2)
    status = JobRunner(third, spool, pipeline).run_once(1)
    assert status is not None and status.state == "failed" and "gave up after 2 deliveries" in status.reason
    assert pipeline.calls == []  # the poison file is not handed to the pipeline a third time
    assert LocalQueue(tmp_path / "spool").depth() == 0


def test_redis_queue_a_dead_workers_job_is_taken_over_after_the_visibility_timeout(
    redis_url: str, tmp_path: Path
) -> None:
    spool, pipeline = UploadSpool(tmp_path / "spool"), FakePipeline()
    queue = RedisQueue(redis_url, prefix="test:takeover", max_attempts=3, visibility_timeout_s=1.0)
    job = submit(queue, spool, "takeover.md")
    dead = queue.reserve("worker-that-dies", 1)
    assert dead is not None and dead.attempt == 1
    assert queue.status(job.doc_id).state == "processing"  # type: ignore[union-attr]
    assert JobRunner(queue, spool, pipeline, consumer="other").run_once(0.1) is None  # still claimed
    time.sleep(1.1)
    status = JobRunner(queue, spool, pipeline, consumer="other").run_once(1)
    assert status is not None and status.state == "complete" and status.attempts == 2
    assert queue.depth() == 0


def test_redis_queue_a_heartbeat_keeps_a_long_job_from_being_taken_over(redis_url: str, tmp_path: Path) -> None:
    spool = UploadSpool(tmp_path / "spool")
    queue = RedisQueue(redis_url, prefix="test:heartbeat", max_attempts=3, visibility_timeout_s=1.5)
    # Beats every 0.3 s against a 1.5 s timeout: a stalled CI machine does not make a takeover look legal.
    submit(queue, spool, "long.md")
    mine = queue.reserve("slow-worker", 1)
    assert mine is not None
    for _ in range(4):
        time.sleep(0.3)
        queue.extend(mine)
        assert queue.reserve("thief", 0.01) is None
    queue.close()


class FakeStore:
    """The manifest side of a store: what FolderProducer reads and deletes."""

    def __init__(self, records: list[DocumentRecord]) -> None:
        self.records = {r.doc_id: r for r in records}
        self.deleted: list[str] = []

    def list_documents(self) -> list[DocumentRecord]:
        return list(self.records.values())

    def delete_chunks(self, doc_id: str) -> int:
        self.deleted.append(doc_id)
        return 4

    def delete_document(self, doc_id: str) -> None:
        self.records.pop(doc_id, None)


def test_the_folder_watcher_queues_new_and_changed_files_once_and_deletes_gone_ones(
    queue: JobQueue, tmp_path: Path
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "same.md").write_text("# Same\n\nunchanged text")
    (folder / "new.md").write_text("# New\n\nnew text")
    same, gone = str((folder / "same.md").resolve()), str((folder / "gone.md").resolve())
    record = DocumentRecord(
        doc_id_for(same), same, "Same", sha256_hex(b"# Same\n\nunchanged text"), "text/markdown", 1, "complete", "t"
    )
    old = DocumentRecord(doc_id_for(gone), gone, "Gone", "h", "text/markdown", 4, "complete", "t")
    store, spool = FakeStore([record, old]), UploadSpool(tmp_path / "spool")
    producer = FolderProducer(queue, spool, store)  # type: ignore[arg-type]
    report = producer.sync(folder)
    by = {Path(o.source).name: o.status for o in report.outcomes}
    assert by == {"same.md": "unchanged", "new.md": "queued", "gone.md": "deleted"}
    assert store.deleted == [old.doc_id] and report.points_deleted == 4
    assert queue.depth() == 1
    assert producer.sync(folder).outcomes  # a second pass while the job waits: not queued again
    assert queue.depth() == 1
    status = JobRunner(queue, spool, FakePipeline()).run_once(5)  # type: ignore[arg-type]
    assert status is not None and status.state == "complete" and status.source == str((folder / "new.md").resolve())


def test_the_spool_refuses_a_blob_name_that_is_not_a_job_id(tmp_path: Path) -> None:
    spool = UploadSpool(tmp_path / "spool")
    for name in ("../../etc/passwd", "/etc/passwd", "ABC", ""):
        with pytest.raises(ValueError, match="not a spool blob name"):
            spool.read(name)
    with pytest.raises(ValueError):
        spool.put("../escape", b"x")
    assert not (tmp_path / "escape").exists()


def test_the_runner_tells_its_health_listener_whether_the_queue_answers(tmp_path: Path) -> None:
    queue = LocalQueue(tmp_path / "spool", retry_backoff_s=0)
    runner = JobRunner(queue, UploadSpool(tmp_path / "spool"), FakePipeline())  # type: ignore[arg-type]
    heard: list[bool] = []
    stop = threading.Event()

    def listen(ok: bool) -> None:
        heard.append(ok)
        if len(heard) == 2:
            stop.set()

    answers = iter([RuntimeError("queue down"), None])

    def reserve(consumer: str, timeout_s: float) -> None:
        outcome = next(answers)
        if outcome is not None:
            raise outcome

    queue.reserve = reserve  # type: ignore[method-assign]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stop, "wait", lambda timeout=None: False)  # no 5 s back-off in a test
        runner.run(stop, poll_s=0.01, on_health=listen)
    assert heard == [False, True]


# -- progress and cancel -----------------------------------------------------------------------------------


def test_a_running_job_shows_its_progress(queue: JobQueue, tmp_path: Path) -> None:
    spool, pipeline = UploadSpool(tmp_path / "spool"), FakePipeline()
    job = submit(queue, spool, "long.md")
    shown: list[tuple[str, int, int, int]] = []

    def look() -> None:
        s = queue.status(job.doc_id)
        assert s is not None and s.state == "processing"
        shown.append((s.stage, s.pages, s.chunks_done, s.chunks_total))

    pipeline.between = look
    status = JobRunner(queue, spool, pipeline, progress_s=0).run_once(5)  # type: ignore[arg-type]
    assert status is not None and status.state == "complete"
    assert shown == [("parsed", 3, 0, 4), ("embedding", 3, 2, 4), ("embedding", 3, 4, 4), ("writing", 3, 4, 4)]


def test_a_queued_job_cancelled_never_runs_and_frees_its_upload(queue: JobQueue, tmp_path: Path) -> None:
    spool, pipeline = UploadSpool(tmp_path / "spool"), FakePipeline()
    job = submit(queue, spool, "wait.md")
    stopped = queue.cancel(job.doc_id)
    assert stopped is not None and stopped.state == "cancelled" and stopped.job_id == job.job_id
    assert queue.status(job.doc_id).state == "cancelled"  # type: ignore[union-attr]
    status = JobRunner(queue, spool, pipeline).run_once(5)  # type: ignore[arg-type]
    assert status is not None and status.state == "cancelled" and pipeline.calls == []
    assert queue.status(job.doc_id).state == "cancelled"  # type: ignore[union-attr]
    assert not (tmp_path / "spool" / job.blob).exists() and queue.depth() == 0


def test_a_running_job_cancelled_stops_at_its_next_report_before_writing(queue: JobQueue, tmp_path: Path) -> None:
    spool, pipeline = UploadSpool(tmp_path / "spool"), FakePipeline()
    job = submit(queue, spool, "big.md")
    asked: list[JobStatus | None] = []
    pipeline.between = lambda: asked.append(queue.cancel(job.doc_id)) if not asked else None
    status = JobRunner(queue, spool, pipeline, progress_s=0).run_once(5)  # type: ignore[arg-type]
    assert asked[0] is not None and asked[0].state == "processing" and asked[0].reason.startswith("cancelling")
    assert status is not None and status.state == "cancelled" and "before it wrote" in status.reason
    assert [p.stage for p in pipeline.seen] == ["parsed"]  # the embedding report raised: nothing written after
    assert queue.status(job.doc_id).state == "cancelled"  # type: ignore[union-attr]
    assert queue.depth() == 0 and not queue.cancel_requested(job.job_id)


def test_cancelling_an_ended_or_unknown_job_changes_nothing(queue: JobQueue, tmp_path: Path) -> None:
    spool, pipeline = UploadSpool(tmp_path / "spool"), FakePipeline()
    assert queue.cancel(doc_id_for("upload://nothing.md")) is None
    job = submit(queue, spool, "done.md")
    done = JobRunner(queue, spool, pipeline).run_once(5)  # type: ignore[arg-type]
    assert queue.cancel(job.doc_id) == done and done is not None and done.state == "complete"


def test_a_cancel_survives_a_restart_of_the_local_queue(tmp_path: Path) -> None:
    spool, pipeline = UploadSpool(tmp_path / "spool"), FakePipeline()
    first = LocalQueue(tmp_path / "spool")
    job = submit(first, spool, "later.md")
    first.cancel(job.doc_id)
    first.close()
    again = LocalQueue(tmp_path / "spool")
    assert again.status(job.doc_id).state == "cancelled"  # type: ignore[union-attr]
    status = JobRunner(again, spool, pipeline).run_once(5)  # type: ignore[arg-type]
    assert status is not None and status.state == "cancelled" and pipeline.calls == []
