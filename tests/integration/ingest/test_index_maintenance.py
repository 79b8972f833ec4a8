"""Every caller that ingests builds the Edge store's index once it passes RAG_QDRANT_INDEX_THRESHOLD, off the
request path: the API after an upload's response (in the background, in a child process), the launcher's and
the eval stack's first ingest (in-process, before anything is served). A failed build never fails the ingest.

Real Edge stores, real ingest pipeline; a fake embedder (no model) so that only the wiring is under test."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_embedder import FakeEmbedder
from fastapi.testclient import TestClient

from services.api.app import create_app
from services.api.components import Components, build_components
from services.core.settings import Settings
from services.core.storage.store_edge import EdgeStore

pytestmark = pytest.mark.integration

DOCS = {
    "lighthouses.md": "# Lighthouses\n\nA lighthouse keeper trimmed the wick every night.\n\nThe lens turned slowly.",
    "glaciers.md": "# Glaciers\n\nGlaciers carve valleys over thousands of years.\n\nMoraines mark their edge.",
    "orchids.md": "# Orchids\n\nOrchids need bright indirect light and little water.\n\nRepot them in bark.",
}


def files(docs: dict[str, str]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (name, text.encode(), "text/markdown")) for name, text in docs.items()]


def settings_for(data_dir: Path, threshold: int) -> Settings:
    return Settings(
        _env_file=None,
        data_dir=data_dir,
        qdrant_index_threshold=threshold,
        reranker="none",
        llm_base_url="http://127.0.0.1:9/v1",  # never called here
    )


@pytest.fixture
def components(tmp_path: Path) -> Iterator[Components]:
    """The API's components as create_app builds them, on an Edge store that passes its threshold at once."""
    settings = settings_for(tmp_path, threshold=2)
    built = build_components(settings, embedder=FakeEmbedder())
    built.warm_up()
    try:
        yield built
    finally:
        built.close_sync()


def wait_for_runs(components: Components, runs: int, timeout: float = 120.0) -> dict[str, object]:
    maintainer = components.maintainer
    assert maintainer is not None
    deadline = time.monotonic() + timeout
    while maintainer.runs < runs or maintainer.busy:
        assert time.monotonic() < deadline, f"no index maintenance after {timeout} s: {maintainer.last}"
        time.sleep(0.05)
    assert maintainer.last is not None
    return maintainer.last


def test_an_upload_past_the_threshold_builds_the_index_after_the_response(
    components: Components, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert isinstance(components.store, EdgeStore) and components.maintainer is not None
    # The build is held until the response is in: a response that waited for it would come back only after
    # the hold times out, with a run counted. (A tiny build can finish before the response is read, so
    # counting runs without the hold would be a race.)
    release = threading.Event()
    build = components.store.maintain

    built_outcomes: list[dict[str, object]] = []

    def held_build(**kwargs: bool) -> dict[str, object]:
        release.wait(timeout=30)
        outcome = build(**kwargs)
        built_outcomes.append(outcome)
        return outcome

    monkeypatch.setattr(components.store, "maintain", held_build)
    with TestClient(create_app(components=components)) as client:
        r = client.post("/documents", files=files(DOCS))
        assert r.status_code == 200, r.text
        assert [f["status"] for f in r.json()["files"]] == ["added"] * 3
        assert components.maintainer.runs == 0
        release.set()
        # Under load the upload can trigger a second maintenance call while the first builds; it returns at once
        # ("already running" or "up to date") and may be the last outcome. What counts: a build ran after the
        # response, concurrently, and the index now covers every chunk.
        deadline = time.monotonic() + 120
        while not any(o.get("indexed") for o in built_outcomes) or components.maintainer.busy:
            assert time.monotonic() < deadline, f"no index build after 120 s: {components.maintainer.last}"
            time.sleep(0.05)
        outcome = next(o for o in built_outcomes if o.get("indexed"))
        assert outcome["concurrent"] is True, outcome
        assert components.store.stats()["index"]["chunks"] == outcome["chunks"] == components.store.count_chunks()  # type: ignore[index]
        hits = client.post("/search", json={"query": "how do glaciers carve valleys", "mode": "hybrid"})
        assert hits.status_code == 200 and hits.json()["results"], hits.text

        # An upload of nothing new asks for no build. (The three files above are three jobs: when the worker
        # drains the queue between two of the route's submissions, they ask twice, and the second request
        # coalesces into one more run: one or two runs so far, then none for the unchanged file.)
        runs = components.maintainer.runs
        assert runs in (1, 2)
        assert client.post("/documents", files=files({"glaciers.md": DOCS["glaciers.md"]})).status_code == 200
        time.sleep(0.2)
        assert components.maintainer.runs == runs and not components.maintainer.busy


def test_a_failed_index_build_does_not_fail_the_upload(
    components: Components, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(**_: object) -> dict[str, object]:
        raise OSError("No space left on device")

    monkeypatch.setattr(components.store, "maintain", broken)
    with TestClient(create_app(components=components)) as client, caplog.at_level(logging.WARNING):
        r = client.post("/documents", files=files(DOCS))
        assert r.status_code == 200, r.text
        assert [f["status"] for f in r.json()["files"]] == ["added"] * 3
        outcome = wait_for_runs(components, 1)
        assert outcome == {"indexed": False, "error": "OSError: No space left on device"}
        assert "building the vector index failed" in caplog.text
        hits = client.post("/search", json={"query": "orchid light", "mode": "dense"})
        assert hits.status_code == 200 and hits.json()["results"]  # the store serves as before

        monkeypatch.undo()  # the disk has room again: the next upload builds
        more = {"tides.md": "# Tides\n\nThe moon pulls the sea twice a day.\n\nSpring tides are the highest."}
        assert client.post("/documents", files=files(more)).status_code == 200
        assert wait_for_runs(components, 2)["indexed"] is True


def test_the_launchers_first_ingest_builds_the_index_before_the_api_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from services import launcher
    from services.core import factory

    monkeypatch.setattr(factory, "build_embedder", lambda settings: FakeEmbedder())
    settings = settings_for(tmp_path, threshold=3)
    launcher.first_run_ingest(settings, max_docs=4)
    assert "vector index: HNSW over" in capsys.readouterr().out
    store = EdgeStore(path=settings.resolved_qdrant_path)  # the folder is free again for the API
    try:
        index = store.stats()["index"]
        assert isinstance(index, dict) and index["chunks"] == store.count_chunks() >= 3
    finally:
        store.close()


def test_the_eval_stacks_corpus_ingest_builds_the_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from ingest.sample import ensure_corpus_index  # what eval's LocalStack.start and train run first
    from services.core import factory
    from services.datasets import fitz_gov

    corpus = fitz_gov.load_corpus()[:4]
    monkeypatch.setattr(fitz_gov, "load_corpus", lambda: corpus)
    monkeypatch.setattr(factory, "build_embedder", lambda settings: FakeEmbedder())
    for name in [n for n in os.environ if n.startswith("RAG_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("RAG_QDRANT_INDEX_THRESHOLD", "3")
    monkeypatch.chdir(tmp_path)  # no .env
    ensure_corpus_index(tmp_path / "eval")
    store = EdgeStore(path=str(tmp_path / "eval" / "qdrant"))
    try:
        index = store.stats()["index"]
        assert isinstance(index, dict) and index["chunks"] == store.count_chunks() >= 3
    finally:
        store.close()


def test_the_eval_corpus_is_reindexed_when_the_index_settings_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from ingest.sample import ensure_corpus_index
    from services.core import factory
    from services.datasets import fitz_gov

    corpus = fitz_gov.load_corpus()[:3]
    monkeypatch.setattr(fitz_gov, "load_corpus", lambda: corpus)
    monkeypatch.setattr(factory, "build_embedder", lambda settings: FakeEmbedder())
    for name in [n for n in os.environ if n.startswith("RAG_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no .env
    said: list[str] = []
    monkeypatch.setenv("RAG_EMBED_CONTEXT_HEADER", "false")
    ensure_corpus_index(tmp_path / "eval", said.append)
    ensure_corpus_index(tmp_path / "eval", said.append)
    assert "already holds the corpus" in said[-1]  # same settings: nothing to do
    monkeypatch.setenv("RAG_EMBED_CONTEXT_HEADER", "true")  # another index signature
    ensure_corpus_index(tmp_path / "eval", said.append)
    assert any("indexed with other settings" in line for line in said)
    store = EdgeStore(path=str(tmp_path / "eval" / "qdrant"))
    try:
        assert {r.index_signature.endswith("|context-header") for r in store.list_documents()} == {True}
    finally:
        store.close()
    said.clear()
    ensure_corpus_index(tmp_path / "eval", said.append)
    assert "already holds the corpus" in said[-1]
