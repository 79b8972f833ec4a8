"""Stage 4: search latency, memory and disk versus collection size in Qdrant local (embedded) mode.

Synthetic unit vectors (384-d, as the bi-encoder makes) with a 600-character payload: local mode's cost
does not depend on what the vectors mean. The large collections are built in embedded memory mode (the same
engine and search as the on-disk local mode; writing 100k points through local mode's SQLite persistence
takes tens of minutes here), and the on-disk cost (write rate, bytes per point, reopen time) is measured once
on a smaller sample and reported per point. Local mode keeps every point in memory and searches by brute
force, so latency and memory grow linearly; the fitted line says at which size a query costs more than
the budget in local mode. The embedded default is now qdrant-edge: ``bench/embedded_store.py`` compares the two.
"""

from __future__ import annotations

import gc
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from bench.stats import summarize

DIM = 384
PAYLOAD_TEXT = ("lorem ipsum dolor sit amet " * 23)[:600]
SEARCH_BUDGET_MS = 50.0  # vector search's share of the 300 ms /search goal (embedding and reranking take the rest)


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def _build(client, n: int, rng: np.random.Generator, batch: int = 2000) -> float:
    from qdrant_client import models

    from services.core.storage.store import DENSE

    client.create_collection(
        "chunks", vectors_config={DENSE: models.VectorParams(size=DIM, distance=models.Distance.COSINE)}
    )
    t0 = time.perf_counter()
    for start in tqdm(range(0, n, batch), desc=f"scale: upsert {n:,}", dynamic_ncols=True):
        m = min(batch, n - start)
        vecs = rng.standard_normal((m, DIM)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        client.upsert(
            "chunks",
            points=models.Batch(
                ids=list(range(start, start + m)),
                vectors={DENSE: vecs.tolist()},
                payloads=[{"text": PAYLOAD_TEXT, "doc_id": str(i // 3)} for i in range(start, start + m)],
            ),
            wait=True,
        )
    return time.perf_counter() - t0


def on_disk(path: Path, n: int, rng: np.random.Generator) -> dict[str, Any]:
    """Local mode on disk: write rate, bytes per point and reopen time, on ``n`` points."""
    from qdrant_client import QdrantClient

    shutil.rmtree(path, ignore_errors=True)
    client = QdrantClient(path=str(path))
    seconds = _build(client, n, rng, batch=500)
    client.close()
    t0 = time.perf_counter()
    client = QdrantClient(path=str(path))  # reload from disk: what a restarted API pays
    client.count("chunks")
    open_s = time.perf_counter() - t0
    client.close()
    row = {
        "points": n,
        "upsert_points_per_s": round(n / seconds, 0),
        "disk_kb_per_point": round(_dir_mb(path) * 1024 / n, 2),
        "reopen_ms_per_1k_points": round(open_s * 1000 / (n / 1000), 1),
    }
    shutil.rmtree(path, ignore_errors=True)
    return row


def measure(n: int, queries: int, rng: np.random.Generator) -> dict[str, Any]:
    from qdrant_client import QdrantClient

    from services.core.storage.store import DENSE

    gc.collect()
    rss0 = _rss_mb()
    client = QdrantClient(location=":memory:")
    upsert_s = _build(client, n, rng)
    qs = rng.standard_normal((queries, DIM)).astype(np.float32)
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    client.query_points("chunks", query=qs[0].tolist(), using=DENSE, limit=30)
    samples = []
    for q in qs:
        t1 = time.perf_counter()
        client.query_points("chunks", query=q.tolist(), using=DENSE, limit=30, with_payload=True)
        samples.append((time.perf_counter() - t1) * 1000)
    rss1 = _rss_mb()
    client.close()
    del client
    return {
        "points": n,
        "upsert_points_per_s": round(n / upsert_s, 0),
        "search_ms": summarize(samples),
        "memory_mb": round(rss1 - rss0, 1),
    }


def fit_line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares (intercept, slope) of y on x; with one point, a line through the origin."""
    if len(xs) == 1:
        return 0.0, ys[0] / xs[0]
    slope, intercept = np.polyfit(np.asarray(xs, dtype=float), np.asarray(ys, dtype=float), 1)
    return float(intercept), float(slope)


def size_at_budget(intercept: float, slope: float, budget: float) -> int | None:
    """The collection size at which the fitted cost reaches ``budget`` (None if it never grows)."""
    if slope <= 0:
        return None
    return max(0, int((budget - intercept) / slope))


def bench_scale(
    sizes: list[int], work: Path, *, queries: int, disk_sample: int = 2000, seed: int = 0
) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    disk = on_disk(work / "scale-disk", disk_sample, rng)
    rows = [measure(n, queries, rng) for n in sizes]
    xs = [float(r["points"]) for r in rows]
    p50 = [float(r["search_ms"]["p50"]) for r in rows]
    mem = [float(r["memory_mb"]) for r in rows]
    b0, b1 = fit_line(xs, p50)
    m0, m1 = fit_line(xs, mem)
    return {
        "rows": rows,
        "on_disk_sample": disk,
        "search_p50_ms_fit": {"intercept": round(b0, 3), "per_100k_points": round(b1 * 1e5, 2)},
        "memory_mb_fit": {"intercept": round(m0, 1), "per_100k_points": round(m1 * 1e5, 1)},
        "search_budget_ms": SEARCH_BUDGET_MS,
        "points_at_search_budget": size_at_budget(b0, b1, SEARCH_BUDGET_MS),
    }
