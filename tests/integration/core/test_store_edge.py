"""What only the Edge store has to prove: its folder survives a restart and a SIGKILL, it refuses folders it
cannot read, one process owns it, the HNSW build keeps answers, and stores move between engines unchanged."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ingest import cli
from services.core.factory import build_store
from services.core.models.sparse import BM25SparseEncoder
from services.core.settings import Settings
from services.core.storage.store import QdrantStore, StoreUnavailableError, VectorStore
from services.core.storage.store_edge import EdgeStore, LocalModeFolderError, copy_client_to_edge, folder_kind
from services.core.types import Chunk, DocumentRecord

pytestmark = pytest.mark.integration

DIM = 16
ROOT = Path(__file__).resolve().parents[3]


def chunks_for(doc: int, n: int) -> list[Chunk]:
    doc_id = f"20000000-0000-4000-8000-{doc:012d}"
    return [
        Chunk(doc_id, f"mem://d{doc}", f"D{doc}", None, None, i, f"word{i} topic{doc} text {i * doc}", "h", 4)
        for i in range(n)
    ]


def fill(store: VectorStore, docs: int = 3, per_doc: int = 20, *, late: bool = False, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    store.ensure_collections(DIM)
    for d in range(docs):
        chunks = chunks_for(d, per_doc)
        record = DocumentRecord(chunks[0].doc_id, chunks[0].source, f"D{d}", "h", "text/plain", per_doc, "pending", "t")
        store.put_document(record)
        dense = rng.standard_normal((per_doc, DIM)).astype(np.float32)
        sparse = [BM25SparseEncoder().encode_document(c.text) for c in chunks]
        tokens = [rng.standard_normal((3, DIM)).astype(np.float32) for _ in chunks] if late else None
        store.upsert_chunks(chunks, dense, sparse, "t", tokens=tokens)
        record.status = "complete"
        store.put_document(record)


def top_ids(store: VectorStore, *, late: bool = False) -> list[list[str]]:
    rng = np.random.default_rng(42)
    out = []
    for _ in range(5):
        q = rng.standard_normal(DIM).astype(np.float32)
        tokens = rng.standard_normal((2, DIM)).astype(np.float32) if late else None
        # Dense scores never tie here (sparse and RRF ones do, and a tie may come back in another order).
        out.append([h.id for h in store.search(dense=q, sparse=None, mode="dense", limit=8, late=tokens)])
    return out


def test_a_reopened_store_keeps_chunks_manifest_indexes_and_schema(tmp_path: Path) -> None:
    store = EdgeStore(path=str(tmp_path / "e"))
    fill(store)
    before = top_ids(store)
    store.close()
    assert folder_kind(tmp_path / "e") == "edge"

    again = EdgeStore(path=str(tmp_path / "e"))
    try:
        assert again.count_chunks() == 60 and [r.status for r in again.list_documents()] == ["complete"] * 3
        assert top_ids(again) == before
        assert set(again.stats()["chunks"]["payload_indexes"]) >= {"doc_id", "source", "tags"}  # type: ignore[index]
        with pytest.raises(ValueError, match="16-d vectors"):
            again.ensure_collections(DIM * 2)
    finally:
        again.close()
    with pytest.raises(ValueError, match="RAG_LATE_INTERACTION"):
        EdgeStore(path=str(tmp_path / "e"), late_interaction=True).ensure_collections(DIM)


def test_a_memory_store_is_a_temporary_folder_removed_on_close() -> None:
    store = EdgeStore(path=":memory:")
    fill(store, docs=1, per_doc=3)
    folder = store.root
    assert store.count_chunks() == 3 and folder.is_dir()
    store.close()
    assert not folder.exists()


def test_constructors_touch_nothing_until_open(tmp_path: Path) -> None:
    local = QdrantStore(path=str(tmp_path / "local"))
    fill(local, docs=1, per_doc=2)
    local.close()
    # a wrong folder and a missing one: constructing either store reads and writes nothing
    wrong, missing = EdgeStore(path=str(tmp_path / "local")), QdrantStore(path=str(tmp_path / "new"))
    memory = EdgeStore(path=":memory:")
    assert not (tmp_path / "new").exists() and memory._root is None
    with pytest.raises(LocalModeFolderError):
        wrong.open()
    assert missing.open() is missing and (tmp_path / "new").exists()  # local mode's folder, made on open
    assert memory.open().root.is_dir()  # idempotent from here on
    assert memory.open().root == memory.root
    memory.close()
    missing.close()
    assert not memory.root.exists()


def test_each_engine_refuses_the_others_folder_with_the_way_out(tmp_path: Path) -> None:
    local = QdrantStore(path=str(tmp_path / "local"))
    fill(local, docs=1, per_doc=2)
    local.close()
    with pytest.raises(LocalModeFolderError, match="ingest migrate-store"):
        build_store(Settings(_env_file=None, qdrant_path=str(tmp_path / "local"), qdrant_embedded_engine="edge"))

    edge = EdgeStore(path=str(tmp_path / "edge"))
    fill(edge, docs=1, per_doc=2)
    edge.close()
    with pytest.raises(ValueError, match="RAG_QDRANT_EMBEDDED_ENGINE=edge"):
        build_store(Settings(_env_file=None, qdrant_path=str(tmp_path / "edge"), qdrant_embedded_engine="local"))
    assert isinstance(
        build_store(Settings(_env_file=None, qdrant_path=str(tmp_path / "edge"), qdrant_embedded_engine="edge")),
        EdgeStore,
    )


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_writes_survive_a_sigkill_and_a_second_process_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "e"
    # The writer fills the store, then dies without flush or close: only the WAL has the last writes.
    killed = run_python(
        f"""
        import os, signal, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_store_edge import fill
        from services.core.storage.store_edge import EdgeStore
        store = EdgeStore(path={str(folder)!r})
        fill(store)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    assert killed.returncode == -9, killed.stderr
    store = EdgeStore(path=str(folder))
    try:
        assert store.count_chunks() == 60 and [r.status for r in store.list_documents()] == ["complete"] * 3
        other = run_python(
            f"""
            from services.core.storage.store_edge import EdgeStore
            EdgeStore(path={str(folder)!r}).count_chunks()
            """
        )
        assert other.returncode != 0 and "StoreUnavailableError" in other.stderr and "WouldBlock" in other.stderr
    finally:
        store.close()
    with pytest.raises(StoreUnavailableError, match="closed"):
        store.count_chunks()


@pytest.mark.parametrize("quantization", ["none", "int8"])
def test_the_index_is_built_only_past_the_threshold_and_keeps_the_answers(tmp_path: Path, quantization: str) -> None:
    store = EdgeStore(
        path=str(tmp_path / "e"),
        late_interaction=True,
        index_threshold=61,
        quantization=quantization,  # type: ignore[arg-type]
    )
    try:
        fill(store, late=True)
        exact = top_ids(store, late=True)
        below = store.maintain()
        assert below["indexed"] is False and below["chunks"] == 60
        fill(store, docs=4, late=True)  # one more document: 80 chunks
        exact = top_ids(store, late=True)
        built = store.maintain()
        assert built["indexed"] is True and built["chunks"] == 80
        assert top_ids(store, late=True) == exact  # small segments are still searched exactly
        config = json.loads((tmp_path / "e" / "shards" / "chunks" / "edge_config.json").read_text())
        assert ("quantization_config" in config["vectors"]["dense"]) == (quantization == "int8")
        assert config["hnsw_config"]["m"] == 16
    finally:
        store.close()


def test_the_graph_settings_reach_the_index_build(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None, qdrant_path=str(tmp_path / "g"), qdrant_embedded_engine="edge", qdrant_hnsw_m=32,
        qdrant_hnsw_ef_construct=200, qdrant_index_threshold=1,
    )  # fmt: skip
    store = build_store(settings)
    try:
        fill(store, docs=1)
        assert store.maintain(force=True)["indexed"] is True
        config = json.loads((tmp_path / "g" / "shards" / "chunks" / "edge_config.json").read_text())
        assert (config["hnsw_config"]["m"], config["hnsw_config"]["ef_construct"]) == (32, 200)
    finally:
        store.close()


def test_migrate_store_moves_a_local_folder_to_edge_in_place_and_push_store_copies_it_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "qdrant"
    local = QdrantStore(path=str(folder), late_interaction=True)
    fill(local, late=True)
    expected, documents = top_ids(local, late=True), local.list_documents()
    local.close()
    for name in [n for n in __import__("os").environ if n.startswith("RAG_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("RAG_QDRANT_PATH", str(folder))
    monkeypatch.chdir(tmp_path)

    result = CliRunner().invoke(cli.app, ["migrate-store", "--batch", "7"])
    assert result.exit_code == 0, result.output
    assert "migrated 3 documents, 60 chunks" in result.output
    backups = list(tmp_path.glob("qdrant.local-backup-*"))
    assert len(backups) == 1 and folder_kind(backups[0]) == "local" and folder_kind(folder) == "edge"
    edge = EdgeStore(path=str(folder))
    try:
        assert edge.late_interaction is False  # until the schema is read: ensure_collections reads it
        edge.ensure_collections(DIM)
        assert edge.late_interaction and edge.list_documents() == documents
        assert top_ids(edge, late=True) == expected
    finally:
        edge.close()
    assert CliRunner().invoke(cli.app, ["migrate-store"]).exit_code == 2  # not a local-mode folder any more

    # An Edge store goes to a server the same way: here a local-mode folder stands in for the server's API.
    pushed = CliRunner().invoke(cli.app, ["push-store", str(tmp_path / "server"), "--batch", "11"])
    assert pushed.exit_code == 0, pushed.output
    server = QdrantStore(path=str(tmp_path / "server"), late_interaction=True)
    try:
        server.ensure_collections(DIM)
        assert server.list_documents() == documents and top_ids(server, late=True) == expected
    finally:
        server.close()


def test_copy_to_edge_refuses_a_collection_this_project_did_not_write_and_needs_no_manifest(tmp_path: Path) -> None:
    from qdrant_client import QdrantClient, models

    client = QdrantClient(path=str(tmp_path / "src"))
    edge = EdgeStore(path=str(tmp_path / "edge"))
    try:
        with pytest.raises(ValueError, match="no collection 'chunks'"):
            copy_client_to_edge(client, "chunks", edge)
        client.create_collection("chunks", models.VectorParams(size=DIM, distance=models.Distance.COSINE))
        with pytest.raises(ValueError, match="has no 'dense' vector"):
            copy_client_to_edge(client, "chunks", edge)
        params = {"dense": models.VectorParams(size=DIM, distance=models.Distance.COSINE)}
        client.create_collection("other", params)
        client.upsert("other", [models.PointStruct(id=doc_id(0), vector={"dense": [1.0] * DIM}, payload={"text": "t"})])
        assert copy_client_to_edge(client, "other", edge) == {"chunks": 1, "documents": 0}  # no "other_documents"
    finally:
        edge.close()
        client.close()


# -- the index build while the store serves (maintain(concurrent=True), the API's path) -----------------------


def add_doc(store: VectorStore, doc: int, per_doc: int = 20) -> None:
    rng = np.random.default_rng(100 + doc)
    chunks = chunks_for(doc, per_doc)
    dense = rng.standard_normal((per_doc, DIM)).astype(np.float32)
    store.upsert_chunks(chunks, dense, [BM25SparseEncoder().encode_document(c.text) for c in chunks], "t")


def doc_id(doc: int) -> str:
    return chunks_for(doc, 1)[0].doc_id


def test_a_concurrent_build_runs_in_a_child_while_queries_go_on_and_keeps_the_writes_made_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    store = EdgeStore(path=str(tmp_path / "e"), index_threshold=61, quantization="int8")
    reference = EdgeStore(path=str(tmp_path / "ref"))  # the same writes, never indexed
    try:
        for s in (store, reference):
            fill(s, docs=4)  # 80 chunks: past the threshold
        seen: dict[str, object] = {}
        run_build = store._run_build

        def during_the_build(root: Path) -> dict[str, object]:
            seen["copy"] = sorted(p.name for p in (root / "shards").iterdir())
            answered: list[list[list[str]]] = []
            reader = threading.Thread(target=lambda: answered.append(top_ids(store)))
            reader.start()
            reader.join(30)
            seen["answered"] = bool(answered)  # no lock is held while the child builds
            for s in (store, reference):  # an upload and a delete land while the child works on its copy
                add_doc(s, 4)
                s.delete_chunks(doc_id(0))
            outcome = run_build(root)
            seen["child"] = outcome
            return outcome

        monkeypatch.setattr(store, "_run_build", during_the_build)
        built = store.maintain(concurrent=True)
        assert seen["copy"] == ["chunks"] and seen["answered"] is True
        assert built["indexed"] is True and built["concurrent"] is True and built["chunks"] == 80
        assert built["replayed"] == 2  # one upsert of 20 points, one delete
        child = seen["child"]
        assert isinstance(child, dict) and child["indexed"] is True and child["chunks"] == 80  # built over there
        assert store.count_chunks() == 80 and not store.chunk_ids(doc_id(0)) and len(store.chunk_ids(doc_id(4))) == 20
        assert top_ids(store) == top_ids(reference)
        config = json.loads((tmp_path / "e" / "shards" / "chunks" / "edge_config.json").read_text())
        assert "quantization_config" in config["vectors"]["dense"]  # the built copy is the live shard now
        assert not (tmp_path / "e" / "index-build").exists()
        assert not list((tmp_path / "e" / "shards").glob("*.replaced"))
        assert store.stats()["index"]["chunks"] == 80  # type: ignore[index]

        # Built at 80: no new build (no copy, no child) until the store has grown by a tenth.
        monkeypatch.setattr(store, "_run_build", lambda root: pytest.fail("built again"))
        again = store.maintain(concurrent=True)
        assert again["indexed"] is False and "up to date" in str(again["reason"])
    finally:
        store.close()
        reference.close()
    reopened = EdgeStore(path=str(tmp_path / "e"))
    try:
        assert reopened.count_chunks() == 80 and not reopened.chunk_ids(doc_id(0))
    finally:
        reopened.close()


def test_a_failed_concurrent_build_leaves_the_store_serving_and_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = EdgeStore(path=str(tmp_path / "e"), index_threshold=10)
    try:
        fill(store)
        before = top_ids(store)
        config_before = (tmp_path / "e" / "shards" / "chunks" / "edge_config.json").read_text()
        monkeypatch.setattr(sys, "executable", "/bin/false")  # the child process fails
        with pytest.raises(RuntimeError, match="index build process exited with 1"):
            store.maintain(concurrent=True)
        monkeypatch.undo()
        assert store.count_chunks() == 60 and top_ids(store) == before
        assert (tmp_path / "e" / "shards" / "chunks" / "edge_config.json").read_text() == config_before
        assert not (tmp_path / "e" / "index-build").exists() and store.stats()["index"] is None
        add_doc(store, 3)  # writes are no longer recorded for a replay
        assert store._replay is None and store.count_chunks() == 80
        assert store.maintain(concurrent=True)["indexed"] is True  # the next try builds
        assert store.count_chunks() == 80
    finally:
        store.close()


def test_closing_the_store_ends_a_concurrent_build_and_keeps_the_store(tmp_path: Path) -> None:
    import threading

    store = EdgeStore(path=str(tmp_path / "e"), index_threshold=10)
    fill(store)
    before = top_ids(store)

    def close_once_the_child_runs() -> None:
        for _ in range(3000):
            if store._child is not None:
                store.close()
                return
            threading.Event().wait(0.01)

    closer = threading.Thread(target=close_once_the_child_runs)
    closer.start()
    with pytest.raises((RuntimeError, StoreUnavailableError)):
        store.maintain(concurrent=True)
    closer.join(30)
    again = EdgeStore(path=str(tmp_path / "e"))
    try:
        assert again.count_chunks() == 60 and top_ids(again) == before and again.stats()["index"] is None
        assert not (tmp_path / "e" / "index-build").exists()
    finally:
        again.close()


@pytest.mark.parametrize("killed", ["between the renames", "before the old shard was removed"])
def test_an_interrupted_swap_is_finished_or_undone_when_the_store_opens(tmp_path: Path, killed: str) -> None:
    import shutil

    store = EdgeStore(path=str(tmp_path / "e"))
    fill(store)
    before = top_ids(store)
    store.close()
    shards = tmp_path / "e" / "shards"
    if killed == "between the renames":
        (shards / "chunks").rename(shards / "chunks.replaced")
    else:
        shutil.copytree(shards / "chunks", shards / "chunks.replaced")
    (tmp_path / "e" / "index-build" / "shards").mkdir(parents=True)  # the copy the build was working on
    again = EdgeStore(path=str(tmp_path / "e"))
    try:
        assert again.count_chunks() == 60 and top_ids(again) == before
        assert sorted(p.name for p in shards.iterdir()) == ["chunks", "chunks_documents"]
        assert not (tmp_path / "e" / "index-build").exists()
    finally:
        again.close()
