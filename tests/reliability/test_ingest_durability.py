"""SIGKILL the real ingest CLI (``python -m ingest.cli add``) in the middle of a batch, run it again, and
compare with a clean ingest of the same folder into another store: same point ids, same count, no
duplicates, no orphans, every manifest entry complete and matching its chunks. On both embedded engines:
qdrant-edge (the default) and qdrant-client's local mode.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from llm_server import REPO_ROOT
from store_engines import open_store

from ingest.factory import build_pipeline
from services.core.models.embedder import SentenceTransformerEmbedder
from services.core.processes import ManagedProcess
from services.core.settings import Settings
from services.core.storage.store import QdrantStore
from services.core.storage.store_edge import EdgeStore

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

N_FILES = 40
TOPICS = [
    "lighthouses", "glaciers", "beekeeping", "railways", "tides", "orchids", "falconry", "pottery",
    "volcanoes", "sailing", "cheese", "comets", "bridges", "owls", "tea", "chess", "caves", "kites",
    "coral", "windmills",
]  # fmt: skip


def write_corpus(folder: Path) -> None:
    folder.mkdir(parents=True)
    for i in range(N_FILES):
        topic = TOPICS[i % len(TOPICS)]
        paragraphs = [
            f"Note {i} on {topic}. Paragraph {p}: the {topic} survey of year {1990 + i} recorded item {i * 7 + p}, "
            f"which the field team measured twice and compared with the archive of {topic} observations. "
            f"The result for station {p} differed by {p + i % 5} percent from the previous season."
            for p in range(5)
        ]
        (folder / f"note-{i:02d}.md").write_text(f"# {topic.title()} note {i}\n\n" + "\n\n".join(paragraphs))


def cli(data_dir: Path, engine: str, log: Path, *args: str) -> ManagedProcess:
    env = {
        "RAG_DATA_DIR": str(data_dir),
        "RAG_QDRANT_PATH": str(data_dir / "qdrant"),
        "RAG_EMBED_BATCH_SIZE": "8",  # flushes of 16 chunks: many upserts to be killed between or inside
        "RAG_QDRANT_EMBEDDED_ENGINE": engine,
        "RAG_LOG_LEVEL": "WARNING",
        "HF_HUB_OFFLINE": "1",
    }
    return ManagedProcess.module("ingest", "ingest.cli", *args, env=env, cwd=REPO_ROOT, log=log).start()


def chunk_points(store: QdrantStore | EdgeStore) -> list[tuple[str, str, int]]:
    """(chunk id, doc_id, chunk_index) of every stored chunk, read through the engine's own scroll."""
    if isinstance(store, EdgeStore):
        return [
            (str(r.id), str(r.payload["doc_id"]), int(r.payload["chunk_index"]))
            for page in store.pages(store.collection, batch=512)
            for r in page
        ]
    points: list[tuple[str, str, int]] = []
    offset = None
    if store.client.collection_exists(store.collection):
        while True:
            page, offset = store.client.scroll(
                store.collection, limit=512, offset=offset, with_payload=["doc_id", "chunk_index"]
            )
            points.extend((str(p.id), str(p.payload["doc_id"]), int(p.payload["chunk_index"])) for p in page)
            if offset is None:
                break
    return points


def snapshot(
    qdrant: Path, engine: str
) -> tuple[dict[str, tuple[str, str, int]], Counter[str], list[tuple[str, str, int]]]:
    """(manifest doc_id -> (hash, status, chunk_count), chunks per doc_id, [(chunk id, doc_id, index)...])."""
    store = open_store(qdrant, qdrant_embedded_engine=engine)
    assert isinstance(store, QdrantStore | EdgeStore)
    try:
        manifest = {r.doc_id: (r.content_hash, r.status, r.chunk_count) for r in store.list_documents()}
        points = chunk_points(store)
        return manifest, Counter(doc for _, doc, _ in points), points
    finally:
        store.close()


def chunk_bytes_on_disk(data_dir: Path, engine: str) -> int:
    """How much chunk data the CLI has written so far: the signal to kill it in the middle of the batch."""
    qdrant = data_dir / "qdrant"
    if engine == "local":  # qdrant-client's local mode persists each upsert to a sqlite file
        sqlite = qdrant / "collection" / "chunks" / "storage.sqlite"
        return sqlite.stat().st_size if sqlite.exists() else 0
    # Edge writes each update to the chunk shard's WAL first; its segments are sparse files of a fixed size, so
    # the blocks they hold on disk grow with every write.
    return sum(f.stat().st_blocks * 512 for f in (qdrant / "shards" / "chunks" / "wal").glob("open-*"))


@pytest.mark.parametrize("engine", ["edge", "local"])
def test_sigkill_mid_batch_then_rerun_equals_a_clean_ingest(
    tmp_path: Path, embedder: SentenceTransformerEmbedder, engine: str
) -> None:
    corpus = tmp_path / "corpus"
    write_corpus(corpus)

    # 1. Kill the ingester once its first chunks are on disk, i.e. in the middle of the batch.
    crashed = tmp_path / "crashed"
    proc = cli(crashed, engine, tmp_path / "killed.log", "add", str(corpus))
    try:
        deadline = time.monotonic() + 240
        baseline: int | None = None  # what the empty store holds (Edge: its WAL's first blocks)
        while True:
            written = chunk_bytes_on_disk(crashed, engine)
            if written and baseline is None:
                baseline = written
            if baseline is not None and written - baseline > 64 * 1024:
                break
            assert proc.poll() is None, f"the CLI ended before it could be killed:\n{proc.log_text()}"
            assert time.monotonic() < deadline, "no chunk was written in time"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)  # the CLI alone, then whatever it left in its group
        proc.wait(timeout=30)
    finally:
        proc.stop()
    assert proc.returncode == -signal.SIGKILL

    manifest, per_doc, points = snapshot(crashed / "qdrant", engine)
    complete = [d for d, (_, status, _) in manifest.items() if status == "complete"]
    assert points, "nothing reached the store before the kill: the test would prove nothing"
    assert len(complete) < N_FILES, "the ingest finished before the kill: the test would prove nothing"
    # Even mid-crash there are no orphans: every chunk belongs to a manifest entry (complete or pending).
    assert set(per_doc) <= set(manifest)
    print(f"\nkilled with {len(complete)}/{N_FILES} documents complete, {len(points)} chunks on disk")

    # 2. Run it again: it finishes what was pending and leaves the complete documents alone.
    rerun = cli(crashed, engine, tmp_path / "rerun.log", "add", "--json", str(corpus))
    try:
        rerun.wait(timeout=600)
    finally:
        rerun.stop()
    out = rerun.log_text()
    assert rerun.returncode == 0, out

    # 3. A clean ingest of the same folder into a fresh store: the pipeline the CLI builds, same settings.
    clean = tmp_path / "clean"
    store = open_store(clean / "qdrant", qdrant_embedded_engine=engine)
    try:
        settings = Settings(_env_file=None, data_dir=clean)  # batch size does not change ids or chunks
        report = build_pipeline(settings, embedder, store).ingest_paths([corpus])
        assert report.count("added") == N_FILES
    finally:
        store.close()

    got_manifest, got_per_doc, got_points = snapshot(crashed / "qdrant", engine)
    want_manifest, want_per_doc, want_points = snapshot(clean / "qdrant", engine)
    assert len(want_manifest) == N_FILES
    assert got_manifest == want_manifest  # same documents, hashes, all complete, same chunk counts
    assert sorted(got_points) == sorted(want_points)  # same ids (deterministic), same count
    assert len({pid for pid, _, _ in got_points}) == len(got_points)  # no duplicate ids
    per_position = Counter((doc, index) for _, doc, index in got_points)
    assert set(per_position.values()) == {1}  # one chunk per (document, position): no duplicated text either
    assert got_per_doc == want_per_doc
    assert all(status == "complete" for _, status, _ in got_manifest.values())
    assert all(got_per_doc[d] == count for d, (_, _, count) in got_manifest.items())  # no orphans either way
