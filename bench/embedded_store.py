"""Embedded stores side by side: qdrant-edge vs qdrant-client local mode, the same random points and queries.

Both run behind this project's ``VectorStore`` (payloads returned, as the API asks for them). Points are
random unit 384-d vectors with a chunk-like payload; "filtered" keeps one source in ten (10% of the points).
Search is exact in both (no HNSW build: that happens past RAG_QDRANT_INDEX_THRESHOLD, see docs/embedded-store.md).

    python -m bench.embedded_store --sizes 10000 100000 --queries 20 --out bench/results/embedded_store.json

Index stage (Edge only, ``--points N``): one store of N random points, searched as ingested (exact), then with
the HNSW graph, then with HNSW + int8 scalar quantisation (built on a copy of the same folder). Each variant is
searched in a fresh child process, so its resident memory is its own: recall@10 against a numpy brute force over
the same points, p50/p95 of top-10 (with payloads, as the API asks), RSS, and the folder's size on disk. The
points are generated block by block from a seed, never all in memory (1M x 384 float32 is 1.5 GB)::

    python -m bench.embedded_store --points 1000000 --queries 100 --out bench/results/embedded_store_1m.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from services.core.models.sparse import SparseVector
from services.core.storage.store import QdrantStore, SearchFilters, VectorStore
from services.core.storage.store_edge import EdgeStore
from services.core.types import Chunk, EmbeddedEngine, Quantization

DIM = 384
SOURCES = 10


def build(engine: EmbeddedEngine, folder: Path, vectors: np.ndarray, batch: int = 1000) -> tuple[VectorStore, float]:
    store: VectorStore = EdgeStore(path=str(folder)) if engine == "edge" else QdrantStore(path=str(folder))
    store.ensure_collections(DIM)
    empty = SparseVector([], [])
    started = time.perf_counter()
    for start in range(0, len(vectors), batch):
        n = min(batch, len(vectors) - start)
        chunks = [
            Chunk(
                f"doc-{(start + i) // 20}",
                f"mem://source-{(start + i) % SOURCES}",
                "t",
                None,
                None,
                i,
                "x" * 400,
                "h",
                80,
            )
            for i in range(n)
        ]
        store.upsert_chunks(chunks, vectors[start : start + n], [empty] * n, "t")
    return store, time.perf_counter() - started


def p50_ms(store: VectorStore, queries: np.ndarray, filters: SearchFilters | None) -> float:
    store.search(dense=queries[0], sparse=None, mode="dense", limit=10, filters=filters)  # warm caches
    times = []
    for q in queries:
        t0 = time.perf_counter()
        store.search(dense=q, sparse=None, mode="dense", limit=10, filters=filters)
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 2)


# -- index stage: exact vs HNSW vs HNSW + int8 at one size ------------------------------------------------

BLOCK = 10_000  # points generated, upserted and brute-forced a block at a time
VARIANTS = ("exact", "hnsw", "hnsw+int8")


Data = Literal["random", "embedding-like", "real"]
DATA_HELP = {
    "random": "random unit 384-d vectors (isotropic: the worst case for a graph index)",
    "embedding-like": (
        "unit vectors drawn from a Gaussian with the mean and covariance of the packaged bi-encoder's embeddings"
        " of the fitz-gov corpus (real embeddings' anisotropy, no clusters); queries are the test questions'"
        " real query embeddings"
    ),
    "real": "the packaged bi-encoder's embeddings of the fitz-gov corpus documents; queries: the test questions",
}


def real_vectors(cache: Path = Path(".data/bench/fitz-gov-vectors.npz")) -> tuple[np.ndarray, np.ndarray]:
    """(document embeddings, test-question embeddings) of fitz-gov by the packaged bi-encoder, cached on disk."""
    from services.core.factory import build_embedder
    from services.core.settings import EmbedderSettings
    from services.datasets.fitz_gov import load_corpus, load_queries

    settings = EmbedderSettings()
    if cache.exists():
        saved = np.load(cache)
        if str(saved["model"]) == settings.embed_model:
            return saved["docs"], saved["queries"]
    embedder = build_embedder(settings)
    embedder.warm_up()
    docs = embedder.embed_passages([d.as_markdown() for d in load_corpus()], show_progress=True)
    queries = np.stack([embedder.embed_query(q.text) for q in load_queries("test")])
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, docs=docs, queries=queries, model=settings.embed_model)
    return docs.astype(np.float32), queries.astype(np.float32)


class PointSource:
    """The points and queries of one kind of data, block by block, the same every time (seeded per block)."""

    def __init__(self, data: Data, n_queries: int) -> None:
        self.data = data
        if data == "random":
            rng = np.random.default_rng(0)
            self.queries = _unit(rng.standard_normal((n_queries, DIM)).astype(np.float32))
            return
        docs, queries = real_vectors()
        self.docs = _unit(docs)
        self.queries = _unit(queries[:n_queries])
        self.mean = docs.mean(axis=0)
        # the covariance's square root: x = mean + L z, z ~ N(0, I), has the embeddings' covariance
        self.root = np.linalg.cholesky(np.cov(docs, rowvar=False) + 1e-6 * np.eye(DIM)).astype(np.float32)

    def size_limit(self) -> int | None:
        return len(self.docs) if self.data == "real" else None

    def blocks(self, points: int, seed: int = 1) -> Iterator[tuple[int, np.ndarray]]:
        """(first index, unit vectors) of each block."""
        if self.data == "real":
            for start in range(0, min(points, len(self.docs)), BLOCK):
                yield start, self.docs[start : min(start + BLOCK, points)]
            return
        for start in range(0, points, BLOCK):
            rng = np.random.default_rng([seed, start // BLOCK])
            z = rng.standard_normal((min(BLOCK, points - start), DIM)).astype(np.float32)
            yield start, _unit(z if self.data == "random" else self.mean + z @ self.root.T)


def _unit(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def exact_top10(source: PointSource, points: int) -> np.ndarray:
    """Point indices of each query's true top 10 by cosine (numpy, block by block)."""
    queries = source.queries
    best = np.full((len(queries), 10), -np.inf, dtype=np.float32)
    ids = np.zeros((len(queries), 10), dtype=np.int64)
    for start, block in source.blocks(points):
        scores = np.concatenate([best, queries @ block.T], axis=1)
        pool = np.concatenate(
            [ids, np.broadcast_to(np.arange(start, start + len(block)), (len(queries), len(block)))], 1
        )
        keep = np.argpartition(-scores, 10, axis=1)[:, :10]
        best, ids = np.take_along_axis(scores, keep, 1), np.take_along_axis(pool, keep, 1)
    return ids


def point_index(point_id: str) -> int:
    return int(point_id.rsplit("-", 1)[1], 16) if "-" in point_id else int(point_id)


def fill(store: EdgeStore, source: PointSource, points: int) -> float:
    """Upsert the points, ids 0..N-1 as UUIDs whose last group is the index (so a hit maps back to it)."""
    import qdrant_edge as qe

    store.ensure_collections(DIM)
    payload = {"doc_id": "d", "source": "mem://s", "title": "t", "chunk_index": 0, "text": "x" * 400}
    started = time.perf_counter()
    for start, block in source.blocks(points):
        batch = [
            qe.Point(
                f"00000000-0000-4000-8000-{start + i:012x}",
                {"dense": v.tolist()},
                payload | {"source": f"mem://source-{(start + i) % SOURCES}"},
            )
            for i, v in enumerate(block)
        ]
        for i in range(0, len(batch), 1000):
            store.upsert_points(store.collection, batch[i : i + 1000])
    return time.perf_counter() - started


def disk_bytes(folder: Path) -> int:
    """Blocks the folder holds on disk (Edge's segment files are sparse: their apparent size says little)."""
    return sum(f.stat().st_blocks * 512 for f in folder.rglob("*") if f.is_file())


def measure(
    folder: str, quantization: Quantization, queries: np.ndarray, truth: np.ndarray, hnsw_ef: int | None
) -> dict[str, object]:
    """In a fresh child process: open the store, search, and report latency, recall@10 and resident memory."""
    import psutil

    process = psutil.Process()
    base = process.memory_info().rss
    store = EdgeStore(path=folder, quantization=quantization, hnsw_ef=hnsw_ef)
    store.count_chunks()  # loads the shard
    loaded = process.memory_info().rss
    for q in queries:  # warm: page the vectors and graph in (mmap), so the first breadth is not charged for it
        store.search(dense=q, sparse=None, mode="dense", limit=10)
    times, hits = [], 0
    for q, want in zip(queries, truth, strict=True):
        t0 = time.perf_counter()
        got = store.search(dense=q, sparse=None, mode="dense", limit=10)
        times.append((time.perf_counter() - t0) * 1000)
        hits += len({point_index(r.id) for r in got} & set(want.tolist()))
    filtered = p50_ms(store, queries, SearchFilters(source=("mem://source-3",)))
    rss = process.memory_info().rss
    store.close()
    return {
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(float(np.percentile(times, 95)), 2),
        "filtered_p50_ms": filtered,
        "recall_at_10": round(hits / (10 * len(queries)), 4),
        "rss_mb": round(rss / 2**20),
        "rss_store_mb": round((max(rss, loaded) - base) / 2**20),
    }


def index_stage(
    points: int,
    n_queries: int,
    efs: list[int],
    data: Data = "random",
    variants: Sequence[str] = VARIANTS,
    graph: tuple[int, int] = (16, 100),
) -> list[dict[str, object]]:
    """Exact vs HNSW vs HNSW+int8 at one size; ``graph``: (m, ef_construct) of the HNSW builds."""
    import multiprocessing

    source = PointSource(data, n_queries)
    points = min(points, source.size_limit() or points)
    queries = source.queries
    t0 = time.perf_counter()
    truth = exact_top10(source, points)
    print(f"numpy brute force over {points} points: {time.perf_counter() - t0:.1f} s", flush=True)
    work = Path(tempfile.mkdtemp(prefix="bench-index-"))
    spawn = multiprocessing.get_context("spawn")  # a fresh interpreter per variant: RSS of that variant only
    rows: list[dict[str, object]] = []
    try:
        exact = work / "exact"
        store = EdgeStore(path=str(exact), index_threshold=0)
        upsert_s = fill(store, source, points)
        store.close()
        for variant in variants:
            quantization: Quantization = "none"
            folder, build_s = exact, None
            if variant != "exact":
                folder = work / variant.replace("+", "-")
                shutil.copytree(exact, folder)
                quantization = "int8" if variant.endswith("int8") else "none"
                store = EdgeStore(
                    path=str(folder), quantization=quantization, hnsw_m=graph[0], hnsw_ef_construct=graph[1]
                )
                t0 = time.perf_counter()
                store.maintain(force=True)
                build_s = round(time.perf_counter() - t0, 1)
                store.close()
            for ef in [None] if variant == "exact" else efs:  # exact search has no breadth to set
                with spawn.Pool(1) as pool:
                    measured = pool.apply(measure, (str(folder), quantization, queries, truth, ef))
                row = {
                    "points": points,
                    "data": data,
                    "variant": variant,
                    "hnsw_ef": ef,
                    "hnsw_m": None if variant == "exact" else graph[0],
                    "ef_construct": None if variant == "exact" else graph[1],
                    "upsert_s": round(upsert_s, 1),
                    "index_build_s": build_s,
                    **measured,
                    "disk_mb": round(disk_bytes(folder) / 2**20),
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
            if variant != "exact":
                shutil.rmtree(folder, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def write_report(out: Path | None, queries: int, rows: list[dict[str, object]], **extra: str) -> None:
    """The result file of either stage: where and when it ran, the rows, and what the stage adds (``extra``)."""
    if not out:
        return
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "queries": queries,
        **extra,
        "filter": "source = 1 of 10 (10% of the points)",
        "results": rows,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def write_index_report(out: Path | None, queries: int, rows: list[dict[str, object]], data: Data) -> None:
    recall = "top-10 ids vs a numpy brute force over the same points"
    write_report(out, queries, rows, python=sys.version.split()[0], recall=recall, data=DATA_HELP[data])


def compare_engines(sizes: list[int], n_queries: int, engines: list[EmbeddedEngine]) -> list[dict[str, Any]]:
    """Edge and local mode on the same random points and queries at each size: upsert time, p50 with and
    without a filter (one row per engine and size), and the ratios printed."""
    rng = np.random.default_rng(0)
    queries = _unit(rng.standard_normal((n_queries, DIM)))
    filtered = SearchFilters(source=("mem://source-3",))
    rows: list[dict[str, Any]] = []
    for size in sizes:
        vectors = _unit(rng.standard_normal((size, DIM)))
        for engine in engines:
            folder = Path(tempfile.mkdtemp(prefix=f"bench-{engine}-"))
            try:
                store, upsert_s = build(engine, folder, vectors)
                row = {
                    "engine": engine,
                    "points": size,
                    "upsert_s": round(upsert_s, 1),
                    "p50_ms": p50_ms(store, queries, None),
                    "filtered_p50_ms": p50_ms(store, queries, filtered),
                }
                store.close()
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            rows.append(row)
            print(json.dumps(row), flush=True)
    for size in sizes:
        by = {r["engine"]: r for r in rows if r["points"] == size}
        if {"edge", "local"} <= by.keys():
            print(
                f"{size}: edge is {by['local']['p50_ms'] / by['edge']['p50_ms']:.0f}x faster unfiltered, "
                f"{by['local']['filtered_p50_ms'] / by['edge']['filtered_p50_ms']:.0f}x filtered"
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--engines", nargs="+", default=["edge", "local"], choices=["edge", "local"])
    parser.add_argument(
        "--points", type=int, default=None, help="run the index stage instead: Edge exact vs HNSW vs HNSW+int8"
    )
    parser.add_argument(
        "--ef", type=int, nargs="+", default=[64, 128, 256, 512], help="index stage: HNSW search breadths to try"
    )
    parser.add_argument(
        "--data",
        choices=list(DATA_HELP),
        default="random",
        help="index stage: " + "; ".join(f"{k}: {v}" for k, v in DATA_HELP.items()),
    )
    parser.add_argument("--graph", type=int, nargs=2, default=[16, 100], metavar=("M", "EF_CONSTRUCT"))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS, help="index stage")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.points:
        write_index_report(
            args.out,
            args.queries,
            index_stage(args.points, args.queries, args.ef, args.data, args.variants, tuple(args.graph)),
            args.data,
        )
        return 0
    rows = compare_engines(args.sizes, args.queries, args.engines)
    write_report(args.out, args.queries, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
