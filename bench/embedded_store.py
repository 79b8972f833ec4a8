"""Embedded stores side by side: qdrant-edge vs qdrant-client local mode, the same random points and queries.

Both run behind this project's ``VectorStore`` (payloads returned, as the API asks for them). Points are
random unit 384-d vectors with a chunk-like payload; "filtered" keeps one source in ten (10% of the points).
Search is exact in both (no HNSW build: that happens past RAG_QDRANT_INDEX_THRESHOLD, see docs/embedded-store.md).

    python -m bench.embedded_store --sizes 10000 100000 --queries 20 --out bench/results/embedded_store.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from services.core.sparse import SparseVector
from services.core.store import QdrantStore, SearchFilters, VectorStore
from services.core.store_edge import EdgeStore
from services.core.types import Chunk

DIM = 384
SOURCES = 10


def build(engine: str, folder: Path, vectors: np.ndarray, batch: int = 1000) -> tuple[VectorStore, float]:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--engines", nargs="+", default=["edge", "local"], choices=["edge", "local"])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    queries = rng.standard_normal((args.queries, DIM)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    filtered = SearchFilters(source=("mem://source-3",))
    rows = []
    for size in args.sizes:
        vectors = rng.standard_normal((size, DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        for engine in args.engines:
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
    for size in args.sizes:
        by = {r["engine"]: r for r in rows if r["points"] == size}
        if {"edge", "local"} <= by.keys():
            print(
                f"{size}: edge is {by['local']['p50_ms'] / by['edge']['p50_ms']:.0f}x faster unfiltered, "
                f"{by['local']['filtered_p50_ms'] / by['edge']['filtered_p50_ms']:.0f}x filtered"
            )
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "queries": args.queries,
        "filter": "source = 1 of 10 (10% of the points)",
        "results": rows,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
