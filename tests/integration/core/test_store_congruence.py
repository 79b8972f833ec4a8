"""One store interface, two engines: qdrant-edge (the embedded default) against qdrant-client (``:memory:`` local
mode, standing in for the server's API). The same points and the same queries must give the same ids in the same
order for dense, sparse (IDF), hybrid (RRF), filtered and late-interaction (MaxSim) search, and the manifest must
behave the same. Vectors are deterministic random ones, so the suite needs no model and runs in about a second.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from services.core.models.sparse import BM25SparseEncoder
from services.core.storage.store import QdrantStore, SearchFilters, VectorStore
from services.core.storage.store_edge import EdgeStore
from services.core.types import Chunk, DocumentRecord, RetrievedChunk

pytestmark = pytest.mark.integration

DIM = 32
DOCS = 12
CHUNKS_PER_DOC = 8
TAGS = ("alpha", "beta", "gamma")
WORDS = [f"w{i}" for i in range(200)]  # Zipf-drawn: the first few dozen words are in many chunks
ENGINES = ("edge", "memory")


def open_store(engine: str, tmp: str, *, late: bool = True) -> VectorStore:
    if engine == "edge":
        return EdgeStore(path=tmp, late_interaction=late)
    return QdrantStore(path=":memory:", late_interaction=late)


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def corpus(rng: np.random.Generator) -> tuple[list[Chunk], np.ndarray, list[np.ndarray]]:
    chunks = []
    lengths = iter(rng.permutation(DOCS * CHUNKS_PER_DOC) + 5)
    for d in range(DOCS):
        source = f"mem://doc-{d}"
        doc_id = f"00000000-0000-4000-8000-{d:012d}"
        for i in range(CHUNKS_PER_DOC):
            # Zipf-drawn words and a different length for every chunk: no two BM25 scores tie exactly, so
            # only RRF (whose scores are made of ranks) produces ties.
            n_words = int(next(lengths))
            text = " ".join(WORDS[min(int(rng.zipf(1.3)) - 1, len(WORDS) - 1)] for _ in range(n_words))
            tags = tuple(t for t in TAGS if rng.random() < 0.4)
            chunks.append(Chunk(doc_id, source, f"Doc {d}", None, None, i, text, f"h{d}", n_words, tags))
    dense = unit(rng.standard_normal((len(chunks), DIM)).astype(np.float32))
    tokens = [unit(rng.standard_normal((int(rng.integers(3, 12)), DIM)).astype(np.float32)) for _ in chunks]
    return chunks, dense, tokens


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, VectorStore]]:
    rng = np.random.default_rng(17)
    chunks, dense, tokens = corpus(rng)
    sparse = [BM25SparseEncoder().encode_document(c.text) for c in chunks]
    built = {e: open_store(e, str(tmp_path_factory.mktemp(f"congruence-{e}"))) for e in ENGINES}
    for store in built.values():
        store.ensure_collections(DIM)
        for start in range(0, len(chunks), 25):  # several upserts, as ingest batches do
            end = start + 25
            store.upsert_chunks(chunks[start:end], dense[start:end], sparse[start:end], "t", tokens=tokens[start:end])
    yield built
    for store in built.values():
        store.close()


def ranked(hits: list[RetrievedChunk]) -> list[tuple[str, float]]:
    return [(h.id, h.retrieval_score) for h in hits]


def assert_same_ranking(
    a: list[RetrievedChunk], b: list[RetrievedChunk], *, rel: float = 1e-4, tie: float = 1e-6
) -> None:
    """Same ids in the same order with the same scores. Tied scores (within `tie`) are the one freedom: the
    engines break ties differently, so a tied run is compared as a set, and the last run may be cut by the limit
    (RRF gives every chunk found at rank r by one list alone the same score), so only its scores must match."""
    assert len(a) == len(b), (ranked(a), ranked(b))
    assert [h.retrieval_score for h in b] == pytest.approx([h.retrieval_score for h in a], rel=rel, abs=rel)
    i = 0
    while i < len(a):
        j = i + 1
        while j < len(a) and abs(a[j].retrieval_score - a[i].retrieval_score) <= tie:
            j += 1
        if j < len(a):
            assert {h.id for h in a[i:j]} == {h.id for h in b[i:j]}, (i, ranked(a), ranked(b))
        i = j


def queries(n: int = 24) -> list[tuple[np.ndarray, object, np.ndarray]]:
    rng = np.random.default_rng(99)
    enc = BM25SparseEncoder()
    out = []
    for _ in range(n):
        words = " ".join(WORDS[int(i)] for i in rng.integers(0, 40, size=3))
        out.append(
            (
                unit(rng.standard_normal(DIM).astype(np.float32)),
                enc.encode_query(words),
                unit(rng.standard_normal((4, DIM)).astype(np.float32)),
            )
        )
    return out


FILTERS = {
    "none": None,
    "source": SearchFilters(source=("mem://doc-1", "mem://doc-4", "mem://doc-7")),
    "doc_id": SearchFilters(doc_id=("00000000-0000-4000-8000-000000000003",)),
    "tags": SearchFilters(tags=("beta",)),
    "tags+source": SearchFilters(source=("mem://doc-2", "mem://doc-5", "mem://doc-9"), tags=("alpha", "gamma")),
    # leave-one-out (eval/generate.py): everything but two documents, alone and narrowing a tag filter
    "exclude": SearchFilters(
        exclude_doc_id=("00000000-0000-4000-8000-000000000000", "00000000-0000-4000-8000-000000000001")
    ),
    "tags-exclude": SearchFilters(tags=("beta",), exclude_doc_id=("00000000-0000-4000-8000-000000000002",)),
}


def first_stage_cut_is_tied(store: VectorStore, kwargs: dict[str, object]) -> bool:
    """Whether the first stage's candidates are not unique: its `limit`-th and next candidates tie.

    Dense scores never tie here and sparse ones seldom do; RRF's often do. A fused list cannot be read past its limit (a
    deeper query also deepens the lists it fuses), so it is fused here from the two congruent lists."""
    limit = int(kwargs["limit"])  # type: ignore[call-overload]
    if kwargs["mode"] != "hybrid":  # one list: a deeper query shows what lies past the cut
        hits = store.search(**kwargs | {"limit": limit + 1})  # type: ignore[arg-type]
        return len(hits) > limit and hits[limit - 1].retrieval_score - hits[limit].retrieval_score <= 1e-6
    fused: dict[str, float] = {}
    for mode in ("dense", "sparse"):
        hits = store.search(**kwargs | {"mode": mode})  # type: ignore[arg-type]
        if any(a.retrieval_score - b.retrieval_score <= 1e-6 for a, b in zip(hits, hits[1:], strict=False)):
            return True  # tied ranks in a fused list: the fused scores depend on the tie order
        for rank, hit in enumerate(hits):
            fused[hit.id] = fused.get(hit.id, 0.0) + 1.0 / (rank + 2)  # RRF with Qdrant's k = 2
    scores = sorted(fused.values(), reverse=True)
    return len(scores) > limit and scores[limit - 1] - scores[limit] <= 1e-9


@pytest.mark.parametrize("flt", FILTERS, ids=str)
@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
@pytest.mark.parametrize("late", [False, True], ids=["first-stage", "maxsim"])
def test_both_engines_rank_the_same_ids_in_the_same_order(
    stores: dict[str, VectorStore], mode: str, flt: str, late: bool
) -> None:
    compared = 0
    asked = queries()
    for dense, sparse, tokens in asked:
        kwargs = {"dense": dense, "sparse": sparse, "mode": mode, "limit": 10, "filters": FILTERS[flt]}
        edge, client = (stores[e].search(**kwargs) for e in ENGINES)  # type: ignore[arg-type]
        assert edge, "the query should match something"
        if first_stage_cut_is_tied(stores["edge"], kwargs):
            # Which of the tied chunks make the cut (and, in MaxSim, get re-scored) is the engine's choice;
            # Edge's nested plan may even pick another one than its top-level query does.
            assert len(edge) == len(client)
            continue
        assert_same_ranking(edge, client)
        if FILTERS[flt] is not None:
            f = FILTERS[flt]
            assert all(
                (not f.source or h.source in f.source)
                and (not f.tags or set(h.tags) & set(f.tags))
                and h.doc_id not in f.exclude_doc_id
                for h in edge
            )
        if late:
            edge, client = (stores[e].search(**kwargs, late=tokens) for e in ENGINES)  # type: ignore[arg-type]
            # Token vectors are stored as fp16 by Edge: MaxSim sums agree to ~1e-3, closer ones count as tied.
            assert_same_ranking(edge, client, rel=2e-3, tie=2e-3)
        compared += 1
    assert compared >= len(asked) // 4, "too few queries without a tie at the first stage's cut"


def test_a_stop_word_query_matches_nothing_lexically_on_both(stores: dict[str, VectorStore]) -> None:
    empty = BM25SparseEncoder().encode_query("the and of")
    for store in stores.values():
        assert store.search(dense=None, sparse=empty, mode="sparse", limit=5) == []
    dense = unit(np.ones(DIM, dtype=np.float32))
    edge, client = (stores[e].search(dense=dense, sparse=empty, mode="hybrid", limit=5) for e in ENGINES)
    assert_same_ranking(edge, client)  # hybrid falls back to the dense prefetch alone


def test_payloads_and_counts_agree(stores: dict[str, VectorStore]) -> None:
    edge, client = (stores[e] for e in ENGINES)
    assert edge.count_chunks() == client.count_chunks() == DOCS * CHUNKS_PER_DOC
    doc = "00000000-0000-4000-8000-000000000005"
    assert edge.chunk_ids(doc) == client.chunk_ids(doc) and len(edge.chunk_ids(doc)) == CHUNKS_PER_DOC
    q = unit(np.ones(DIM, dtype=np.float32))
    a, b = (s.search(dense=q, sparse=None, mode="dense", limit=3) for s in (edge, client))
    assert [(h.id, h.text, h.doc_id, h.source, h.title, h.chunk_index, h.tags) for h in a] == [
        (h.id, h.text, h.doc_id, h.source, h.title, h.chunk_index, h.tags) for h in b
    ]


def test_a_documents_chunks_come_back_whole_and_in_reading_order(stores: dict[str, VectorStore]) -> None:
    doc = "00000000-0000-4000-8000-000000000005"
    edge, client = (stores[e].document_chunks(doc) for e in ENGINES)
    assert [c.chunk_index for c in edge] == list(range(CHUNKS_PER_DOC))
    assert [(c.id, c.text, c.content_hash) for c in edge] == [(c.id, c.text, c.content_hash) for c in client]
    assert {c.id for c in edge} == stores["edge"].chunk_ids(doc) and {c.doc_id for c in edge} == {doc}
    assert edge[0].content_hash == "h5"
    assert stores["edge"].document_chunks("00000000-0000-4000-8000-999999999999") == []


def record(n: int, status: str = "pending") -> DocumentRecord:
    return DocumentRecord(
        doc_id=f"10000000-0000-4000-8000-{n:012d}",
        source=f"/docs/{chr(ord('z') - n)}.md",
        title=f"T{n}",
        content_hash=f"hash{n}",
        media_type="text/markdown",
        chunk_count=n,
        status=status,
        ingested_at="2026-12-02T00:00:00+00:00",
        tags=["x"],
        size_bytes=10 * n,
        index_signature="sig",
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_manifest_behaves_the_same(engine: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    store = open_store(engine, str(tmp_path_factory.mktemp(f"manifest-{engine}")), late=False)
    try:
        # Reading a store nothing was ingested into needs no schema (and no embedder).
        assert store.list_documents() == [] and store.count_chunks() == 0
        assert store.get_document(record(1).doc_id) is None
        store.ensure_collections(DIM)
        for n in (1, 2, 3):
            store.put_document(record(n))
        assert store.get_document(record(2).doc_id) == record(2)
        store.put_document(record(2, status="complete"))  # pending -> complete overwrites the same entry
        assert store.get_document(record(2).doc_id).status == "complete"  # type: ignore[union-attr]
        assert [r.source for r in store.list_documents()] == sorted(record(n).source for n in (1, 2, 3))
        store.delete_document(record(1).doc_id)
        assert {r.doc_id for r in store.list_documents()} == {record(2).doc_id, record(3).doc_id}
        assert store.get_document(record(1).doc_id) is None
        assert store.ping()
    finally:
        store.close()


@pytest.mark.parametrize("engine", ENGINES)
def test_replacing_a_documents_chunks_keeps_only_the_new_set(engine: str, tmp_path: object) -> None:
    rng = np.random.default_rng(5)
    chunks, dense, _ = corpus(rng)
    mine = [c for c in chunks if c.doc_id == chunks[0].doc_id]
    sparse = [BM25SparseEncoder().encode_document(c.text) for c in mine]
    store = open_store(engine, str(tmp_path), late=False)
    try:
        store.ensure_collections(DIM)
        assert store.upsert_chunks(mine, dense[: len(mine)], sparse, "t") == len(mine)
        keep = {c.point_id for c in mine[:3]}
        assert store.delete_chunks(mine[0].doc_id, keep=keep) == len(mine) - 3
        assert store.chunk_ids(mine[0].doc_id) == keep
        assert store.delete_chunks(mine[0].doc_id) == 3 and store.count_chunks() == 0
    finally:
        store.close()
