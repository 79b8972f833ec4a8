"""``make eval-retrieval``: what each retrieval stage buys, on the fitz-gov test split.

Ingests the packaged corpus through the real pipeline (loaders, chunker, embedder, Qdrant local mode),
then runs every configuration over the same queries and reports nDCG@10, MRR@10, recall@10/50 and the
per-query latency. Documents are ranked by their best chunk. The test split is never used for training
or tuning (see eval/datasets.py); ``--split dev`` is the one to tune on.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tqdm import tqdm

from eval.datasets import load_corpus, load_queries
from eval.metrics import mean, mrr_at_k, ndcg_at_k, recall_at_k

REPORT_DIR = Path("eval/reports")


@dataclass(frozen=True)
class Config:
    name: str
    mode: str
    rerank: bool


CONFIGS = (
    Config("bm25", "sparse", False),
    Config("dense", "dense", False),
    Config("hybrid", "hybrid", False),
    Config("dense+cross-encoder", "dense", True),
    Config("hybrid+cross-encoder", "hybrid", True),
)


def build_index(data_dir: Path, settings_overrides: dict[str, object]):  # noqa: ANN201
    from ingest.factory import build_pipeline
    from services.core.factory import build_embedder, build_store
    from services.core.settings import Settings

    settings = Settings(_env_file=None, data_dir=data_dir, **settings_overrides)
    folder = data_dir / "corpus"
    folder.mkdir(parents=True, exist_ok=True)
    for doc in load_corpus():
        path = folder / f"{doc.id}.md"
        if not path.exists():
            path.write_text(doc.as_markdown(), encoding="utf-8")
    embedder = build_embedder(settings)
    store = build_store(settings)
    report = build_pipeline(settings, embedder, store).sync(folder, progress=True)
    return settings, embedder, store, report


def doc_of(source: str) -> str:
    return Path(source).stem


def run(args: argparse.Namespace) -> dict[str, object]:
    from services.core.reranker import CrossEncoderReranker
    from services.core.retrieval import Retriever

    settings, embedder, store, ingest_report = build_index(Path(args.data_dir), {"embed_batch_size": 64})
    queries = load_queries(args.split)
    if args.limit:
        queries = random.Random(0).sample(queries, min(args.limit, len(queries)))
    reranker = CrossEncoderReranker(args.reranker)
    reranker.warm_up()
    retriever = Retriever(embedder, store, reranker)
    embedder.embed_query("warm up")
    results: dict[str, dict[str, float]] = {}
    for config in CONFIGS:
        ndcg, mrr, r10, r50, latency = [], [], [], [], []
        for q in tqdm(queries, desc=config.name, dynamic_ncols=True):
            t0 = time.perf_counter()
            res = retriever.search(
                q.text,
                mode=config.mode,
                top_n=max(50, args.depth),
                top_k=max(50, args.depth) if not config.rerank else args.depth,
                rerank=config.rerank,
            )
            latency.append((time.perf_counter() - t0) * 1000)
            ranked = [doc_of(c.source) for c in res.chunks]
            if config.rerank:
                # Reranked head, then the first stage's tail, so recall@50 stays comparable.
                head = set(ranked)
                full = retriever.search(q.text, mode=config.mode, top_n=50, top_k=50, rerank=False)
                ranked += [d for d in (doc_of(c.source) for c in full.chunks) if d not in head]
            ndcg.append(ndcg_at_k(ranked, q.relevant, 10))
            mrr.append(mrr_at_k(ranked, q.relevant, 10))
            r10.append(recall_at_k(ranked, q.relevant, 10))
            r50.append(recall_at_k(ranked, q.relevant, 50))
        results[config.name] = {
            "ndcg@10": round(mean(ndcg), 4),
            "mrr@10": round(mean(mrr), 4),
            "recall@10": round(mean(r10), 4),
            "recall@50": round(mean(r50), 4),
            "latency_ms_p50": round(statistics.median(latency), 1),
            "latency_ms_p95": round(sorted(latency)[int(0.95 * (len(latency) - 1))], 1),
        }
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "split": args.split,
        "queries": len(queries),
        "corpus_docs": len(load_corpus()),
        "chunks": store.count_chunks(),
        "rerank_depth": args.depth,
        "embedder": settings.embed_model,
        "reranker": args.reranker,
        "hardware": f"{platform.processor() or platform.machine()}, {__import__('os').cpu_count()} cores",
        "ingest": ingest_report.summary() | {"problems": len(ingest_report.summary()["problems"])},  # type: ignore[operator]
        "results": results,
    }


def plot(report: dict[str, object], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results: dict[str, dict[str, float]] = report["results"]  # type: ignore[assignment]
    names = list(results)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.2
    for i, metric in enumerate(("ndcg@10", "mrr@10", "recall@10", "recall@50")):
        ax1.bar([x + i * width for x in range(len(names))], [results[n][metric] for n in names], width, label=metric)
    ax1.set_xticks([x + 1.5 * width for x in range(len(names))], names, rotation=20, ha="right")
    ax1.set_ylim(0, 1)
    ax1.set_title(f"fitz-gov {report['split']} split, {report['queries']} queries")
    ax1.legend(fontsize=8)
    ax2.bar(names, [results[n]["latency_ms_p50"] for n in names], color="gray")
    ax2.set_ylabel("p50 latency per query (ms)")
    ax2.set_title(str(report["hardware"]))
    ax2.tick_params(axis="x", rotation=20)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def markdown_table(report: dict[str, object]) -> str:
    results: dict[str, dict[str, float]] = report["results"]  # type: ignore[assignment]
    lines = [
        "| configuration | nDCG@10 | MRR@10 | recall@10 | recall@50 | p50 ms | p95 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['ndcg@10']:.3f} | {r['mrr@10']:.3f} | {r['recall@10']:.3f} | {r['recall@50']:.3f} "
            f"| {r['latency_ms_p50']:.0f} | {r['latency_ms_p95']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=("dev", "test"), default="test")
    parser.add_argument("--limit", type=int, default=0, help="sample N queries (0: all)")
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
