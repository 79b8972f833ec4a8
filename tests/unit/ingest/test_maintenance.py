"""IndexMaintainer, around a fake store: one build at a time, requests made during a build coalesce into one
more, a failure is logged and reported (never raised), background builds ask the store for a concurrent build,
and nothing starts after stop()."""

from __future__ import annotations

import logging
import threading

import pytest

from ingest.maintenance import IndexMaintainer

pytestmark = pytest.mark.unit


class FakeStore:
    """``maintain()`` blocks until ``release`` is set (when ``gated``), counts overlapping calls, and raises while
    ``broken``."""

    def __init__(self, *, gated: bool = False) -> None:
        self.gated = gated
        self.release = threading.Event()
        self.entered = threading.Event()
        self.broken = False
        self.calls: list[dict[str, object]] = []
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    def maintain(self, *, force: bool = False, concurrent: bool = False) -> dict[str, object]:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.calls.append({"force": force, "concurrent": concurrent})
        try:
            self.entered.set()
            if self.gated:
                assert self.release.wait(10), "the test never released the build"
            if self.broken:
                raise OSError("disk full")
            return {"engine": "fake", "indexed": True, "chunks": 10}
        finally:
            with self._lock:
                self.active -= 1


def test_run_builds_in_this_thread_and_returns_the_outcome() -> None:
    store = FakeStore()
    outcome = IndexMaintainer(store).run()  # type: ignore[arg-type]
    assert outcome == {"engine": "fake", "indexed": True, "chunks": 10}
    assert store.calls == [{"force": False, "concurrent": False}]


def test_a_failed_build_is_logged_and_reported_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    store = FakeStore()
    store.broken = True
    maintainer = IndexMaintainer(store)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="ingest.maintenance"):
        outcome = maintainer.run()
    assert outcome == {"indexed": False, "error": "OSError: disk full"}
    assert maintainer.last == outcome
    assert "building the vector index failed" in caplog.text and "disk full" in caplog.text


def test_schedule_returns_at_once_and_builds_concurrently_in_the_background() -> None:
    store = FakeStore(gated=True)
    maintainer = IndexMaintainer(store)  # type: ignore[arg-type]
    assert maintainer.schedule() is True
    assert store.entered.wait(5)
    assert maintainer.busy and maintainer.last is None  # the caller was not kept waiting for the build
    store.release.set()
    assert maintainer.join(5)
    assert store.calls == [{"force": False, "concurrent": True}]
    assert maintainer.last == {"engine": "fake", "indexed": True, "chunks": 10}


def test_requests_during_a_build_coalesce_into_one_more_run_never_two_at_once() -> None:
    store = FakeStore(gated=True)
    maintainer = IndexMaintainer(store)  # type: ignore[arg-type]
    assert maintainer.schedule() is True
    assert store.entered.wait(5)
    assert [maintainer.schedule() for _ in range(5)] == [False] * 5  # five uploads finish during the build
    store.release.set()
    assert maintainer.join(5)
    assert len(store.calls) == 2  # the one in flight, then one for all five requests
    assert store.max_active == 1
    assert maintainer.schedule() is True  # idle again: the next request starts a new run
    assert maintainer.join(5) and len(store.calls) == 3


def test_a_failed_background_build_does_not_stop_later_ones() -> None:
    store = FakeStore()
    store.broken = True
    maintainer = IndexMaintainer(store)  # type: ignore[arg-type]
    maintainer.schedule()
    assert maintainer.join(5)
    assert maintainer.last is not None and maintainer.last["error"] == "OSError: disk full"
    store.broken = False
    maintainer.schedule()
    assert maintainer.join(5)
    assert maintainer.last is not None and maintainer.last["indexed"] is True


def test_nothing_starts_after_stop_and_a_pending_rerun_is_dropped() -> None:
    store = FakeStore(gated=True)
    maintainer = IndexMaintainer(store)  # type: ignore[arg-type]
    maintainer.schedule()
    assert store.entered.wait(5)
    maintainer.schedule()  # owed a rerun...
    maintainer.stop()  # ...which shutdown cancels
    store.release.set()
    assert maintainer.join(5)
    assert len(store.calls) == 1
    assert maintainer.schedule() is False and len(store.calls) == 1
