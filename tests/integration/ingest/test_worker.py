"""``python -m ingest.worker`` as the process it is in production: real Redis, the real pipeline (packaged
MiniLM, an Edge store folder), jobs submitted the way the API submits them. A worker SIGKILLed in the middle
of a job leaves it pending; the next worker takes it over and the document lands exactly once."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis_server import redis_server

from ingest.jobs import IngestJob, RedisQueue, UploadSpool
from services.core.processes import ManagedProcess
from services.core.storage.store_edge import EdgeStore
from services.core.types import doc_id_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


def queue_env(redis_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a worker or watcher process in queue mode, on this test's folders."""
    return os.environ | {
        "RAG_INGEST_QUEUE": "redis",
        "RAG_REDIS_URL": redis_url,
        "RAG_UPLOAD_DIR": str(tmp_path / "uploads"),
        "RAG_QDRANT_PATH": str(tmp_path / "qdrant"),
        "RAG_QDRANT_URL": "",
        "RAG_TRACING_ENDPOINT": "",
        "RAG_DATA_DIR": str(tmp_path / "data"),
        **extra,
    }


def worker(env: dict[str, str], log: Path, *args: str, module: str = "ingest.worker") -> ManagedProcess:
    """A worker (or, with ``module="ingest.cli"``, a watcher) process, its output in ``log``."""
    return ManagedProcess.module(log.stem, module, *args, env=env, cwd=ROOT, log=log).start()


def finish(proc: ManagedProcess, timeout_s: float) -> str:
    """SIGTERM to the process alone (as ``docker stop`` does), its exit awaited; then its output."""
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=timeout_s)
    finally:
        proc.stop()
    return proc.log_text()


def run_to_end(proc: ManagedProcess, timeout_s: float) -> str:
    try:
        proc.wait(timeout=timeout_s)
    finally:
        proc.stop()
    return proc.log_text()


def big_markdown(sections: int) -> bytes:
    body = "\n\n".join(
        f"## Section {i}\n\n" + " ".join(f"The lighthouse keeper logs ship number {i * 7 + j}." for j in range(40))
        for i in range(sections)
    )
    return f"# Harbour log\n\n{body}\n".encode()


def test_a_worker_killed_mid_job_is_replaced_and_the_document_lands_once(redis_url: str, tmp_path: Path) -> None:
    store_path, spool_dir = tmp_path / "qdrant", tmp_path / "uploads"
    env = queue_env(redis_url, tmp_path, RAG_INGEST_VISIBILITY_TIMEOUT_S="2")
    queue = RedisQueue(redis_url, prefix="ragstack:ingest", visibility_timeout_s=2)
    spool = UploadSpool(spool_dir)
    job = IngestJob.new(filename="harbour.md", source="upload://harbour.md", tags=["log"])
    spool.put(job.blob, big_markdown(400))
    small = IngestJob.new(filename="note.md", source="upload://note.md")
    spool.put(small.blob, b"# Note\n\nThe tide table is pinned by the door.\n")
    queue.submit(job)
    queue.submit(small)

    first = worker(env, tmp_path / "worker-1.log", "--heartbeat", str(tmp_path / "alive-1"))
    try:
        deadline = time.monotonic() + 180
        while (status := queue.status(job.doc_id)) is None or status.state != "processing":
            assert first.poll() is None, first.log_text()
            assert time.monotonic() < deadline, f"the job never started: {status}"
            time.sleep(0.05)
        time.sleep(0.5)  # well inside the job: 400 sections take far longer to embed
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        first.stop()
    assert queue.status(job.doc_id).state == "processing"  # type: ignore[union-attr]  # nobody ended it

    time.sleep(2.5)  # past the visibility timeout: the dead worker's job is up for grabs
    second = worker(env, tmp_path / "worker-2.log", "--once", "--heartbeat", str(tmp_path / "alive-2"))
    out = run_to_end(second, 600)
    assert second.returncode == 0, out
    assert "took over ingest job" in out, out
    done = queue.status(job.doc_id)
    assert done is not None and done.state == "complete" and done.attempts == 2, done
    assert done.outcome == "added" and done.chunks > 50, done
    note = queue.status(small.doc_id)
    assert note is not None and note.state == "complete", note
    assert queue.depth() == 0 and list(spool_dir.glob("*")) == []

    store = EdgeStore(path=str(store_path))
    try:
        records = {r.source: r for r in store.list_documents()}
        assert records["upload://harbour.md"].status == "complete"
        assert records["upload://harbour.md"].chunk_count == done.chunks
        assert store.count_chunks() == done.chunks + note.chunks  # redone, not duplicated
    finally:
        store.close()


def test_the_folder_watcher_queues_files_a_worker_then_ingests(redis_url: str, tmp_path: Path) -> None:
    """In queue mode the watcher loads no model and writes no chunk: it spools and queues; a worker ingests.
    (One after the other: an embedded store is single-process; in compose both talk to the Qdrant server.)"""
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "tides.md").write_text("# Tides\n\nThe moon raises two tidal bulges a day.\n")
    (folder / "winds.md").write_text("# Winds\n\nSea breezes blow landward in the afternoon.\n")
    env = queue_env(redis_url, tmp_path)
    queue = RedisQueue(redis_url, prefix="ragstack:ingest")
    watch = ["watch", str(folder), "--heartbeat", str(tmp_path / "watch.alive")]
    watcher = worker(env, tmp_path / "watcher.log", *watch, module="ingest.cli")
    try:
        deadline = time.monotonic() + 120
        sources = [str((folder / n).resolve()) for n in ("tides.md", "winds.md")]
        while not all(queue.status(doc_id_for(s)) for s in sources):
            assert watcher.poll() is None, watcher.log_text()
            assert time.monotonic() < deadline, "the watcher queued nothing"
            time.sleep(0.1)
    finally:
        out = finish(watcher, 60)
    assert "2 queued for the workers" in out, out
    assert "sentence_transformers" not in out  # no model loaded by the producer
    first = worker(env, tmp_path / "worker.log", "--once", "--heartbeat", str(tmp_path / "alive"))
    log = run_to_end(first, 600)
    assert first.returncode == 0, log
    for source in sources:
        status = queue.status(doc_id_for(source))
        assert status is not None and status.state == "complete" and status.outcome == "added", status
    store = EdgeStore(path=str(tmp_path / "qdrant"))
    try:
        assert sorted(r.source for r in store.list_documents()) == sorted(sources)
    finally:
        store.close()


def test_two_workers_drain_200_uploads_each_job_run_once_and_a_corrupt_file_fails_with_its_reason(
    redis_url: str, tmp_path: Path
) -> None:
    """Two worker processes on one queue. Each writes to its own embedded store here (an embedded store is
    single-process; in production both write to the Qdrant server), which makes "run once" visible: every
    document is in exactly one of the two stores, none in both, none missing."""
    queue = RedisQueue(redis_url, prefix="ragstack:ingest")
    spool = UploadSpool(tmp_path / "uploads")
    jobs = []
    for i in range(200):
        job = IngestJob.new(filename=f"note-{i:03d}.md", source=f"upload://note-{i:03d}.md")
        spool.put(job.blob, f"# Note {i}\n\nShip {i} docked at berth {i % 17} on day {i % 31}.\n".encode())
        jobs.append(job)
    corrupt = IngestJob.new(filename="manifest.pdf", source="upload://manifest.pdf")
    spool.put(corrupt.blob, b"%PDF-1.7\n1 0 obj << /Type /Catalog >> broken beyond repair\n%%EOF")
    for job in [*jobs[:100], corrupt, *jobs[100:]]:
        queue.submit(job)
    base = queue_env(redis_url, tmp_path)
    workers = [
        worker(
            base | {"RAG_QDRANT_PATH": str(tmp_path / f"store-{n}")},
            tmp_path / f"worker-{n}.log",
            "--heartbeat",
            str(tmp_path / f"alive-{n}"),
        )
        for n in (1, 2)
    ]
    try:
        deadline = time.monotonic() + 600
        while queue.depth() > 0:
            for w in workers:
                assert w.poll() is None, w.log_text()
            assert time.monotonic() < deadline, f"{queue.depth()} jobs left after 600 s"
            time.sleep(0.5)
    finally:
        logs = [finish(w, 120) for w in workers]
    assert all(w.returncode == 0 for w in workers), logs
    statuses = [queue.status(job.doc_id) for job in jobs]
    assert all(s is not None and s.state == "complete" and s.attempts == 1 for s in statuses), statuses
    bad = queue.status(corrupt.doc_id)
    assert bad is not None and bad.state == "failed" and bad.outcome == "skipped" and bad.reason, bad
    stored: list[set[str]] = []
    for n in (1, 2):
        store = EdgeStore(path=str(tmp_path / f"store-{n}"))
        try:
            stored.append({r.source for r in store.list_documents() if r.status == "complete"})
        finally:
            store.close()
    assert stored[0] and stored[1], "one worker did all the work"
    assert not stored[0] & stored[1]  # no document ingested twice
    assert stored[0] | stored[1] == {job.source for job in jobs}  # none lost
    assert list((tmp_path / "uploads").glob("*")) == []  # the spool is empty: every job ended
