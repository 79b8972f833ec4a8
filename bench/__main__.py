"""``make bench`` / ``python -m bench [--quick] [--only ingest,rerank,query,scale,chunking]``.

Runs the stages in order (ingest -> rerank -> query -> scale -> chunking; query uses the index and the choices
the first two made), writes ``bench/results/<stage>.json`` and PNG charts, and prints a table. ``scale`` also
compares the embedded stores and measures qdrant-edge's HNSW index at a million points (``bench.embedded_store``:
``embedded_store.json``, ``embedded_store_index.json``; about an hour of the full run). ``chunking``
(merging and the contextual header, on generated handbooks and fitz-gov) is ``bench.chunking``; its sizes
are that module's ``Profile`` and ``QUICK``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from bench import plots
from bench.machine import machine_info, now_iso
from bench.schema import validate

RESULTS = Path(__file__).resolve().parent / "results"
STAGES = ("ingest", "rerank", "query", "scale", "chunking")
PCTS = ("p50", "p95", "p99")

PROFILES: dict[str, dict[str, Any]] = {
    "quick": {
        "queries": 20, "docs": 100, "backends": ["torch", "onnx-int8", "openvino-int8"], "rerank_repeats": 3,
        "search_n1": 12, "search_n8": 24, "chat_n1": 2, "chat_n8": 8, "max_tokens": 8, "llm": "smollm2-135m",
        "scale_sizes": [2_000, 10_000], "scale_queries": 20,
        "edge_sizes": [2_000, 10_000], "edge_queries": 20, "index_points": 20_000, "index_queries": 50,
        "index_ef": [64, 512],
    },
    "full": {
        "queries": 80, "docs": 500, "backends": ["torch", "onnx", "onnx-int8", "openvino", "openvino-int8"],
        "rerank_repeats": 5, "search_n1": 40, "search_n8": 80, "chat_n1": 20, "chat_n8": 8, "max_tokens": 16,
        "llm": "qwen2.5-coder-0.5b", "scale_sizes": [10_000, 30_000, 100_000], "scale_queries": 50,
        # the million-point index stage builds HNSW twice (plain, int8): about 40 min on 2 cores
        "edge_sizes": [10_000, 100_000], "edge_queries": 20, "index_points": 1_000_000, "index_queries": 100,
        "index_ef": [256, 512, 1024, 2048, 4096],
    },
}  # fmt: skip


def write(name: str, doc: dict[str, Any], out: Path) -> Path:
    problems = validate(doc)
    if problems:
        raise ValueError(f"{name}: invalid result document: {problems}")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    return path


def envelope(name: str, quick: bool, settings: dict, results: object, started: float) -> dict[str, Any]:
    return {
        "benchmark": name,
        "date": now_iso(),
        "quick": quick,
        "machine": machine_info(),
        "settings": settings,
        "results": results,
        "seconds": round(time.perf_counter() - started, 1),
    }


def table(rows: list[list[object]], header: list[str]) -> str:
    cells = [header] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*r) for r in cells)


def bench_embedded(profile: dict[str, Any], out: Path) -> list[str]:
    """The embedded default, qdrant-edge: against local mode on the same points, then exact vs HNSW vs HNSW+int8
    at ``index_points`` embedding-like points (bench/embedded_store.py; docs/embedded-store.md)."""
    from bench import embedded_store as es

    rows = es.compare_engines(list(profile["edge_sizes"]), int(profile["edge_queries"]), ["edge", "local"])
    es.write_report(out / "embedded_store.json", int(profile["edge_queries"]), rows)
    lines = ["EMBEDDED STORE (qdrant-edge vs qdrant-client local mode, random 384-d)"]
    lines.append(table([[r["engine"], r["points"], r["upsert_s"], r["p50_ms"], r["filtered_p50_ms"]] for r in rows],
                       ["engine", "points", "upsert s", "p50 ms", "filtered p50 ms"]))  # fmt: skip
    points, n_queries = int(profile["index_points"]), int(profile["index_queries"])
    index = es.index_stage(points, n_queries, list(profile["index_ef"]), "embedding-like")
    es.write_index_report(out / "embedded_store_index.json", n_queries, index, "embedding-like")
    lines.append(f"EDGE INDEX ({points:,} embedding-like points)")
    lines.append(table([[r["variant"], r["hnsw_ef"], r["recall_at_10"], r["p50_ms"], r["p95_ms"], r["rss_store_mb"],
                         r["index_build_s"]] for r in index],
                       ["variant", "ef", "recall@10", "p50 ms", "p95 ms", "store RSS MB", "build s"]))  # fmt: skip
    return [*lines, ""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small slice, fewer backends: under 5 minutes")
    parser.add_argument("--only", default=",".join(STAGES), help=f"comma-separated subset of {','.join(STAGES)}")
    parser.add_argument(
        "--backends",
        default=None,
        help="override the backends compared (comma-separated; torch, the reference, is always added)",
    )
    parser.add_argument("--data-dir", default=".data", help="where exported models are cached (as RAG_DATA_DIR)")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.WARNING)
    profile = dict(PROFILES["quick" if args.quick else "full"])
    if args.backends:
        # torch is the reference every backend's speed and quality is measured against: always in
        chosen = [b for b in args.backends.split(",") if b and b != "torch"]
        profile["backends"] = ["torch", *chosen]
    stages = [s for s in args.only.split(",") if s]
    out, data_dir = Path(args.out), Path(args.data_dir)
    work = data_dir / "bench"
    info = machine_info()
    print(
        f"bench {now_iso()} on {info['cpu']}, {info['cores']} cores, {info['memory_gb']} GB, "
        f"load {info['load_avg_start']}"
    )
    from services.core.settings import Settings

    defaults = Settings(_env_file=None)
    summary: list[str] = []
    ingest_res = rerank_res = None
    sl = None
    if {"ingest", "rerank", "query"} & set(stages):
        from bench.corpus import make_slice

        sl = make_slice(int(profile["queries"]), int(profile["docs"]))
    embed_choice: str = defaults.embed_backend
    rerank_choice: str = defaults.reranker_backend
    depth = defaults.top_n
    index_path = None
    if {"ingest", "rerank", "query"} & set(stages):
        from bench.retrieval_bench import bench_ingest, choose_embed_backend

        t0 = time.perf_counter()
        backends = list(profile["backends"])
        if "ingest" not in stages:  # rerank/query still need an index and candidates: the default backend's
            backends = [embed_choice]
        ingest_res = bench_ingest(sl, backends, data_dir, work)  # type: ignore[arg-type]
        index_path = ingest_res.index_paths[backends[0]]
        if "ingest" in stages:
            embed_choice = choose_embed_backend(ingest_res.rows)
            index_path = ingest_res.index_paths[embed_choice]
            res: dict[str, Any] = {"backends": ingest_res.rows, "chosen": embed_choice, "keep": 0.99}
            settings = {"queries": len(sl.queries), "docs": len(sl.docs), "split": "test", "mode": "dense"}  # type: ignore[union-attr]
            write("ingest", envelope("ingest", args.quick, settings, res, t0), out)
            plots.bars(
                out / "ingest_throughput.png",
                {b: float(r["chunks_per_s"]) for b, r in ingest_res.rows.items()},
                title=f"ingest chunks/s per embedding backend ({info['cpu']}, {info['cores']} cores)",
                xlabel="chunks/s (parse+chunk+embed+upsert)",
            )
            summary.append("INGEST (per embedding backend)")
            summary.append(
                table(
                    [
                        [
                            b,
                            r["chunks_per_s"],
                            r.get("speedup"),
                            r["ndcg@10"],
                            r.get("quality_kept"),
                            " ".join(f"{k}={v:.0%}" for k, v in r["stage_share"].items()),
                            r["query_embed_ms"]["p50"],
                        ]
                        for b, r in ingest_res.rows.items()
                    ],  # fmt: skip
                    ["backend", "chunks/s", "x torch", "nDCG@10", "kept", "time share", "query embed p50 ms"],
                )
            )
            summary.append(f"-> fastest keeping >= 99% of torch nDCG@10: {embed_choice}\n")
    if "rerank" in stages:
        from bench.retrieval_bench import bench_rerank

        t0 = time.perf_counter()
        rerank_res = bench_rerank(
            sl,  # type: ignore[arg-type]
            ingest_res.candidates,  # type: ignore[union-attr]
            list(profile["backends"]),
            data_dir,
            repeats=int(profile["rerank_repeats"]),
            fusion_weight=defaults.rerank_fusion_weight,
            top_k=defaults.top_k,
        )
        rerank_choice, depth = str(rerank_res["chosen_backend"]), int(rerank_res["chosen_depth"])
        first = "torch" if "ingest" in stages else embed_choice
        settings = {"fusion_weight": defaults.rerank_fusion_weight, "first_stage": f"hybrid, top 100 ({first} index)"}
        write("rerank", envelope("rerank", args.quick, settings, rerank_res, t0), out)
        rows = rerank_res["rows"]
        plots.lines(
            out / "rerank_latency.png",
            {
                b: ([int(n) for n in r["latency_ms"]], [v["p50"] for v in r["latency_ms"].values()])
                for b, r in rows.items()
            },
            title="cross-encoder rerank latency (p50) per backend",
            xlabel="candidates",
            ylabel="ms",
        )
        plots.lines(
            out / "rerank_depth.png",
            {
                b: ([int(d) for d in r["ndcg@10_by_depth"]], list(r["ndcg@10_by_depth"].values()))
                for b, r in rows.items()
            },
            title=f"nDCG@10 vs rerank depth (first stage alone: {rerank_res['first_stage_ndcg@10']})",
            xlabel="candidates reranked (top_n)",
            ylabel="nDCG@10",
            logx=True,
        )
        summary.append("RERANK (per cross-encoder backend)")
        summary.append(
            table(
                [
                    [
                        b,
                        *(r["latency_ms"][str(n)]["p50"] for n in (10, 25, 50, 100)),
                        r.get("speedup_at_25"),
                        r["ndcg@10"],
                        r.get("quality_kept"),
                    ]
                    for b, r in rows.items()
                ],  # fmt: skip
                ["backend", "10 ms", "25 ms", "50 ms", "100 ms", "x torch@25", "nDCG@10 (depth 30)", "kept"],
            )
        )
        curve = rows[rerank_choice]["ndcg@10_by_depth"]
        summary.append(f"nDCG@10 by depth ({rerank_choice}): {curve}")
        summary.append(
            f"-> reranker backend {rerank_choice}, depth (smallest above top_k within 99% of best) {depth}\n"
        )
    if "query" in stages:
        from bench.query_bench import bench_query

        t0 = time.perf_counter()
        cfg = {
            **{k: profile[k] for k in ("search_n1", "search_n8", "chat_n1", "chat_n8", "max_tokens", "llm")},
            "embed_backend": embed_choice,
            "reranker_backend": rerank_choice,
            "top_n": depth,
            "llm_threads": defaults.llm_threads,
            "context_max_chars": defaults.context_max_chars,
        }
        questions = [q.text for q in sl.queries]  # type: ignore[union-attr]
        res = bench_query(index_path, data_dir, questions, cfg)  # type: ignore[arg-type]
        write("query", envelope("query", args.quick, cfg, res, t0), out)
        s1, s8 = res["search_1_clients"], res["search_8_clients"]
        plots.bars(
            out / "query_latency.png",
            {
                "/search p50, 1 client": s1["latency_ms"]["p50"],
                "/search p95, 1 client": s1["latency_ms"]["p95"],
                "/search p50, 8 clients": s8["latency_ms"]["p50"],
                "/chat TTFT p50, 1 client": res["chat_1_client"]["ttft_ms"]["p50"],
                "bare LLM TTFT p50": res["bare_llm_ttft_ms"]["p50"],
                "/chat TTFT p50, 8 clients": (res["chat_8_clients"]["ttft_ms"] or {"p50": 0.0})["p50"],
            },
            title=f"query latency (embed {embed_choice}, rerank {rerank_choice} top_n={depth}, LLM {cfg['llm']})",
            xlabel="ms",
        )
        summary.append("QUERY (real API process, real llama.cpp)")
        rows_q = [
            ["/search 1 client", *(s1["latency_ms"][p] for p in ("p50", "p95", "p99")), s1["throughput_rps"]],
            ["/search 8 clients", *(s8["latency_ms"][p] for p in ("p50", "p95", "p99")), s8["throughput_rps"]],
            ["/chat TTFT 1 client", *(res["chat_1_client"]["ttft_ms"][p] for p in ("p50", "p95", "p99")), "-"],
            ["bare LLM TTFT", *(res["bare_llm_ttft_ms"][p] for p in ("p50", "p95", "p99")), "-"],
            ["/chat TTFT 8 clients", *((res["chat_8_clients"]["ttft_ms"] or {}).get(p, "-") for p in PCTS),
             res["chat_8_clients"]["throughput_rps"]],
        ]  # fmt: skip
        summary.append(table(rows_q, ["what", "p50 ms", "p95 ms", "p99 ms", "req/s"]))
        summary.append(f"/search stages p50 ms (1 client): {s1['stages_p50_ms']}")
        summary.append(f"/chat stages p50 ms (1 client): {res['chat_1_client']['stages_p50_ms']}")
        if res["chat_8_clients"]["errors"]:
            summary.append(f"/chat at 8 clients, failed requests: {res['chat_8_clients']['errors']}")
        summary.append(
            f"TTFT overhead over the bare LLM: {res['ttft_overhead']:.1%} ({res['ttft_overhead_ms_p50']} ms)\n"
        )
    if "scale" in stages:
        from bench.scale_bench import bench_scale

        t0 = time.perf_counter()
        sizes = list(profile["scale_sizes"])
        res = bench_scale(sizes, work, queries=int(profile["scale_queries"]))
        write("scale", envelope("scale", args.quick, {"sizes": sizes, "dim": 384, "mode": "local"}, res, t0), out)
        rows_s = res["rows"]
        plots.lines(
            out / "scale.png",
            {
                "search p50 ms": ([r["points"] for r in rows_s], [r["search_ms"]["p50"] for r in rows_s]),
                "memory MB": ([r["points"] for r in rows_s], [r["memory_mb"] for r in rows_s]),
            },
            title="Qdrant local mode: cost vs collection size (384-d)",
            xlabel="points",
            ylabel="ms / MB",
            logx=True,
            logy=True,
        )
        summary.append("SCALE (Qdrant local mode, synthetic 384-d)")
        scale_rows = [
            [r["points"], r["search_ms"]["p50"], r["search_ms"]["p95"], r["memory_mb"], r["upsert_points_per_s"]]
            for r in rows_s
        ]
        summary.append(table(scale_rows, ["points", "search p50 ms", "p95 ms", "memory MB", "upsert pts/s (memory)"]))
        summary.append(f"on disk (local mode, sample): {res['on_disk_sample']}")
        summary.append(
            f"-> local mode's search p50 reaches {res['search_budget_ms']} ms at about "
            f"{res['points_at_search_budget']} points\n"
        )
        summary += bench_embedded(profile, out)
    if "chunking" in stages:
        from bench.chunking import QUICK, Profile
        from bench.chunking import run as bench_chunking

        summary += bench_chunking(QUICK if args.quick else Profile(), data_dir=data_dir, out=out, quick=args.quick)
    print("\n" + "\n".join(summary))
    print(f"results in {out}/ (load average now {[round(x, 2) for x in os.getloadavg()]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
