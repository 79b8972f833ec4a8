"""The folder watcher's timing logic, on a hand-driven clock: when a sync happens, and when it does not."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ingest.pipeline import IngestReport
from ingest.watch import Debouncer, FolderWatcher, diff, snapshot

pytestmark = pytest.mark.unit


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeSync:
    """Records each call; raises while ``broken`` (a store that is down)."""

    def __init__(self) -> None:
        self.calls: list[Path] = []
        self.broken = False

    def __call__(self, root: Path) -> IngestReport:
        if self.broken:
            raise ConnectionError("qdrant down")
        self.calls.append(root)
        return IngestReport()


def test_debouncer_waits_for_quiet_after_the_last_change() -> None:
    d = Debouncer(quiet_s=5, max_wait_s=60)
    assert not d.due(0)
    d.changed(10)
    d.changed(13)
    assert not d.due(17.9)  # 4.9 s after the last change
    assert d.due(18)
    d.synced()
    assert not d.pending and not d.due(100)


def test_debouncer_syncs_a_folder_that_never_stops_changing_after_max_wait() -> None:
    d = Debouncer(quiet_s=5, max_wait_s=30)
    for t in range(0, 29, 2):
        d.changed(t)
        assert not d.due(t)
    d.changed(30)
    assert d.due(30)


def test_debouncer_holds_off_after_a_failure_and_keeps_the_changes() -> None:
    d = Debouncer(quiet_s=1, max_wait_s=60, retry_s=30)
    d.changed(0)
    assert d.due(2)
    d.failed(2)
    assert d.pending
    assert not d.due(31)
    assert d.due(32)


def test_force_makes_a_sync_due_at_once() -> None:
    d = Debouncer(quiet_s=5)
    d.force()
    assert d.due(0)


def write(path: Path, text: str, mtime_ns: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(mtime_ns, mtime_ns))


def test_snapshot_sees_what_sync_ingests_and_diff_names_each_kind_of_change(tmp_path: Path) -> None:
    write(tmp_path / "a.md", "alpha", 1)
    write(tmp_path / "b.txt", "beta", 1)
    (tmp_path / "movie.mp4").write_bytes(b"\x00\x00")  # unsupported: sync ignores it, so does the watcher
    (tmp_path / ".hidden").mkdir()
    write(tmp_path / ".hidden" / "c.md", "hidden", 1)
    before = snapshot(tmp_path)
    assert sorted(Path(p).name for p in before) == ["a.md", "b.txt"]
    write(tmp_path / "a.md", "alpha two", 2)
    (tmp_path / "b.txt").unlink()
    write(tmp_path / "d.html", "<p>new</p>", 1)
    changes = diff(before, snapshot(tmp_path))
    assert [Path(p).name for p in changes["changed"]] == ["a.md"]
    assert [Path(p).name for p in changes["deleted"]] == ["b.txt"]
    assert [Path(p).name for p in changes["added"]] == ["d.html"]


def make_watcher(root: Path, sync: FakeSync, clock: FakeClock, health: list[bool]) -> FolderWatcher:
    return FolderWatcher(
        root,
        sync,
        debouncer=Debouncer(quiet_s=5, max_wait_s=60, retry_s=30),
        clock=clock,
        on_health=health.append,
    )


def test_watcher_syncs_at_start_then_once_per_settled_burst(tmp_path: Path) -> None:
    write(tmp_path / "a.md", "alpha", 1)
    sync, clock, health = FakeSync(), FakeClock(), []
    watcher = make_watcher(tmp_path, sync, clock, health)
    assert watcher.start() is not None
    assert len(sync.calls) == 1 and sync.calls[0] == tmp_path.resolve()
    clock.now += 10
    assert watcher.poll() is None  # nothing changed: no sync
    write(tmp_path / "b.md", "beta", 5)  # a burst of three writes, two seconds apart
    watcher.poll()
    clock.now += 2
    write(tmp_path / "c.md", "gamma", 6)
    watcher.poll()
    clock.now += 2
    write(tmp_path / "b.md", "beta, longer", 7)
    watcher.poll()
    clock.now += 4
    assert watcher.poll() is None and len(sync.calls) == 1  # still within the quiet period
    clock.now += 1
    assert watcher.poll() is not None and len(sync.calls) == 2  # one sync for the whole burst
    clock.now += 60
    assert watcher.poll() is None and len(sync.calls) == 2
    assert health == [True, True]


def test_watcher_syncs_a_deletion(tmp_path: Path) -> None:
    write(tmp_path / "a.md", "alpha", 1)
    sync, clock, health = FakeSync(), FakeClock(), []
    watcher = make_watcher(tmp_path, sync, clock, health)
    watcher.start()
    (tmp_path / "a.md").unlink()
    watcher.poll()
    clock.now += 5
    watcher.poll()
    assert len(sync.calls) == 2


def test_a_failing_sync_reports_unhealthy_and_is_retried_later(tmp_path: Path) -> None:
    write(tmp_path / "a.md", "alpha", 1)
    sync, clock, health = FakeSync(), FakeClock(), []
    sync.broken = True
    watcher = make_watcher(tmp_path, sync, clock, health)
    assert watcher.start() is None
    assert health == [False] and watcher.failures == 1
    clock.now += 29
    watcher.poll()
    assert watcher.failures == 1  # holding off
    sync.broken = False
    clock.now += 1
    assert watcher.poll() is not None
    assert health == [False, True] and len(sync.calls) == 1
