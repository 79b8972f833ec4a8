"""The folder watcher over the real pipeline (packaged embedder, the embedded store), and the container's command.

The first test drives the watcher's clock by hand, so it proves what lands in the store after each kind of
change without waiting. The second runs ``python -m ingest.cli watch`` exactly as the ingest container does,
changes the folder under it, stops it with SIGTERM, and reads the store it left.
"""

from __future__ import annotations

import os
import queue
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures_docs import write_mixed_folder
from store_engines import open_store

from ingest.factory import build_pipeline
from ingest.watch import Debouncer, FolderWatcher
from services.core.models.embedder import SentenceTransformerEmbedder
from services.core.processes import ManagedProcess
from services.core.settings import Settings
from services.core.storage.store import VectorStore
from services.healthcheck import check_file

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]

ROBOTS_MD = "# Lawn robots\n\nA robotic mower follows a boundary wire buried along the edge of the lawn.\n"
ROBOTS_MD_V2 = ROBOTS_MD + "\nIt returns to its charging dock when the battery drops below twenty percent.\n"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[VectorStore]:
    s = open_store(tmp_path / "q")
    yield s
    s.close()


def sources(store: VectorStore) -> dict[str, int]:
    return {Path(r.source).name: r.chunk_count for r in store.list_documents() if r.status == "complete"}


def test_watcher_mirrors_adds_changes_and_deletes_into_the_store(
    tmp_path: Path, store: VectorStore, embedder: SentenceTransformerEmbedder
) -> None:
    folder = tmp_path / "docs"
    paths = write_mixed_folder(folder)
    pipeline = build_pipeline(Settings(_env_file=None, chunk_size=128, chunk_overlap=24), embedder, store)
    clock = FakeClock()
    watcher = FolderWatcher(folder, pipeline.sync, debouncer=Debouncer(quiet_s=5, max_wait_s=60), clock=clock)

    first = watcher.start()
    assert first is not None and first.count("added") == 5
    good = set(sources(store))
    assert len(good) == 5

    robots = folder / "robots.md"
    robots.write_text(ROBOTS_MD)
    paths["txt"].unlink()
    watcher.poll()
    clock.now += 4
    assert watcher.poll() is None  # not settled yet: the store is untouched
    assert "robots.md" not in sources(store) and paths["txt"].name in sources(store)
    clock.now += 1
    report = watcher.poll()
    assert report is not None
    assert report.count("added") == 1 and report.count("deleted") == 1 and report.count("unchanged") == 4
    assert set(sources(store)) == good - {paths["txt"].name} | {"robots.md"}

    robots.write_text(ROBOTS_MD_V2)
    watcher.poll()
    clock.now += 5
    report = watcher.poll()
    assert report is not None and report.count("updated") == 1 and report.count("added") == 0
    hits = [r for r in store.list_documents() if r.source == str(robots.resolve())]
    assert len(hits) == 1 and hits[0].status == "complete"
    assert store.count_chunks() == sum(r.chunk_count for r in store.list_documents())


def wait_for(lines: queue.Queue[str], needle: str, seen: list[str], timeout_s: float = 120) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        seen.append(line)
        if needle in line:
            return line
    raise AssertionError(f"no line with {needle!r} in:\n" + "\n".join(seen))


@pytest.mark.slow
def test_ingest_watch_command_is_the_container_entry_point(tmp_path: Path) -> None:
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "robots.md").write_text(ROBOTS_MD)
    data = tmp_path / "data"
    heartbeat = tmp_path / "alive"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env |= {"RAG_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    env["RAG_MODEL_CACHE_DIR"] = os.environ["RAG_MODEL_CACHE_DIR"]  # the session's exports (tests/conftest.py)
    if "RAG_QDRANT_EMBEDDED_ENGINE" in os.environ:  # the engine this run tests (open_store reads it too)
        env["RAG_QDRANT_EMBEDDED_ENGINE"] = os.environ["RAG_QDRANT_EMBEDDED_ENGINE"]
    args = ["watch", str(folder), "--interval", "0.2", "--quiet", "0.5", "--heartbeat", str(heartbeat)]
    lines: queue.Queue[str] = queue.Queue()
    proc = ManagedProcess.module(
        "watcher",
        "ingest.cli",
        *args,
        env=env | {"PYTHONPATH": str(ROOT)},
        inherit_env=False,  # no RAG_* setting of this shell
        cwd=tmp_path,  # no stray .env; the module is found through the installed project
        on_line=lines.put,
    ).start()
    seen: list[str] = []
    try:
        assert "1 added" in wait_for(lines, "files 1:", seen)
        assert check_file(heartbeat, 60)[0], "the healthcheck's heartbeat is not fresh"
        (folder / "mower-faq.txt").write_text("The mower is quiet enough to run at night.\n")
        assert "1 added" in wait_for(lines, "files 2:", seen)
        (folder / "robots.md").unlink()
        assert "1 unchanged, 1 deleted" in wait_for(lines, " 1 deleted", seen)
        proc.send_signal(signal.SIGTERM)  # to the watcher alone, as `docker stop` sends it
        assert proc.wait(timeout=60) == 0, "\n".join(seen)
    finally:
        proc.stop()
    assert not heartbeat.exists()  # a stopped watcher is not reported healthy
    store = open_store(data / "qdrant")
    try:
        assert sources(store).keys() == {"mower-faq.txt"}
    finally:
        store.close()
