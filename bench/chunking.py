"""Chunk size and contextual header, measured: ``python -m bench.chunking [--quick]`` (stage ``chunking`` of bench).

Two questions about ingestion, answered on two sets with the real pipeline (packaged MiniLM embedder, an
embedded store in a temporary folder, ``Retriever`` with the reranker the default settings build):

- **merging**: consecutive small sections merged up to the chunk size (the default) against one chunk per
  section, where a heading-only section is a chunk by itself (chunker version 1, ``Chunker.merge_sections``);
- **contextual header**: each chunk embedded under its "title — heading path" line
  (``RAG_EMBED_CONTEXT_HEADER``) against the bare text.

The sets:

1. A **structured long-document set** from ``bench.handbooks`` (seeded, so every run sees the same files):
   Markdown handbooks, guides, runbooks and manuals of 6-20 KB in five domains, many short H2/H3 sections, some
   only one sentence long, entity headings with nothing under them but subsections. Each H3 section under an entity
   plants a fact found nowhere else in the set; most say it without naming the entity ("It lasts 14 months."
   under "## Model KT-17 / ### Warranty"), so the question "How long is the Model KT-17 pump covered under
   warranty?" is answerable only through the heading path. Some answers are the whole of a one-sentence
   section ("tiny"). A retrieved chunk is relevant when it holds the fact's sentence (chunk level), a document
   when it is the fact's handbook (doc level).
2. **fitz-gov test queries**, a seeded sample, over the whole corpus (``--fitz-docs N``: every relevant document
   plus a random haystack up to N, ``bench.corpus.make_slice``), scored at the document level like
   ``make eval-retrieval``. Only the header is varied there: fitz-gov documents are single short sections, so
   merging changes nothing.

Every figure has a 95 % percentile-bootstrap interval over the questions, and each on/off comparison a paired
bootstrap interval of the per-question difference (``services.core.measure``). With the default
``RAG_RERANK_FUSION_WEIGHT=1`` the cross-encoder keeps the first-stage order, so one extra measurement
orders the hybrid candidates by the cross-encoder alone (fusion weight 0), reading each chunk as the
reranker does today (title above text) or under its full "title — heading path" line.

Usage::

    python -m bench.chunking                 # ~13 min on 2 shared cores; bench/results/chunking.{json,png}
    python -m bench.chunking --quick         # a small slice, a few minutes
    python -m bench.chunking --fitz-docs 2000 --fitz-queries 200
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.handbooks import Fact, generate_structured_set
from services.core.measure import (
    Interval,
    bootstrap_ci,
    fmt_interval,
    markdown_table,
    ndcg_at_k,
    paired_drop,
    recall_at_k,
)

if TYPE_CHECKING:
    from services.core.models.embedder import Embedder
    from services.core.models.reranker import CrossEncoderReranker, Reranker
    from services.core.retrieval import Retriever, SearchResult
    from services.core.settings import Settings
    from services.core.types import LoadedDocument, RetrievalMode, RetrievedChunk

K = 10
MODES: tuple[RetrievalMode, ...] = ("dense", "hybrid")
METRICS = ("ndcg@10", "recall@10")

# ================================================================================================================
# Scoring
# ================================================================================================================


def doc_of(source: str) -> str:
    return Path(source).stem


def fact_labels(chunks: Sequence[RetrievedChunk], fact: Fact) -> list[str]:
    """The ranking as labels: the fact's id for a chunk holding its sentence, the chunk's own id otherwise.

    The metrics count a label once, at its best rank, so a fact an overlap carries into two chunks is found once.
    """
    return [fact.id if fact.sentence in c.text else c.id for c in chunks]


def doc_labels(chunks: Sequence[RetrievedChunk]) -> list[str]:
    return [doc_of(c.source) for c in chunks]


def score(labels: Sequence[str], relevant: set[str] | frozenset[str], k: int = K) -> dict[str, float]:
    return {"ndcg@10": ndcg_at_k(labels, relevant, k), "recall@10": recall_at_k(labels, relevant, k)}


def interval(values: Mapping[str, float]) -> dict[str, float]:
    m, lo, hi = bootstrap_ci(values.values())
    return {"mean": _r(m), "low": _r(lo), "high": _r(hi), "n": len(values)}


def paired_gain(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """``after - before`` over the questions both hold, with its paired-bootstrap 95 % interval."""
    drop: Interval = paired_drop(before, after)
    return {"mean": _r(-drop.mean), "low": _r(-drop.high), "high": _r(-drop.low)}


def _r(value: float) -> float:
    return round(value, 4) + 0.0  # + 0.0: no "-0.0" in the report


# ================================================================================================================
# Chunk statistics
# ================================================================================================================


def heading_lines(doc: LoadedDocument) -> set[str]:
    """The heading lines of a loaded document: blocks whose text is the last step of their own heading path."""
    out = set()
    for b in doc.blocks:
        text = b.text.strip()
        if text and b.section and (b.section == text or b.section.endswith(f" > {text}")):
            out.add(text)
    return out


def chunk_stats(paths: Sequence[Path], split: Callable[[LoadedDocument], Sequence[Any]]) -> dict[str, Any]:
    """Chunks, mean tokens and heading-only chunks of ``paths`` as ``split`` (a configured chunker) cuts them."""
    from ingest.loaders import LoaderError, load_path

    tokens: list[int] = []
    heading_only = 0
    for path in paths:
        try:
            doc = load_path(path)
        except LoaderError:  # skipped by the ingest too (a fitz-gov document with no text)
            continue
        headings = heading_lines(doc)
        for chunk in split(doc):
            tokens.append(chunk.n_tokens)
            heading_only += all(line.strip() in headings for line in chunk.text.split("\n") if line.strip())
    return {
        "chunks": len(tokens),
        "mean_chunk_tokens": round(statistics.mean(tokens), 1) if tokens else 0.0,
        "median_chunk_tokens": statistics.median(tokens) if tokens else 0,
        "heading_only_chunks": heading_only,
    }


# ================================================================================================================
# One configuration: ingest, query, score
# ================================================================================================================


@dataclass
class _Run:
    """Per-question scores of one configuration: ``scores[mode][level][metric][question id]``."""

    name: str
    merge: bool
    header: bool
    stats: dict[str, Any]
    scores: dict[str, dict[str, dict[str, dict[str, float]]]] = field(default_factory=dict)
    rerank: dict[str, dict[str, float]] = field(default_factory=dict)  # passage shape -> question -> nDCG@10


def _settings(data_dir: Path, qdrant_path: Path, header: bool) -> Settings:
    from services.core.settings import Settings

    return Settings(_env_file=None, data_dir=data_dir, qdrant_path=str(qdrant_path), embed_context_header=header)


def _contextual_passage(chunk: RetrievedChunk) -> str:
    from ingest.pipeline import context_header

    header = context_header(chunk.title, chunk.section)
    return f"{header}\n{chunk.text}" if header else chunk.text


def _run_config(
    *,
    name: str,
    folder: Path,
    data_dir: Path,
    embedder: Embedder,
    reranker: Reranker,
    merge: bool,
    header: bool,
    queries: Sequence[tuple[str, str, Callable[[Sequence[RetrievedChunk]], dict[str, dict[str, float]]]]],
    rerank_passages: bool = False,
) -> _Run:
    """Ingest ``folder`` into a fresh temporary store under one configuration and score every query in both modes.

    ``queries`` holds (id, text, scorer) where the scorer maps the retrieved chunks to ``{level: {metric: value}}``.
    """
    from tqdm import tqdm

    from ingest.factory import build_pipeline
    from ingest.pipeline import iter_files
    from services.core.factory import build_store
    from services.core.retrieval import Retriever, SearchSpec

    tmp = Path(tempfile.mkdtemp(prefix="bench-chunking-"))
    settings = _settings(data_dir, tmp / "qdrant", header)
    store = build_store(settings)
    try:
        pipeline = build_pipeline(settings, embedder, store)
        pipeline.warm_up()
        pipeline.chunker.merge_sections = merge
        t0 = time.perf_counter()
        report = pipeline.ingest_paths([folder], progress=True)
        stats = chunk_stats(list(iter_files(folder)), pipeline.chunker.split)
        stats["ingest_s"] = round(time.perf_counter() - t0, 1)
        stats["stored_chunks"] = report.chunks
        run = _Run(name, merge, header, stats)
        retriever = Retriever(embedder, store, reranker)
        top_n = max(settings.top_n, K)
        t1 = time.perf_counter()
        for mode in MODES:
            per: dict[str, dict[str, dict[str, float]]] = {}
            for qid, text, scorer in tqdm(queries, desc=f"{name} · {mode}", unit="q", dynamic_ncols=True):
                res = retriever.search(text, SearchSpec(mode, top_n, K))
                for level, metrics in scorer(res.chunks).items():
                    for metric, value in metrics.items():
                        per.setdefault(level, {}).setdefault(metric, {})[qid] = value
                if rerank_passages and mode == "hybrid":
                    for shape, value in _cross_encoder_order(retriever, text, res, top_n, scorer).items():
                        run.rerank.setdefault(shape, {})[qid] = value
            run.scores[mode] = per
        stats["query_s"] = round(time.perf_counter() - t1, 1)
        return run
    finally:
        store.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _cross_encoder_order(
    retriever: Retriever,
    text: str,
    res: SearchResult,
    top_n: int,
    scorer: Callable[[Sequence[RetrievedChunk]], dict[str, dict[str, float]]],
) -> dict[str, float]:
    """Chunk nDCG@10 of the hybrid candidates ordered by the cross-encoder alone (fusion weight 0), reading each
    chunk as the reranker does (title above text) or under its "title — heading path" line.

    With the default fusion weight 1 the reranker has already scored every candidate in the title shape
    (``rerank_score``), so only the other shape costs a cross-encoder call.
    """
    from services.core.models.reranker import fused_order, passage_for
    from services.core.retrieval import SearchSpec

    ce: CrossEncoderReranker = retriever.reranker  # type: ignore[assignment]
    cands = list(res.chunks)
    if len(cands) == res.candidates and all(c.rerank_score is not None for c in cands):
        titled = [float(c.rerank_score or 0.0) for c in cands]
    else:
        cands = retriever.search(text, SearchSpec("hybrid", top_n, top_n, rerank=False)).chunks
        titled = [float(v) for v in ce.score(text, [passage_for(c) for c in cands])]
    out = {}
    for shape, scores in (
        ("title", titled),
        ("title + heading path", list(ce.score(text, [_contextual_passage(c) for c in cands]))),
    ):
        order = fused_order(scores, [c.retrieval_score for c in cands], 0.0)
        out[shape] = scorer([cands[i] for i in order])["chunk"]["ndcg@10"]
    return out


def _summaries(run: _Run, subsets: Mapping[str, set[str]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": run.name, "merge": run.merge, "header": run.header, **run.stats, "modes": {}}
    for mode, levels in run.scores.items():
        m: dict[str, Any] = {lvl: {k: interval(v) for k, v in metrics.items()} for lvl, metrics in levels.items()}
        if subsets and "chunk" in levels:
            m["chunk_subsets"] = {
                s: {k: interval({q: v[q] for q in ids if q in v}) for k, v in levels["chunk"].items()}
                for s, ids in subsets.items()
            }
        out["modes"][mode] = m
    if run.rerank:
        out["cross_encoder_order_ndcg@10"] = {shape: interval(v) for shape, v in run.rerank.items()}
    return out


def _gains(
    runs: Sequence[_Run], *, vary: str, levels: Sequence[str], subsets: Mapping[str, set[str]] | None = None
) -> list[dict[str, Any]]:
    """Paired gains of turning ``vary`` ("header" or "merge") on, every other setting held."""
    out = []
    other = "merge" if vary == "header" else "header"
    for off in (r for r in runs if not getattr(r, vary)):
        on = next((r for r in runs if getattr(r, vary) and getattr(r, other) == getattr(off, other)), None)
        if on is None:
            continue
        for mode in MODES:
            for level in levels:
                for metric in METRICS:
                    before, after = off.scores[mode][level][metric], on.scores[mode][level][metric]
                    row = {
                        other: getattr(off, other),
                        "mode": mode,
                        "level": level,
                        "metric": metric,
                        "off": _r(statistics.mean(before.values())),
                        "on": _r(statistics.mean(after.values())),
                        "gain": paired_gain(before, after),
                    }
                    if subsets and level == "chunk":
                        row["subsets"] = {
                            s: paired_gain({q: before[q] for q in ids}, {q: after[q] for q in ids})
                            for s, ids in subsets.items()
                        }
                    out.append(row)
    return out


# ================================================================================================================
# The two sets
# ================================================================================================================


def bench_structured(
    data_dir: Path, work: Path, embedder: Embedder, reranker: Reranker, *, n_docs: int, per_doc: int, seed: int
) -> dict[str, Any]:
    sset = generate_structured_set(n_docs, questions_per_doc=per_doc, seed=seed)
    folder = sset.write(work / "structured")
    queries = []
    for q in sset.questions:
        fact = sset.facts[q.fact]

        def scorer(chunks: Sequence[RetrievedChunk], fact: Fact = fact) -> dict[str, dict[str, float]]:
            return {"chunk": score(fact_labels(chunks, fact), {fact.id}), "doc": score(doc_labels(chunks), {fact.doc})}

        queries.append((q.id, q.text, scorer))
    asked = {q.id: sset.facts[q.fact] for q in sset.questions}
    subsets = {
        "needs_heading": {q for q, f in asked.items() if not f.named},
        "names_entity": {q for q, f in asked.items() if f.named},
        "tiny_section": {q for q, f in asked.items() if f.tiny},
    }
    runs = [
        _run_config(
            name=f"merge {'on' if merge else 'off'}, header {'on' if header else 'off'}",
            folder=folder,
            data_dir=data_dir,
            embedder=embedder,
            reranker=reranker,
            merge=merge,
            header=header,
            queries=queries,
            rerank_passages=_is_cross_encoder(reranker),
        )
        for merge in (True, False)
        for header in (False, True)
    ]
    return {
        "set": {**sset.describe(), "seed": seed, "generator": "bench.handbooks.generate_structured_set"},
        "subset_sizes": {s: len(ids) for s, ids in subsets.items()},
        "configs": [_summaries(r, subsets) for r in runs],
        "header_gain": _gains(runs, vary="header", levels=("chunk", "doc"), subsets=subsets),
        "merge_gain": _gains(runs, vary="merge", levels=("chunk", "doc"), subsets=subsets),
    }


def bench_fitz(
    data_dir: Path, work: Path, embedder: Embedder, reranker: Reranker, *, n_queries: int, n_docs: int, seed: int
) -> dict[str, Any]:
    from bench.corpus import make_slice
    from services.datasets.fitz_gov import load_corpus

    corpus_size = len({d.id for d in load_corpus()})  # the package lists 19 ids twice
    sl = make_slice(n_queries, n_docs or corpus_size, seed=seed)
    folder = sl.write(work / "fitz-gov")
    queries = []
    for q in sl.queries:

        def scorer(chunks: Sequence[RetrievedChunk], rel: frozenset[str] = q.relevant) -> dict[str, dict[str, float]]:
            return {"doc": score(doc_labels(chunks), rel)}

        queries.append((q.id, q.text, scorer))
    runs = [
        _run_config(
            name=f"fitz-gov, header {'on' if header else 'off'}",
            folder=folder,
            data_dir=data_dir,
            embedder=embedder,
            reranker=reranker,
            merge=True,
            header=header,
            queries=queries,
        )
        for header in (False, True)
    ]
    relevant = {d for q in sl.queries for d in q.relevant}
    return {
        "set": {
            "split": "test",
            "queries": len(sl.queries),
            "docs": len(sl.docs),
            "corpus_docs": corpus_size,
            "relevant_docs_kept": len(relevant & {d.id for d in sl.docs}),
            "haystack": "whole corpus"
            if len(sl.docs) >= corpus_size
            else "every relevant document + a seeded random sample",
            "seed": seed,
        },
        "configs": [_summaries(r) for r in runs],
        "header_gain": _gains(runs, vary="header", levels=("doc",)),
    }


def _is_cross_encoder(reranker: Reranker) -> bool:
    from services.core.models.reranker import CrossEncoderReranker

    return isinstance(reranker, CrossEncoderReranker)


# ================================================================================================================
# Report
# ================================================================================================================


def _ci(entry: Mapping[str, float]) -> str:
    return fmt_interval(entry["mean"], entry["low"], entry["high"])


def _gain(entry: Mapping[str, float]) -> str:
    return f"{entry['mean']:+.3f} [{entry['low']:+.3f}, {entry['high']:+.3f}]"


def results_table(results: Mapping[str, Any]) -> str:
    """The measurement as a Markdown table (what docs/ingestion.md shows)."""
    rows = []
    s = results.get("structured")
    if s:
        for c in s["configs"]:
            for mode in MODES:
                m = c["modes"][mode]
                rows.append([
                    "structured", c["name"], mode, c["chunks"], c["mean_chunk_tokens"], c["heading_only_chunks"],
                    _ci(m["chunk"]["ndcg@10"]), _ci(m["chunk"]["recall@10"]),
                    _ci(m["doc"]["ndcg@10"]), _ci(m["doc"]["recall@10"]),
                ])  # fmt: skip
    f = results.get("fitz_gov")
    if f:
        for c in f["configs"]:
            for mode in MODES:
                m = c["modes"][mode]
                rows.append([
                    "fitz-gov test", c["name"].removeprefix("fitz-gov, "), mode, c["chunks"], c["mean_chunk_tokens"],
                    c["heading_only_chunks"], "-", "-", _ci(m["doc"]["ndcg@10"]), _ci(m["doc"]["recall@10"]),
                ])  # fmt: skip
    header = ["set", "configuration", "mode", "chunks", "mean tokens", "heading-only", "chunk nDCG@10",
              "chunk recall@10", "doc nDCG@10", "doc recall@10"]  # fmt: skip
    return markdown_table(header, rows)


def gains_table(results: Mapping[str, Any]) -> str:
    """Paired gains of turning the header (and merging) on, with 95 % intervals, as a Markdown table.

    The structured set at the chunk level (its documents are found at the ceiling either way; the JSON has
    both), fitz-gov at the document level.
    """
    rows = []
    for set_name, key, level in (("structured", "structured", "chunk"), ("fitz-gov test", "fitz_gov", "doc")):
        block = results.get(key)
        if not block:
            continue
        for what in ("header_gain", "merge_gain"):
            for g in block.get(what, []):
                if g["level"] != level:
                    continue
                if key == "fitz_gov":
                    held = "-"
                elif what == "header_gain":
                    held = f"merge {'on' if g['merge'] else 'off'}"
                else:
                    held = f"header {'on' if g['header'] else 'off'}"
                rows.append([set_name, what.removesuffix("_gain"), held, g["mode"], f"{level} {g['metric']}",
                             f"{g['off']:.3f}", f"{g['on']:.3f}", _gain(g["gain"])])  # fmt: skip
    return markdown_table(["set", "turned on", "held", "mode", "metric", "off", "on", "gain (on - off) [95% CI]"], rows)


def chart(path: Path, results: Mapping[str, Any]) -> Path:
    """nDCG@10 per configuration and mode with 95 % intervals (structured: chunk level; fitz-gov: doc level)."""
    from bench import plots

    values: dict[str, tuple[float, float, float]] = {}
    for c in results.get("structured", {}).get("configs", []):
        for mode in MODES:
            e = c["modes"][mode]["chunk"]["ndcg@10"]
            values[f"structured · {c['name']} · {mode}"] = (e["mean"], e["low"], e["high"])
    for c in results.get("fitz_gov", {}).get("configs", []):
        for mode in MODES:
            e = c["modes"][mode]["doc"]["ndcg@10"]
            values[f"{c['name']} · {mode} (doc)"] = (e["mean"], e["low"], e["high"])
    return plots.bars_ci(
        path,
        values,
        title="nDCG@10 with 95% bootstrap CI: section merging and contextual header",
        xlabel="nDCG@10 (structured set: chunk holds the fact; fitz-gov: document)",
    )


# ================================================================================================================
# Entry points
# ================================================================================================================


@dataclass(frozen=True)
class Profile:
    docs: int = 30
    questions_per_doc: int = 6
    fitz_queries: int = 200
    fitz_docs: int = 0  # 0: the whole corpus; else every relevant document plus a random haystack up to this
    seed: int = 0
    fitz: bool = True


QUICK = Profile(docs=10, questions_per_doc=6, fitz_queries=60, fitz_docs=800)


def run(profile: Profile, *, data_dir: Path, out: Path, quick: bool) -> list[str]:
    """Measure, write ``chunking.json`` and ``chunking.png`` under ``out``, return the summary lines."""
    from bench.__main__ import envelope, write
    from services.core.factory import build_embedder, build_reranker

    started = time.perf_counter()
    base = _settings(data_dir, data_dir / "unused-qdrant", False)
    embedder = build_embedder(base)
    embedder.warm_up()
    reranker = build_reranker(base)
    reranker.warm_up()
    work = Path(tempfile.mkdtemp(prefix="bench-chunking-sets-"))
    try:
        results: dict[str, Any] = {
            "structured": bench_structured(
                data_dir,
                work,
                embedder,
                reranker,
                n_docs=profile.docs,
                per_doc=profile.questions_per_doc,
                seed=profile.seed,
            )  # fmt: skip
        }
        if profile.fitz:
            results["fitz_gov"] = bench_fitz(
                data_dir, work, embedder, reranker, n_queries=profile.fitz_queries, n_docs=profile.fitz_docs,
                seed=profile.seed,
            )  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    settings = {
        "embedder": getattr(embedder, "name", ""),
        "reranker": f"{base.reranker} {getattr(reranker, 'name', '')} ({base.reranker_backend})",
        "rerank_fusion_weight": base.rerank_fusion_weight,
        "chunk_size": base.chunk_size,
        "chunk_overlap": base.chunk_overlap,
        "top_n": max(base.top_n, K),
        "top_k": K,
        "store": f"embedded ({base.qdrant_embedded_engine}), fresh temporary folder per configuration",
        "profile": profile.__dict__,
    }
    write("chunking", envelope("chunking", quick, settings, results, started), out)
    chart(out / "chunking.png", results)
    return ["CHUNKING (merging and contextual header)", results_table(results), "", gains_table(results), ""]


def main(argv: list[str] | None = None) -> int:
    from bench.__main__ import RESULTS

    parser = argparse.ArgumentParser(prog="python -m bench.chunking", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 handbooks, 60 fitz-gov queries over 800 documents")
    parser.add_argument("--docs", type=int, default=None, help="handbooks in the structured set (default 30)")
    parser.add_argument("--questions-per-doc", type=int, default=None)
    parser.add_argument("--fitz-queries", type=int, default=None, help="fitz-gov test queries sampled (default 200)")
    parser.add_argument("--fitz-docs", type=int, default=None, help="fitz-gov documents indexed; 0 = all (default)")
    parser.add_argument("--no-fitz", action="store_true", help="the structured set only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=".data", help="where exported models are cached (as RAG_DATA_DIR)")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    p = QUICK if args.quick else Profile()
    profile = Profile(
        docs=args.docs if args.docs is not None else p.docs,
        questions_per_doc=args.questions_per_doc if args.questions_per_doc is not None else p.questions_per_doc,
        fitz_queries=args.fitz_queries if args.fitz_queries is not None else p.fitz_queries,
        fitz_docs=args.fitz_docs if args.fitz_docs is not None else p.fitz_docs,
        seed=args.seed,
        fitz=not args.no_fitz,
    )
    lines = run(profile, data_dir=Path(args.data_dir), out=Path(args.out), quick=args.quick)
    print("\n".join(lines))
    print(f"results in {args.out}/chunking.json and chunking.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
