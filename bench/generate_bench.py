"""``python -m bench.generate_bench``: how fast ``eval.generate`` writes verified questions on a 100-document corpus.

Issue 27's figure: ≥ 300 verified questions (answerable and unanswerable) in ≤ 60 minutes on this 2-core machine,
with the share kept and why the rest was dropped. The corpus is two kinds of prose, 100 documents:

- the 18 Python documentation pages of eval/ood/corpus (long reference pages: code, tables, version notes);
- 82 fitz-gov documents: the sample corpus ``make run`` loads (``ingest.sample.write_sample_corpus``), sorted by
  path, every fourth, the first 82 (short articles across its domains), copied outside a ``sample-corpus`` folder
  so the generator does not leave them out.

They are ingested into a fresh data dir (``--data-dir``, default .data/bench-generate), then
``python -m eval.generate --boot-llm --target 300 --budget-min 60`` runs with the configured LLM (the packaged
Qwen2.5-Coder-0.5B on llama-server by default), then ``python -m train.adapt`` (make adapt) on what it wrote. The
generator's manifest (kept by style, dropped by reason, chunks done) goes into ``bench/results/generate.json`` with
the machine and the wall times (generation including the LLM's start; adaptation).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.machine import machine_info, now_iso
from bench.schema import validate

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "bench" / "results" / "generate.json"


def build_corpus(data_dir: Path) -> Path:
    """The 100 documents under ``<data_dir>/docs`` (python/ and handbook/)."""
    from ingest.sample import write_sample_corpus

    docs = data_dir / "docs"
    shutil.rmtree(docs, ignore_errors=True)
    (docs / "python").mkdir(parents=True)
    (docs / "handbook").mkdir(parents=True)
    for page in sorted((REPO_ROOT / "eval" / "ood" / "corpus").glob("*.md")):
        shutil.copy(page, docs / "python" / page.name)
    sample = write_sample_corpus(data_dir / "fitz-gov-sample")
    for path in sorted(sample)[::4][:82]:
        shutil.copy(path, docs / "handbook" / path.name)
    return docs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.generate_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=REPO_ROOT / ".data" / "bench-generate")
    parser.add_argument("--target", type=int, default=300)
    parser.add_argument("--budget-min", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    machine = machine_info()
    shutil.rmtree(args.data_dir / "generated", ignore_errors=True)
    docs = build_corpus(args.data_dir)
    env = {**os.environ, "RAG_DATA_DIR": str(args.data_dir)}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ingest.cli", "sync", str(docs)], env=env, check=True)
    ingest_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    command = [sys.executable, "-m", "eval.generate", "--boot-llm", "--data-dir", str(args.data_dir),
               "--target", str(args.target), "--budget-min", str(args.budget_min)]  # fmt: skip
    subprocess.run(command, env=env, check=True)
    generate_s = time.perf_counter() - t0
    manifest = json.loads((args.data_dir / "generated" / "latest" / "manifest.json").read_text(encoding="utf-8"))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "train.adapt", "--data-dir", str(args.data_dir)], env=env, check=True)
    adapt_s = time.perf_counter() - t0
    return write(args.out, manifest, machine, ingest_s, generate_s, args, adapt_s=adapt_s)


def write(
    out: Path,
    manifest: dict,
    machine: dict,
    ingest_s: float,
    generate_s: float,
    args: argparse.Namespace,
    *,
    adapt_s: float | None = None,
) -> int:
    machine["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    doc = {
        "benchmark": "generate",
        "date": now_iso(),
        "quick": False,
        "machine": machine,
        "settings": {
            "corpus": "18 Python documentation pages (eval/ood/corpus) + 82 fitz-gov sample documents",
            "documents": manifest["documents"],
            "target": args.target,
            "budget_min": args.budget_min,
            "llm": manifest["model"],
            "prompt_version": manifest["prompt_version"],
        },
        "results": {
            "ingest_s": round(ingest_s, 1),
            "generate_s": round(generate_s, 1),
            "adapt_s": None if adapt_s is None else round(adapt_s, 1),
            "manifest": manifest,
        },
        "seconds": round(ingest_s + generate_s + (adapt_s or 0.0), 1),
    }
    if problems := validate(doc):
        raise ValueError(f"invalid result document: {problems}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    kept = manifest["kept"]
    print(f"{kept} questions kept in {generate_s / 60:.1f} min ({manifest['stopped']}); {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
