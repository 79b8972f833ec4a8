"""Keep the store in step with a folder: poll it, wait for writes to settle, then ``IngestPipeline.sync``.

Why polling (a stat of every supported file each interval) and not inotify: the folder is usually a bind
mount into a container, and inotify events do not cross Docker Desktop, NFS or SMB mounts, while a stat walk
works everywhere and costs milliseconds for thousands of files.

Why debounce: copying a folder of documents produces a burst of changes, and a file may be observed
half-written. A sync starts only once the folder has been quiet for ``quiet_s``, or at the latest
``max_wait_s`` after the first unsynced change, so a folder that never stops changing is still synced.

Why a whole-folder ``sync`` and not per-file calls: ``sync`` already adds, replaces and deletes
idempotently and redoes any document a crash left pending, so every pass converges to the folder's state
whatever happened before (including changes made while the watcher was down: the first pass runs at start).

Usage::

    watcher = FolderWatcher(Path("/documents"), pipeline.sync)
    watcher.run(stop_event)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ingest.pipeline import IngestReport, iter_files

logger = logging.getLogger(__name__)

Snapshot = dict[str, tuple[int, int]]  # resolved path -> (mtime_ns, size)
DEFAULT_HEARTBEAT = Path("/tmp/ragstack-ingest-watch.alive")  # a liveness marker, no data


def snapshot(root: Path) -> Snapshot:
    """The files ``sync`` would ingest (same filter), with what a write changes."""
    state: Snapshot = {}
    for path in iter_files(root):
        try:
            st = path.stat()
        except OSError:  # removed between listing and stat: it is simply not there
            continue
        state[str(path.resolve())] = (st.st_mtime_ns, st.st_size)
    return state


def diff(before: Snapshot, after: Snapshot) -> dict[str, list[str]]:
    return {
        "added": sorted(after.keys() - before.keys()),
        "deleted": sorted(before.keys() - after.keys()),
        "changed": sorted(p for p in before.keys() & after.keys() if before[p] != after[p]),
    }


@dataclass
class Debouncer:
    """When to sync, given when changes were seen. Pure logic on a caller-supplied clock.

    ``quiet_s``: a sync waits until no change was seen for this long.
    ``max_wait_s``: ... but never longer than this after the first unsynced change.
    ``retry_s``: after a failed sync (Qdrant down), wait this long before trying again.
    """

    quiet_s: float = 5.0
    max_wait_s: float = 60.0
    retry_s: float = 30.0
    first_change: float | None = None
    last_change: float | None = None
    not_before: float = 0.0

    def changed(self, now: float) -> None:
        if self.first_change is None:
            self.first_change = now
        self.last_change = now

    def force(self) -> None:
        """Make a sync due now, whatever was seen (the first pass at start)."""
        self.first_change = self.last_change = float("-inf")

    @property
    def pending(self) -> bool:
        return self.first_change is not None

    def due(self, now: float) -> bool:
        if self.first_change is None or self.last_change is None or now < self.not_before:
            return False
        return now - self.last_change >= self.quiet_s or now - self.first_change >= self.max_wait_s

    def synced(self) -> None:
        self.first_change = self.last_change = None
        self.not_before = 0.0

    def failed(self, now: float) -> None:
        """Keep the changes pending and hold off ``retry_s``."""
        self.not_before = now + self.retry_s


class FolderWatcher:
    """Polls ``root`` every ``interval_s`` and calls ``sync(root)`` when the debouncer says so.

    ``on_health`` is told after every sync whether it succeeded (the container's heartbeat listens).
    """

    def __init__(
        self,
        root: Path,
        sync: Callable[[Path], IngestReport],
        *,
        interval_s: float = 2.0,
        debouncer: Debouncer | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_report: Callable[[IngestReport], None] | None = None,
        on_health: Callable[[bool], None] | None = None,
    ) -> None:
        self.root = root.resolve()
        self.sync = sync
        self.interval_s = interval_s
        self.debouncer = debouncer or Debouncer()
        self.clock = clock
        self.on_report = on_report
        self.on_health = on_health
        self.seen: Snapshot = {}
        self.syncs = 0
        self.failures = 0

    def start(self) -> IngestReport | None:
        """The first pass: whatever changed while nobody watched is synced now."""
        self.debouncer.force()
        return self.poll()

    def poll(self) -> IngestReport | None:
        """One iteration: look, and sync if due. Returns the sync's report when one ran."""
        now = self.clock()
        current = snapshot(self.root)
        if current != self.seen:
            changes = diff(self.seen, current)
            logger.debug("changes in %s: %s", self.root, {k: len(v) for k, v in changes.items()})
            self.seen = current
            self.debouncer.changed(now)
        if not self.debouncer.due(now):
            return None
        try:
            report = self.sync(self.root)
        except Exception:  # a down store must not kill the watcher; it retries
            self.failures += 1
            self.debouncer.failed(self.clock())
            logger.exception("sync of %s failed; retrying in %.0f s", self.root, self.debouncer.retry_s)
            if self.on_health:
                self.on_health(False)
            return None
        self.syncs += 1
        self.debouncer.synced()
        if self.on_health:
            self.on_health(True)
        if self.on_report:
            self.on_report(report)
        return report

    def run(self, stop: threading.Event) -> None:
        """Start, then poll until ``stop`` is set (SIGTERM in the container)."""
        logger.info("watching %s (poll every %.1f s, quiet %.1f s)", self.root, self.interval_s, self.debouncer.quiet_s)
        self.start()
        while not stop.wait(self.interval_s):
            self.poll()
        logger.info("stopped watching %s after %d syncs", self.root, self.syncs)
