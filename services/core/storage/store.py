"""Qdrant behind a small ``VectorStore`` interface: one collection of chunks, one manifest of documents.

The chunk collection holds a named dense vector (``dense``, cosine) and a named sparse vector (``bm25``,
``Modifier.IDF``) so dense, sparse and hybrid (prefetch + RRF) search all run inside Qdrant. The
manifest collection has no vectors: one point per document (id = doc id) with its content hash and an
ingest ``status``, which is what makes re-ingestion idempotent and interrupted runs resumable.

Usage::

    store = QdrantStore(path=":memory:")          # or path="/data/qdrant", or url="http://qdrant:6333"
    store.ensure_collections(dimension=384)
    hits = store.search(dense=vec, sparse=None, mode="dense", limit=10)
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, Self, TypeVar

import numpy as np
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from services.core.models.sparse import SparseVector
from services.core.types import Chunk, DocumentRecord, RetrievalMode, RetrievedChunk

logger = logging.getLogger(__name__)
T = TypeVar("T")

DENSE = "dense"
SPARSE = "bm25"
LATE = "late"  # per-token multivector, compared with MAX_SIM (ColBERT-style late interaction)
FILTER_FIELDS = ("source", "doc_id", "tags")


class StoreUnavailableError(RuntimeError):
    """Qdrant cannot be reached or refused the operation after retries."""


@dataclass(frozen=True, slots=True)
class SearchFilters:
    """What a search may return: any of ``source``/``doc_id``/``tags`` when given, never ``exclude_doc_id``.

    The exclusion only narrows: the evaluation asks a question of the corpus without its source document
    (leave-one-out, eval/generate.py), which is how a near miss is made from an answerable question."""

    source: tuple[str, ...] = ()
    doc_id: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    exclude_doc_id: tuple[str, ...] = ()

    def conditions(self) -> tuple[list[tuple[str, tuple[str, ...]]], list[tuple[str, tuple[str, ...]]]]:
        """``(must, must_not)`` as (payload key, any of these values), the same for every store."""
        must = [(k, v) for k, v in (("source", self.source), ("doc_id", self.doc_id), ("tags", self.tags)) if v]
        return must, [("doc_id", self.exclude_doc_id)] if self.exclude_doc_id else []

    def to_qdrant(self) -> models.Filter | None:
        must, must_not = self.conditions()
        if not must and not must_not:
            return None
        return models.Filter(
            must=[models.FieldCondition(key=k, match=models.MatchAny(any=list(v))) for k, v in must] or None,
            must_not=[models.FieldCondition(key=k, match=models.MatchAny(any=list(v))) for k, v in must_not] or None,
        )


class VectorStore(Protocol):
    late_interaction: bool

    def ensure_collections(self, dimension: int) -> None: ...
    def upsert_chunks(
        self,
        chunks: Sequence[Chunk],
        dense: np.ndarray,
        sparse: Sequence[SparseVector],
        ingested_at: str,
        tokens: Sequence[np.ndarray] | None = None,
    ) -> int: ...
    def chunk_ids(self, doc_id: str) -> set[str]: ...
    def document_chunks(self, doc_id: str) -> list[RetrievedChunk]:
        """One document's chunks in reading order (``chunk_index``), score 0: what the question generator reads."""
        ...

    def delete_chunks(self, doc_id: str, keep: set[str] | None = None) -> int: ...
    def get_document(self, doc_id: str) -> DocumentRecord | None: ...
    def put_document(self, record: DocumentRecord) -> None: ...
    def delete_document(self, doc_id: str) -> None: ...
    def list_documents(self) -> list[DocumentRecord]: ...
    def count_chunks(self) -> int: ...
    def search(
        self,
        *,
        dense: np.ndarray | None,
        sparse: SparseVector | None,
        mode: RetrievalMode,
        limit: int,
        filters: SearchFilters | None = None,
        late: np.ndarray | None = None,
    ) -> list[RetrievedChunk]: ...
    def ping(self) -> bool: ...
    def open(self) -> Self: ...
    def maintain(self, *, force: bool = False, concurrent: bool = False) -> dict[str, object]: ...
    def close(self) -> None: ...


def chunk_vectors(
    chunks: Sequence[Chunk],
    dense: np.ndarray,
    sparse: Sequence[SparseVector],
    tokens: Sequence[np.ndarray] | None,
    *,
    late_interaction: bool,
) -> Iterator[tuple[Chunk, dict[str, Any]]]:
    """Each chunk with its named vectors, what both stores write (each wraps the sparse one for its engine).
    A collection that stores per-token vectors refuses chunks without them."""
    if late_interaction and tokens is None:
        raise ValueError("this collection stores per-token vectors: pass tokens to upsert_chunks")
    for i, chunk in enumerate(chunks):
        vector: dict[str, Any] = {DENSE: dense[i].tolist(), SPARSE: sparse[i]}
        if late_interaction and tokens is not None:
            vector[LATE] = tokens[i].tolist()
        yield chunk, vector


class QdrantStore:
    def __init__(
        self,
        *,
        url: str | None = None,
        path: str | None = None,
        api_key: str | None = None,
        collection: str = "chunks",
        timeout_s: float = 10.0,
        retries: int = 2,
        late_interaction: bool = False,
        hnsw_ef: int | None = None,
        shard_number: int | None = None,
        replication_factor: int | None = None,
        write_consistency_factor: int | None = None,
    ) -> None:
        # Nothing is opened here (a pure constructor): the client is made by open(), which the wiring
        # (services.core.factory.build_store) calls, or on first use. Local mode's folder lock is taken then.
        self._client_args: dict[str, Any]
        if url:
            self._client_args = {"url": url, "api_key": api_key, "timeout": int(max(1, timeout_s))}
            self.mode = "server"
        elif path == ":memory:":
            self._client_args = {"location": ":memory:"}
            self.mode = "memory"
        else:
            self._client_args = {"path": path or ".data/qdrant"}
            self.mode = "local"
        self._client: QdrantClient | None = None
        self.collection = collection
        self.late_interaction = late_interaction
        # Without it the server searches its graph with ef = ef_construct; local mode is exact and ignores it.
        self.search_params = models.SearchParams(hnsw_ef=hnsw_ef) if hnsw_ef else None
        self.manifest = f"{collection}_documents"
        # A cluster's layout for the collections this store creates (server only; None = the server's default).
        self.layout: dict[str, Any] = {
            k: v
            for k, v in {
                "shard_number": shard_number,
                "replication_factor": replication_factor,
                "write_consistency_factor": write_consistency_factor,
            }.items()
            if v is not None and url
        }
        self.retries = retries if self.mode == "server" else 0
        # Local mode is a single-process, non-thread-safe engine; the API calls it from a thread pool.
        self._lock = threading.RLock()
        self._known: set[str] = set()  # collections known to exist
        self._deferred_dimension: int | None = None  # schema still to create once a Qdrant server answers

    def open(self) -> Self:
        """Make the client (local mode: open the folder and take its lock). Idempotent; first use calls it."""
        with self._lock:
            if self._client is None:
                self._client = QdrantClient(**self._client_args)
        return self

    @property
    def client(self) -> QdrantClient:
        if self._client is None:
            self.open()
        assert self._client is not None
        return self._client

    @client.setter
    def client(self, client: QdrantClient) -> None:
        self._client = client

    def _call(self, fn: Callable[[], T]) -> T:
        if self._deferred_dimension is not None:
            self._create_deferred_schema()
        attempt = 0
        while True:
            try:
                with self._lock:
                    return fn()
            except (ResponseHandlingException, ConnectionError, TimeoutError, OSError) as exc:
                if attempt >= self.retries:
                    raise StoreUnavailableError(f"Qdrant unavailable: {type(exc).__name__}: {exc}") from exc
            except UnexpectedResponse as exc:
                if exc.status_code is None or exc.status_code < 500 or attempt >= self.retries:
                    raise StoreUnavailableError(f"Qdrant error {exc.status_code}: {exc.content[:200]!r}") from exc
            attempt += 1
            time.sleep(0.2 * 2**attempt)

    # -- schema ---------------------------------------------------------------------------------

    def ensure_collections(self, dimension: int) -> None:
        """Create the collections if missing and check an existing one matches the embedder.

        A Qdrant *server* that is down at start-up does not stop the process: the schema is created on
        the first call that reaches it, and until then every operation raises ``StoreUnavailableError``
        (the API answers 503 with the reason and recovers by itself when Qdrant comes back).
        """
        try:
            self._ensure(dimension)
        except StoreUnavailableError as exc:
            if self.mode != "server":
                raise
            logger.warning("%s; collections will be created when Qdrant answers", exc)
            self._deferred_dimension = dimension

    def _create_deferred_schema(self) -> None:
        dimension, self._deferred_dimension = self._deferred_dimension, None
        try:
            self._ensure(dimension)  # type: ignore[arg-type]
        except StoreUnavailableError:
            self._deferred_dimension = dimension
            raise
        logger.info("Qdrant answers again; collections are in place")

    def _ensure(self, dimension: int) -> None:
        def create() -> None:
            if not self.client.collection_exists(self.collection):
                vectors = {DENSE: models.VectorParams(size=dimension, distance=models.Distance.COSINE)}
                if self.late_interaction:
                    # Only ever used to re-score prefetched candidates, so no HNSW graph (m=0) and fp16.
                    vectors[LATE] = models.VectorParams(
                        size=dimension,
                        distance=models.Distance.COSINE,
                        multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM),
                        hnsw_config=models.HnswConfigDiff(m=0),
                        datatype=models.Datatype.FLOAT16,
                    )
                self.client.create_collection(
                    self.collection,
                    vectors_config=vectors,
                    sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
                    **self.layout,
                )
                if self.mode == "server":  # local mode has no payload indexes; filters scan instead
                    for field in ("doc_id", "source", "tags"):
                        self.client.create_payload_index(self.collection, field, models.PayloadSchemaType.KEYWORD)
            else:
                existing = self.client.get_collection(self.collection).config.params.vectors
                size = existing[DENSE].size if isinstance(existing, dict) else None
                if size is not None and size != dimension:
                    raise ValueError(
                        f"collection {self.collection!r} holds {size}-d vectors but the embedder makes "
                        f"{dimension}-d ones: use another RAG_COLLECTION or re-ingest into a new one"
                    )
                has_late = isinstance(existing, dict) and LATE in existing
                if self.late_interaction and not has_late:
                    raise ValueError(
                        f"collection {self.collection!r} was created without per-token vectors: set "
                        "RAG_LATE_INTERACTION=false, or use a new RAG_COLLECTION and re-ingest"
                    )
                self.late_interaction = has_late
            if not self.client.collection_exists(self.manifest):
                self.client.create_collection(self.manifest, vectors_config={}, **self.layout)

        self._call(create)
        self._known.update((self.collection, self.manifest))

    # -- chunks ---------------------------------------------------------------------------------

    def upsert_chunks(
        self,
        chunks: Sequence[Chunk],
        dense: np.ndarray,
        sparse: Sequence[SparseVector],
        ingested_at: str,
        tokens: Sequence[np.ndarray] | None = None,
    ) -> int:
        points = []
        for chunk, vector in chunk_vectors(chunks, dense, sparse, tokens, late_interaction=self.late_interaction):
            words: SparseVector = vector[SPARSE]
            vector[SPARSE] = models.SparseVector(indices=words.indices, values=words.values)
            points.append(models.PointStruct(id=chunk.point_id, vector=vector, payload=chunk.payload(ingested_at)))
        if points:
            self._call(lambda: self.client.upsert(self.collection, points=points, wait=True))
        return len(points)

    def chunk_ids(self, doc_id: str) -> set[str]:
        flt = models.Filter(must=[models.FieldCondition(key="doc_id", match=models.MatchValue(value=doc_id))])
        ids: set[str] = set()
        offset: Any = None
        while True:
            page, offset = self._call(
                functools.partial(
                    self.client.scroll,
                    self.collection,
                    scroll_filter=flt,
                    limit=512,
                    offset=offset,
                    with_payload=False,
                    with_vectors=False,
                )
            )
            ids.update(str(p.id) for p in page)
            if offset is None:
                return ids

    def document_chunks(self, doc_id: str) -> list[RetrievedChunk]:
        flt = models.Filter(must=[models.FieldCondition(key="doc_id", match=models.MatchValue(value=doc_id))])
        out: list[RetrievedChunk] = []
        offset: Any = None
        while True:
            page, offset = self._call(
                functools.partial(
                    self.client.scroll, self.collection, scroll_filter=flt, limit=256, offset=offset, with_payload=True
                )
            )
            out.extend(RetrievedChunk.from_payload(str(p.id), 0.0, p.payload or {}) for p in page)
            if offset is None:
                return sorted(out, key=lambda c: c.chunk_index)

    def delete_chunks(self, doc_id: str, keep: set[str] | None = None) -> int:
        stale = sorted(self.chunk_ids(doc_id) - (keep or set()))
        if stale:
            self._call(
                lambda: self.client.delete(
                    self.collection, points_selector=models.PointIdsList(points=list(stale)), wait=True
                )
            )
        return len(stale)

    def _exists(self, collection: str) -> bool:
        # Remembered once seen, so the per-file manifest lookup during ingest costs no extra round trip.
        if collection not in self._known:
            if not self._call(lambda: self.client.collection_exists(collection)):
                return False
            self._known.add(collection)
        return True

    def count_chunks(self) -> int:
        if not self._exists(self.collection):
            return 0  # nothing ingested yet: reading must not need the embedder that creates the schema
        return int(self._call(lambda: self.client.count(self.collection, exact=True).count))

    # -- manifest -------------------------------------------------------------------------------

    def get_document(self, doc_id: str) -> DocumentRecord | None:
        if not self._exists(self.manifest):
            return None
        found = self._call(lambda: self.client.retrieve(self.manifest, ids=[doc_id], with_payload=True))
        return DocumentRecord.from_payload(found[0].payload or {}) if found else None

    def put_document(self, record: DocumentRecord) -> None:
        point = models.PointStruct(id=record.doc_id, vector={}, payload=record.to_payload())
        self._call(lambda: self.client.upsert(self.manifest, points=[point], wait=True))

    def delete_document(self, doc_id: str) -> None:
        self._call(
            lambda: self.client.delete(self.manifest, points_selector=models.PointIdsList(points=[doc_id]), wait=True)
        )

    def list_documents(self) -> list[DocumentRecord]:
        out: list[DocumentRecord] = []
        if not self._exists(self.manifest):
            return out
        offset: Any = None
        while True:
            page, offset = self._call(
                functools.partial(self.client.scroll, self.manifest, limit=512, offset=offset, with_payload=True)
            )
            out.extend(DocumentRecord.from_payload(p.payload or {}) for p in page)
            if offset is None:
                return sorted(out, key=lambda r: r.source)

    # -- search ---------------------------------------------------------------------------------

    def search(
        self,
        *,
        dense: np.ndarray | None,
        sparse: SparseVector | None,
        mode: RetrievalMode,
        limit: int,
        filters: SearchFilters | None = None,
        late: np.ndarray | None = None,
    ) -> list[RetrievedChunk]:
        """First stage by `mode`; with `late` (query token vectors), its candidates are re-scored by MaxSim."""
        flt = filters.to_qdrant() if filters else None
        sparse_q = models.SparseVector(indices=sparse.indices, values=sparse.values) if sparse else None
        if mode == "dense":
            assert dense is not None
            kwargs: dict[str, Any] = {"query": dense.tolist(), "using": DENSE, "params": self.search_params}
        elif mode == "sparse":
            if sparse_q is None or not sparse_q.indices:
                return []  # a query made only of stop words matches nothing lexically
            kwargs = {"query": sparse_q, "using": SPARSE}
        elif mode == "hybrid":
            assert dense is not None
            prefetch = [
                models.Prefetch(query=dense.tolist(), using=DENSE, limit=limit, filter=flt, params=self.search_params)
            ]
            if sparse_q is not None and sparse_q.indices:
                prefetch.append(models.Prefetch(query=sparse_q, using=SPARSE, limit=limit, filter=flt))
            kwargs = {"prefetch": prefetch, "query": models.FusionQuery(fusion=models.Fusion.RRF)}
        else:
            raise ValueError(f"unknown retrieval mode {mode!r}")
        if late is not None:
            if not self.late_interaction:
                raise ValueError("late interaction needs a collection ingested with RAG_LATE_INTERACTION=true")
            first = models.Prefetch(filter=flt, limit=limit, **kwargs)
            kwargs = {"prefetch": [first], "query": late.tolist(), "using": LATE}
        if "params" in kwargs:  # a Prefetch's `params` is query_points' `search_params`
            kwargs["search_params"] = kwargs.pop("params")
        result = self._call(
            lambda: self.client.query_points(
                self.collection, query_filter=flt, limit=limit, with_payload=True, **kwargs
            )
        )
        return [RetrievedChunk.from_payload(str(p.id), p.score, p.payload or {}) for p in result.points]

    def ping(self) -> bool:
        try:
            self._call(lambda: self.client.collection_exists(self.collection))
            return True
        except StoreUnavailableError:
            return False

    def maintain(self, *, force: bool = False, concurrent: bool = False) -> dict[str, object]:
        """Index upkeep after an ingest run: a Qdrant server optimises in the background and local mode
        has no index, so there is nothing to do here (``EdgeStore.maintain`` builds its HNSW graph)."""
        reason = "the server optimises by itself" if self.mode == "server" else "local mode has no index"
        return {"engine": self.mode, "indexed": False, "reason": reason}

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
