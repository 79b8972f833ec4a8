"""``make eval-retrieval``: what each retrieval stage buys, on the fitz-gov test split.

Ingests the packaged corpus through the real pipeline (loaders, chunker, embedder, Qdrant local mode),
then runs every configuration over the same queries and reports nDCG@10, MRR@10, recall@10/50 and the
per-query latency. Documents are ranked by their best chunk. The test split is never used for training
or tuning (see services/datasets/fitz_gov.py); ``--split dev`` is the one to tune on.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

if TYPE_CHECKING:
    from services.core.types import RetrievalMode

from services.core import measure
from services.core.measure import cpu_name, mean, mrr_at_k, ndcg_at_k, percentile, recall_at_k
from services.datasets.fitz_gov import load_corpus, load_queries

REPORT_DIR = Path("eval/reports")


FUSION_GRID = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7)
DEPTH_FOR_RECALL = 50


def build_index(data_dir: Path, settings_overrides: dict[str, Any]):
    from ingest.factory import build_pipeline
    from services.core.settings import Settings

    settings = Settings(_env_file=None, data_dir=data_dir, **settings_overrides)
    folder = data_dir / "corpus"
    folder.mkdir(parents=True, exist_ok=True)
    for doc in load_corpus():
        path = folder / f"{doc.id}.md"
        if not path.exists():
            path.write_text(doc.as_markdown(), encoding="utf-8")
    pipeline = build_pipeline(settings)
    pipeline.warm_up()
    report = pipeline.sync(folder, progress=True)
    return settings, pipeline.embedder, pipeline.store, report


def doc_of(source: str) -> str:
    return Path(source).stem


def _doc_ranking(chunks: list) -> list[str]:
    return [doc_of(c.source) for c in chunks]


def _metrics(rankings: list[list[str]], queries: list, latency: list[float]) -> dict[str, float]:
    return {
        "ndcg@10": round(mean(ndcg_at_k(r, q.relevant, 10) for r, q in zip(rankings, queries, strict=True)), 4),
        "mrr@10": round(mean(mrr_at_k(r, q.relevant, 10) for r, q in zip(rankings, queries, strict=True)), 4),
        "recall@10": round(mean(recall_at_k(r, q.relevant, 10) for r, q in zip(rankings, queries, strict=True)), 4),
        "recall@50": round(mean(recall_at_k(r, q.relevant, 50) for r, q in zip(rankings, queries, strict=True)), 4),
        "latency_ms_p50": round(percentile(latency, 50), 1),
        "latency_ms_p95": round(percentile(latency, 95), 1),
    }


def stage_runs(retriever, reranker, queries: list, depth: int, late: bool) -> dict[str, dict[str, list]]:
    """Each stage computed once per query; rerank variants (fusion weights) are derived from the same scores."""
    from services.core.models.reranker import fused_order, passage_for
    from services.core.retrieval import SearchSpec

    runs: dict[str, dict[str, list]] = {}
    stages: tuple[tuple[RetrievalMode, str], ...] = (("sparse", "bm25"), ("dense", "dense"), ("hybrid", "hybrid"))
    for mode, label in stages:
        rankings: list[list[str]] = []
        latency: list[float] = []
        ce_latency: list[float] = []
        fused: dict[float, list[list[str]]] = {w: [] for w in FUSION_GRID}
        for q in tqdm(queries, desc=label, dynamic_ncols=True):
            t0 = time.perf_counter()
            res = retriever.search(q.text, SearchSpec(mode, DEPTH_FOR_RECALL, DEPTH_FOR_RECALL, rerank=False))
            first_ms = (time.perf_counter() - t0) * 1000
            latency.append(first_ms)
            ranked = _doc_ranking(res.chunks)
            rankings.append(ranked)
            if mode == "sparse":
                continue
            head = res.chunks[:depth]
            t1 = time.perf_counter()
            scores = reranker.score(q.text, [passage_for(c) for c in head])
            ce_latency.append(first_ms + (time.perf_counter() - t1) * 1000)
            tail = ranked[len(head) :]
            for w in FUSION_GRID:
                order = fused_order(scores, [c.retrieval_score for c in head], w)
                fused[w].append([doc_of(head[i].source) for i in order] + tail)
        runs[label] = {"rankings": rankings, "latency": latency}
        if mode != "sparse":
            for w in FUSION_GRID:
                runs[f"{label}+cross-encoder@{w}"] = {"rankings": fused[w], "latency": ce_latency}
        if late and mode == "dense" and getattr(retriever.store, "late_interaction", False):
            li_rankings, li_latency = [], []
            for q in tqdm(queries, desc="dense+late-interaction", dynamic_ncols=True):
                t0 = time.perf_counter()
                spec = SearchSpec("dense", DEPTH_FOR_RECALL, DEPTH_FOR_RECALL, rerank=False, late_interaction=True)
                res = retriever.search(q.text, spec)
                li_latency.append((time.perf_counter() - t0) * 1000)
                li_rankings.append(_doc_ranking(res.chunks))
            runs["dense+late-interaction"] = {"rankings": li_rankings, "latency": li_latency}
    return runs


def run(args: argparse.Namespace) -> dict[str, object]:
    from services.core.models.reranker import CrossEncoderReranker
    from services.core.retrieval import Retriever

    settings, embedder, store, ingest_report = build_index(
        Path(args.data_dir), {"embed_batch_size": 64, "late_interaction": args.late_interaction}
    )
    reranker = CrossEncoderReranker(args.reranker, fusion_weight=0.0)  # stage_runs fuses per weight itself
    reranker.warm_up()
    retriever = Retriever(embedder, store, reranker)
    embedder.embed_query("warm up")
    rng = random.Random(0)
    dev = load_queries("dev")
    dev = rng.sample(dev, min(args.dev_limit, len(dev))) if args.dev_limit else dev
    test = load_queries("test")
    test = rng.sample(test, min(args.limit, len(test))) if args.limit else test
    # Tune the fusion weight on dev only; report every configuration on test.
    dev_runs = stage_runs(retriever, reranker, dev, args.depth, late=False)  # dev only tunes the fusion weight
    tuning = {
        name: _metrics(r["rankings"], dev, r["latency"])["ndcg@10"] for name, r in dev_runs.items() if "@" in name
    }

    def best_weight(base: str) -> float:
        return max(FUSION_GRID, key=lambda w: (tuning[f"{base}+cross-encoder@{w}"], -w))

    best = {base: best_weight(base) for base in ("dense", "hybrid")}
    test_runs = stage_runs(retriever, reranker, test, args.depth, late=args.late_interaction)
    results: dict[str, dict[str, float]] = {}
    for name in ("bm25", "dense", "hybrid", "dense+late-interaction"):
        if name in test_runs:
            results[name] = _metrics(test_runs[name]["rankings"], test, test_runs[name]["latency"])
    for base in ("dense", "hybrid"):
        pure = test_runs[f"{base}+cross-encoder@0.0"]
        results[f"{base}+cross-encoder"] = _metrics(pure["rankings"], test, pure["latency"])
        tuned = test_runs[f"{base}+cross-encoder@{best[base]}"]
        results[f"{base}+cross-encoder (fusion w={best[base]})"] = _metrics(tuned["rankings"], test, tuned["latency"])
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "split": "test",
        "queries": len(test),
        "dev_queries_for_tuning": len(dev),
        "fusion_tuning_dev_ndcg@10": tuning,
        "fusion_weight_chosen": best,
        "corpus_docs": len(load_corpus()),
        "chunks": store.count_chunks(),
        "rerank_depth": args.depth,
        "embedder": settings.embed_model,
        "reranker": args.reranker,
        "late_interaction_bytes_per_chunk": late_storage(store, embedder) if args.late_interaction else None,
        "hardware": f"{cpu_name()}, {os.cpu_count()} cores",
        "ingest_seconds": ingest_report.summary()["seconds"],
        "results": results,
    }


def late_storage(store, embedder) -> float:
    """Mean fp16 bytes of per-token vectors per chunk (tokens x dimension x 2)."""
    if hasattr(store, "pages"):  # the embedded Edge store (services/core/storage/store_edge.py)
        page: list[Any] = next(store.pages(store.collection, batch=200), [])
    else:  # qdrant-client (server, or its local mode)
        page, _ = store.client.scroll(store.collection, limit=200, with_payload=["n_tokens"])
    return round(mean(float(p.payload["n_tokens"]) for p in page) * embedder.dimension * 2, 1)


def plot(report: dict[str, object], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results: dict[str, dict[str, float]] = report["results"]  # type: ignore[assignment]
    names = list(results)[::-1]  # first configuration on top
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 0.55 * len(names) + 1.8), sharey=True)
    height = 0.38
    ys = range(len(names))
    ax1.barh([y + height / 2 for y in ys], [results[n]["ndcg@10"] for n in names], height, label="nDCG@10")
    ax1.barh([y - height / 2 for y in ys], [results[n]["mrr@10"] for n in names], height, label="MRR@10")
    ax1.set_yticks(list(ys), names)
    lo = min(min(results[n]["ndcg@10"], results[n]["mrr@10"]) for n in names)
    ax1.set_xlim(max(0.0, lo - 0.05), 1.0)
    ax1.set_title(f"fitz-gov {report['split']} split, {report['queries']} queries")
    ax1.legend(loc="lower right", fontsize=8)
    ax2.barh(list(ys), [results[n]["latency_ms_p50"] for n in names], color="gray")
    ax2.set_xscale("log")
    ax2.set_xlabel("p50 latency per query, ms (log scale)")
    ax2.set_title(str(report["hardware"]))
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def markdown_table(report: dict[str, object]) -> str:
    results: dict[str, dict[str, float]] = report["results"]  # type: ignore[assignment]
    return measure.markdown_table(
        ["configuration", "nDCG@10", "MRR@10", "recall@10", "recall@50", "p50 ms", "p95 ms"],
        [
            [
                name,
                *(f"{r[m]:.3f}" for m in ("ndcg@10", "mrr@10", "recall@10", "recall@50")),
                f"{r['latency_ms_p50']:.0f}",
                f"{r['latency_ms_p95']:.0f}",
            ]
            for name, r in results.items()
        ],
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=0, help="sample N test queries (0: all)")
    parser.add_argument("--dev-limit", type=int, default=200, help="dev queries used to tune the fusion weight")
    parser.add_argument("--late-interaction", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--depth", type=int, default=30, help="candidates reranked by the cross-encoder")
    parser.add_argument("--reranker", default="fitzgov-minilm-l6")
    parser.add_argument("--data-dir", default=".data/eval-retrieval")
    parser.add_argument("--out", default=str(REPORT_DIR))
    args = parser.parse_args(argv)
    report = run(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "retrieval.json").write_text(json.dumps(report, indent=2))
    plot(report, out / "retrieval.png")
    table = markdown_table(report)
    (out / "retrieval.md").write_text(table + "\n")
    print(table)
    print(f"wrote {out / 'retrieval.json'} and {out / 'retrieval.png'}")


if __name__ == "__main__":
    main()
