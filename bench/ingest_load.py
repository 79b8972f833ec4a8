"""``/search`` while a 200-file ingest runs, against ``/search`` idle: what a user querying the stack feels
while someone uploads a folder (issue 20's bar: p95 within 2x of idle).

One API process as ``make run`` starts it (embedded Edge store, the local job queue: its worker is a thread
of the API process, sharing its cores; the reranker on). It is seeded with 20 fitz-gov documents, measured
idle, then 200 more documents are uploaded with ``wait_s=0`` (4 requests of 50) and ``/search`` is measured
sequentially until the last job ended. With ``RAG_INGEST_QUEUE=redis`` the ingest runs in worker processes
instead, which needs the Qdrant server (not available on the machine this was written on)::

    python -m bench.ingest_load --out bench/results/ingest_load.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.machine import machine_info, now_iso
from bench.query_bench import start_api, stop

OUT = Path(__file__).resolve().parent / "results" / "ingest_load.json"


def summary(ms: list[float]) -> dict[str, float]:
    return {
        "n": len(ms),
        "p50": round(float(np.percentile(ms, 50)), 1),
        "p95": round(float(np.percentile(ms, 95)), 1),
        "mean": round(statistics.fmean(ms), 1),
    }


def search(client: httpx.Client, query: str, *, rerank: bool = True) -> float:
    t0 = time.perf_counter()
    r = client.post("/search", json={"query": query, "top_k": 5, "rerank": rerank})
    r.raise_for_status()
    return (time.perf_counter() - t0) * 1000


def throughput(base: str, queries: list[str], *, rerank: bool, clients: int = 8, each: int = 20) -> dict[str, Any]:
    """Requests per second that ``clients`` concurrent users get from one API process (all answered)."""
    from concurrent.futures import ThreadPoolExecutor

    def user(offset: int) -> list[float]:
        with httpx.Client(base_url=base, timeout=120) as client:
            return [search(client, queries[(offset + i) % len(queries)], rerank=rerank) for i in range(each)]

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = [ms for batch in pool.map(user, range(0, clients * each, each)) for ms in batch]
    elapsed = time.perf_counter() - started
    return {"clients": clients, "requests": len(latencies), "rps": round(len(latencies) / elapsed, 1)} | {
        f"latency_{k}": v for k, v in summary(latencies).items() if k != "n"
    }


def upload(client: httpx.Client, docs: list[tuple[str, str]], wait_s: float) -> list[dict[str, Any]]:
    files = [("files", (name, text.encode(), "text/markdown")) for name, text in docs]
    r = client.post("/documents", files=files, params={"wait_s": wait_s}, timeout=900)
    r.raise_for_status()
    return list(r.json()["files"])


def run(n_files: int, idle_queries: int) -> dict[str, Any]:
    from services.datasets.fitz_gov import load_corpus, load_queries

    corpus = [(f"{d.id}.md", d.as_markdown()) for d in load_corpus()[: 20 + n_files]]
    queries = [q.text for q in load_queries("dev")][:200]
    data = Path(tempfile.mkdtemp(prefix="bench-ingest-load-"))
    env = {"RAG_DATA_DIR": str(data), "RAG_LLM_BASE_URL": "http://127.0.0.1:9/v1", "RAG_LOG_LEVEL": "WARNING"}
    api, base = start_api(env)
    try:
        with httpx.Client(base_url=base, timeout=120) as client:
            upload(client, corpus[:20], wait_s=600)
            for q in queries[:5]:
                search(client, q)  # warm
            idle = [search(client, q) for q in queries[:idle_queries]]
            capacity = {
                "rerank": throughput(base, queries, rerank=True),
                "no_rerank": throughput(base, queries, rerank=False),
            }
            started = time.perf_counter()
            last: dict[str, Any] = {}
            for i in range(20, 20 + n_files, 50):
                last = upload(client, corpus[i : i + 50], wait_s=0)[-1]
            during: list[float] = []
            k = 0
            while True:
                during.append(search(client, queries[k % len(queries)]))
                k += 1
                if k % 5 == 0:
                    state = client.get(f"/documents/{last['doc_id']}").json()["state"]
                    if state in ("complete", "failed"):
                        break
            drained_s = time.perf_counter() - started
            documents = len(client.get("/documents").json())
    finally:
        stop(api)
    idle_s, during_s = summary(idle), summary(during)
    return {
        "benchmark": "ingest_load",
        "date": now_iso(),
        "machine": machine_info(),
        "command": "python -m bench.ingest_load",
        "settings": {"queue": "local (a worker thread in the API)", "store": "edge", "files": n_files},
        "results": {
            "search_idle_ms": idle_s,
            "search_during_ingest_ms": during_s,
            "p95_ratio": round(during_s["p95"] / idle_s["p95"], 2),
            "p50_ratio": round(during_s["p50"] / idle_s["p50"], 2),
            "ingest_drained_s": round(drained_s, 1),
            "files_per_s": round(n_files / drained_s, 2),
            "documents_after": documents,
            "search_capacity_8_clients": capacity,
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--idle-queries", type=int, default=60)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    report = run(args.files, args.idle_queries)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report["results"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
