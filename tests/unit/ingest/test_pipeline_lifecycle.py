"""IngestPipeline as a component: building it loads no model and touches no store, ``warm_up()`` does both
once (however many threads ask), deleting never needs the model, and ingesting without a warm-up warms first."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from fake_embedder import FakeEmbedder

from ingest.factory import build_pipeline
from services.core.settings import IngestSettings
from services.core.storage.store import QdrantStore

pytestmark = pytest.mark.unit

DOC = b"# Tides\n\nThe moon pulls the sea twice a day.\n\nSpring tides are the highest of the month."


class RecordingStore:
    """A real in-memory store that records the names of the methods called on it."""

    def __init__(self, inner: QdrantStore | None = None) -> None:
        self.inner = inner or QdrantStore(path=":memory:", collection="lifecycle")
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls.append(name)
            return attr(*args, **kwargs)

        return call


class SlowFakeEmbedder(FakeEmbedder):
    """Takes a while to "load", so concurrent warm-ups overlap."""

    def warm_up(self) -> None:
        time.sleep(0.05)
        super().warm_up()


def settings() -> IngestSettings:
    return IngestSettings(_env_file=None, chunk_size=64, chunk_overlap=8)


def test_building_a_pipeline_loads_no_model_and_touches_no_store() -> None:
    embedder, store = FakeEmbedder(), RecordingStore()
    pipeline = build_pipeline(settings(), embedder, store)  # type: ignore[arg-type]
    assert (embedder.warm_ups, store.calls, pipeline.ready) == (0, [], False)
    with pytest.raises(RuntimeError, match="warm_up"):
        _ = pipeline.chunker


def test_warm_up_loads_and_creates_the_collections_once_whatever_the_threads() -> None:
    embedder, store = SlowFakeEmbedder(), RecordingStore()
    pipeline = build_pipeline(settings(), embedder, store)  # type: ignore[arg-type]
    threads = [threading.Thread(target=pipeline.warm_up) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pipeline.warm_up()
    assert pipeline.ready and embedder.ready
    assert embedder.warm_ups == 1
    assert store.calls == ["ensure_collections"]
    assert pipeline.chunker.limit == 64 and pipeline.signature.startswith("fake-embedder|chunk=64|overlap=8")


def test_ingesting_without_a_warm_up_warms_up_first() -> None:
    embedder = FakeEmbedder()
    pipeline = build_pipeline(settings(), embedder, RecordingStore())  # type: ignore[arg-type]
    report = pipeline.ingest_bytes(DOC, "tides.md", "upload://tides.md")
    assert [o.status for o in report.outcomes] == ["added"]
    assert pipeline.ready and embedder.warm_ups == 1


def test_deleting_needs_no_model() -> None:
    shared = QdrantStore(path=":memory:", collection="lifecycle")
    build_pipeline(settings(), FakeEmbedder(), shared).ingest_bytes(DOC, "tides.md", "upload://tides.md")
    cold_embedder, store = FakeEmbedder(), RecordingStore(shared)
    cold = build_pipeline(settings(), cold_embedder, store)  # type: ignore[arg-type]
    assert cold.delete_source("upload://tides.md") > 0
    assert shared.list_documents() == [] and shared.count_chunks() == 0
    assert (cold_embedder.warm_ups, cold.ready) == (0, False)
    assert "ensure_collections" not in store.calls


def test_a_bad_chunk_overlap_is_rejected_when_the_pipeline_is_built() -> None:
    from ingest.pipeline import IngestPipeline

    with pytest.raises(ValueError, match="chunk_overlap"):
        IngestPipeline(FakeEmbedder(), RecordingStore(), chunk_size=32, chunk_overlap=32)  # type: ignore[arg-type]
