"""The embedded ``VectorStore`` on qdrant-edge: Qdrant's own engine (segments, WAL, payload and sparse indexes,
HNSW, quantisation) running inside this process, behind the same interface as ``QdrantStore``.

Edge has no collections: a store folder holds one *shard* per collection the server-side store uses::

    <path>/qdrant-edge.json             marker: which engine and layout wrote this folder
    <path>/shards/<collection>/         chunks: dense (cosine), bm25 (sparse, IDF), optional late (MaxSim)
    <path>/shards/<collection>_documents/   the document manifest (payload only)

Search is exact (brute force over the segments, payload indexes for filters) until ``maintain()`` builds
the HNSW graph, and optional int8 scalar quantisation, once the store holds ``index_threshold`` chunks.
Edge's ``optimize()`` holds the GIL for the whole build (seconds at 20k chunks, minutes at 1M), so in-process
it freezes every thread of this process, not only this store. Two ways to run it:

- ``maintain()``: in this process, blocking: at the end of an ingest run where nothing is served
  (``ingest add/sync``, the launcher's and the eval stack's first ingest).
- ``maintain(concurrent=True)``: while the store keeps serving (the API after an upload). The chunk shard is
  copied (writes wait for the copy, queries do not), a child process builds the index on the copy, the
  writes made meanwhile are replayed onto it, and it is swapped in under the lock. A crash at any point
  leaves either the old shard or the new one; ``__init__`` finishes or undoes an interrupted swap.

A folder written by qdrant-client's local mode is detected and refused with the command that migrates it
(``ingest migrate-store``), so Edge never opens it as an empty store.

Usage::

    store = EdgeStore(path=".data/qdrant")       # or path=":memory:" (a temporary folder, removed on close)
    store.ensure_collections(dimension=384)
    hits = store.search(dense=vec, sparse=None, mode="dense", limit=10)
    store.maintain()                             # after an ingest run: HNSW once the store is large
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, Self, TypeVar

import numpy as np
import qdrant_edge as qe
from qdrant_client import QdrantClient

from services.core.models.sparse import SparseVector
from services.core.storage.store import (
    DENSE,
    FILTER_FIELDS,
    LATE,
    SPARSE,
    QdrantStore,
    SearchFilters,
    StoreUnavailableError,
    chunk_vectors,
)
from services.core.types import Chunk, DocumentRecord, Quantization, RetrievalMode, RetrievedChunk

logger = logging.getLogger(__name__)
T = TypeVar("T")
D = TypeVar("D")

MARKER = "qdrant-edge.json"
SHARDS = "shards"
LAYOUT_VERSION = 1
RRF_K = 2  # Qdrant's default RRF constant, which qdrant-client's local mode also uses: same fused order
MIGRATE_COMMAND = "ingest migrate-store"
BUILD_DIR = "index-build"  # <path>/index-build/: the copy a concurrent index build works on
REPLACED = ".replaced"  # shards/<collection>.replaced: the old chunk shard during a swap
REBUILD_GROWTH = 0.1  # a concurrent maintain() builds again once the store grew by a tenth since the last build
FolderKind = Literal["missing", "empty", "edge", "local", "other"]


class LocalModeFolderError(RuntimeError):
    """The folder holds a qdrant-client local-mode store, which Edge cannot read."""


def folder_kind(path: str | Path) -> FolderKind:
    """What wrote a store folder: Edge (its marker), qdrant-client local mode (meta.json, collection/), or nothing."""
    root = Path(path)
    if not root.exists():
        return "missing"
    if (root / MARKER).is_file():
        return "edge"
    if (root / "meta.json").is_file() or (root / "collection").is_dir():
        return "local"
    return "empty" if not any(root.iterdir()) else "other"


def edge_filter(filters: SearchFilters | None) -> qe.Filter | None:
    if filters is None:
        return None
    must, must_not = filters.conditions()
    if not must and not must_not:
        return None
    return qe.Filter(
        must=[qe.FieldCondition(key=k, match=qe.MatchAny(list(v))) for k, v in must] or None,
        must_not=[qe.FieldCondition(key=k, match=qe.MatchAny(list(v))) for k, v in must_not] or None,
    )


def _doc_filter(doc_id: str) -> qe.Filter:
    return qe.Filter(must=[qe.FieldCondition(key="doc_id", match=qe.MatchValue(doc_id))])


def _sparse(vector: SparseVector) -> qe.SparseVector:
    return qe.SparseVector(list(vector.indices), [float(v) for v in vector.values])


def _scroll_page(request: qe.ScrollRequest, shard: qe.EdgeShard) -> tuple[list[qe.Record], Any]:
    return shard.scroll(request)


def scroll_all(
    shard: qe.EdgeShard, *, with_payload: bool | list[str] = False, with_vector: bool = False, page: int = 512
) -> Iterator[qe.Record]:
    offset: Any = None
    while True:
        records, offset = shard.scroll(
            qe.ScrollRequest(offset=offset, limit=page, with_payload=with_payload, with_vector=with_vector)
        )
        yield from records
        if offset is None:
            return


class EdgeStore:
    """``VectorStore`` on an in-process qdrant-edge shard per collection (see the module docstring)."""

    mode = "edge"

    def __init__(
        self,
        *,
        path: str,
        collection: str = "chunks",
        late_interaction: bool = False,
        index_threshold: int = 100_000,
        quantization: Quantization = "none",
        hnsw_m: int = 16,
        hnsw_ef_construct: int = 100,
        hnsw_ef: int | None = 512,
    ) -> None:
        # A pure constructor: the folder is checked (and a build a killed process left is recovered) by open(),
        # which the wiring (services.core.factory.build_store) calls, or on first use.
        self._path = path
        self._root: Path | None = None  # set by open(); for ":memory:" an ephemeral folder, removed on close
        self.collection = collection
        self.manifest = f"{collection}_documents"
        self.late_interaction = late_interaction
        self.index_threshold = index_threshold
        self.quantization = quantization
        self.hnsw_m = hnsw_m
        self.hnsw_ef_construct = hnsw_ef_construct
        # Edge's own default breadth is low: recall@10 0.41 on 20k random 384-d points once the graph is built
        # (bench.embedded_store --points); exact search below the index threshold ignores it.
        self.search_params = qe.SearchParams(hnsw_ef=hnsw_ef) if hnsw_ef else None
        self._lock = threading.RLock()  # one shard, many request threads; optimize() must not run under a query
        # Held by every write (before _lock): a concurrent index build holds it alone while it copies the shard,
        # so writes wait for the copy and queries do not.
        self._writes = threading.RLock()
        self._build_lock = threading.Lock()  # one index build at a time, whichever way it runs
        self._replay: list[qe.UpdateOperation] | None = None  # chunk writes made while a build works on a copy
        self._child: subprocess.Popen[str] | None = None
        self._shards: dict[str, qe.EdgeShard] = {}
        self._closed = False

    def open(self) -> Self:
        """Check the folder (an Edge store, or empty) and finish or undo an interrupted index swap. Idempotent;
        first use calls it. Raises LocalModeFolderError for a qdrant-client local-mode folder."""
        with self._lock:
            if self._root is not None:
                return self
            if self._closed:
                raise StoreUnavailableError("the store is closed")
            memory = self._path == ":memory:"
            root = Path(tempfile.mkdtemp(prefix="qdrant-edge-") if memory else self._path)
            kind = folder_kind(root)
            if kind == "local":
                raise LocalModeFolderError(
                    f"{root} holds a qdrant-client local-mode store, which qdrant-edge cannot read. Migrate it "
                    f"once with `{MIGRATE_COMMAND}` (keeps a backup of the old folder), or keep using it with "
                    "RAG_QDRANT_EMBEDDED_ENGINE=local"
                )
            if kind == "other":
                raise ValueError(f"{root} is not empty and holds no store: point RAG_QDRANT_PATH at another folder")
            self._root = root
            if kind == "edge":
                self._recover_interrupted_build()
        return self

    @property
    def root(self) -> Path:
        """The store's folder (opening the store on first use)."""
        if self._root is None:
            self.open()
        assert self._root is not None
        return self._root

    def _recover_interrupted_build(self) -> None:
        """Finish or undo a swap a killed process left half done, and drop the copy it was building on."""
        for old in (self.root / SHARDS).glob(f"*{REPLACED}"):
            live = old.with_name(old.name.removesuffix(REPLACED))
            if (live / "edge_config.json").is_file():  # the new shard was in place: the old one is garbage
                shutil.rmtree(old, ignore_errors=True)
            elif not live.exists():  # killed between the two renames: the old shard holds every write
                old.rename(live)
                logger.warning("restored %s after an interrupted index swap", live)
            else:
                logger.warning("left %s alone: %s exists without a shard config", old, live)
        shutil.rmtree(self.root / BUILD_DIR, ignore_errors=True)

    # -- shards ---------------------------------------------------------------------------------

    def _dir(self, name: str) -> Path:
        return self.root / SHARDS / name

    def _open(self, name: str) -> qe.EdgeShard | None:
        """The shard of `name` if it exists (loaded once; its WAL replays whatever a killed process left)."""
        if self._closed:
            raise StoreUnavailableError("the store is closed")
        shard = self._shards.get(name)
        if shard is None and (self._dir(name) / "edge_config.json").is_file():
            try:
                shard = qe.EdgeShard.load(str(self._dir(name)))
            except Exception as exc:  # a second process holding the WAL lands here (WouldBlock)
                raise StoreUnavailableError(f"cannot open {self._dir(name)}: {exc}") from exc
            self._shards[name] = shard
        return shard

    def _call(self, name: str, fn: Callable[[qe.EdgeShard], T], default: D) -> T | D:
        with self._lock:
            shard = self._open(name)
            return default if shard is None else fn(shard)

    def _chunk_config(self, dimension: int, late: bool) -> qe.EdgeConfig:
        quantization = (
            qe.ScalarQuantizationConfig(qe.ScalarType.Int8, quantile=0.99, always_ram=True)
            if self.quantization == "int8"
            else None
        )
        vectors = {
            DENSE: qe.EdgeVectorParams(size=dimension, distance=qe.Distance.Cosine, quantization_config=quantization)
        }
        if late:
            # Only ever used to re-score prefetched candidates: no HNSW graph (m=0), fp16, as on the server.
            vectors[LATE] = qe.EdgeVectorParams(
                size=dimension,
                distance=qe.Distance.Cosine,
                multivector_config=qe.MultiVectorConfig(qe.MultiVectorComparator.MaxSim),
                datatype=qe.VectorStorageDatatype.Float16,
                hnsw_config=qe.HnswIndexConfig(m=0, ef_construct=self.hnsw_ef_construct, full_scan_threshold=10_000),
            )
        return qe.EdgeConfig(
            vectors=vectors,
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
            hnsw_config=qe.HnswIndexConfig(
                m=self.hnsw_m, ef_construct=self.hnsw_ef_construct, full_scan_threshold=10_000
            ),
        )

    def _stored_vectors(self) -> dict[str, Any]:
        """The chunk shard's vector config as Edge persisted it ({} when unreadable)."""
        try:
            config = json.loads((self._dir(self.collection) / "edge_config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return dict(config.get("vectors") or {})

    # -- schema ---------------------------------------------------------------------------------

    def ensure_collections(self, dimension: int) -> None:
        """Create the shards if missing and check an existing one matches the embedder."""
        with self._writes, self._lock:
            self.root.mkdir(parents=True, exist_ok=True)
            marker = self.root / MARKER
            if not marker.is_file():
                payload = {"engine": "qdrant-edge", "qdrant_edge_py": _edge_version(), "layout": LAYOUT_VERSION}
                marker.write_text(json.dumps(payload) + "\n", encoding="utf-8")
            if self._open(self.collection) is None:
                shard = qe.EdgeShard.create(
                    str(self._dir(self.collection)), self._chunk_config(dimension, self.late_interaction)
                )
                # Keyword indexes on every filterable field: filters use them instead of scanning payloads.
                for field in FILTER_FIELDS:
                    shard.update(qe.UpdateOperation.create_field_index(field, qe.PayloadSchemaType.Keyword))
                shard.flush()
                self._shards[self.collection] = shard
            else:
                vectors = self._stored_vectors()
                size = (vectors.get(DENSE) or {}).get("size")
                if size is not None and size != dimension:
                    raise ValueError(
                        f"collection {self.collection!r} holds {size}-d vectors but the embedder makes "
                        f"{dimension}-d ones: use another RAG_COLLECTION or re-ingest into a new one"
                    )
                has_late = LATE in vectors
                if self.late_interaction and not has_late:
                    raise ValueError(
                        f"collection {self.collection!r} was created without per-token vectors: set "
                        "RAG_LATE_INTERACTION=false, or use a new RAG_COLLECTION and re-ingest"
                    )
                self.late_interaction = has_late
            if self._open(self.manifest) is None:
                # Edge needs at least one vector per shard: the manifest gets an unused sparse one.
                config = qe.EdgeConfig(sparse_vectors={"unused": qe.EdgeSparseVectorParams()})
                shard = qe.EdgeShard.create(str(self._dir(self.manifest)), config)
                shard.update(qe.UpdateOperation.create_field_index("status", qe.PayloadSchemaType.Keyword))
                shard.flush()
                self._shards[self.manifest] = shard

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
            vector[SPARSE] = _sparse(vector[SPARSE])
            points.append(qe.Point(chunk.point_id, vector, chunk.payload(ingested_at)))
        if points:
            self.upsert_points(self.collection, points)
        return len(points)

    def upsert_points(self, name: str, points: list[qe.Point]) -> None:
        """Write raw points into one of this store's shards (ingest and ``migrate-store`` share it)."""

        if not self._update(name, qe.UpdateOperation.upsert_points(points)):
            raise StoreUnavailableError(f"{name!r} does not exist yet: call ensure_collections first")

    def _update(self, name: str, operation: qe.UpdateOperation) -> bool:
        """Apply one write to a shard (False when it does not exist). While a concurrent index build works on
        a copy of the chunk shard, chunk writes are kept too, to be replayed onto the copy before the swap."""

        def write(shard: qe.EdgeShard) -> bool:
            shard.update(operation)
            if name == self.collection and self._replay is not None:
                self._replay.append(operation)
            return True

        with self._writes:
            return self._call(name, write, False)

    def chunk_ids(self, doc_id: str) -> set[str]:
        def ids(shard: qe.EdgeShard) -> set[str]:
            out: set[str] = set()
            offset: Any = None
            while True:
                page, offset = shard.scroll(
                    qe.ScrollRequest(offset=offset, limit=512, filter=_doc_filter(doc_id), with_payload=False)
                )
                out.update(str(r.id) for r in page)
                if offset is None:
                    return out

        return self._call(self.collection, ids, set())

    def document_chunks(self, doc_id: str) -> list[RetrievedChunk]:
        def read(shard: qe.EdgeShard) -> list[RetrievedChunk]:
            out: list[RetrievedChunk] = []
            offset: Any = None
            while True:
                page, offset = shard.scroll(
                    qe.ScrollRequest(offset=offset, limit=256, filter=_doc_filter(doc_id), with_payload=True)
                )
                out.extend(RetrievedChunk.from_payload(str(r.id), 0.0, dict(r.payload or {})) for r in page)
                if offset is None:
                    return sorted(out, key=lambda c: c.chunk_index)

        return self._call(self.collection, read, [])

    def delete_chunks(self, doc_id: str, keep: set[str] | None = None) -> int:
        with self._writes, self._lock:
            stale = sorted(self.chunk_ids(doc_id) - (keep or set()))
            if stale:
                self._update(self.collection, qe.UpdateOperation.delete_points(list(stale)))
            return len(stale)

    def count_chunks(self) -> int:
        return int(self._call(self.collection, lambda s: s.count(qe.CountRequest(exact=True)), 0))

    # -- manifest -------------------------------------------------------------------------------

    def get_document(self, doc_id: str) -> DocumentRecord | None:
        found = self._call(self.manifest, lambda s: s.retrieve([doc_id], True, False), [])
        return DocumentRecord.from_payload(dict(found[0].payload or {})) if found else None

    def put_document(self, record: DocumentRecord) -> None:
        self.upsert_points(self.manifest, [qe.Point(record.doc_id, {}, record.to_payload())])

    def delete_document(self, doc_id: str) -> None:
        self._update(self.manifest, qe.UpdateOperation.delete_points([doc_id]))

    def list_documents(self) -> list[DocumentRecord]:
        def read(shard: qe.EdgeShard) -> list[DocumentRecord]:
            return [DocumentRecord.from_payload(dict(r.payload or {})) for r in scroll_all(shard, with_payload=True)]

        return sorted(self._call(self.manifest, read, []), key=lambda r: r.source)

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
        """The same query plans as ``QdrantStore.search`` (prefetch + RRF, MaxSim after prefetch)."""
        flt = edge_filter(filters)
        sparse_q = _sparse(sparse) if sparse is not None and sparse.indices else None
        query: Any
        params: qe.SearchParams | None = None  # HNSW breadth, for a top-level dense query only
        prefetches: list[qe.Prefetch] = []
        if mode == "dense":
            assert dense is not None
            query = qe.Query.Nearest(dense.tolist(), using=DENSE)
            params = self.search_params
        elif mode == "sparse":
            if sparse_q is None:
                return []  # a query made only of stop words matches nothing lexically
            query = qe.Query.Nearest(sparse_q, using=SPARSE)
        elif mode == "hybrid":
            assert dense is not None
            dense_q = qe.Query.Nearest(dense.tolist(), using=DENSE)
            prefetches = [qe.Prefetch(limit=limit, query=dense_q, filter=flt, params=self.search_params)]
            if sparse_q is not None:
                prefetches.append(qe.Prefetch(limit=limit, query=qe.Query.Nearest(sparse_q, using=SPARSE), filter=flt))
            query = qe.Fusion.Rrf(k=RRF_K)
        else:
            raise ValueError(f"unknown retrieval mode {mode!r}")
        if late is not None:
            if not self.late_interaction:
                raise ValueError("late interaction needs a collection ingested with RAG_LATE_INTERACTION=true")
            first = qe.Prefetch(limit=limit, query=query, prefetches=prefetches or None, filter=flt, params=params)
            prefetches, query, params = [first], qe.Query.Nearest(late.tolist(), using=LATE), None
        request = qe.QueryRequest(
            limit=limit,
            query=query,
            prefetches=prefetches or None,
            filter=flt,
            params=params,
            with_payload=True,
            with_vector=False,
        )
        points = self._call(self.collection, lambda s: s.query(request), [])
        return [RetrievedChunk.from_payload(str(p.id), p.score, dict(p.payload or {})) for p in points]

    def pages(self, name: str, *, batch: int = 256, with_vector: bool = False) -> Iterator[list[qe.Record]]:
        """Every point of one shard with its payload, a page at a time (the lock is held per page only)."""
        offset: Any = None
        while True:
            request = qe.ScrollRequest(offset=offset, limit=batch, with_payload=True, with_vector=with_vector)
            page, offset = self._call(name, functools.partial(_scroll_page, request), ([], None))
            if page:
                yield page
            if offset is None:
                return

    # -- index maintenance ----------------------------------------------------------------------

    def maintain(self, *, force: bool = False, concurrent: bool = False) -> dict[str, object]:
        """Build the HNSW graph (and int8 quantisation if configured) once the store holds ``index_threshold``
        chunks; below it search stays exact. One build at a time: a call while one runs returns at once.

        ``concurrent=False`` builds in this process and freezes all of it while it runs (``optimize()`` holds
        the GIL): for ingest runs where nothing is served. ``concurrent=True`` builds in a child process on a
        copy of the chunk shard and swaps it in, while this store keeps answering queries and taking writes
        (see the module docstring); it builds again only once the store grew by ``REBUILD_GROWTH``."""
        out: dict[str, object] = {"engine": "edge", "threshold": self.index_threshold}
        if not self._build_lock.acquire(blocking=False):
            return out | {"indexed": False, "reason": "an index build is already running"}
        try:
            return self._maintain_concurrently(out, force) if concurrent else self._maintain_here(out, force)
        finally:
            self._build_lock.release()

    def _skip(self, out: dict[str, object], force: bool) -> dict[str, object] | None:
        """Why no build is needed now (None: build). Called holding the locks; fills in the chunk count."""
        chunks = out["chunks"] = self.count_chunks()
        if not force and (self.index_threshold <= 0 or chunks < self.index_threshold):
            return out | {"indexed": False, "reason": "below the threshold: exact search"}
        if DENSE not in self._stored_vectors():
            return out | {"indexed": False, "reason": "no chunks yet"}
        return None

    def _maintain_here(self, out: dict[str, object], force: bool) -> dict[str, object]:
        with self._writes, self._lock:
            skipped = self._skip(out, force)
            if skipped is not None:
                return skipped
            vectors = self._stored_vectors()
            config = self._chunk_config(int(vectors[DENSE]["size"]), LATE in vectors)
            self._shards.pop(self.collection).close()
            started = time.perf_counter()
            # Reloading with the configuration persists the current HNSW/quantisation settings before the build.
            shard = qe.EdgeShard.load(str(self._dir(self.collection)), config)
            self._shards[self.collection] = shard
            changed = shard.optimize()
            shard.flush()
            info = shard.info()
            seconds = round(time.perf_counter() - started, 2)
            self._record_build(int(out["chunks"]))  # type: ignore[call-overload]
            logger.info("built the HNSW index of %s chunks in %.1f s (%s)", out["chunks"], seconds, self.quantization)
            return out | {
                "indexed": True,
                "changed": changed,
                "seconds": seconds,
                "segments": info.segments_count,
                "indexed_vectors": info.indexed_vectors_count,
                "quantization": self.quantization,
            }

    def _maintain_concurrently(self, out: dict[str, object], force: bool) -> dict[str, object]:
        build = self.root / BUILD_DIR
        built = build / SHARDS / self.collection
        with self._writes:
            with self._lock:
                skipped = self._skip(out, force)
                if skipped is not None:
                    return skipped
                chunks = int(out["chunks"])  # type: ignore[call-overload]
                last = self._last_build()
                if not force and last is not None and chunks - last < max(1, round(last * REBUILD_GROWTH)):
                    return out | {"indexed": False, "reason": f"the index is up to date (built at {last} chunks)"}
                self._call(self.collection, lambda s: s.flush(), None)
            # From here to the end of the copy writes wait (they hold _writes) and queries go on: they only read.
            started = time.perf_counter()
            try:
                shutil.rmtree(build, ignore_errors=True)
                built.parent.mkdir(parents=True)
                shutil.copy2(self.root / MARKER, build / MARKER)
                shutil.copytree(self._dir(self.collection), built)
            except BaseException:
                shutil.rmtree(build, ignore_errors=True)
                raise
            self._replay = []
        copied = round(time.perf_counter() - started, 2)
        try:
            result = self._run_build(build)
            with self._writes, self._lock:
                if self._closed:
                    raise StoreUnavailableError("the store was closed during the index build")
                replay, self._replay = self._replay or [], None
                # Swapped in even when optimize() changed no segment: the copy holds the current HNSW and
                # quantisation settings, as the in-process build persists them.
                self._swap_in(built, replay)
                self._record_build(chunks)
        finally:
            self._replay = None
            shutil.rmtree(build, ignore_errors=True)
        seconds = round(time.perf_counter() - started, 2)
        logger.info(
            "built the HNSW index of %d chunks in a child process in %.1f s (copy %.1f s, %d writes replayed, %s)",
            chunks,
            seconds,
            copied,
            len(replay),
            self.quantization,
        )
        return out | {
            "indexed": True,
            "changed": bool(result.get("changed")),
            "seconds": seconds,
            "copy_seconds": copied,
            "replayed": len(replay),
            "segments": result.get("segments"),
            "quantization": self.quantization,
            "concurrent": True,
        }

    def _run_build(self, root: Path) -> dict[str, Any]:
        """Build the index of the store copy at ``root`` in a child process, which has a GIL of its own, at a
        lower CPU priority than this one; ``close()`` ends it. Returns the child's ``maintain()`` outcome."""
        params = {
            "collection": self.collection,
            "quantization": self.quantization,
            "hnsw_m": self.hnsw_m,
            "hnsw_ef_construct": self.hnsw_ef_construct,
        }
        package_root = str(Path(__file__).resolve().parents[3])
        env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
        argv = [sys.executable, "-m", "services.core.storage.store_edge", "build-index", str(root), json.dumps(params)]
        with self._lock:
            if self._closed:
                raise StoreUnavailableError("the store is closed")
            child = self._child = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
            )
        try:
            stdout, stderr = child.communicate()
        finally:
            self._child = None
        if child.returncode != 0:
            raise RuntimeError(f"the index build process exited with {child.returncode}: {stderr.strip()[-400:]}")
        return dict(json.loads(stdout.strip().splitlines()[-1]))

    def _swap_in(self, built: Path, replay: list[qe.UpdateOperation]) -> None:
        """Replace the chunk shard by the built copy, after replaying onto it the writes made since the copy.
        Called holding both locks. Each step leaves a folder ``_recover_interrupted_build`` can finish or undo."""
        shard = qe.EdgeShard.load(str(built))
        try:
            for operation in replay:
                shard.update(operation)
            shard.flush()
        finally:
            shard.close()
        live = self._dir(self.collection)
        old = live.with_name(live.name + REPLACED)
        current = self._shards.pop(self.collection, None)
        if current is not None:
            current.flush()
            current.close()
        try:
            live.rename(old)
            built.rename(live)
            self._shards[self.collection] = qe.EdgeShard.load(str(live))
        except Exception:
            self._shards.pop(self.collection, None)
            if old.exists():  # undo: the old shard has every write; it reopens on the next call
                shutil.rmtree(live, ignore_errors=True)
                old.rename(live)
            raise
        shutil.rmtree(old, ignore_errors=True)

    def _marker(self) -> dict[str, Any]:
        try:
            return dict(json.loads((self.root / MARKER).read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return {}

    def _last_build(self) -> int | None:
        """How many chunks the store held at its last index build (kept in the marker; None: never built)."""
        chunks = (self._marker().get("index") or {}).get("chunks")
        return int(chunks) if chunks is not None else None

    def _record_build(self, chunks: int) -> None:
        marker = self._marker() | {"index": {"chunks": chunks, "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}}
        tmp = self.root / f"{MARKER}.tmp"
        tmp.write_text(json.dumps(marker) + "\n", encoding="utf-8")
        os.replace(tmp, self.root / MARKER)

    def stats(self) -> dict[str, object]:
        def info(name: str) -> dict[str, object]:
            def read(shard: qe.EdgeShard) -> dict[str, object]:
                i = shard.info()
                return {
                    "points": i.points_count,
                    "segments": i.segments_count,
                    "indexed_vectors": i.indexed_vectors_count,
                    "payload_indexes": sorted(i.payload_schema),
                }

            return self._call(name, read, {})

        return {
            "engine": "qdrant-edge",
            "path": str(self.root),
            "chunks": info(self.collection),
            "manifest": info(self.manifest),
            "index": self._marker().get("index"),
        }

    def ping(self) -> bool:
        try:
            self.count_chunks()
            return True
        except StoreUnavailableError:
            return False

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            child = self._child
            if child is not None and child.poll() is None:
                child.terminate()  # a concurrent index build: its copy is dropped, the store stays as it was
            for shard in self._shards.values():
                try:
                    shard.flush()
                finally:
                    shard.close()
            self._shards.clear()
            if self._path == ":memory:" and self._root is not None:
                shutil.rmtree(self._root, ignore_errors=True)


def _edge_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("qdrant-edge-py")
    except PackageNotFoundError:  # pragma: no cover - an unusual install
        return "unknown"


# -- moving stores between engines ------------------------------------------------------------------


def copy_client_to_edge(
    client: QdrantClient, collection: str, target: EdgeStore, *, batch: int = 256
) -> dict[str, int]:
    """Copy a collection and its manifest from qdrant-client (a local-mode folder, or a server) into an Edge store:
    the same ids, vectors (dense, bm25, late) and payloads, so nothing is re-embedded."""
    if not client.collection_exists(collection):
        raise ValueError(f"no collection {collection!r} in the source store")
    vectors = client.get_collection(collection).config.params.vectors
    if not isinstance(vectors, dict) or DENSE not in vectors:
        raise ValueError(f"collection {collection!r} has no {DENSE!r} vector: not a store this project wrote")
    target.late_interaction = LATE in vectors
    target.ensure_collections(vectors[DENSE].size)
    copied = {"chunks": 0, "documents": 0}
    for page in _client_pages(client, collection, batch, with_vectors=True):
        target.upsert_points(
            target.collection, [qe.Point(str(p.id), _edge_vectors(p.vector), dict(p.payload or {})) for p in page]
        )
        copied["chunks"] += len(page)
    manifest = f"{collection}_documents"
    if client.collection_exists(manifest):
        for page in _client_pages(client, manifest, batch, with_vectors=False):
            target.upsert_points(target.manifest, [qe.Point(str(p.id), {}, dict(p.payload or {})) for p in page])
            copied["documents"] += len(page)
    return copied


def _client_pages(client: QdrantClient, collection: str, batch: int, *, with_vectors: bool) -> Iterator[list[Any]]:
    """Every point of a qdrant-client collection, a page at a time (empty pages skipped)."""
    offset: Any = None
    while True:
        page, offset = client.scroll(
            collection, limit=batch, offset=offset, with_payload=True, with_vectors=with_vectors
        )
        if page:
            yield page
        if offset is None:
            return


def _edge_vectors(stored: Any) -> dict[str, Any]:
    """A qdrant-client point's named vectors as Edge takes them (its sparse vectors rebuilt)."""
    from qdrant_client import models

    if not isinstance(stored, dict):
        return {}
    return {
        name: qe.SparseVector(list(value.indices), list(value.values))
        if isinstance(value, models.SparseVector)
        else value
        for name, value in stored.items()
    }


def copy_edge_to_client(source: EdgeStore, target: QdrantStore, *, batch: int = 256) -> dict[str, int]:
    """Re-upsert an Edge store into a Qdrant server (or any qdrant-client store) in batches: the target's
    collections are created as ``QdrantStore`` creates them (payload indexes included)."""
    from qdrant_client import models

    vectors = source._stored_vectors()
    if DENSE not in vectors:
        raise ValueError(f"{source.root} holds no chunks to copy")
    target.late_interaction = LATE in vectors
    target.ensure_collections(int(vectors[DENSE]["size"]))
    copied = {"chunks": 0, "documents": 0}
    for name, key, out_name in (
        (source.collection, "chunks", target.collection),
        (source.manifest, "documents", target.manifest),
    ):
        for page in source.pages(name, batch=batch, with_vector=True):
            points = []
            for r in page:
                vector: dict[str, Any] = {}
                for vname, value in (r.vector or {}).items() if isinstance(r.vector, dict) else ():
                    if isinstance(value, qe.SparseVector):
                        vector[vname] = models.SparseVector(indices=list(value.indices), values=list(value.values))
                    else:
                        vector[vname] = value
                points.append(models.PointStruct(id=str(r.id), vector=vector, payload=dict(r.payload or {})))
            target._call(functools.partial(target.client.upsert, out_name, points=points, wait=True))
            copied[key] += len(points)
    return copied


def _build_index_main(argv: list[str]) -> int:
    """``python -m services.core.storage.store_edge build-index ROOT PARAMS``: the child of
    ``maintain(concurrent=True)``.
    Builds the index of the store copy at ROOT in this process and writes the outcome as JSON on stdout."""
    if len(argv) != 3 or argv[0] != "build-index":
        sys.stderr.write("usage: python -m services.core.storage.store_edge build-index ROOT PARAMS_JSON\n")
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    with contextlib.suppress(OSError):
        os.nice(10)  # the serving process's queries come first
    store = EdgeStore(path=argv[1], index_threshold=0, **json.loads(argv[2]))
    try:
        outcome = store.maintain(force=True)
    finally:
        store.close()
    sys.stdout.write(json.dumps(outcome) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(_build_index_main(sys.argv[1:]))
