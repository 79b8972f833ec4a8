"""The ingest pipeline end to end: real loaders, the packaged embedder and the embedded store on disk (the engine
the settings pick: qdrant-edge by default, ``RAG_QDRANT_EMBEDDED_ENGINE=local`` for qdrant-client's local mode)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from fixtures_docs import BAD_KEYS, GOOD_KEYS, SOURDOUGH_EXTRA_MD, TOPICS, Topic, write_mixed_folder
from store_engines import open_store

from ingest.factory import build_pipeline
from ingest.pipeline import IngestPipeline, IngestReport
from services.core.models.embedder import SentenceTransformerEmbedder
from services.core.models.sparse import BM25SparseEncoder, SparseVector
from services.core.settings import Settings
from services.core.storage.store import VectorStore
from services.core.types import Chunk, RetrievedChunk, doc_id_for

pytestmark = pytest.mark.integration

# A manifest entry without its timestamp: what must match between two ingests of the same files.
ManifestRow = tuple[str, str, str, str, int, str]


def settings(**overrides: object) -> Settings:
    return Settings(_env_file=None, **({"chunk_size": 128, "chunk_overlap": 24} | overrides))


def pipeline_for(store: VectorStore, embedder: SentenceTransformerEmbedder, **overrides: object) -> IngestPipeline:
    return build_pipeline(settings(**overrides), embedder, store)


def source_of(path: Path) -> str:
    return str(path.resolve())


def statuses(report: IngestReport) -> dict[str, str]:
    return {Path(o.source).name: o.status for o in report.outcomes}


def manifest(store: VectorStore) -> dict[str, ManifestRow]:
    return {
        r.doc_id: (r.source, r.title, r.content_hash, r.media_type, r.chunk_count, r.status)
        for r in store.list_documents()
    }


def chunk_ids_by_doc(store: VectorStore) -> dict[str, set[str]]:
    return {doc_id: store.chunk_ids(doc_id) for doc_id in manifest(store)}


def assert_stats_consistent(store: VectorStore) -> None:
    records = store.list_documents()
    assert all(r.status == "complete" for r in records)
    assert store.count_chunks() == sum(r.chunk_count for r in records)
    for r in records:
        assert len(store.chunk_ids(r.doc_id)) == r.chunk_count


def clean_ingest(
    folder: Path, embedder: SentenceTransformerEmbedder, store_dir: Path
) -> tuple[dict[str, ManifestRow], dict[str, set[str]], int]:
    """What a first ingest of `folder` into a brand-new store produces: manifest, chunk ids, count."""
    store = open_store(store_dir)
    try:
        pipeline_for(store, embedder).ingest_paths([folder])
        return manifest(store), chunk_ids_by_doc(store), store.count_chunks()
    finally:
        store.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[VectorStore]:
    s = open_store(tmp_path / "q")
    yield s
    s.close()


@pytest.fixture(scope="module")
def ingested(
    tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder
) -> Iterator[tuple[VectorStore, dict[str, Path], IngestReport]]:
    """The mixed folder ingested once for the read-only tests of this module."""
    root = tmp_path_factory.mktemp("ingested")
    paths = write_mixed_folder(root / "docs")
    s = open_store(root / "q")
    report = pipeline_for(s, embedder).ingest_paths([root / "docs"])
    yield s, paths, report
    s.close()


# ----------------------------------------------------------------------------------------------
# First ingest and retrieval
# ----------------------------------------------------------------------------------------------


def test_good_files_are_added_and_corrupt_or_empty_files_skipped_with_reasons(
    ingested: tuple[VectorStore, dict[str, Path], IngestReport],
) -> None:
    store, paths, report = ingested
    by_source = {o.source: o for o in report.outcomes}
    assert len(by_source) == len(GOOD_KEYS) + len(BAD_KEYS)
    for key in GOOD_KEYS:
        outcome = by_source[source_of(paths[key])]
        assert outcome.status == "added", outcome
        assert outcome.chunks > 0
    corrupt = by_source[source_of(paths["corrupt"])]
    empty = by_source[source_of(paths["empty"])]
    assert corrupt.status == "skipped" and "PDF" in corrupt.reason
    assert empty.status == "skipped" and "empty" in empty.reason
    assert {r.source for r in store.list_documents()} == {source_of(paths[k]) for k in GOOD_KEYS}
    assert report.points_written == store.count_chunks() == report.chunks
    assert_stats_consistent(store)


def test_chunks_respect_the_configured_size_and_carry_structure(
    ingested: tuple[VectorStore, dict[str, Path], IngestReport], embedder: SentenceTransformerEmbedder
) -> None:
    store, paths, _ = ingested
    hits = store.search(dense=embedder.embed_query("anything"), sparse=None, mode="dense", limit=100)
    assert len(hits) == store.count_chunks()
    assert all(embedder.count_tokens(h.text) <= 128 for h in hits)
    pdf_pages = {h.page for h in hits if h.source == source_of(paths["pdf"])}
    assert pdf_pages == {1, 2}
    md = [h for h in hits if h.source == source_of(paths["md"])]
    # small sections merge into one chunk: the first one names it, the others keep their heading line
    assert {h.section for h in md} <= {"Baking sourdough bread", "Baking sourdough bread > Baking"}
    assert any(h.section == "Baking sourdough bread" and "\nFeeding the starter\n" in h.text for h in md)


def search(store: VectorStore, embedder: SentenceTransformerEmbedder, question: str, mode: str) -> list[RetrievedChunk]:
    dense: np.ndarray = embedder.embed_query(question)
    sparse: SparseVector | None = BM25SparseEncoder().encode_query(question) if mode == "hybrid" else None
    return store.search(dense=dense, sparse=sparse, mode=mode, limit=3)


@pytest.mark.parametrize("mode", ["dense", "hybrid"])
@pytest.mark.parametrize("topic", TOPICS, ids=lambda t: f"{t.key}-p{t.page}" if t.page else t.key)
def test_each_document_is_the_top_hit_for_a_paraphrased_question(
    ingested: tuple[VectorStore, dict[str, Path], IngestReport],
    embedder: SentenceTransformerEmbedder,
    topic: Topic,
    mode: str,
) -> None:
    store, paths, _ = ingested
    hits = search(store, embedder, topic.question, mode)
    assert hits, "no hits"
    top = hits[0]
    assert top.source == source_of(paths[topic.key]), [(h.source, h.text[:60]) for h in hits]
    if topic.page is not None:
        assert top.page == topic.page
    if topic.key == "docx":
        assert top.section  # a Heading 1 section of the Word document


# ----------------------------------------------------------------------------------------------
# Idempotence and updates
# ----------------------------------------------------------------------------------------------


def test_reingesting_an_unchanged_folder_writes_nothing(
    ingested: tuple[VectorStore, dict[str, Path], IngestReport], embedder: SentenceTransformerEmbedder
) -> None:
    store, paths, _ = ingested
    before_count, before_ids = store.count_chunks(), chunk_ids_by_doc(store)
    report = pipeline_for(store, embedder).ingest_paths([paths["txt"].parent])
    assert report.points_written == 0 and report.points_deleted == 0
    assert {statuses(report)[paths[k].name] for k in GOOD_KEYS} == {"unchanged"}
    assert {statuses(report)[paths[k].name] for k in BAD_KEYS} == {"skipped"}
    assert store.count_chunks() == before_count
    assert chunk_ids_by_doc(store) == before_ids


def test_editing_one_file_updates_only_that_document(
    store: VectorStore, embedder: SentenceTransformerEmbedder, mixed_folder: dict[str, Path], tmp_path: Path
) -> None:
    folder = mixed_folder["txt"].parent
    pipeline = pipeline_for(store, embedder)
    pipeline.ingest_paths([folder])
    before = chunk_ids_by_doc(store)
    md_id = doc_id_for(source_of(mixed_folder["md"]))

    with mixed_folder["md"].open("a", encoding="utf-8") as handle:
        handle.write(SOURDOUGH_EXTRA_MD)
    report = pipeline.ingest_paths([folder])

    expected = {mixed_folder[k].name: "unchanged" for k in GOOD_KEYS}
    expected |= {mixed_folder["md"].name: "updated"} | {mixed_folder[k].name: "skipped" for k in BAD_KEYS}
    assert statuses(report) == expected
    after = chunk_ids_by_doc(store)
    for doc_id, ids in before.items():
        if doc_id != md_id:
            assert after[doc_id] == ids
    clean_manifest, clean_ids, clean_count = clean_ingest(folder, embedder, tmp_path / "fresh")
    assert after[md_id] == clean_ids[md_id]
    assert before[md_id] - after[md_id], "the edit should have replaced at least one chunk"
    assert report.points_written == len(after[md_id])
    assert report.points_deleted == len(before[md_id] - after[md_id])
    assert manifest(store) == clean_manifest
    assert store.count_chunks() == clean_count
    assert_stats_consistent(store)


def test_sync_after_deleting_a_file_removes_its_chunks_and_manifest_entry(
    store: VectorStore, embedder: SentenceTransformerEmbedder, mixed_folder: dict[str, Path]
) -> None:
    folder = mixed_folder["txt"].parent
    pipeline = pipeline_for(store, embedder)
    pipeline.sync(folder)
    txt_id = doc_id_for(source_of(mixed_folder["txt"]))
    txt_chunks = len(store.chunk_ids(txt_id))
    assert txt_chunks > 0
    total = store.count_chunks()

    mixed_folder["txt"].unlink()
    report = pipeline.sync(folder)

    deleted = [o for o in report.outcomes if o.status == "deleted"]
    assert [(o.source, o.doc_id) for o in deleted] == [(source_of(mixed_folder["txt"]), txt_id)]
    assert report.points_deleted == txt_chunks
    assert store.chunk_ids(txt_id) == set()
    assert store.get_document(txt_id) is None
    assert store.count_chunks() == total - txt_chunks
    assert {r.source for r in store.list_documents()} == {source_of(mixed_folder[k]) for k in GOOD_KEYS if k != "txt"}
    assert_stats_consistent(store)


# ----------------------------------------------------------------------------------------------
# Crash consistency
# ----------------------------------------------------------------------------------------------


class CrashingStore:
    """A real store whose second and later `upsert_chunks` calls die, as a killed process would."""

    def __init__(self, store: VectorStore) -> None:
        self.store = store
        self.upserts = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    def upsert_chunks(
        self,
        chunks: Sequence[Chunk],
        dense: np.ndarray,
        sparse: Sequence[SparseVector],
        ingested_at: str,
        tokens: Sequence[np.ndarray] | None = None,
    ) -> int:
        self.upserts += 1
        if self.upserts > 1:
            raise RuntimeError("simulated crash mid-flush")
        return self.store.upsert_chunks(chunks, dense, sparse, ingested_at, tokens=tokens)


def test_rerun_after_a_crash_mid_flush_converges_to_a_clean_ingest(
    embedder: SentenceTransformerEmbedder, mixed_folder: dict[str, Path], tmp_path: Path
) -> None:
    folder = mixed_folder["txt"].parent
    crashing = CrashingStore(open_store(tmp_path / "q"))
    try:
        # Small batches so the flush is split into several upserts and the second one fails.
        with pytest.raises(RuntimeError, match="simulated crash"):
            pipeline_for(crashing, embedder, embed_batch_size=2).ingest_paths([folder])
        assert crashing.upserts == 2
        assert any(r.status == "pending" for r in crashing.list_documents())
        assert crashing.count_chunks() > 0  # the first batch did land
    finally:
        crashing.close()

    store = open_store(tmp_path / "q")
    try:
        report = pipeline_for(store, embedder).ingest_paths([folder])
        assert report.count("failed") == 0
        clean_manifest, clean_ids, clean_count = clean_ingest(folder, embedder, tmp_path / "fresh")
        assert manifest(store) == clean_manifest
        assert chunk_ids_by_doc(store) == clean_ids
        assert store.count_chunks() == clean_count
        assert not [r for r in store.list_documents() if r.status == "pending"]
        assert_stats_consistent(store)
    finally:
        store.close()


def test_changing_chunk_settings_reingests_unchanged_files(
    store: VectorStore, embedder: SentenceTransformerEmbedder, mixed_folder: dict[str, Path]
) -> None:
    pipeline_for(store, embedder).ingest_paths([mixed_folder["md"]])
    report = pipeline_for(store, embedder, chunk_size=64, chunk_overlap=8).ingest_paths([mixed_folder["md"]])
    assert statuses(report) == {mixed_folder["md"].name: "updated"}
    assert report.points_written > 0
    assert_stats_consistent(store)


def test_the_context_header_reaches_the_embedder_only_and_switching_it_reingests(
    store: VectorStore, embedder: SentenceTransformerEmbedder, mixed_folder: dict[str, Path]
) -> None:
    pipeline_for(store, embedder, embed_context_header=False).ingest_paths([mixed_folder["md"]])
    headed = pipeline_for(store, embedder, embed_context_header=True)
    headed.warm_up()  # with the real model: the spy below has no warm_up
    seen: list[str] = []
    original = headed.embedder.embed_passages

    def recording(texts, **kwargs):  # a spy around the real model
        seen.extend(texts)
        return original(texts, **kwargs)

    headed.embedder = type("Spy", (), {})()  # only what _flush and embedding_text use
    headed.embedder.embed_passages = recording  # type: ignore[attr-defined]
    headed.embedder.count_tokens = embedder.count_tokens  # type: ignore[attr-defined]
    headed.embedder.max_tokens = embedder.max_tokens  # type: ignore[attr-defined]
    report = headed.ingest_paths([mixed_folder["md"]])
    assert statuses(report) == {mixed_folder["md"].name: "updated"}  # other vectors: the file is re-embedded
    stored = {h.text for h in store.search(dense=embedder.embed_query("starter"), sparse=None, mode="dense", limit=50)}
    # the embedder read "title — section" above each chunk; the store keeps the chunk's own text
    assert seen and all(t.startswith("Baking sourdough bread") for t in seen)
    assert all(t not in stored and t.split("\n", 1)[1] in stored for t in seen)


# ----------------------------------------------------------------------------------------------
# Progress and a stopped ingest
# ----------------------------------------------------------------------------------------------


def test_an_ingest_stopped_while_it_embeds_leaves_the_previous_version_answering(
    store: VectorStore, embedder: SentenceTransformerEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ingest.pipeline as pipeline_module
    from ingest.pipeline import IngestCancelled, IngestProgress

    pipeline = pipeline_for(store, embedder)
    source = "upload://notes.md"
    first = b"# Notes\n\nThe boiler is serviced every October by the caretaker.\n"
    pipeline.ingest_bytes(first, "notes.md", source)
    doc_id = doc_id_for(source)
    before_ids, before_row = store.chunk_ids(doc_id), manifest(store)[doc_id]

    monkeypatch.setattr(pipeline_module, "PROGRESS_SLICE", 2)  # several reports for a short file
    seen: list[IngestProgress] = []

    def stop_mid_embedding(progress: IngestProgress) -> None:
        seen.append(progress)
        if progress.stage == "embedding":
            raise IngestCancelled(doc_id)

    second = "# Notes\n\n" + "\n\n".join(f"Paragraph {i}: the roof was retiled in {1990 + i}." for i in range(40))
    with pytest.raises(IngestCancelled):
        pipeline.ingest_bytes(second.encode(), "notes.md", source, on_progress=stop_mid_embedding)
    assert [p.stage for p in seen] == ["parsed", "embedding"] and seen[0].chunks_total > 2
    assert seen[1].chunks_done == 2 < seen[1].chunks_total
    assert store.chunk_ids(doc_id) == before_ids and manifest(store)[doc_id] == before_row  # nothing written
    hits = search(store, embedder, "When is the boiler serviced?", "hybrid")
    assert hits and hits[0].doc_id == doc_id and "October" in hits[0].text
    assert_stats_consistent(store)

    done: list[IngestProgress] = []
    report = pipeline.ingest_bytes(second.encode(), "notes.md", source, on_progress=done.append)
    assert report.outcomes[0].status == "updated"
    assert [p.stage for p in done][0] == "parsed" and done[-1].stage == "writing"
    assert done[-1].chunks_done == done[-1].chunks_total == report.outcomes[0].chunks
    assert_stats_consistent(store)
