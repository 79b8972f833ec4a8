"""Would the LLM itself add to the answerability gate? A measurement on dev, never a choice made on test.

``python -m train.answerability_probe --llm-url http://127.0.0.1:8080/v1 --model qwen2.5-coder-1.5b``

For every tier1 RAG case of the split, the real retrieval path (the same as ``make answerability``) gives the
top chunks; the LLM is asked, with one token of output and its log-probabilities, whether the top three
chunks contain the specific answer to this exact question. Its P(yes) is compared with the calibrated gate's
probability, alone and combined (gate logit + w x probe logit), by ROC-AUC and by the share of unanswerable
cases declined at a fixed answer rate. The result goes to ``models/answerability/llm-probe-<model>.json``
(docs/grounding.md, "What the LLM adds").

Why a probe and not a trained head: a judge that needs one short extra LLM call per request in the uncertain
band is cheap to add to the pipeline, so it is worth knowing what it buys before building it. On dev it bought
little (the card says how much), which is why the pipeline has no such call.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from tqdm import tqdm

from services.core.grounding.answerability import DEFAULT_GATE, GateModel, features
from services.core.retrieval import SearchSpec
from services.datasets.fitz_gov import rag_cases
from train.answerability import answer_threshold, open_retriever, roc_auc

logger = logging.getLogger(__name__)

SYSTEM = "You check whether a text answers a question. Reply with one word: yes or no."
CHUNK_CHARS, TOP = 500, 3
WEIGHTS = (0.25, 0.5, 1.0)
ANSWER_RATES = (0.90, 0.93)


def probe_messages(question: str, passages: list[str]) -> list[dict[str, str]]:
    text = "\n\n".join(f"[{i}] {p[:CHUNK_CHARS]}" for i, p in enumerate(passages[:TOP], start=1))
    return [
        {"role": "system", "content": SYSTEM},
        {
            "role": "user",
            "content": f"Text:\n{text}\n\nQuestion: {question}\n\n"
            "Does the text contain the specific answer to this exact question? Reply yes or no.",
        },
    ]


def p_yes(top_logprobs: list[dict[str, Any]]) -> float:
    """P(yes) / (P(yes) + P(no)) over the first token's alternatives; 0.5 when neither is among them."""
    mass = {"yes": 0.0, "no": 0.0}
    for alt in top_logprobs:
        word = str(alt.get("token", "")).strip().lower()
        if word in mass:
            mass[word] += math.exp(float(alt["logprob"]))
    total = mass["yes"] + mass["no"]
    return mass["yes"] / total if total > 0 else 0.5


def ask(client: httpx.Client, url: str, model: str, messages: list[dict[str, str]]) -> float:
    body = {
        "model": model,
        "messages": messages,
        "max_tokens": 1,
        "temperature": 0,
        "logprobs": True,
        "top_logprobs": 10,
    }
    response = client.post(f"{url.rstrip('/')}/chat/completions", json=body)
    response.raise_for_status()
    return p_yes(response.json()["choices"][0]["logprobs"]["content"][0]["top_logprobs"])


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def declined_at(scores: np.ndarray, labels: np.ndarray, answer_rate: float) -> float:
    """Share of unanswerable cases below the threshold that keeps ``answer_rate`` of the answerable ones."""
    return float(np.mean(scores[labels == 0] < answer_threshold(scores[labels == 1], answer_rate)))


def summarize(gate: np.ndarray, probe: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    scored = {"gate": _logit(gate), "probe": _logit(probe)}
    for w in WEIGHTS:
        scored[f"gate+{w}*probe"] = _logit(gate) + w * _logit(probe)
    return {
        name: {
            "roc_auc": round(roc_auc(s, labels), 4),
            **{f"unanswerable_declined_at_answer_rate_{r}": round(declined_at(s, labels, r), 4) for r in ANSWER_RATES},
        }
        for name, s in scored.items()
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--llm-url", required=True, help="an OpenAI-compatible server with logprobs (…/v1)")
    parser.add_argument("--model", required=True)
    parser.add_argument("--split", default="dev", choices=["train", "dev"], help="never test: this is tuning")
    parser.add_argument("--data-dir", default=".data/eval", help="the fitz-gov index (shared with make eval)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    gate = GateModel.load(DEFAULT_GATE)
    rows = []
    with open_retriever(Path(args.data_dir)) as (retriever, settings), httpx.Client(timeout=300) as client:
        for case in tqdm(rag_cases(args.split), desc=f"probe {args.split}", dynamic_ncols=True):
            result = retriever.search(case.question, SearchSpec.configured(settings))
            feats = features(case.question, result.chunks)
            if feats is None:
                continue
            passages = [c.text for c in result.chunks]
            probe = ask(client, args.llm_url, args.model, probe_messages(case.question, passages))
            rows.append(
                {"id": case.id, "label": int(case.expect == "answer"), "gate": gate.probability(feats), "probe": probe}
            )
    labels = np.array([r["label"] for r in rows])
    report = {
        "model": args.model,
        "split": args.split,
        "gate": gate.name,
        "answerable": int(labels.sum()),
        "unanswerable": int(len(labels) - labels.sum()),
        "prompt": {"system": SYSTEM, "chunks": TOP, "chars_per_chunk": CHUNK_CHARS},
        "scores": summarize(np.array([r["gate"] for r in rows]), np.array([r["probe"] for r in rows]), labels),
        "cases": rows,
    }
    out = Path(args.out or DEFAULT_GATE.parent / f"llm-probe-{args.model}.json")
    out.write_text(json.dumps(report, indent=2) + "\n")
    for name, s in report["scores"].items():
        logger.info("%-18s %s", name, s)
    logger.info("wrote %s", out)


if __name__ == "__main__":
    main()
