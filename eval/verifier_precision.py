"""``python -m eval.verifier_precision``: the verifier's precision and recall against sentences labelled by reading.

Why: the ``citation_precision`` of an evaluation report is the verifier judging itself (it keeps only the
citations it finds supported), 1.0 by construction. A quality figure needs labels from someone else. So answers
were collected from the LLM with the gate and the verifier off (every question of the out-of-domain set, the
unanswerable ones too, so fabricated sentences are among them), split into sentences, and each sentence was
labelled by reading the passages the model read: ``supported`` (they state it), ``unsupported`` (they do not,
or they contradict it: a wrong number, a name they lack, an invented fact) or ``refusal`` (claims nothing;
left out). This script re-runs the API's verifier (the configured cross-encoder, the settings' thresholds)
on each labelled answer and compares, per sentence:

- **precision**: of the sentences the verifier calls supported, the share the reader labelled supported (the
  figure a user relies on when a sentence carries a citation);
- **recall**: of the sentences the reader labelled supported, the share the verifier keeps;
- both for the verifier as configured and with ``strict_claims`` off (the rule that numbers, dates and names
  must be in the source), with 95 % bootstrap intervals.

    python -m eval.verifier_precision --labels eval/ood/sentence-labels.jsonl \\
        --out eval/reports/ood-2026-12-07/verifier.json

Label file rows: ``{"case", "question", "answer", "sources": [passage, ...], "sentence", "label", "note"}``; the
sentences of one case appear in the answer's order.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.core.grounding.verify import Verifier, split_sentences, strip_citations
from services.core.measure import bootstrap_ci
from services.core.models.reranker import titled_passage

logger = logging.getLogger("eval.verifier_precision")
LABELS = ("supported", "unsupported", "refusal")


def normalise(sentence: str) -> str:
    return re.sub(r"\s+", " ", strip_citations(sentence)).strip().rstrip(".").lower()


def read_labels(path: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    bad = [r.get("sentence", "?") for r in rows if r.get("label") not in LABELS]
    if bad:
        raise ValueError(f"{path}: {len(bad)} sentences have no label among {LABELS}, e.g. {bad[0]!r}")
    return rows


def verdicts(verifier: Verifier, rows: Sequence[dict[str, Any]]) -> list[bool | None]:
    """The verifier's ``supported`` for each labelled sentence (None when its answer split differently)."""
    by_case: dict[tuple[str, str], list[int]] = {}  # one case may have several answers (from several runs)
    for i, row in enumerate(rows):
        by_case.setdefault((row["case"], row["answer"]), []).append(i)
    out: list[bool | None] = [None] * len(rows)
    for indexes in by_case.values():
        first = rows[indexes[0]]
        result = verifier.verify(first["answer"], first["sources"], first["question"])
        judged = {normalise(s.text): s.supported for s in result.sentences}
        for i in indexes:
            out[i] = judged.get(normalise(rows[i]["sentence"]))
    return out


def scores(labels: Sequence[str], verdict: Sequence[bool | None]) -> dict[str, Any]:
    """Precision and recall of the verifier's ``supported`` against the reader's labels, refusals left out."""
    pairs = [
        (lab == "supported", v) for lab, v in zip(labels, verdict, strict=True) if lab != "refusal" and v is not None
    ]
    kept = [truth for truth, v in pairs if v]  # sentences the verifier calls supported: were they?
    found = [bool(v) for truth, v in pairs if truth]  # sentences the reader calls supported: kept?
    caught = [not v for truth, v in pairs if not truth]  # fabricated/unsupported: marked unsupported?

    def share(values: Sequence[bool]) -> dict[str, Any]:
        ci = bootstrap_ci([float(x) for x in values])
        return {"value": round(ci.mean, 4), "ci95": [round(ci.low, 4), round(ci.high, 4)], "n": len(values)}

    return {"precision": share(kept), "recall": share(found), "unsupported_caught": share(caught), "judged": len(pairs)}


def main(argv: list[str] | None = None) -> int:
    from services.core.factory import build_reranker
    from services.core.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels", default="eval/ood/sentence-labels.jsonl")
    parser.add_argument("--out", default=None, help="write the result JSON here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    rows = read_labels(Path(args.labels))
    settings = Settings(adapted_models=False)  # the shipped cross-encoder: what the labels' answers were served with
    reranker = build_reranker(settings)
    reranker.warm_up()
    labels = [r["label"] for r in rows]
    result: dict[str, Any] = {
        "labels": str(args.labels),
        "sentences": len(rows),
        "by_label": {k: labels.count(k) for k in LABELS},
        "verifier": {
            "scorer": reranker.name,
            "threshold": settings.verify_threshold,
            "lexical_weight": settings.verify_lexical_weight,
        },
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    for name, strict in (("configured", settings.verify_strict_claims), ("strict_claims_off", False)):
        verifier = Verifier(
            reranker,  # type: ignore[arg-type]
            threshold=settings.verify_threshold,
            lexical_weight=settings.verify_lexical_weight,
            strict_claims=strict,
        )
        verdict = verdicts(verifier, rows)
        result[name] = {"strict_claims": strict, "unmatched": verdict.count(None), **scores(labels, verdict)}
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


def labelling_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows to label from an eval.run report of raw answers (``--gate-off --verify-off``): one per sentence."""
    rows = []
    for case in report["per_case"]:
        if case.get("declined") or not case.get("answer"):
            continue
        # what the verifier checks against: each source's title above what the model read of it
        sources = [titled_passage(s["title"], s["read"]) for s in case.get("sources") or []]
        for sentence in split_sentences(case["answer"]):
            rows.append(
                {"case": case["id"], "expect": case["expect"], "question": case["question"], "answer": case["answer"],
                 "sources": sources, "sentence": sentence, "label": "", "note": ""}
            )  # fmt: skip
    return rows


if __name__ == "__main__":
    sys.exit(main())
