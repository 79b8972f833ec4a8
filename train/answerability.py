"""Fit and calibrate the answerability gate (``make answerability``): train fits, dev calibrates, test reports.

The gate (services/core/grounding/answerability.py) must see what the API sees, so the features come from the real
retrieval path: the packaged fitz-gov corpus ingested by the real pipeline, the configured retrieval mode,
depth and reranker (``Retriever.search`` with the API's defaults). For every tier1 RAG case (answerable:
``trustworthy_direct``/``trustworthy_hedged``; unanswerable: ``abstention``) of each split:

1. **train**: a standardised, L2-regularised logistic regression over the features (``fit_logistic``);
2. **dev**: Platt scaling of its logit (so the score is a probability), then the band thresholds:
   ``decline_below`` is the highest threshold that still answers ``--answer-rate`` of dev's answerable cases;
   ``answer_above`` the lowest that lets at most ``--leak-rate`` of dev's unanswerable cases skip verification;
3. **test**: only reported (ROC-AUC, answer rate, decline rate, band shares), never used for a choice.

Writes ``models/answerability/gate.json`` (what the API loads) and its model card ``README.md``. The file
records its calibration domain, every fitz-gov document's content hash (``fitz_gov_domain``): outside it the
API never declines on the gate alone (services/core/grounding/answerability.py). ``--domain-only`` writes just that
into an existing gate file, leaving the fit as it is.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from services.core.grounding.answerability import DEFAULT_GATE, FEATURES, GateModel, domain_key, features
from services.core.types import sha256_hex
from services.datasets.fitz_gov import load_corpus, rag_cases

if TYPE_CHECKING:
    from services.core.retrieval import Retriever
    from services.core.settings import Settings

logger = logging.getLogger(__name__)
SPLITS = ("train", "dev", "test")


@contextmanager
def open_retriever(data_dir: Path) -> Iterator[tuple[Retriever, Settings]]:
    """The API's retrieval path over the fitz-gov index in ``data_dir`` (ingested once, shared with make eval)."""
    from ingest.sample import ensure_corpus_index
    from services.core import factory
    from services.core.settings import Settings

    ensure_corpus_index(data_dir)  # the same store `make eval` boots its API on, ingested once
    settings = Settings(_env_file=None, data_dir=data_dir, adapted_models=False)  # the shipped models' scores
    with factory.open_retriever(settings) as (_, retriever):
        yield retriever, settings


def collect(data_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """Per split: each case's id, label (1 answerable) and features from the real retrieval path."""
    from services.core.retrieval import SearchSpec

    out: dict[str, list[dict[str, Any]]] = {}
    with open_retriever(data_dir) as (retriever, settings):
        for split in SPLITS:
            rows = []
            for case in tqdm(rag_cases(split), desc=f"retrieve {split}", dynamic_ncols=True):
                result = retriever.search(case.question, SearchSpec.configured(settings))
                feats = features(case.question, result.chunks)
                if feats is not None:
                    rows.append({"id": case.id, "label": int(case.expect == "answer"), "features": feats})
            out[split] = rows
        reranker_name = retriever.reranker.name
    out["_meta"] = [{"reranker": reranker_name, "settings": _retrieval_settings(settings)}]
    return out


def fitz_gov_domain() -> tuple[str, frozenset[str]]:
    """The gate's calibration domain: every fitz-gov document as the corpus writers store it (its Markdown's
    bytes hashed as the loader hashes a file), so the sample corpus and the eval store both fall inside it."""
    import importlib.metadata

    corpus = load_corpus()
    keys = frozenset(domain_key(sha256_hex(doc.as_markdown())) for doc in corpus)
    return f"fitz-gov {importlib.metadata.version('fitz-gov')} corpus ({len(keys):,} documents)", keys


def with_domain(model: GateModel, domain: tuple[str, frozenset[str]]) -> GateModel:
    return GateModel(**{**model.to_json(), "domain": domain[0], "domain_documents": domain[1]})  # type: ignore[arg-type]


def scorer_key() -> str:
    """What the features depend on: the retrieval settings and the reranker's weights."""
    from services.core.models.model_registry import RERANKERS, resolve
    from services.core.settings import Settings

    settings = Settings(_env_file=None)
    target, _ = resolve(settings.reranker_model, RERANKERS, "RAG_RERANKER_MODEL")
    weights = Path(target) / "model.safetensors"
    digest = hashlib.sha256(weights.read_bytes() if weights.exists() else target.encode()).hexdigest()
    return hashlib.sha256(json.dumps([_retrieval_settings(settings), digest]).encode()).hexdigest()[:12]


def _retrieval_settings(settings: Any) -> dict[str, Any]:
    keys = (
        "retrieval_mode", "top_n", "top_k", "reranker_model", "reranker_backend", "rerank_fusion_weight",
        "embed_context_header",
    )  # fmt: skip
    return {k: getattr(settings, k) for k in keys}


def matrix(rows: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    x = np.array([[r["features"][f] for f in FEATURES] for r in rows], dtype=np.float64)
    y = np.array([r["label"] for r in rows], dtype=np.float64)
    return x, y


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, iters: int = 50) -> tuple[np.ndarray, float]:
    """Newton-Raphson (IRLS) logistic regression with an L2 penalty on the weights (not the intercept)."""
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))])
    w = np.zeros(d + 1)
    penalty = np.eye(d + 1) * l2
    penalty[d, d] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(xb @ w, -40, 40)))
        grad = xb.T @ (p - y) + penalty @ w
        hess = xb.T @ (xb * (p * (1 - p))[:, None]) + penalty + np.eye(d + 1) * 1e-9
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w[:d], float(w[d])


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Probability that a random positive outranks a random negative (ties count half)."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    if not len(pos) or not len(neg):
        return float("nan")
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (len(pos) * len(neg)))


def answer_threshold(answerable: np.ndarray, answer_rate: float) -> float:
    """The highest score threshold that keeps ``answer_rate`` of the answerable cases at or above it."""
    pos = np.sort(answerable)
    keep = math.ceil(answer_rate * len(pos))  # answerable cases that must be at or above the threshold
    return float(pos[len(pos) - keep]) if keep else 1.0


def choose_thresholds(p: np.ndarray, y: np.ndarray, answer_rate: float, leak_rate: float) -> tuple[float, float]:
    """``decline_below`` keeps ``answer_rate`` of the answerable cases out of the decline band (they may still
    be declined by the verifier); ``answer_above`` lets at most ``leak_rate`` of the unanswerable skip it."""
    neg = np.sort(p[y == 0])
    decline_below = answer_threshold(p[y == 1], answer_rate)
    allowed = math.floor(leak_rate * len(neg))  # unanswerable cases allowed at or above answer_above
    answer_above = float(neg[len(neg) - allowed]) if 0 < allowed <= len(neg) else float(neg[-1]) + 1e-6
    return round(decline_below, 6), round(max(answer_above, decline_below), 6)


def split_report(model: GateModel, rows: list[dict[str, Any]]) -> dict[str, float]:
    p = np.array([model.probability(r["features"]) for r in rows])
    y = np.array([r["label"] for r in rows])
    bands = [model.band(float(v)) for v in p]
    ans, un = y == 1, y == 0
    return {
        "answerable": int(ans.sum()),
        "unanswerable": int(un.sum()),
        "roc_auc": round(roc_auc(p, y), 4),
        "answerable_not_declined": round(
            float(np.mean([b != "decline" for b, a in zip(bands, ans, strict=True) if a])), 4
        ),
        "unanswerable_declined": round(
            float(np.mean([b == "decline" for b, u in zip(bands, un, strict=True) if u])), 4
        ),
        "unanswerable_to_verify": round(
            float(np.mean([b == "verify" for b, u in zip(bands, un, strict=True) if u])), 4
        ),
        "answerable_to_verify": round(float(np.mean([b == "verify" for b, a in zip(bands, ans, strict=True) if a])), 4),
        "brier": round(float(np.mean((p - y) ** 2)), 4),
    }


def fit(
    data: dict[str, list[dict[str, Any]]],
    args: argparse.Namespace,
    domain: tuple[str, frozenset[str]] | None = None,
) -> tuple[GateModel, dict[str, Any]]:
    """Fit on train, calibrate and choose the bands on dev, report every split; ``domain``: the documents it is
    calibrated for (default: the fitz-gov corpus, ``fitz_gov_domain``)."""
    x_train, y_train = matrix(data["train"])
    mean, scale = x_train.mean(axis=0), x_train.std(axis=0)
    scale[scale == 0] = 1.0
    coef, intercept = fit_logistic((x_train - mean) / scale, y_train, l2=args.l2)
    draft = GateModel(
        name="", reranker="", features=FEATURES, mean=tuple(mean), scale=tuple(scale), coef=tuple(coef),
        intercept=intercept, platt_a=1.0, platt_b=0.0, decline_below=0.0, answer_above=1.0,
    )  # fmt: skip
    x_dev, y_dev = matrix(data["dev"])
    raw_dev = np.array([[draft.raw_logit(r["features"])] for r in data["dev"]])
    (a,), b = fit_logistic(raw_dev, y_dev, l2=0.0)
    calibrated = GateModel(**{**draft.to_json(), "platt_a": float(a), "platt_b": b})  # type: ignore[arg-type]
    p_dev = np.array([calibrated.probability(r["features"]) for r in data["dev"]])
    low, high = choose_thresholds(p_dev, y_dev, args.answer_rate, args.leak_rate)
    meta = data["_meta"][0]
    digest = hashlib.sha256(json.dumps([calibrated.coef, calibrated.intercept, a, b, low, high]).encode()).hexdigest()
    model = GateModel(
        **{
            **calibrated.to_json(),
            "name": f"answerability-lr-{digest[:8]}",
            "reranker": meta["reranker"],
            "decline_below": low,
            "answer_above": high,
            "domain_documents": frozenset(),
        }
    )
    model = with_domain(model, domain or fitz_gov_domain())
    report = {split: split_report(model, data[split]) for split in SPLITS}
    report["retrieval"] = meta["settings"]
    report["params"] = {"l2": args.l2, "answer_rate": args.answer_rate, "leak_rate": args.leak_rate}
    return model, report


HEADER = (
    "| split | answerable / unanswerable | ROC-AUC | answerable not declined | unanswerable declined "
    "| unanswerable → verify | answerable → verify | Brier |\n|---|---|---|---|---|---|---|---|"
)


def write_card(out: Path, model: GateModel, report: dict[str, Any]) -> None:
    weights = "\n".join(f"| {f} | {w:+.3f} |" for f, w in zip(model.features, model.coef, strict=True))
    rows = "\n".join(
        f"| {s} | {r['answerable']} / {r['unanswerable']} | {r['roc_auc']:.3f} | {r['answerable_not_declined']:.3f} | "
        f"{r['unanswerable_declined']:.3f} | {r['unanswerable_to_verify']:.3f} | {r['answerable_to_verify']:.3f} | "
        f"{r['brier']:.3f} |"
        for s, r in ((s, report[s]) for s in SPLITS)
    )
    (out.parent / "README.md").write_text(
        f"""# Answerability gate `{model.name}`

Generated by `make answerability` (`python -m train.answerability`); do not edit by hand.

- **What it predicts**: the probability that the reranked top chunks hold the answer to the question.
- **Inputs**: features of the top {3} chunks scored by the reranker `{model.reranker}` (cross-encoder logits,
  margin, lexical coverage of the question's words and of its names/numbers); see
  `services/core/grounding/answerability.py`. Retrieval: `{json.dumps(report["retrieval"])}`.
- **Fitted** on fitz-gov 4.1.0 tier1 cases of the **train** split (logistic regression, L2 {report["params"]["l2"]});
  **calibrated** (Platt: a={model.platt_a:.3f}, b={model.platt_b:.3f}) and **thresholds chosen on dev**
  (answer rate target {report["params"]["answer_rate"]}, at most {report["params"]["leak_rate"]} of unanswerable
  cases skip verification). **Test** is only reported here.
- **Bands**: p < {model.decline_below:.4f} → decline without calling the LLM; p ≥ {model.answer_above:.4f} →
  answer; in between → generate and verify.
- **Domain**: calibrated on the {model.domain or "(unrecorded) corpus"}. Where a top chunk comes from any other
  document its low score is no evidence, so it does not decline there: the LLM answers and the verifier decides
  (`RAG_GATE_OUTSIDE_DOMAIN`).

{HEADER}
{rows}

The gate alone is measured here; the whole pipeline (gate + LLM + verifier) is measured by `make eval`.

| feature (standardised) | weight |
|---|---|
{weights}
"""
    )


def tune_verifier(report: dict[str, Any], answer_rate: float) -> dict[str, Any]:
    """The verifier's support threshold and minimum supported share, chosen on a **dev** ``eval.run`` report.

    That run is made with ``RAG_VERIFY_THRESHOLD=0 RAG_VERIFY_MIN_SUPPORTED=0`` so nothing is withheld and
    every generated sentence keeps its best support score. Replayed per threshold t and minimum m: answer-band
    cases are answered, verify-band cases only when their share of sentences scoring >= t reaches m. Chosen:
    the highest abstention accuracy with the answer rate >= ``answer_rate``, then the highest citation
    coverage (sentences that keep a citation), then the lowest t."""
    if report.get("dataset", {}).get("split") not in (None, "dev") or "test" in str(
        report.get("dataset", {}).get("name")
    ):
        raise SystemExit("tune the verifier on a dev report (eval.run --split dev), never on test")
    cases = [c for c in report["per_case"] if not c.get("error")]
    best: tuple[tuple[float, ...], dict[str, Any]] | None = None
    for t in np.round(np.arange(0.2, 0.81, 0.05), 2):
        for m in (0.25, 0.34, 0.5, 0.67, 0.75, 1.0):
            answered_ok = declined_ok = n_answer = n_abstain = cited = sentences = 0
            for c in cases:
                band = (c.get("answerability") or {}).get("band", "answer")
                scores = [float(s.get("score", 0.0)) for s in c.get("sentences") or []]
                if c.get("declined") and c.get("decline_reason") in ("no_relevant_sources", "model_declined"):
                    answered = False
                elif band == "verify":
                    answered = bool(scores) and float(np.mean([x >= t for x in scores])) >= m
                else:
                    answered = not c.get("declined")
                if answered:
                    cited += sum(x >= t for x in scores)
                    sentences += len(scores)
                if c["expect"] == "answer":
                    n_answer += 1
                    answered_ok += answered
                else:
                    n_abstain += 1
                    declined_ok += not answered
            rate = answered_ok / max(n_answer, 1)
            accuracy = declined_ok / max(n_abstain, 1)
            coverage = cited / max(sentences, 1)
            row = {"verify_threshold": float(t), "verify_min_supported": m, "answer_rate": round(rate, 4),
                   "abstention_accuracy": round(accuracy, 4), "citation_coverage": round(coverage, 4)}  # fmt: skip
            key = (rate >= answer_rate, accuracy, coverage, -t)
            if best is None or key > best[0]:
                best = (key, row)
    assert best is not None
    return best[1] | {"cases": len(cases), "run_id": report.get("run_id")}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(DEFAULT_GATE))
    parser.add_argument("--data-dir", default=".data/eval", help="the fitz-gov index (shared with make eval)")
    parser.add_argument("--l2", type=float, default=1.0)
    parser.add_argument("--answer-rate", type=float, default=0.95, help="dev answerable cases kept out of decline")
    parser.add_argument("--leak-rate", type=float, default=0.1, help="dev unanswerable cases allowed to skip verify")
    parser.add_argument("--refresh", action="store_true", help="recompute the features (else reuse the cache)")
    parser.add_argument(
        "--verify-from", default=None, help="a dev eval.run report.json: choose the verifier's thresholds on it"
    )
    parser.add_argument(
        "--domain-only", action="store_true", help="only record the calibration domain in the existing --out file"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.domain_only:
        path = Path(args.out)
        model = with_domain(GateModel.load(path), fitz_gov_domain())
        path.write_text(json.dumps(model.to_json(), indent=2) + "\n")
        report_path = path.parent / "report.json"
        if report_path.exists():
            write_card(path, model, json.loads(report_path.read_text()))
        logger.info("%s: domain %s", path, model.domain)
        return
    if args.verify_from:
        chosen = tune_verifier(json.loads(Path(args.verify_from).read_text()), args.answer_rate)
        path = Path(args.out).parent / "verifier.json"
        path.write_text(json.dumps(chosen, indent=2) + "\n")
        logger.info("verifier thresholds (dev): %s -> %s", chosen, path)
        return
    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    # the features are the reranker's scores: a retrained reranker (or other settings) invalidates the cache
    cache = data_dir / f"features-{scorer_key()}.json"
    if cache.exists() and not args.refresh:
        data = json.loads(cache.read_text())
    else:
        data = collect(data_dir)
        cache.write_text(json.dumps(data))
    model, report = fit(data, args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(model.to_json(), indent=2) + "\n")
    (out.parent / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    write_card(out, model, report)
    logger.info("wrote %s: %s", out, json.dumps({s: report[s] for s in SPLITS}))


if __name__ == "__main__":
    main()
