"""Stages 1 and 2: ingest throughput and quality per embedding backend; rerank latency, quality and depth.

Each backend ingests the same slice through the real pipeline (loaders, chunker, embedder, Qdrant local
mode) into its own store; quality is dense-only nDCG@10 (so it isolates the embedder), documents ranked
by their best chunk as in eval/retrieval_eval.py. The cross-encoder backends then re-score the same
hybrid candidates from the torch index.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from bench.corpus import Slice
from bench.select import fastest_keeping_quality, smallest_depth_keeping_quality
from bench.stats import ratio, summarize
from services.core.measure import mean, ndcg_at_k
from services.core.types import InferenceBackend

RERANK_SIZES = (10, 25, 50, 100)
DEPTHS = (5, 10, 20, 30, 50)


def doc_of(source: str) -> str:
    return Path(source).stem


def ranking(chunks: list) -> list[str]:
    """Documents in order of their best chunk (a document appears once)."""
    seen: dict[str, None] = {}
    for c in chunks:
        seen.setdefault(doc_of(c.source), None)
    return list(seen)


def ndcg(rankings: list[list[str]], queries: list) -> float:
    return round(mean(ndcg_at_k(r, q.relevant, 10) for r, q in zip(rankings, queries, strict=True)), 4)


@dataclass
class IngestOutcome:
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    candidates: dict[str, list] = field(default_factory=dict)  # query id -> hybrid top-100 (first backend's index)
    index_paths: dict[str, Path] = field(default_factory=dict)


def _settings(data_dir: Path, qdrant_path: Path, backend: InferenceBackend):
    from services.core.settings import Settings

    return Settings(_env_file=None, data_dir=data_dir, qdrant_path=str(qdrant_path), embed_backend=backend)


def bench_ingest(sl: Slice, backends: list[InferenceBackend], data_dir: Path, work: Path) -> IngestOutcome:
    from ingest.factory import build_pipeline
    from services.core.factory import build_embedder, build_store
    from services.core.models.reranker import NoReranker
    from services.core.retrieval import Retriever, SearchSpec

    folder = sl.write(work / "corpus")
    out = IngestOutcome()
    for backend in backends:
        qdrant_path = work / f"index-{backend}"
        shutil.rmtree(qdrant_path, ignore_errors=True)
        settings = _settings(data_dir, qdrant_path, backend)
        t0 = time.perf_counter()
        embedder = build_embedder(settings)
        embedder.warm_up()  # the first use of a backend exports it (once; cached under <data_dir>/models)
        load_s = time.perf_counter() - t0
        embedder.embed_passages(["warm up the runtime"] * 4)
        store = build_store(settings)
        try:
            report = build_pipeline(settings, embedder, store).ingest_paths([folder], progress=True)
            stages = dict(report.stage_seconds)
            staged = sum(stages.values()) or 1.0
            retriever = Retriever(embedder, store, NoReranker())
            rankings, q_ms = [], []
            for q in tqdm(sl.queries, desc=f"quality {backend}", dynamic_ncols=True):
                t1 = time.perf_counter()
                embedder.embed_query(q.text)
                q_ms.append((time.perf_counter() - t1) * 1000)
                res = retriever.search(q.text, SearchSpec("dense", 50, 50, rerank=False))
                rankings.append(ranking(res.chunks))
                if backend == backends[0]:  # torch in a full run: the reference first stage for the rerankers
                    hyb = retriever.search(q.text, SearchSpec("hybrid", 100, 100, rerank=False))
                    out.candidates[q.id] = hyb.chunks
        finally:
            store.close()
        out.index_paths[backend] = qdrant_path
        out.rows[backend] = {
            "chunks": report.chunks,
            "seconds": round(report.seconds, 2),
            "chunks_per_s": round(report.chunks_per_second, 2),
            "stage_share": {k: round(v / staged, 3) for k, v in stages.items()},
            "stage_seconds": {k: round(v, 2) for k, v in stages.items()},
            "load_s": round(load_s, 2),
            "query_embed_ms": summarize(q_ms),
            "ndcg@10": ndcg(rankings, sl.queries),
        }
    base = out.rows.get("torch")
    for row in out.rows.values():
        if base:
            row["speedup"] = ratio(float(row["chunks_per_s"]), float(base["chunks_per_s"]))
            row["quality_kept"] = ratio(float(row["ndcg@10"]), float(base["ndcg@10"]))
    return out


def choose_embed_backend(rows: dict[str, dict[str, Any]]) -> str:
    return fastest_keeping_quality(rows, speed="chunks_per_s", quality="ndcg@10")


def bench_rerank(
    sl: Slice,
    candidates: dict[str, list],
    backends: list[InferenceBackend],
    data_dir: Path,
    *,
    repeats: int,
    fusion_weight: float,
    top_k: int = 5,
) -> dict[str, Any]:
    """Latency per candidate count and quality per depth, for every cross-encoder backend."""
    from services.core.models.reranker import CrossEncoderReranker, fused_order, passage_for

    queries = [q for q in sl.queries if q.id in candidates]
    timing_queries = queries[: max(1, min(len(queries), repeats))]
    rows: dict[str, dict[str, Any]] = {}
    curves: dict[str, dict[int, float]] = {}
    for backend in backends:
        rr = CrossEncoderReranker(backend=backend, model_cache=data_dir / "models", fusion_weight=fusion_weight)
        t0 = time.perf_counter()
        rr.warm_up()
        load_s = time.perf_counter() - t0
        rr.score("warm up", ["the runtime"] * 4)
        latency: dict[int, dict[str, float]] = {}
        for n in tqdm(RERANK_SIZES, desc=f"rerank latency {backend}", dynamic_ncols=True):
            samples = []
            for q in timing_queries:
                cands = candidates[q.id][:n]
                t1 = time.perf_counter()
                rr.rerank(q.text, cands, top_k=5)
                samples.append((time.perf_counter() - t1) * 1000)
            latency[n] = summarize(samples)
        depth_rankings: dict[int, list[list[str]]] = {d: [] for d in DEPTHS}
        for q in tqdm(queries, desc=f"rerank quality {backend}", dynamic_ncols=True):
            cands = candidates[q.id]
            scores = rr.score(q.text, [passage_for(c) for c in cands[: max(DEPTHS)]])
            for d in DEPTHS:
                head = cands[:d]
                order = fused_order(scores[: len(head)], [c.retrieval_score for c in head], fusion_weight)
                depth_rankings[d].append(ranking([head[i] for i in order] + list(cands[d:])))
        curve = {d: ndcg(r, queries) for d, r in depth_rankings.items()}
        curves[backend] = curve
        rows[backend] = {
            "load_s": round(load_s, 2),
            "latency_ms": {str(n): v for n, v in latency.items()},
            "ndcg@10_by_depth": {str(d): v for d, v in curve.items()},
            "ndcg@10": curve[30],  # the reference depth: the current default RAG_TOP_N
        }
    first_stage = ndcg([ranking(candidates[q.id]) for q in queries], queries)
    base = rows.get("torch")
    for row in rows.values():
        if base:
            row["speedup_at_25"] = ratio(
                float(base["latency_ms"]["25"]["p50"]),
                float(row["latency_ms"]["25"]["p50"]),
            )
            row["quality_kept"] = ratio(float(row["ndcg@10"]), float(base["ndcg@10"]))
    choice = fastest_keeping_quality(rows, speed="speedup_at_25", quality="ndcg@10") if base else backends[0]
    depth = smallest_depth_keeping_quality(curves[choice], above=top_k)
    return {
        "rows": rows,
        "first_stage_ndcg@10": first_stage,
        "chosen_backend": choice,
        "chosen_depth": depth,
        "queries": len(queries),
        "timing_queries": len(timing_queries),
    }
