"""Index upkeep after an ingest run, shared by every caller that ingests: the ``ingest`` CLI, the API's uploads,
the launcher's and the eval stack's first ingest.

``store.maintain()`` builds the Edge store's HNSW index once it passes ``RAG_QDRANT_INDEX_THRESHOLD`` (a no-op
on a Qdrant server or in local mode). This wrapper makes three promises around it:

- one build at a time: background requests made while one runs coalesce into one more run after it;
- a failure is logged and reported, never raised: the ingest it follows has landed, and search stays exact
  until a later build succeeds (the store swaps a new index in only once it is complete);
- in the background it uses ``maintain(concurrent=True)``: the build runs on a copy in a child process, so the
  serving process keeps answering queries (Edge's build holds the GIL: in-process it would freeze them all).

Usage::

    maintainer = IndexMaintainer(store)
    maintainer.run()          # now, in this thread: ingest runs where nothing is being served
    maintainer.schedule()     # the API, after an upload's response: returns at once
    maintainer.stop(); store.close(); maintainer.join(30)   # shutdown: closing the store ends a build
"""

from __future__ import annotations

import logging
import threading

from services.core.storage.store import VectorStore

logger = logging.getLogger(__name__)


def describe(outcome: dict[str, object]) -> str | None:
    """One line for a person about a build's outcome (None when nothing was built or tried)."""
    if outcome.get("error"):
        return f"vector index not built ({outcome['error']}); search stays exact"
    if outcome.get("indexed"):
        return (
            f"vector index: HNSW over {outcome['chunks']} chunks in {outcome['seconds']} s "
            f"(quantization {outcome.get('quantization')})"
        )
    return None


class IndexMaintainer:
    def __init__(self, store: VectorStore) -> None:
        self.store = store
        self.last: dict[str, object] | None = None  # the latest outcome; "error" says why it failed
        self.runs = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None  # set while a background loop runs
        self._again = False  # a request came in while the loop ran: run once more
        self._stopped = False

    def run(self, *, concurrent: bool = False) -> dict[str, object]:
        """``store.maintain()`` now, in this thread; a failure is logged and returned as ``{"error": ...}``."""
        try:
            outcome = self.store.maintain(concurrent=concurrent)
        except Exception as exc:
            logger.warning(
                "building the vector index failed (search stays exact; the next ingest run or "
                "`ingest build-index` tries again): %s: %s",
                type(exc).__name__,
                exc,
                exc_info=logger.isEnabledFor(logging.DEBUG),
            )
            outcome = {"indexed": False, "error": f"{type(exc).__name__}: {exc}"}
        else:
            if outcome.get("indexed"):
                logger.info("vector index built: %s", outcome)
        self.last = outcome
        self.runs += 1
        return outcome

    def schedule(self) -> bool:
        """Run in a background thread now, or once the run in flight ends (True when a thread was started)."""
        with self._lock:
            if self._stopped:
                return False
            if self._thread is not None:
                self._again = True
                return False
            self._thread = threading.Thread(target=self._loop, name="index-maintainer", daemon=True)
            self._thread.start()
            return True

    def _loop(self) -> None:
        while True:
            self.run(concurrent=True)
            with self._lock:
                if not self._again or self._stopped:
                    self._thread = None
                    return
                self._again = False

    @property
    def busy(self) -> bool:
        return self._thread is not None

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the background run (and any rerun it owes); True when none is left."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self._thread is None

    def stop(self) -> None:
        """No new background run from now on (one in flight ends when the store closes)."""
        with self._lock:
            self._stopped = True
            self._again = False
