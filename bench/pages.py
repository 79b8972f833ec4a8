"""``make docs`` / ``python -m bench.pages [--check]``: the figures in the docs, rendered from the result files.

A page that holds figures keeps its narrative by hand and its numbers in generated blocks::

    <!-- generated:bench-query:start -->
    ... rendered from bench/results/query.json ...
    <!-- generated:bench-query:end -->

so every number in them has a JSON and a command behind it, and a new run refreshes the page instead of leaving
it stale (hand-typed figures drifted from their results more than once). Each block names its result files and
the command that wrote them; ``PAGES`` says which blocks each page holds, and a page that lacks one, or holds one
this module does not know, is an error rather than a silent skip.

``--check`` writes nothing and exits 1 when a committed page differs from what this would write (the unit tests
run the same comparison); both modes exit 2, naming the file, when a result file is missing or lacks a field a
block needs. The tools do not import each other (import-linter), so eval's and training's reports are read as
the JSON files they write, never through ``eval`` or ``train``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.core.measure import fmt_interval, markdown_table

ROOT = Path(__file__).resolve().parents[1]


class PageError(Exception):
    """A page cannot be rendered: a result file is missing or malformed, or the page's markers are wrong."""


@dataclass(frozen=True)
class Source:
    """A result file (relative to the repository root) and the command that writes it."""

    path: str
    command: str


class Results:
    """The loaded sources of one block, in the order the block lists them, and their links from the page."""

    def __init__(self, docs: Sequence[Any], links: Sequence[str]) -> None:
        self.docs = list(docs)
        self.links = list(links)

    def __getitem__(self, i: int) -> Any:
        return self.docs[i]

    def __len__(self) -> int:
        return len(self.docs)

    def link(self, i: int) -> str:
        """A Markdown link to source ``i``, relative to the page, named by its file (and folder, for a report)."""
        path = Path(self.links[i])
        name = f"{path.parent.name}/{path.name}" if path.name == "report.json" else path.name
        return f"[{name}]({self.links[i]})"


Render = Callable[[Results], str]


@dataclass(frozen=True)
class Block:
    """One generated block: its marker name, the result files it reads (in order), and how it renders them."""

    name: str
    sources: tuple[Source, ...]
    render: Render


# --- number formats: one per unit, so a figure reads the same on every page --------------------------------


def num(value: float) -> str:
    """About three significant figures, whole numbers with separators from 100 up: 0.61, 2.38, 67.8, 1,613.

    Trailing zeros go only when the value has no more digits (a stored 6.1 reads 6.1, a measured 2.0013 reads
    2.00), so a figure never claims more precision than its file holds, nor hides what it holds.
    """
    if abs(value) >= 100:
        return f"{value:,.0f}"
    text = f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"
    short = text.rstrip("0").rstrip(".")
    return short if float(short) == value else text


def ms(value: float) -> str:
    return f"{num(value)} ms"


def secs(value_ms: float) -> str:
    """Milliseconds shown as seconds (times to first token are seconds long)."""
    return f"{num(value_ms / 1000)} s"


def times(value: float) -> str:
    return f"{value:.2f}×"


def pct(value: float) -> str:
    return f"{value:.1%}"


def day(iso: str) -> str:
    """The date of an ISO timestamp: ``2026-12-03T09:05:46+00:00`` -> ``2026-12-03``."""
    return iso[:10]


def ci(report: Mapping[str, Any], metric: str) -> str:
    """An eval report's metric with its 95 % interval: ``0.628 [0.532, 0.723]``."""
    c = report["metrics_ci"].get(metric)
    value = report["metrics"][metric]
    return fmt_interval(value, c and c.get("low"), c and c.get("high"))


def n_of(report: Mapping[str, Any], metric: str) -> int:
    return int(report["metrics_ci"][metric]["n"])


def measured(doc: Mapping[str, Any]) -> str:
    """``Measured <date> on <machine>``, flagging a ``--quick`` run: its slice is a smoke test, not a result."""
    quick = " (the `--quick` profile: a small slice, a smoke test)" if doc.get("quick") else ""
    return f"Measured {day(doc['date'])} on {machine(doc)}{quick}"


def machine(doc: Mapping[str, Any]) -> str:
    """Where a bench stage ran and how busy the machine was when it started."""
    m = doc["machine"]
    if isinstance(m, str):
        return m
    return f"{m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, load {m['load_avg_start'][0]} at the start"


# --- the benchmark pages (bench/results) -------------------------------------------------------------------

QUERY = Source("bench/results/query.json", 'make bench BENCH_ARGS="--only query"')
# The full run of 2026-12-02 (commit 23e28e9), before evidence sentences, llama-server and the Edge store: the
# baseline the query stage is compared with, kept when query.json was overwritten.
QUERY_BEFORE = Source("bench/results/archive/query-2026-12-02.json", "make bench")
INGEST = Source("bench/results/ingest.json", 'make bench BENCH_ARGS="--only ingest"')
RERANK = Source("bench/results/rerank.json", 'make bench BENCH_ARGS="--only ingest,rerank"')
SCALE = Source("bench/results/scale.json", 'make bench BENCH_ARGS="--only scale"')
EMBEDDED = Source(
    "bench/results/embedded_store.json",
    "python -m bench.embedded_store --sizes 10000 100000 --queries 20 --out bench/results/embedded_store.json",
)
HNSW = Source(
    "bench/results/embedded_store_index_20k.json",
    "python -m bench.embedded_store --points 20000 --queries 50 --ef 64 128 256 512 "
    "--out bench/results/embedded_store_index_20k.json",
)
# A million embedding-like points (issue 17's goal), three runs: the shipped graph over the three variants, the
# same graph searched wider (int8 only), and a denser graph (m 32, build breadth 200; int8 only).
HNSW_1M = (
    Source(
        "bench/results/embedded_store_index.json",
        "python -m bench.embedded_store --data embedding-like --points 1000000 --queries 100 --ef 64 128 256 512 "
        "--out bench/results/embedded_store_index.json",
    ),
    Source(
        "bench/results/embedded_store_index_wide.json",
        "python -m bench.embedded_store --data embedding-like --points 1000000 --queries 100 --ef 1024 2048 4096 "
        "--variants hnsw+int8 --out bench/results/embedded_store_index_wide.json",
    ),
    Source(
        "bench/results/embedded_store_index_m32.json",
        "python -m bench.embedded_store --data embedding-like --points 1000000 --queries 100 "
        "--ef 256 512 1024 2048 --variants hnsw+int8 --graph 32 200 --out bench/results/embedded_store_index_m32.json",
    ),
)
INGEST_LOAD = Source("bench/results/ingest_load.json", "python -m bench.ingest_load")
COMPOSE = Source("bench/results/compose.json", "make compose-test")

# The goals the benchmarks answer to (issue 16 and the README): the verdicts are computed, never typed.
GOAL_SPEEDUP = 2.0
GOAL_KEEP = 0.99
GOAL_SEARCH_P50_MS = 300.0
GOAL_TTFT_OVERHEAD = 0.10
GOAL_EDGE_SPEEDUP, GOAL_EDGE_POINTS = 10.0, 100_000  # issue 17: the embedded engine against local mode
GOAL_INDEX_P50_MS, GOAL_INDEX_RECALL = 20.0, 0.95  # issue 17: a million chunks, searched by the HNSW graph
STAGE_ORDER = ("embed", "retrieve", "rerank", "evidence", "llm_connect", "first_token", "generate", "verify")


def _stages(stages: Mapping[str, float]) -> str:
    """``embed 6.1 ms, retrieve 0.9 ms, ...; total 68.0 ms`` in pipeline order (the JSON sorts them by name)."""
    order = [s for s in STAGE_ORDER if s in stages] + [s for s in stages if s not in STAGE_ORDER and s != "total"]
    text = ", ".join(f"{s.replace('_', ' ')} {ms(stages[s])}" for s in order)
    return f"{text}; total {ms(stages['total'])}" if "total" in stages else text


def _chat_answered(q: Mapping[str, Any]) -> tuple[int, int]:
    """How many of the concurrent chats got an answer, of how many were sent."""
    sent = int(q["settings"]["chat_n8"])
    return sent - len(q["results"]["chat_8_clients"]["errors"]), sent


def render_query(r: Results) -> str:
    q, before = r[0], r[1]
    res, base, s = q["results"], before["results"], q["settings"]
    s1, s8, c1, c8 = res["search_1_clients"], res["search_8_clients"], res["chat_1_client"], res["chat_8_clients"]
    cold, warm = res["prefix_cache"]["cold"], res["prefix_cache"]["warm"]
    answered, sent = _chat_answered(q)
    was = day(before["date"])
    same_prompt = res.get("bare_llm_prompt_tokens_p50") is not None  # the bare LLM read the stack's own prompt

    def pcts(d: Mapping[str, float], fmt: Callable[[float], str]) -> list[str]:
        return [fmt(d[p]) for p in ("p50", "p95", "p99")]

    def before_p50(*keys: str, fmt: Callable[[float], str]) -> str:
        node: Any = base
        for k in keys:
            if not isinstance(node, Mapping) or k not in node:
                return "–"
            node = node[k]
        return fmt(node["p50"])

    rows = [
        [f"`/search`, 1 client ({s1['latency_ms']['n']} requests)", *pcts(s1["latency_ms"], ms),
         f"{num(s1['throughput_rps'])} req/s", before_p50("search_1_clients", "latency_ms", fmt=ms)],
        *(
            [[f"`/search` first stage only, 1 client ({fs['latency_ms']['n']}; the row above reranks its top "
              f"{s['top_n']})", *pcts(fs["latency_ms"], ms), "–",
              before_p50("search_1_client_first_stage", "latency_ms", fmt=ms)]]
            if (fs := res.get("search_1_client_first_stage")) else []
        ),
        [f"`/search`, 8 clients ({s8['latency_ms']['n']} requests)", *pcts(s8["latency_ms"], ms),
         f"{num(s8['throughput_rps'])} req/s", before_p50("search_8_clients", "latency_ms", fmt=ms)],
        [f"`/chat` time to the first visible token, 1 client ({c1['ttft_ms']['n']} answered; a held answer's "
         "first token is the whole verified answer)", *pcts(c1["ttft_ms"], secs), "–",
         before_p50("chat_1_client", "ttft_ms", fmt=secs)],
        [f"`/chat` time to first token, 8 clients ({answered} of {sent} answered)", *pcts(c8["ttft_ms"], secs),
         f"{c8['throughput_rps']} req/s", before_p50("chat_8_clients", "ttft_ms", fmt=secs)],
        [f"bare LLM, {'the same prompt' if same_prompt else 'the whole-chunk prompt'} ({res['bare_llm_ttft_ms']['n']})",
         *pcts(res["bare_llm_ttft_ms"], secs),
         "–", before_p50("bare_llm_ttft_ms", fmt=secs)],
        [f"bare LLM, cold prefix ({cold['ttft_ms']['n']})", *pcts(cold["ttft_ms"], secs), "–", "–"],
        [f"bare LLM, warm prefix ({warm['ttft_ms']['n']}; {warm['cached_tokens_p50']:.0f} of "
         f"{warm['prompt_tokens_p50']:.0f} prompt tokens cached)", *pcts(warm["ttft_ms"], secs), "–", "–"],
    ]  # fmt: skip
    overhead = f"{res['ttft_overhead']:+.1%} ({ms(res['ttft_overhead_ms_p50'])} at p50)"
    base_overhead = f"{base['ttft_overhead']:+.1%} ({ms(base['ttft_overhead_ms_p50'])})"
    return "\n".join(
        [
            f"{measured(q)}: LLM {s['llm']} on {res.get('llm_server', 'its server')} "
            f"({s['llm_threads']} threads, {s['max_tokens']}-token answers), embedder {s['embed_backend']}, "
            f"cross-encoder {s['reranker_backend']} at depth {s['top_n']}.",
            "",
            markdown_table(["what", "p50", "p95", "p99", "throughput", f"p50 on {was}"], rows),
            "",
            f"- Where the time goes (p50, 1 client): `/search` = {_stages(s1['stages_p50_ms'])}; "
            f"`/chat` = {_stages(c1['stages_p50_ms'])}.",
            f"- Prompt tokens per `/chat` request (p50): {c1['prompt_tokens_p50']:.0f} with evidence selection"
            + (
                f"; {res['whole_chunk_prompt_tokens_p50']:.0f} for the same questions' whole-chunk prompt (before)."
                if res.get("whole_chunk_prompt_tokens_p50")
                else "."
            ),
            f"- Stack overhead on time to first token over the bare LLM: {overhead}; on {was}: {base_overhead}. "
            + (
                "The bare LLM is sent the prompt the stack sent (rebuilt from each source's `excerpt`, its own "
                "prefix marker so that only the shared system prompt is cached; "
                f"{res['bare_llm_prompt_tokens_p50']:.0f} prompt tokens p50)."
                if same_prompt
                else "In this run the bare LLM was sent the prompt rebuilt from the whole source chunks (the sources "
                "carried no `excerpt` yet), so this compares two different prompts, not the stack's own cost."
            ),
            f"- A warm prefix saves {ms(res['prefix_cache']['warm_saves_ms_p50'])} at p50 "
            f"({times(res['prefix_cache']['warm_speedup'])} faster to the first token).",
        ]
    )


def render_ingest(r: Results) -> str:
    doc = r[0]
    res, s = doc["results"], doc["settings"]
    rows, chosen = res["backends"], res["chosen"]
    first = next(iter(rows.values()))

    def row(name: str, b: Mapping[str, Any]) -> list[str]:
        share = " / ".join(f"{b['stage_share'][k]:.0%}".rstrip("%") for k in ("parse", "chunk", "embed", "upsert"))
        cells = [name, num(b["chunks_per_s"]), times(b["speedup"])]
        if name == chosen:
            cells = [f"**{c}**" for c in cells]
        return [*cells, f"{b['ndcg@10']:.3f}", pct(b["quality_kept"]), f"{share} %", ms(b["query_embed_ms"]["p50"])]

    header = ["backend", "chunks/s", "× torch", "nDCG@10", "kept", "time share parse / chunk / embed / upsert",
              "query embed p50"]  # fmt: skip
    lines = [
        f"{measured(doc)}; {s['docs']} documents and their relevant ones "
        f"({first['chunks']} chunks), nDCG@10 of {s['queries']} {s['split']}-split queries ({s['mode']}).",
        "",
        markdown_table(header, [row(name, b) for name, b in rows.items()]),
        "",
        f"- Fastest backend keeping ≥ {res['keep']:.0%} of torch's nDCG@10: **{chosen}**.",
    ]
    if "torch" in rows and chosen != "torch":
        t, c = rows["torch"], rows[chosen]
        lines.append(
            f"- The embedding stage alone: {chosen} {times(t['stage_seconds']['embed'] / c['stage_seconds']['embed'])}"
            f" torch; embedding is {t['stage_share']['embed']:.0%} of torch's time and "
            f"{c['stage_share']['embed']:.0%} of {chosen}'s."
        )
    return "\n".join(lines)


def _depth_speedups(rows: Mapping[str, Any], backend: str) -> dict[str, float]:
    """x torch per number of candidates, from the p50 latencies."""
    t, b = rows["torch"]["latency_ms"], rows[backend]["latency_ms"]
    return {n: t[n]["p50"] / b[n]["p50"] for n in b if n in t}


def render_rerank(r: Results) -> str:
    doc = r[0]
    res, s = doc["results"], doc["settings"]
    rows, chosen = res["rows"], res["chosen_backend"]
    depths = list(next(iter(rows.values()))["latency_ms"])

    def row(name: str, b: Mapping[str, Any]) -> list[str]:
        # x torch from the p50s shown (not the stored, unrounded ratio), so the table and the lines below agree
        at_25 = times(_depth_speedups(rows, name)["25"]) if "torch" in rows else "–"
        cells = [name, *(num(b["latency_ms"][n]["p50"]) for n in depths), at_25]
        if name == chosen:
            cells = [f"**{c}**" for c in cells]
        return [*cells, f"{b['ndcg@10']:.3f}", pct(b["quality_kept"])]

    header = ["backend", *(f"{n} candidates (ms)" for n in depths), "× torch @25", "nDCG@10 (depth 30)", "kept"]
    curve = rows[chosen]["ndcg@10_by_depth"]
    lines = [
        f"{measured(doc)}; first stage {s['first_stage']}, fusion weight "
        f"{s['fusion_weight']}; p50 of {res['timing_queries']} timed queries; nDCG@10 over {res['queries']} queries "
        f"(the first stage alone: {res['first_stage_ndcg@10']:.3f}).",
        "",
        markdown_table(header, [row(name, b) for name, b in rows.items()]),
        "",
    ]
    if "torch" in rows:
        speedups = _depth_speedups(rows, chosen)
        lines.append(
            f"- **{chosen}** against torch: "
            + ", ".join(f"{n} candidates {times(v)}" for n, v in speedups.items())
            + "."
        )
    lines += [
        f"- nDCG@10 by rerank depth ({chosen}): " + ", ".join(f"{d} → {v:.3f}" for d, v in curve.items()) + ".",
        f"- Chosen: backend **{chosen}**, depth **{res['chosen_depth']}** (the smallest above top_k within 99% of "
        "the best).",
    ]
    return "\n".join(lines)


def render_scale(r: Results) -> str:
    doc = r[0]
    res = doc["results"]
    disk = res["on_disk_sample"]
    rows = [
        [f"{x['points']:,}", ms(x["search_ms"]["p50"]), ms(x["search_ms"]["p95"]), f"{x['memory_mb']:.0f} MB",
         f"{x['upsert_points_per_s']:,.0f} points/s"]
        for x in res["rows"]
    ]  # fmt: skip
    queries = res["rows"][0]["search_ms"]["n"]
    return "\n".join(
        [
            f"{measured(doc)}; qdrant-client local mode, {doc['settings']['dim']}-d "
            f"unit vectors, p50 of {queries} queries.",
            "",
            markdown_table(["points", "search p50", "p95", "memory (RSS growth)", "upsert (memory mode)"], rows),
            "",
            f"- Fitted: search p50 {num(res['search_p50_ms_fit']['per_100k_points'] / 100)} ms per 1,000 points, "
            f"memory {res['memory_mb_fit']['per_100k_points']:.0f} MB per 100k points.",
            f"- On disk ({disk['points']:,} points): {disk['upsert_points_per_s']:,.0f} points/s, "
            f"{disk['disk_kb_per_point']} KB per point; reopening costs {ms(disk['reopen_ms_per_1k_points'])} per "
            "1,000 points.",
            f"- Local mode's search p50 reaches {ms(res['search_budget_ms'])} at about "
            f"{res['points_at_search_budget']:,} points.",
        ]
    )


ENGINES = {"edge": "qdrant-edge", "local": "local mode"}


def render_embedded(r: Results) -> str:
    doc = r[0]
    rows = doc["results"]
    table = [
        [f"{x['points']:,}", ENGINES.get(x["engine"], x["engine"]), f"{num(x['upsert_s'])} s", ms(x["p50_ms"]),
         ms(x["filtered_p50_ms"])]
        for x in rows
    ]  # fmt: skip
    lines = [
        f"Measured {day(doc['date'])} ({machine(doc)}): exact search in both, p50 of {doc['queries']} top-10 "
        f"queries; filtered: {doc['filter']}.",
        "",
        markdown_table(["points", "engine", "upsert", "top-10 p50", "filtered top-10 p50"], table),
        "",
    ]
    for size in sorted({x["points"] for x in rows}):
        by = {x["engine"]: x for x in rows if x["points"] == size}
        if {"edge", "local"} <= by.keys():
            edge, local = by["edge"], by["local"]
            lines.append(
                f"- {size:,} points: Edge is {local['p50_ms'] / edge['p50_ms']:.0f}× faster unfiltered, "
                f"{local['filtered_p50_ms'] / edge['filtered_p50_ms']:.0f}× filtered, "
                f"{local['upsert_s'] / edge['upsert_s']:.0f}× faster to upsert."
            )
    at = {x["engine"]: x for x in rows if x["points"] == GOAL_EDGE_POINTS}
    if {"edge", "local"} <= at.keys():
        speedup = min(at["local"][k] / at["edge"][k] for k in ("p50_ms", "filtered_p50_ms"))
        lines.append(
            f"- Goal (Edge ≥ {GOAL_EDGE_SPEEDUP:g}× faster than local mode at {GOAL_EDGE_POINTS:,} points, filtered "
            f"and unfiltered): {verdict(speedup >= GOAL_EDGE_SPEEDUP)}."
        )
    return "\n".join(lines)


VARIANTS = {"exact": "exact (as ingested)", "hnsw": "HNSW", "hnsw+int8": "HNSW + int8"}


def render_hnsw(r: Results) -> str:
    """One table over every run the block reads (each run a result file: its line says when, on what data, with
    which graph); the graph column shows HNSW links per node / build breadth (16 / 100 unless the run said)."""

    def opt(value: float | None, fmt: Callable[[float], str]) -> str:
        return "–" if value is None else fmt(value)

    lines, table, said = [], [], ""
    for i in range(len(r)):
        doc = r[i]
        rows = doc["results"]
        data = doc.get("data", "random unit 384-d vectors")
        what = "the same data" if data == said else f"data: {data}; recall: {doc['recall']}; filtered: {doc['filter']}"
        said = data
        lines.append(
            f"{'Run ' + str(i + 1) + ', ' if len(r) > 1 else ''}measured {day(doc['date'])} ({machine(doc)}"
            f"{', ' + r.link(i) if len(r) > 1 else ''}): {rows[0]['points']:,} points, {doc['queries']} queries; "
            f"{what}."
        )
        table += [
            [*([str(i + 1)] if len(r) > 1 else []), VARIANTS.get(x["variant"], x["variant"]),
             "–" if x["variant"] == "exact" else f"{x.get('hnsw_m') or 16} / {x.get('ef_construct') or 100}",
             opt(x["hnsw_ef"], str), f"{x['recall_at_10']:.3f}", ms(x["p50_ms"]), ms(x["p95_ms"]),
             ms(x["filtered_p50_ms"]), opt(x["index_build_s"], lambda v: f"{num(v)} s"), f"{x['disk_mb']} MB",
             f"{x['rss_store_mb']} MB"]
            for x in rows
        ]  # fmt: skip
    header = ["variant", "graph m / build ef", "ef", "recall@10", "top-10 p50", "p95", "filtered p50", "build",
              "disk", "RSS of the store"]  # fmt: skip
    header = ["run", *header] if len(r) > 1 else header
    return "\n".join(["\n\n".join(lines), "", markdown_table(header, table)])


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def render_hnsw_goal(r: Results) -> str:
    """The index table and the issue's goal at this size: the fastest graph variant with recall@10 at the goal."""
    every = [x for i in range(len(r)) for x in r[i]["results"]]
    rows = [x for x in every if x["variant"] != "exact"]
    good = [x for x in rows if x["recall_at_10"] >= GOAL_INDEX_RECALL]
    best = min(good, key=lambda x: x["p50_ms"], default=None)
    exact = next((x for x in every if x["variant"] == "exact"), None)
    if best is None:
        near = max((x for x in rows if x["p50_ms"] <= GOAL_INDEX_P50_MS), key=lambda x: x["recall_at_10"], default=None)
        closest = (
            f" Closest within {GOAL_INDEX_P50_MS:g} ms: {VARIANTS[near['variant']]} (graph {near.get('hnsw_m') or 16}"
            f" / {near.get('ef_construct') or 100}) at ef {near['hnsw_ef']}, recall@10 {near['recall_at_10']:.3f} at "
            f"{ms(near['p50_ms'])} p50."
            if near
            else ""
        )
        line = f"No graph variant reached recall@10 {GOAL_INDEX_RECALL}: goal {verdict(False)}.{closest}"
    else:
        line = (
            f"Goal (top-10 p50 ≤ {GOAL_INDEX_P50_MS:g} ms at recall@10 ≥ {GOAL_INDEX_RECALL}): "
            f"{VARIANTS[best['variant']]} (graph {best.get('hnsw_m') or 16} / {best.get('ef_construct') or 100}) at "
            f"ef {best['hnsw_ef']}, {ms(best['p50_ms'])} p50 at recall@10 "
            f"{best['recall_at_10']:.3f}, {best['rss_store_mb']} MB of store RSS: "
            f"{verdict(best['p50_ms'] <= GOAL_INDEX_P50_MS)}"
            + (f" (exact search: {ms(exact['p50_ms'])})." if exact else ".")
        )
    return render_hnsw(r) + "\n\n" + line


def render_goals(r: Results) -> str:
    ingest, rerank, query = r[0]["results"], r[1]["results"], r[2]["results"]
    embed = ingest["chosen"]
    e = ingest["backends"][embed]
    cross = rerank["chosen_backend"]
    c = rerank["rows"][cross]
    speedups = _depth_speedups(rerank["rows"], cross)
    meeting = [n for n, v in speedups.items() if v >= GOAL_SPEEDUP]
    keeps = c["quality_kept"] >= GOAL_KEEP
    search_p50 = query["search_1_clients"]["latency_ms"]["p50"]
    overhead = query["ttft_overhead"]
    n_ttft = query["chat_1_client"]["ttft_ms"]["n"]
    same_prompt = query.get("bare_llm_prompt_tokens_p50") is not None  # the bare LLM read the stack's own prompt

    if keeps and len(meeting) == len(speedups):
        cross_verdict = verdict(True)
    elif keeps and meeting:
        cross_verdict = f"at {', '.join(meeting)} candidates only"
    else:
        cross_verdict = verdict(False)
    rows = [
        [f"bi-encoder default ≥ {GOAL_SPEEDUP:g}× torch at ≥ {GOAL_KEEP:.0%} of its nDCG@10 (ingest end to end)",
         f"{embed}: {times(e['speedup'])} at {pct(e['quality_kept'])}",
         verdict(e["speedup"] >= GOAL_SPEEDUP and e["quality_kept"] >= GOAL_KEEP)],
        [f"cross-encoder default ≥ {GOAL_SPEEDUP:g}× torch at ≥ {GOAL_KEEP:.0%} of its nDCG@10",
         f"{cross}: " + " / ".join(times(v) for v in speedups.values())
         + f" at {' / '.join(speedups)} candidates, {pct(c['quality_kept'])}", cross_verdict],
        [f"`/search` p50 under {ms(GOAL_SEARCH_P50_MS)}, 1 client", ms(search_p50),
         verdict(search_p50 < GOAL_SEARCH_P50_MS)],
        [f"stack overhead on time to first token under {GOAL_TTFT_OVERHEAD:.0%} (against the bare LLM, same prompt)",
         f"{overhead:+.1%} ({n_ttft} requests each)" + ("" if same_prompt else ", against the whole-chunk prompt"),
         verdict(overhead < GOAL_TTFT_OVERHEAD) if same_prompt
         else "not measured on the same prompt in this run (see the query stage)"],
    ]  # fmt: skip
    return markdown_table(["goal", "measured", "verdict"], rows)


# --- the evaluation pages (eval/reports, models/answerability) ----------------------------------------------

EVAL_LATEST = Source("eval/reports/latest/report.json", "make eval")
EVAL_HISTORY = Source("eval/reports/history.jsonl", "make eval")
GATE_ON = Source("eval/reports/test-2026-12-03/gate-on/report.json", 'make eval EVAL_ARGS="--rag-sample 0"')
DEFAULTS_RUN = Source(
    "eval/reports/test-2026-12-03/defaults/report.json",
    'make eval EVAL_ARGS="--rag-sample 0 --local-data-dir .data/eval-header"',
)
GATE_OFF = Source(
    "eval/reports/test-2026-12-03/gate-off/report.json", 'make eval EVAL_ARGS="--rag-sample 0 --gate-off --sample 20"'
)
OOD_DIR = "eval/reports/ood-2026-12-07"
OOD_COMMAND = "make eval-ood"
OOD_SHIPPED = Source(
    f"{OOD_DIR}/shipped/report.json",
    f"RAG_GATE_OUTSIDE_DOMAIN=decline RAG_VERIFY_STRICT_CLAIMS=false RAG_ADAPTED_MODELS=false {OOD_COMMAND}",
)
OOD_DEFAULTS = Source(f"{OOD_DIR}/defaults/report.json", f"RAG_ADAPTED_MODELS=false {OOD_COMMAND}")
OOD_ADAPTED = Source(
    f"{OOD_DIR}/adapted/report.json",
    f"make generate adapt DATA_DIR=.data/eval-ood && RAG_ADAPTED_MODELS=true {OOD_COMMAND}",
)
OOD_PROMPT_V2 = Source(f"{OOD_DIR}/prompt-v2/report.json", f"RAG_ADAPTED_MODELS=false {OOD_COMMAND}")
GOAL_OOD_ANSWER_RATE, GOAL_OOD_ABSTENTION, GOAL_OOD_FIRST_CITATION = 0.85, 0.80, 0.80  # issue 27
VERIFIER_LABELS = Source(
    f"{OOD_DIR}/verifier.json",
    f"python -m eval.verifier_precision --labels eval/ood/sentence-labels.jsonl --out {OOD_DIR}/verifier.json",
)
GOAL_VERIFIER_PRECISION = 0.95
GENERATE = Source("bench/results/generate.json", "python -m bench.generate_bench")
GOAL_GENERATE_KEPT, GOAL_GENERATE_MIN = 300, 60.0  # issue 27: verified questions on 100 documents, minutes
JUDGED = Source(
    "eval/reports/judged-2026-12-03/report.json",
    'RAG_EVAL_JUDGE_BASE_URL=local make eval EVAL_ARGS="--sample 5 --rag-sample 6"',
)
ANSWERABILITY = Source("models/answerability/report.json", "make answerability")
RETRIEVAL = Source(
    "eval/reports/retrieval.json", 'make eval-retrieval EVAL_ARGS="--limit 120 --dev-limit 80 --depth 20"'
)

CHUNKING = Source("bench/results/chunking.json", "python -m bench.chunking")
QWEN15_SAMPLE = Source(
    "eval/reports/test-2026-12-03/qwen-1.5b/report.json",
    "RAG_LLM_GGUF=qwen2.5-coder-1.5b RAG_LLM_MODEL=qwen2.5-coder-1.5b make eval "
    'EVAL_ARGS="--rag-sample 0 --local-data-dir .data/eval-header"',
)
LLM_PROBE = Source(
    "models/answerability/llm-probe-qwen2.5-coder-1.5b.json",
    "python -m train.answerability_probe --llm-url http://127.0.0.1:8092/v1 --model qwen2.5-coder-1.5b",
)
LLM_MODELS = Source(
    "bench/results/llm_models.json",
    "python -m bench.query_bench --compare-models qwen2.5-coder-0.5b qwen2.5-coder-1.5b "
    "--out bench/results/llm_models.json",
)

GOAL_ABSTENTION = 0.80
GOAL_ANSWER_RATE = 0.90
METRIC_NAMES = {
    "ndcg@10": "nDCG@10",
    "mrr@10": "MRR@10",
    "abstention_accuracy": "abstention accuracy (cases to decline)",
    "first_citation_correct": "first citation names a relevant document (answered cases)",
    "answer_rate": "answer rate (cases to answer)",
    "sentence_supported": "answered sentences the verifier found supported",
    "citation_coverage": "answered sentences carrying a citation",
    "citation_precision": "citations whose sentence is supported",
    "non_llm_context_precision": "context precision (no LLM)",
    "non_llm_context_recall": "context recall (no LLM)",
    "string_similarity": "string similarity",
    "rouge_l": "ROUGE-L",
    "bleu": "BLEU",
    "faithfulness": "faithfulness (judged)",
    "answer_relevancy": "answer relevancy (judged)",
    "context_precision": "context precision (judged)",
    "context_recall": "context recall (judged)",
}


def _run_line(report: Mapping[str, Any]) -> str:
    ds, rag = report["dataset"], report["rag"]
    judge = report.get("judge")
    return (
        f"Run `{report['run_id']}` ({day(report['started_at'])}, {report.get('duration_s', 0) / 60:.0f} min, "
        f"{report.get('hardware', 'unknown machine')}): {ds['retrieval_queries']} retrieval queries and "
        f"{rag['cases']} RAG cases ({rag['answer_cases']} to answer, {rag['abstain_cases']} to decline) of "
        f"`{ds['key']}`; judge: {judge['model'] if judge else 'none (metrics without an LLM)'}."
    )


def _metric_table(report: Mapping[str, Any], metrics: Sequence[str]) -> str:
    rows = [[METRIC_NAMES.get(m, m), ci(report, m), n_of(report, m)] for m in metrics if m in report["metrics"]]
    return markdown_table(["metric", "value [95% CI]", "n"], rows)


def _latency(report: Mapping[str, Any], what: str, fmt: Callable[[float], str]) -> str:
    m = report["metrics"]
    return f"{fmt(m[f'{what}_latency_ms_p50'])} / {fmt(m[f'{what}_latency_ms_p95'])}"


def _declined(report: Mapping[str, Any]) -> str:
    counts = report["rag"].get("decline_reasons") or {}
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items()) or "none"


def render_eval_latest(r: Results) -> str:
    report = r[0]
    gate = report["gate"]
    retrieval = [m for m in report["retrieval"]["metrics"] if "latency" not in m]
    answers = [m for m in report["rag"]["metrics"] if "latency" not in m]
    return "\n".join(
        [
            _run_line(report),
            "",
            _metric_table(report, [*retrieval, *answers]),
            "",
            f"- Latency p50 / p95: `/search` {_latency(report, 'search', ms)}, "
            f"`/chat` {_latency(report, 'chat', secs)}.",
            f"- Declined: {_declined(report)}.",
            f"- Regression gate: {gate.get('reason') or ('failed' if gate['failed'] else 'passed')}.",
        ]
    )


HISTORY_METRICS = ("ndcg@10", "recall@10", "abstention_accuracy", "answer_rate", "string_similarity", "rouge_l")


def render_eval_history(r: Results) -> str:
    rows = []
    for run in r[0]:
        m = run["metrics"]
        cells = [f"{m[k]:.3f}" if isinstance(m.get(k), int | float) else "–" for k in HISTORY_METRICS]
        gate = "failed" if run.get("gate_failed") else "passed"
        rows.append([f"`{run['run_id']}`", f"`{run['dataset_key']}`", *cells, gate])
    header = ["run", "data set", *(METRIC_NAMES.get(k, k).split(" (")[0] for k in HISTORY_METRICS), "gate"]
    return markdown_table(header, rows)


def _goal_line(gate_on: Mapping[str, Any]) -> str:
    abstention, answer_rate = gate_on["metrics"]["abstention_accuracy"], gate_on["metrics"]["answer_rate"]
    reached = abstention >= GOAL_ABSTENTION and answer_rate >= GOAL_ANSWER_RATE
    return (
        f"Grounding goal, abstention ≥ {GOAL_ABSTENTION:.2f} while answering ≥ {GOAL_ANSWER_RATE:.2f} with the gate "
        f"on: **{'reached' if reached else 'not reached'}** ({abstention:.2f} / {answer_rate:.2f})."
    )


def _answer_cells(label: str, report: Mapping[str, Any], sentences: str) -> list[str]:
    """A run's grounding figures with their intervals: label and run id, abstention, answer rate, ``sentences``."""
    return [
        f"{label}: `{report['run_id']}`",
        f"{ci(report, 'abstention_accuracy')} (n={n_of(report, 'abstention_accuracy')})",
        f"{ci(report, 'answer_rate')} (n={n_of(report, 'answer_rate')})",
        f"{ci(report, sentences)} ({n_of(report, sentences)} answers)",
    ]


def render_gate(r: Results) -> str:
    on, off, now = r[0], r[1], r[2]

    def row(label: str, report: Mapping[str, Any]) -> list[str]:
        return [*_answer_cells(label, report, "sentence_supported"), _declined(report)]

    header = ["test split", "abstention accuracy", "answer rate", "answered sentences supported", "declined"]
    return "\n".join(
        [
            markdown_table(
                header,
                [
                    row("gate on, llama-cpp-python server, header off", on),
                    row("gate off (`--gate-off`), same settings", off),
                    row("gate on, today's defaults (llama-server, contextual header)", now),
                ],
            ),
            "",
            "The first two rows are one comparison (same server and index); the third is the same command on "
            f"today's defaults ({r.link(2)}; paired against the first in `compare-with-gate-on.md` beside it).",
            "",
            _goal_line(now),
        ]
    )


def render_ood(r: Results) -> str:
    """The out-of-domain set (eval/ood) under the shipped behaviour, today's defaults and the adapted models."""
    rows = []
    for label, report in zip(
        ("shipped models, gate trusted everywhere, verifier without the names-and-numbers rule", "today's defaults "
         "(gate declines only on its calibration domain; names-and-numbers rule)", "adapted to the corpus "
         "(make generate + make adapt on the Python docs, RAG_ADAPTED_MODELS=true; the hand-written set never used)",
         "today's defaults, shipped models, evidence once per sentence and a yes/no worked example in the prompt "
         "(chosen on the generated dev split)"),
        r.docs,
        strict=True,
    ):  # fmt: skip
        rows.append([*_answer_cells(label, report, "first_citation_correct"), _declined(report)])
    header = ["out-of-domain set", "abstention accuracy", "answer rate", "first citation names the right document",
              "declined"]  # fmt: skip
    last = r[len(r) - 1]["metrics"]
    met = (
        last["answer_rate"] >= GOAL_OOD_ANSWER_RATE
        and last["abstention_accuracy"] >= GOAL_OOD_ABSTENTION
        and last.get("first_citation_correct", 0.0) >= GOAL_OOD_FIRST_CITATION
    )
    return "\n".join(
        [
            markdown_table(header, rows),
            "",
            f"Goal (last row): answer rate ≥ {GOAL_OOD_ANSWER_RATE:.2f} with abstention ≥ {GOAL_OOD_ABSTENTION:.2f} "
            f"and the first citation right for ≥ {GOAL_OOD_FIRST_CITATION:.2f} of answered questions: "
            f"**{'met' if met else 'not met'}** ({last['answer_rate']:.2f} / {last['abstention_accuracy']:.2f} / "
            f"{last.get('first_citation_correct', float('nan')):.2f}).",
        ]
    )


def render_generate(r: Results) -> str:
    """eval.generate on a 100-document corpus (bench/generate_bench.py): kept, dropped and why, minutes."""
    doc = r[0]
    m, res = doc["results"]["manifest"], doc["results"]
    minutes = res["generate_s"] / 60
    dropped = m["dropped_by_reason"]
    n_dropped = sum(dropped.values())
    rows = [[style, str(n)] for style, n in sorted(m["kept_by"].items(), key=lambda x: -x[1])]
    drop_rows = [[reason, str(n)] for reason, n in sorted(dropped.items(), key=lambda x: -x[1])[:10]]
    met = m["kept"] >= GOAL_GENERATE_KEPT and minutes <= GOAL_GENERATE_MIN
    return "\n".join(
        [
            f"{measured(doc)}: {doc['settings']['corpus']} ({m['documents']} documents, {m['chunks_available']} "
            f"chunks), LLM {m['model']}, prompt {m['prompt_version']}, target {doc['settings']['target']}, budget "
            f"{num(doc['settings']['budget_min'])} min.",
            "",
            f"**{m['kept']} questions kept in {num(minutes)} min** ({m['stopped']}; LLM start included; ingest "
            f"{num(res['ingest_s'])} s before it), from {m['chunks_done']} chunks; {n_dropped} candidates dropped, "
            f"so {pct(m['kept'] / (m['kept'] + n_dropped))} of what the LLM wrote was kept. Split by document: "
            + ", ".join(f"{k} {v}" for k, v in m["kept_by_split"].items())
            + ".",
            "",
            markdown_table(["kept, by kind", "questions"], rows),
            "",
            markdown_table(["dropped, the ten most frequent reasons", "candidates"], drop_rows),
            "",
            f"Goal: ≥ {GOAL_GENERATE_KEPT} verified questions in ≤ {GOAL_GENERATE_MIN:g} min on 100 documents: "
            f"**{'met' if met else 'not met'}**."
            + (
                f" `make adapt` on them (cross-encoder fine-tuned, gate refitted): {num(res['adapt_s'] / 60)} min."
                if res.get("adapt_s")
                else ""
            ),
        ]
    )


def render_verifier(r: Results) -> str:
    """The verifier against sentences labelled by reading (eval/verifier_precision.py)."""
    doc = r[0]

    def cell(part: Mapping[str, Any]) -> str:
        return f"{fmt_interval(part['value'], *part['ci95'])} (n={part['n']})"

    rows = [
        [label, cell(doc[key]["precision"]), cell(doc[key]["recall"]), cell(doc[key]["unsupported_caught"])]
        for label, key in (("as configured (numbers, dates, names must be in the source)", "configured"),
                           ("without that rule", "strict_claims_off"))
    ]  # fmt: skip
    counts = doc["by_label"]
    precision = doc["configured"]["precision"]["value"]
    return "\n".join(
        [
            f"{doc['sentences']} answer sentences labelled by reading ({counts['supported']} supported, "
            f"{counts['unsupported']} unsupported, {counts['refusal']} refusals left out); verifier "
            f"`{doc['verifier']['scorer']}`, threshold {doc['verifier']['threshold']}, lexical weight "
            f"{doc['verifier']['lexical_weight']}; 95 % bootstrap intervals.",
            "",
            markdown_table(["verifier", "precision", "recall", "unsupported sentences caught"], rows),
            "",
            f"Goal, precision ≥ {GOAL_VERIFIER_PRECISION:.2f} against the labels: "
            f"**{'met' if precision >= GOAL_VERIFIER_PRECISION else 'not met'}** ({precision:.3f}).",
        ]
    )


def render_chunking(r: Results) -> str:
    from bench.chunking import gains_table, results_table

    doc = r[0]
    return "\n".join([f"{measured(doc)}.", "", results_table(doc["results"]), "", gains_table(doc["results"])])


def render_llm_quality(r: Results) -> str:
    small, large = r[0], r[1]

    def row(label: str, report: Mapping[str, Any]) -> list[str]:
        return [*_answer_cells(label, report, "citation_coverage"), secs(report["metrics"]["chat_latency_ms_p50"])]

    header = ["run (test split, gate on)", "abstention accuracy", "answer rate", "answered sentences cited",
              "chat p50"]  # fmt: skip
    return "\n".join(
        [
            f"Same index, gate and settings, {large['dataset']['rag_cases']} and {small['dataset']['rag_cases']} RAG "
            "cases (paired deltas: `compare-with-0.5b.md` beside the 1.5B report):",
            "",
            markdown_table(header, [row("Qwen2.5-Coder-0.5B (default)", small), row("Qwen2.5-Coder-1.5B", large)]),
        ]
    )


def render_llm_probe(r: Results) -> str:
    doc = r[0]

    def label(name: str) -> str:
        if name == "gate":
            return "the gate alone (default)"
        if name == "probe":
            return f"the LLM alone ({doc['model']})"
        weight = name.removeprefix("gate+").removesuffix("*probe")
        return f"gate logit + {weight} × LLM logit"

    rows = [
        [label(name), f"{d['roc_auc']:.3f}", pct(d["unanswerable_declined_at_answer_rate_0.9"]),
         pct(d["unanswerable_declined_at_answer_rate_0.93"])]
        for name, d in doc["scores"].items()
    ]  # fmt: skip
    header = ["score (dev)", "ROC-AUC", "unanswerable declined at answer rate 0.90", "at 0.93"]
    return "\n".join(
        [
            f"fitz-gov **{doc['split']}** ({doc['answerable']} answerable / {doc['unanswerable']} unanswerable), "
            f"gate `{doc['gate']}`; the LLM reads the top {doc['prompt']['chunks']} chunks "
            f"({doc['prompt']['chars_per_chunk']} characters each) and answers one token, yes or no. The shares "
            "are of the gate's decline band alone, before any LLM answer or verification:",
            "",
            markdown_table(header, rows),
        ]
    )


def render_llm_models(r: Results) -> str:
    doc = r[0]
    rows = []
    for model, side in doc["results"].items():
        decode = side["warm"]["decode_tokens_per_s"]
        rows.append(
            [f"`{model}`", secs(side["cold"]["ttft_ms"]["p50"]), secs(side["warm"]["ttft_ms"]["p50"]),
             secs(side["warm"]["ttft_ms"]["p95"]), num(decode["p50"]) if decode else "–",
             num(float(sum(side["warm"]["prompt_tokens"]) / len(side["warm"]["prompt_tokens"])))]
        )  # fmt: skip
    header = ["GGUF (Q4_K_M)", "TTFT p50, cold prefix", "TTFT p50, warm prefix", "warm p95", "decode tokens/s",
              "prompt tokens (mean)"]  # fmt: skip
    s = doc["settings"]
    return "\n".join(
        [
            f"{measured(doc)}: {s['server']}, {s['threads']} threads, {s['rounds']} interleaved rounds of one cold "
            f"and two warm requests per model, {s['prompt']}.",
            "",
            markdown_table(header, rows),
        ]
    )


def render_answerability(r: Results) -> str:
    doc = r[0]
    ret = doc["retrieval"]
    rows = [
        [split, f"{d['answerable']} / {d['unanswerable']}", f"{d['roc_auc']:.3f}", pct(d["answerable_not_declined"]),
         pct(d["unanswerable_declined"]), pct(d["unanswerable_to_verify"]), f"{d['brier']:.3f}"]
        for split, d in doc.items()
        if split in ("train", "dev", "test")
    ]  # fmt: skip
    header = ["split", "answerable / unanswerable", "ROC-AUC", "answerable kept out of the decline band",
              "unanswerable declined (no LLM call)", "unanswerable sent to verify", "Brier"]  # fmt: skip
    return "\n".join(
        [
            f"Scored over the retrieval the API runs: {ret['retrieval_mode']}, top_n {ret['top_n']}, reranker "
            f"{ret['reranker_model']} ({ret['reranker_backend']}, fusion weight {ret['rerank_fusion_weight']}).",
            "",
            markdown_table(header, rows),
        ]
    )


def render_judged(r: Results) -> str:
    report = r[0]
    judged = ["faithfulness", "answer_relevancy", "context_precision", "context_recall"]
    return "\n".join(
        [
            _run_line(report),
            "",
            _metric_table(report, judged),
            "",
            f"- Cases answered: {report['rag']['answered']}; the judged metrics score the "
            f"{report['rag']['answer_cases']} cases to answer; judge errors: {report['rag']['judge_errors']}.",
        ]
    )


def render_retrieval(r: Results) -> str:
    doc = r[0]
    results = doc["results"]
    rows = [
        [name, *(f"{x[m]:.3f}" for m in ("ndcg@10", "mrr@10", "recall@10", "recall@50")),
         f"{x['latency_ms_p50']:.0f}", f"{x['latency_ms_p95']:.0f}"]
        for name, x in results.items()
    ]  # fmt: skip
    tuning: dict[str, dict[str, float]] = {}
    for key, value in doc["fusion_tuning_dev_ndcg@10"].items():
        config, weight = key.rsplit("@", 1)
        tuning.setdefault(config, {})[weight] = value
    late = doc.get("late_interaction_bytes_per_chunk")
    lines = [
        f"Measured {day(doc['date'])} on {doc['hardware']}: {doc['queries']} {doc['split']}-split queries (seeded "
        f"sample), {doc['dev_queries_for_tuning']} dev queries to tune the fusion weight, rerank depth "
        f"{doc['rerank_depth']}, {doc['chunks']:,} chunks of {doc['corpus_docs']:,} documents; embedder "
        f"{doc['embedder']}, reranker {doc['reranker']}.",
        "",
        markdown_table(["configuration", "nDCG@10", "MRR@10", "recall@10", "recall@50", "p50 ms", "p95 ms"], rows),
        "",
    ]
    chosen = doc.get("fusion_weight_chosen", {})
    for config, curve in tuning.items():
        base = config.split("+")[0]
        lines.append(
            f"- Dev nDCG@10 of {config} by fusion weight: " + ", ".join(f"{w} → {v:.3f}" for w, v in curve.items())
            + (f"; chosen {chosen[base]}." if base in chosen else ".")
        )  # fmt: skip
    if late:
        lines.append(
            f"- Late-interaction storage: {late / 1024:.0f} KB per chunk (about {late / (384 * 2):.0f} tokens × 384 "
            "dimensions × 2 bytes), against 1.5 KB for the dense vector."
        )
    return "\n".join(lines)


# --- pages other than the two reports -----------------------------------------------------------------------


def render_scaling(r: Results) -> str:
    ingest, load, query, hnsw, scale = r[0], r[1], r[2], r[3], r[4]
    chosen = ingest["results"]["chosen"]
    backends = ingest["results"]["backends"]
    b = backends[chosen]
    torch = backends.get("torch")
    lres, s = load["results"], load["settings"]
    cap, bare = lres["search_capacity_8_clients"]["rerank"], lres["search_capacity_8_clients"]["no_rerank"]
    answered, sent = _chat_answered(query)
    c8 = query["results"]["chat_8_clients"]
    s8_rps = query["results"]["search_8_clients"]["throughput_rps"]
    exact = next(x for x in hnsw["results"] if x["variant"] == "exact")
    builds = {x["variant"]: x["index_build_s"] for x in hnsw["results"] if x["index_build_s"] is not None}
    disk = scale["results"]["on_disk_sample"]
    rows = [
        [f"ingest throughput of one worker process ({chosen} embedder; embedding is "
         f"{b['stage_share']['embed']:.0%} of the time)",
         f"{num(b['chunks_per_s'])} chunks/s" + (f" (torch: {num(torch['chunks_per_s'])})" if torch else ""),
         f"{r.link(0)} ({day(ingest['date'])}, {ingest['settings']['docs']} fitz-gov docs, {b['chunks']} chunks)"],
        [f"the same through the job queue ({s['files']} short fitz-gov docs; queue: {s['queue']}; store: {s['store']})",
         f"{lres['files_per_s']} files/s, drained in {lres['ingest_drained_s']} s",
         f"{r.link(1)} ({day(load['date'])})"],
        ["`/search` p95 while those files ingest, against idle",
         f"{ms(lres['search_during_ingest_ms']['p95'])} vs {ms(lres['search_idle_ms']['p95'])}: "
         f"**{lres['p95_ratio']}×** (p50 {lres['p50_ratio']}×; {lres['search_during_ingest_ms']['n']} samples)",
         "same run"],
        [f"search capacity of one API process, {cap['clients']} concurrent clients, with the cross-encoder",
         f"{num(cap['rps'])} req/s (p50 {ms(cap['latency_p50'])})",
         f"same run; the query bench's larger index: {num(s8_rps)} req/s ({r.link(2)})"],
        ['the same without the cross-encoder (`"rerank": false`)',
         f"{num(bare['rps'])} req/s (p50 {ms(bare['latency_p50'])})", "same run"],
        [f"chat: one {query['results'].get('llm_server', 'LLM server')} ({query['settings']['llm']}), "
         f"{sent} concurrent",
         f"time to first token p50 {secs(c8['ttft_ms']['p50'])}, {answered} of {sent} answered: "
         f"{c8['throughput_rps']} answers/s", f"{r.link(2)} ({day(query['date'])})"],
        ["small stores on disk (segment files are preallocated, so per-chunk figures are high)",
         f"{num(exact['disk_mb'] * 1000 / exact['points'])} KB per chunk at {exact['points']:,} (Edge), "
         f"{disk['disk_kb_per_point']} KB at {disk['points']:,} (qdrant-client local)", f"{r.link(3)}; {r.link(4)}"],
        [f"HNSW build on Edge, {exact['points']:,} points",
         " ".join(f"{VARIANTS.get(v, v)}: {num(t)} s;" for v, t in builds.items()).rstrip(";"), r.link(3)],
    ]  # fmt: skip
    return markdown_table(["what", "figure", "source"], rows)


def _size(text: str) -> str:
    """podman's ``708M`` / ``1.1G`` as ``708 MB`` / ``1.1 GB``."""
    m = re.fullmatch(r"([\d.]+)([KMG])B?", text.strip())
    return f"{m.group(1)} {m.group(2)}B" if m else text


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {int(seconds % 60)} s"


def render_compose(r: Results) -> str:
    doc = r[0]
    images, run = doc["images"], doc["run"]
    total = sum(int(x["build_s"]) for x in images)
    rows = [[x["service"], f"{x['build_s']} s", _size(x["size"])] for x in images]
    rows.append([f"all {len(images)}", f"{total:,} s ({_minutes(total)})", ""])
    return "\n".join(
        [
            f"{measured(doc)}; {doc['engine']}.",
            "",
            markdown_table(["image", "fresh build", "size"], rows),
            "",
            f"- The stack healthy {num(run['start_to_healthy_s'])} s after `up`; a first streamed cited answer in "
            f"{num(run['first_chat_s'])} s; healthy again {num(run['api_restart_to_healthy_s'])} s after an API "
            "restart.",
            f"- Note: {doc['note']}." if doc.get("note") else "",
        ]
    ).rstrip()


def render_headline(r: Results) -> str:
    on, off, gate, query, before, compose = r[0], r[1], r[2], r[3], r[4], r[5]
    ood_shipped, ood_now, verifier = r[6], r[7], r[8]
    q, b = query["results"], before["results"]
    was = day(before["date"])
    images = compose["images"]
    build = sum(int(x["build_s"]) for x in images)
    rows = [
        [f"retrieval nDCG@10 / recall@10 through `/search` ({n_of(on, 'ndcg@10')} queries)",
         f"{ci(on, 'ndcg@10')} / {on['metrics']['recall@10']:.3f}", f"`{GATE_ON.command}`; {r.link(0)}",
         "[evaluation.md](docs/evaluation.md)"],
        ["answerability gate ROC-AUC (decides before any LLM call; fitted on train, calibrated on dev)",
         f"{gate['test']['roc_auc']:.2f} (dev {gate['dev']['roc_auc']:.2f})", f"`{ANSWERABILITY.command}`; {r.link(2)}",
         "[grounding.md](docs/grounding.md)"],
        [f"abstention accuracy, gate on / off ({n_of(on, 'abstention_accuracy')} unanswerable)",
         f"**{ci(on, 'abstention_accuracy')}** / {ci(off, 'abstention_accuracy')}",
         f"`{GATE_ON.command}` (`--gate-off`); {r.link(0)}, {r.link(1)}", "[grounding.md](docs/grounding.md)"],
        [f"answer rate, gate on / off ({n_of(on, 'answer_rate')} answerable)",
         f"**{ci(on, 'answer_rate')}** / {ci(off, 'answer_rate')}", "same runs",
         "[eval/reports/test-2026-12-03](eval/reports/test-2026-12-03)"],
        [f"out-of-domain set (Python docs, {n_of(ood_now, 'answer_rate')} answerable / "
         f"{n_of(ood_now, 'abstention_accuracy')} unanswerable): answer rate / abstention, first shipped → today",
         f"{ci(ood_shipped, 'answer_rate')} / {ci(ood_shipped, 'abstention_accuracy')} → "
         f"{ci(ood_now, 'answer_rate')} / {ci(ood_now, 'abstention_accuracy')}",
         f"`{OOD_PROMPT_V2.command}`; {r.link(6)}, {r.link(7)}",
         "[grounding.md](docs/grounding.md#7-learning-from-the-deployments-own-documents)"],
        [f"verifier precision against {verifier['configured']['precision']['n']} sentences it kept, labelled by "
         "reading (not by the verifier)",
         f"{fmt_interval(verifier['configured']['precision']['value'], *verifier['configured']['precision']['ci95'])}"
         f" (recall {verifier['configured']['recall']['value']:.2f})",
         f"`{VERIFIER_LABELS.command.split(' --out')[0]}`; {r.link(8)}",
         "[grounding.md](docs/grounding.md#the-verifiers-precision-against-labels-read-by-someone-else)"],
        ["answered sentences carrying a verified citation",
         f"{ci(on, 'sentence_supported')} ({n_of(on, 'sentence_supported')} answers)", "same run",
         "[grounding.md](docs/grounding.md)"],
        ["`/chat` time to first token p50, 1 client / 8 clients",
         f"{secs(q['chat_1_client']['ttft_ms']['p50'])} / {secs(q['chat_8_clients']['ttft_ms']['p50'])} "
         f"({was}: {secs(b['chat_1_client']['ttft_ms']['p50'])} / {secs(b['chat_8_clients']['ttft_ms']['p50'])})",
         f"`{QUERY.command}`; {r.link(3)}", "[benchmarks.md](docs/benchmarks.md)"],
        ["`/search` p50, 1 client (embed + hybrid + rerank)",
         f"{ms(q['search_1_clients']['latency_ms']['p50'])} ({was}: {ms(b['search_1_clients']['latency_ms']['p50'])})",
         "same run", "[benchmarks.md](docs/benchmarks.md)"],
        [f"compose stack: {len(images)} images built air-gapped, started, tested, removed ({compose['engine']}, no "
         "internet)",
         f"builds {_minutes(build)} in all; healthy {num(compose['run']['start_to_healthy_s'])} s after `up`",
         f"`{COMPOSE.command}`; {r.link(5)}", "[deployment.md](docs/deployment.md#what-was-run-here)"],
    ]  # fmt: skip
    return "\n".join(
        [
            f"Eval runs of {day(on['started_at'])} on {on.get('hardware', 'unknown machine')}; query bench of "
            f"{day(query['date'])} ({query['settings']['llm']}); 95 % bootstrap intervals in brackets.",
            "",
            markdown_table(["figure", "value", "reproduce", "detail"], rows),
            "",
            _goal_line(on),
        ]
    )


# --- the registry ---------------------------------------------------------------------------------------------

BLOCKS: dict[str, Block] = {
    b.name: b
    for b in (
        Block("bench-query", (QUERY, QUERY_BEFORE), render_query),
        Block("bench-ingest", (INGEST,), render_ingest),
        Block("bench-rerank", (RERANK,), render_rerank),
        Block("bench-scale", (SCALE,), render_scale),
        Block("bench-embedded-store", (EMBEDDED,), render_embedded),
        Block("bench-hnsw", (HNSW,), render_hnsw),
        Block("bench-hnsw-1m", HNSW_1M, render_hnsw_goal),
        Block("bench-goals", (INGEST, RERANK, QUERY), render_goals),
        Block("eval-latest", (EVAL_LATEST,), render_eval_latest),
        Block("eval-history", (EVAL_HISTORY,), render_eval_history),
        Block("eval-gate", (GATE_ON, GATE_OFF, DEFAULTS_RUN), render_gate),
        Block("eval-answerability", (ANSWERABILITY,), render_answerability),
        Block("eval-ood", (OOD_SHIPPED, OOD_DEFAULTS, OOD_ADAPTED, OOD_PROMPT_V2), render_ood),
        Block("verifier-precision", (VERIFIER_LABELS,), render_verifier),
        Block("llm-probe", (LLM_PROBE,), render_llm_probe),
        Block("bench-chunking", (CHUNKING,), render_chunking),
        Block("llm-models", (LLM_MODELS,), render_llm_models),
        Block("llm-quality", (DEFAULTS_RUN, QWEN15_SAMPLE), render_llm_quality),
        Block("eval-judged", (JUDGED,), render_judged),
        Block("eval-generate", (GENERATE,), render_generate),
        Block("eval-retrieval", (RETRIEVAL,), render_retrieval),
        Block("scaling-measured", (INGEST, INGEST_LOAD, QUERY, HNSW, SCALE), render_scaling),
        Block("compose", (COMPOSE,), render_compose),
        Block(
            "headline",
            (
                GATE_ON,
                GATE_OFF,
                ANSWERABILITY,
                QUERY,
                QUERY_BEFORE,
                COMPOSE,
                OOD_SHIPPED,
                OOD_PROMPT_V2,
                VERIFIER_LABELS,
            ),
            render_headline,
        ),
    )
}

PAGES: dict[str, tuple[str, ...]] = {
    "README.md": ("headline",),
    "docs/benchmarks.md": (
        "bench-query", "bench-ingest", "bench-rerank", "bench-scale", "bench-embedded-store", "bench-goals",
    ),
    "docs/embedded-store.md": ("bench-embedded-store", "bench-hnsw", "bench-hnsw-1m"),
    "docs/evaluation.md": (
        "eval-latest", "eval-history", "eval-answerability", "eval-gate", "eval-judged", "eval-generate",
    ),
    "docs/retrieval-quality.md": ("eval-retrieval",),
    "docs/scaling.md": ("scaling-measured",),
    "docs/deployment.md": ("compose",),
    "docs/grounding.md": ("eval-gate", "eval-ood", "verifier-precision", "llm-probe"),
    "docs/ingestion.md": ("bench-chunking",),
    "docs/llm-serving.md": ("llm-models", "llm-quality"),
}  # fmt: skip

MARKER = re.compile(r"<!-- generated:([a-z0-9-]+):(start|end) -->")


# --- rendering ------------------------------------------------------------------------------------------------


def load(root: Path, source: Source) -> Any:
    """A result file's JSON (a list of objects for ``.jsonl``); a missing file says which command writes it."""
    path = root / source.path
    if not path.is_file():
        raise PageError(f"{source.path} does not exist: run `{source.command}` to write it (then `make docs`)")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".jsonl":
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PageError(f"{source.path} is not valid JSON: {exc}") from exc


def render_block(block: Block, page: str, root: Path = ROOT) -> str:
    """The block's lines between its markers: the do-not-edit note, the figures, and where they came from."""
    docs = [load(root, s) for s in block.sources]
    links = [os.path.relpath(root / s.path, (root / page).parent) for s in block.sources]
    results = Results(docs, links)
    try:
        body = block.render(results)
    except (KeyError, IndexError, TypeError, ValueError, StopIteration) as exc:
        files = ", ".join(s.path for s in block.sources)
        raise PageError(
            f"{page}: block {block.name!r} cannot be rendered from {files}: {type(exc).__name__} {exc} "
            "(a field it needs is missing or of another type; was the file written by an older version?)"
        ) from exc
    commands = []
    for i, (source, doc) in enumerate(zip(block.sources, docs, strict=True)):
        # A result file that records its own command (ingest_load, compose) is believed over the table here.
        recorded = doc.get("command") if isinstance(doc, dict) else None
        commands.append(f"{results.link(i)} (`{recorded if isinstance(recorded, str) else source.command}`)")
    files = ", ".join(s.path for s in block.sources)
    # Blank lines around the body keep each Markdown block (comment, paragraph, table) apart on every renderer.
    return "\n".join(
        [
            f"<!-- generated by `make docs` from {files}; do not edit: re-run the command, then `make docs` -->",
            "",
            body,
            "",
            f"<sub>Generated from {'; '.join(commands)}.</sub>",
            "",
        ]
    )


def render_page(page: str, text: str, root: Path = ROOT) -> str:
    """``text`` with every generated block of ``page`` re-rendered; the narrative around them is kept as it is."""
    expected = PAGES.get(page, ())
    found = [m.group(1) for m in MARKER.finditer(text) if m.group(2) == "start"]
    unknown = [name for name in found if name not in expected]
    if unknown:
        raise PageError(f"{page}: generated block(s) {unknown} are not listed for this page in bench/pages.py PAGES")
    missing = [name for name in expected if name not in found]
    if missing:
        raise PageError(f"{page}: no <!-- generated:NAME:start --> / <!-- generated:NAME:end --> markers for {missing}")
    for name in expected:
        start, end = f"<!-- generated:{name}:start -->", f"<!-- generated:{name}:end -->"
        if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
            raise PageError(f"{page}: block {name!r} needs exactly one start marker followed by one end marker")
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{start}\n{render_block(BLOCKS[name], page, root)}\n{end}{tail}"
    return text


def stale_pages(root: Path = ROOT) -> dict[str, str]:
    """Each page whose committed text differs from what the generator writes, with the text it would write."""
    out = {}
    for page in PAGES:
        path = root / page
        if not path.is_file():
            raise PageError(f"{page} does not exist")
        text = path.read_text(encoding="utf-8")
        new = render_page(page, text, root)
        if new != text:
            out[page] = new
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pages", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when a page is out of date")
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository root (default: this checkout)")
    args = parser.parse_args(argv)
    try:
        stale = stale_pages(args.root)
    except PageError as exc:
        print(f"make docs: {exc}", file=sys.stderr)
        return 2
    if args.check:
        for page in stale:
            print(f"{page} differs from its result files: run `make docs`", file=sys.stderr)
        return 1 if stale else 0
    for page, text in stale.items():
        (args.root / page).write_text(text, encoding="utf-8")
        print(f"updated {page}")
    if not stale:
        print("docs up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
