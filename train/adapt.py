"""``make adapt``: the cross-encoder and the answerability gate, adapted to the deployment's own documents.

Why: both were fitted on fitz-gov alone. On a user's lecture notes the cross-encoder was unsure of everything
and the gate, reading its low scores, declined questions the documents answer word for word. The recipe is the
field's unsupervised domain adaptation (GPL, InPars): questions generated from the corpus (``make generate``,
eval/generate.py) stand in for labels.

1. **Cross-encoder.** Fine-tuned from the configured one (``RAG_RERANKER_MODEL``) on the generated **train**
   split: positives are each question's source chunk; hard negatives are the bi-encoder/hybrid first stage's top
   chunks from *other* documents (documents the generator found to hold the answer too are not negatives), and a
   near miss's own chunk (same topic, no answer). fitz-gov train pairs (its tier1 contexts) are mixed in,
   ``--fitz-gov-mix`` per generated pair, so it does not forget what it knew.
2. **Gate.** Its features recomputed with the adapted cross-encoder through the real retrieval path; fitted,
   Platt-calibrated and given its bands on the generated **dev** split (``train/answerability.py``'s ``fit``): the
   train questions' scores come from a cross-encoder trained on them, so they would teach it overconfidence;
   its domain is the deployment's documents at adapt time (the fitz-gov sample left out), so it declines before
   generation there only.
3. **Before/after** on the generated **test** split (documents neither step saw), paired, with 95 % bootstrap
   intervals: the source document's reciprocal rank after reranking, and the gate's separation and decline rates,
   shipped (trusted everywhere, as it used to be) against adapted. The whole pipeline with the LLM is measured by
   ``make eval-ood`` and ``make eval``.

Writes ``<data dir>/adapted/`` (``reranker/``, ``gate.json``, ``report.json``, ``README.md``, ``manifest.json``)
into a new folder and swaps it in whole; the API serves it after a restart (``RAG_ADAPTED_MODELS``, on by
default; the packaged models stay the fallback). The verifier's thresholds are not re-tuned here: that needs
generated answers from the LLM on dev; its numbers-and-names rule holds on any corpus.

    make generate && make adapt          # with make run stopped: the embedded store has one owner
    python -m train.adapt --max-steps 300 --data-dir .data
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ingest.sample import SAMPLE_MARK
from services.core.grounding.answerability import GateModel, domain_key, features
from services.core.measure import bootstrap_ci
from services.core.models.model_registry import ADAPTED_DIR, RERANKERS, resolve
from services.core.models.reranker import titled_passage
from services.core.processes import interrupt_on_sigterm
from services.core.types import RetrievedChunk
from train.answerability import SPLITS, fit, roc_auc, split_report
from train.reranker import fit_cross_encoder, rag_case_pairs, seed_everything, to_fp16

logger = logging.getLogger("train.adapt")
Search = Callable[..., list[RetrievedChunk]]
Pair = tuple[str, str, float]
MIN_PER_CLASS = 5  # generated questions of each label a split needs before a gate can be fitted on it


def read_generated(path: Path) -> list[dict[str, Any]]:
    """The generated set's rows (eval/generate.py's questions.jsonl)."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not rows:
        raise ValueError(f"{path} holds no questions: run make generate first")
    return rows


def training_pairs(
    rows: Sequence[dict[str, Any]], search: Search, chunk_text: Callable[[str], str | None], *, hard_negatives: int
) -> list[Pair]:
    """(question, passage, label) from the generated train rows: source chunk 1; other documents' top chunks 0;
    a near miss's own chunk 0 (on topic, without the answer)."""
    pairs: list[Pair] = []
    for row in rows:
        question = row["question"]
        if row["expect"] == "answer":
            title = row["provenance"].get("title") or ""
            pairs.append((question, titled_passage(title, row["reference_contexts"][0]), 1.0))
            others = search(question, exclude=row["relevant_docs"])[:hard_negatives]
            pairs.extend((question, titled_passage(c.title, c.text), 0.0) for c in others)
        elif row["category"] == "near-miss":
            own = chunk_text(row["provenance"]["chunk_id"])
            if own is not None:
                pairs.append((question, titled_passage(row["provenance"].get("title") or "", own), 0.0))
            pairs.extend((question, titled_passage(c.title, c.text), 0.0) for c in search(question)[:hard_negatives])
    return pairs


def gate_rows(rows: Sequence[dict[str, Any]], search: Search) -> list[dict[str, Any]]:
    """The gate's training rows: each question's features as the API computes them (leave-one-out questions asked
    without their document), label 1 for answerable."""
    out = []
    for row in rows:
        chunks = search(row["question"], exclude=row.get("exclude_docs") or ())
        feats = features(row["question"], chunks)
        if feats is not None:
            out.append({"id": row["id"], "label": int(row["expect"] == "answer"), "features": feats})
    return out


def reciprocal_ranks(rows: Sequence[dict[str, Any]], search: Search) -> list[float]:
    """1/rank of the first relevant document among the reranked chunks (0 when absent), per answerable row."""
    out = []
    for row in rows:
        hits = search(row["question"])
        rank = next((i + 1 for i, c in enumerate(hits) if c.doc_id in row["relevant_docs"]), None)
        out.append(1.0 / rank if rank else 0.0)
    return out


def paired_bootstrap(a: Sequence[float], b: Sequence[float], *, seed: int = 0) -> dict[str, Any]:
    """Means of a and b and of b - a, with the paired difference's 95 % bootstrap interval."""
    if not a:
        return {"n": 0}
    diff = bootstrap_ci([y - x for x, y in zip(a, b, strict=True)], seed=seed)
    return {
        "n": len(a),
        "before": round(float(np.mean(a)), 4),
        "after": round(float(np.mean(b)), 4),
        "diff": round(diff.mean, 4),
        "ci95": [round(diff.low, 4), round(diff.high, 4)],
    }


def gate_outcomes(model: GateModel, rows: Sequence[dict[str, Any]]) -> dict[str, list[float]]:
    """Per row, 1.0 when the gate's band lets an answerable question through / declines an unanswerable one."""
    ans = [float(model.band(model.probability(r["features"])) != "decline") for r in rows if r["label"] == 1]
    dec = [float(model.band(model.probability(r["features"])) == "decline") for r in rows if r["label"] == 0]
    return {"answerable_not_declined": ans, "unanswerable_declined": dec}


def auc_interval(model: GateModel, rows: Sequence[dict[str, Any]], *, n: int = 1000, seed: int = 0) -> list[float]:
    p = np.array([model.probability(r["features"]) for r in rows])
    y = np.array([r["label"] for r in rows])
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n):
        i = rng.integers(0, len(y), len(y))
        if 0 < y[i].sum() < len(i):
            values.append(roc_auc(p[i], y[i]))
    if not values:
        return [float("nan"), float("nan")]
    low, high = np.percentile(values, [2.5, 97.5])
    return [round(float(low), 4), round(float(high), 4)]


def by_split(rows: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    return {s: [r for r in rows if r.get("split") == s] for s in SPLITS}


def check_enough(splits: dict[str, list[dict[str, Any]]], min_per_class: int = MIN_PER_CLASS) -> None:
    """The gate is fitted on dev (both labels needed); the cross-encoder learns from train's answerable questions."""
    dev = [r["expect"] for r in splits["dev"]]
    train = [r["expect"] for r in splits["train"]]
    if (
        dev.count("answer") < min_per_class
        or dev.count("abstain") < min_per_class
        or train.count("answer") < min_per_class
    ):
        raise ValueError(
            f"the generated set has {dev.count('answer')} answerable and {dev.count('abstain')} unanswerable dev "
            f"questions and {train.count('answer')} answerable train ones; adapting needs {min_per_class} of each: "
            "run make generate with a larger --target (or on more documents)"
        )


def write_card(out: Path, manifest: dict[str, Any], report: dict[str, Any]) -> None:
    ir, gate = report["test"]["reciprocal_rank"], report["test"]["gate"]

    def row(name: str, r: dict[str, Any]) -> str:
        if not r.get("n"):
            return f"| {name} | 0 | | | |"
        ci = f"[{r['ci95'][0]:+.3f}, {r['ci95'][1]:+.3f}]"
        return f"| {name} | {r['n']} | {r['before']:.3f} | {r['after']:.3f} | {r['diff']:+.3f} {ci} |"

    auc = gate["roc_auc"]
    (out / "README.md").write_text(
        f"""# Models adapted to this deployment: `{manifest["name"]}`

Generated by `make adapt` (`python -m train.adapt`) on {manifest["written_at"]}; do not edit by hand.

- **From**: the cross-encoder `{manifest["base_reranker"]}` and the shipped gate.
- **Data**: the generated question set `{manifest["generated"]["version"]}` ({manifest["generated"]["rows"]} questions,
  {manifest["generated"]["documents"]} documents, split by document), model `{manifest["generated"]["model"]}`.
- **Cross-encoder**: {manifest["training"]["pairs"]} pairs ({manifest["training"]["generated_pairs"]} from the generated
  train split, {manifest["training"]["fitz_gov_pairs"]} fitz-gov train pairs mixed in), {manifest["training"]["steps"]}
  steps, {manifest["training"]["seconds"]:.0f} s.
- **Gate**: fitted, calibrated and banded on the generated dev split; declines before generation only
  on this deployment's {len(manifest["domain_documents"])} documents (the fitz-gov sample left out).

Generated **test** split (documents neither step saw), paired, 95 % bootstrap intervals:

| measure | n | shipped | adapted | adapted - shipped |
|---|---|---|---|---|
{row("source document's reciprocal rank after reranking", ir)}
{row("answerable questions not declined by the gate", gate["answerable_not_declined"])}
{row("unanswerable questions declined by the gate", gate["unanswerable_declined"])}

Gate ROC-AUC on test: shipped {auc["shipped"]:.3f} {auc["shipped_ci95"]},
adapted {auc["adapted"]:.3f} {auc["adapted_ci95"]}.
The shipped gate is measured as it behaved before calibration domains (trusted everywhere); today it does not
decline at all on documents outside fitz-gov. The whole pipeline (gate, LLM, verifier) is measured by
`make eval-ood` (a hand-written set never used here) and `make eval` (fitz-gov test).
""",
        encoding="utf-8",
    )


def adapt(args: argparse.Namespace) -> Path:
    from sentence_transformers.cross_encoder import CrossEncoder

    from services.core.factory import open_retriever, searcher
    from services.core.models.model_registry import AdaptedModels
    from services.core.settings import Settings

    seed_everything(args.seed)
    settings = Settings(data_dir=Path(args.data_dir))
    generated = Path(args.generated) if args.generated else settings.data_dir / "generated" / "latest"
    rows = read_generated(generated / "questions.jsonl")
    manifest_path = generated / "manifest.json"
    gen_manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    splits = by_split(rows)
    check_enough(splits, args.min_per_class)
    shipped_gate = GateModel.load(Path(args.shipped_gate))
    documents = {r["provenance"]["doc_id"] for r in rows}
    root = settings.data_dir / ADAPTED_DIR
    for stale in settings.data_dir.glob(".adapted-*"):  # a staging folder a killed run left behind
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=".adapted-", dir=settings.data_dir))
    try:
        # before: the configured cross-encoder and the shipped gate; the training pairs come from the same path
        with open_retriever(settings, adapted=None) as (store, retriever):
            search = searcher(retriever, settings)
            texts = {d: {c.id: c.text for c in store.document_chunks(d)} for d in documents}
            # the gate's domain: the deployment's own documents at adapt time (what the generator drew from, the
            # fitz-gov sample a first make run loads left out), not only those a kept question came from
            records = store.list_documents()
            own = [r for r in records if SAMPLE_MARK not in r.source or r.doc_id in documents]
            hashes = frozenset(domain_key(r.content_hash) for r in own)
            test_answerable = [r for r in splits["test"] if r["expect"] == "answer"]
            rr_before = reciprocal_ranks(test_answerable, search)
            before_rows = gate_rows(splits["test"], search)
            chunk_text = lambda cid: next((t[cid] for t in texts.values() if cid in t), None)  # noqa: E731
            generated_pairs = training_pairs(splits["train"], search, chunk_text, hard_negatives=args.hard_negatives)
        rng = random.Random(args.seed)
        fitz = rag_case_pairs("train")
        fitz = rng.sample(fitz, min(len(fitz), int(len(generated_pairs) * args.fitz_gov_mix)))
        pairs = generated_pairs + fitz
        rng.shuffle(pairs)
        logger.info("fine-tuning on %d pairs (%d generated, %d fitz-gov)", len(pairs), len(generated_pairs), len(fitz))
        target, _ = resolve(settings.reranker_model, RERANKERS, "RAG_RERANKER_MODEL")
        model = CrossEncoder(target, num_labels=1, max_length=args.max_length, device="cpu", local_files_only=True)
        seconds = fit_cross_encoder(model, pairs, args, staging)
        model.save_pretrained(str(staging / "reranker"))
        to_fp16(staging / "reranker")
        digest = hashlib.sha256((staging / "reranker" / "model.safetensors").read_bytes()).hexdigest()[:8]
        name = f"adapted-{Path(settings.reranker_model).name}-{digest}"
        adapted = AdaptedModels(staging, name, settings.reranker_model)
        # after: the adapted cross-encoder, loaded from the staging folder exactly as the API will load it
        with open_retriever(settings, adapted=adapted) as (_, retriever):
            search = searcher(retriever, settings)
            data: dict[str, list[dict[str, Any]]] = {s: gate_rows(splits[s], search) for s in SPLITS}
            rr_after = reciprocal_ranks(test_answerable, search)
        domain = (
            f"this deployment's {len(hashes)} documents (generated set {gen_manifest.get('version', '?')})",
            hashes,
        )
        retrieval = {"retrieval_mode": settings.retrieval_mode, "top_n": settings.top_n, "top_k": settings.top_k}
        data["_meta"] = [{"reranker": name, "settings": retrieval}]
        fit_args = argparse.Namespace(l2=args.l2, answer_rate=args.answer_rate, leak_rate=args.leak_rate)
        # The cross-encoder was just fine-tuned on the train questions: their scores are memorised, so the gate is
        # fitted, calibrated and banded on dev, whose documents it never saw; train is only reported.
        gate, gate_report = fit({**data, "train": data["dev"]}, fit_args, domain)
        gate_report["train"] = split_report(gate, data["train"])
        gate_report["fitted_on"] = "dev (the train questions' scores come from a cross-encoder trained on them)"
        gate = GateModel(**{**gate.to_json(), "name": gate.name.replace("answerability-lr", "adapted-gate"),
                            "domain_documents": gate.domain_documents})  # type: ignore[arg-type]  # fmt: skip
        (staging / "gate.json").write_text(json.dumps(gate.to_json(), indent=2) + "\n")
        trusted = GateModel(**{**shipped_gate.to_json(), "domain_documents": frozenset()})  # type: ignore[arg-type]
        # paired by question: a row either model could not score (no cross-encoder score) is left out of both
        both = {r["id"] for r in before_rows} & {r["id"] for r in data["test"]}
        before_rows = [r for r in before_rows if r["id"] in both]
        by_id = {r["id"]: r for r in data["test"]}
        after_rows = [by_id[r["id"]] for r in before_rows]
        shipped_out, adapted_out = gate_outcomes(trusted, before_rows), gate_outcomes(gate, after_rows)
        report = {
            "gate": gate_report,
            "test": {
                "reciprocal_rank": paired_bootstrap(rr_before, rr_after, seed=args.seed),
                "gate": {
                    **{k: paired_bootstrap(shipped_out[k], adapted_out[k], seed=args.seed) for k in shipped_out},
                    "roc_auc": {
                        "shipped": round(roc_auc(*_scores(trusted, before_rows)), 4),
                        "shipped_ci95": auc_interval(trusted, before_rows),
                        "adapted": round(roc_auc(*_scores(gate, after_rows)), 4),
                        "adapted_ci95": auc_interval(gate, after_rows),
                    },
                },
            },
        }
        manifest = {
            "name": name,
            "base_reranker": settings.reranker_model,
            "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "generated": {
                "version": gen_manifest.get("version", generated.resolve().name),
                "model": gen_manifest.get("model", "?"),
                "rows": len(rows),
                "documents": len(documents),
            },
            "training": {
                "pairs": len(pairs),
                "generated_pairs": len(generated_pairs),
                "fitz_gov_pairs": len(fitz),
                "steps": args.max_steps or math.ceil(len(pairs) / args.batch_size * args.epochs),
                "seconds": round(seconds, 1),
                "params": {k: v for k, v in vars(args).items() if k not in ("data_dir", "generated", "shipped_gate")},
            },
            "gate": gate.name,
            "domain_documents": sorted(hashes),
        }
        (staging / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        write_card(staging, manifest, report)
        shutil.rmtree(staging / "ckpt", ignore_errors=True)
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")  # last: marks it complete
        _swap_in(staging, root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("adapted models in %s: %s", root, json.dumps(report["test"]))
    return root


def _scores(model: GateModel, rows: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([model.probability(r["features"]) for r in rows]), np.array([r["label"] for r in rows])


def _swap_in(staging: Path, root: Path) -> None:
    """Replace ``root`` with ``staging`` in two renames: the API finds the old folder or the new one, never half."""
    old = root.with_name(f".{root.name}-old")
    shutil.rmtree(old, ignore_errors=True)
    if root.exists():
        root.rename(old)
    staging.rename(root)
    shutil.rmtree(old, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=".data", help="the deployment's data dir (its store and generated set)")
    parser.add_argument("--generated", default=None, help="a generated set's folder (default: generated/latest)")
    parser.add_argument(
        "--shipped-gate", default=str(Path(__file__).resolve().parents[1] / "models/answerability/gate.json")
    )
    parser.add_argument(
        "--epochs", type=float, default=2.0, help="passes over the pairs (a few hundred questions: more overfits them)"
    )
    parser.add_argument("--max-steps", type=int, default=0, help="stop after N steps (0: --epochs full passes)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--freeze-layers", type=int, default=3)
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--hard-negatives", type=int, default=3)
    parser.add_argument("--fitz-gov-mix", type=float, default=1.0, help="fitz-gov train pairs per generated pair")
    parser.add_argument("--l2", type=float, default=1.0)
    parser.add_argument("--answer-rate", type=float, default=0.95, help="dev answerable questions kept out of decline")
    parser.add_argument("--leak-rate", type=float, default=0.1, help="dev unanswerable ones allowed to skip verify")
    parser.add_argument(
        "--min-per-class", type=int, default=MIN_PER_CLASS, help="questions of each label train/dev need"
    )
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    interrupt_on_sigterm()  # a stopped run removes its staging folder; the adapted folder in use stays as it was
    started = time.perf_counter()
    root = adapt(args)
    print((root / "README.md").read_text(encoding="utf-8"))
    print(f"train.adapt: wrote {root} in {time.perf_counter() - started:.0f} s; restart the API to serve it")


if __name__ == "__main__":
    main()
