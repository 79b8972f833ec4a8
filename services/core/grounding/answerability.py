"""The answerability gate: do the retrieved sources hold the answer, before any LLM is called?

A calibrated probability from a few features of the reranked top chunks, decided in three bands:

- ``decline``: clearly unanswerable. The pipeline answers the fixed refusal without calling the LLM.
- ``answer``: clearly answerable. Generate and stream.
- ``verify``: the uncertain middle. Generate, then let the verifier keep the answer or decline.

Features (``features``): the cross-encoder's top scores (as logits) and the margin between them, and lexical
coverage of the question's content words and of its names and numbers by the top chunks. The second kind is
there because a near miss is on topic: "Hannibal at Cannae" for a question about Zama scores high on
relevance and misses the one word that matters.

The model is a logistic regression over those features, fitted on the fitz-gov **train** split, Platt-
calibrated and given its band thresholds on **dev** (``make answerability``, ``train/answerability.py``),
stored as a small JSON file beside its model card. It is tied to the reranker it was fitted with: the
cross-encoder's scores are its inputs, so another reranker turns the gate off (with a warning) until
``make answerability`` is run for it.

Usage::

    gate = CalibratedGate(GateModel.load(Path("models/answerability/gate.json")))
    decision = gate.decide("What tactics did Hannibal use at Zama?", reranked_chunks)
    decision.band, decision.score   # "decline", 0.07

Decline only with evidence: the scores mean what calibration says only on text like the text it was
calibrated on. The shipped gate saw fitz-gov alone; on a user's lecture notes the cross-encoder is unsure of
everything, and a gate that trusted its low scores declined questions the documents answer word for word. So
a gate file records the documents it was calibrated on (``domain_documents``: content-hash prefixes), and when
any of the top chunks it reads comes from another document, a ``decline`` becomes ``verify``: the LLM answers
and the verifier decides (``calibrated: false`` on the decision). ``RAG_GATE_OUTSIDE_DOMAIN=decline`` restores
trusting it everywhere; calibrating on the deployment's own documents widens the domain.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from services.core.grounding.contracts import Band, GateDecision
from services.core.grounding.text import content_words, coverage, specific_words
from services.core.models.model_registry import MODELS_DIR, find_adapted
from services.core.types import RetrievedChunk

if TYPE_CHECKING:
    from services.core.settings import ChatSettings

logger = logging.getLogger(__name__)

DEFAULT_GATE = MODELS_DIR / "answerability" / "gate.json"
FEATURES = (
    "ce_top1_logit",
    "ce_top2_logit",
    "ce_margin",
    "coverage_top1",
    "coverage_top3",
    "specific_coverage_top1",
    "specific_coverage_top3",
)
TOP = 3
# How much of a document's content hash a gate file keeps per calibration document: 64 bits, so 5,000
# documents cost ~90 KB of JSON and a collision between two documents is out of reach.
DOMAIN_HASH_CHARS = 16
OutsideDomain = Literal["verify", "decline"]


def _logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


def _chunk_text(chunk: RetrievedChunk) -> str:
    return f"{chunk.title}\n{chunk.section or ''}\n{chunk.text}"


def top_chunks(chunks: Sequence[RetrievedChunk]) -> list[RetrievedChunk]:
    """The chunks the gate reads: the ``TOP`` best by cross-encoder score (those without one are not read)."""
    scored = sorted((c for c in chunks if c.rerank_score is not None), key=lambda c: -(c.rerank_score or 0.0))
    return scored[:TOP]


def domain_key(content_hash: str) -> str:
    """How a gate file names a document of its calibration domain: a prefix of the file bytes' sha256."""
    return content_hash[:DOMAIN_HASH_CHARS].lower()


def features(question: str, chunks: Sequence[RetrievedChunk]) -> dict[str, float] | None:
    """The gate's inputs, or None when the chunks carry no cross-encoder score (rerank off or failed)."""
    top = top_chunks(chunks)
    if not top:
        return None
    p1 = float(top[0].rerank_score or 0.0)
    p2 = float(top[1].rerank_score or 0.0) if len(top) > 1 else 0.0
    words_q, specific_q = content_words(question), specific_words(question)
    first = content_words(_chunk_text(top[0])) | specific_words(_chunk_text(top[0]))
    union: set[str] = set()
    for c in top:
        union |= content_words(_chunk_text(c)) | specific_words(_chunk_text(c))
    return {
        "ce_top1_logit": _logit(p1),
        "ce_top2_logit": _logit(p2),
        "ce_margin": p1 - p2,
        "coverage_top1": coverage(words_q, first),
        "coverage_top3": coverage(words_q, union),
        "specific_coverage_top1": coverage(specific_q, first),
        "specific_coverage_top3": coverage(specific_q, union),
    }


@dataclass(frozen=True, slots=True)
class GateModel:
    """Standardised logistic regression + Platt calibration + band thresholds, all plain numbers."""

    name: str
    reranker: str
    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    platt_a: float  # calibrated p = sigmoid(platt_a * raw_logit + platt_b), fitted on dev
    platt_b: float
    decline_below: float  # calibrated p below this: decline without generating
    answer_above: float  # at or above this: answer; in between: generate and verify
    domain: str = ""  # what it was calibrated on, in words ("fitz-gov 4.1.0 corpus, 5,043 documents")
    # ``domain_key`` of every document it was calibrated on; empty (gate files before 2026-12-07): unknown,
    # and the gate is trusted everywhere as it used to be
    domain_documents: frozenset[str] = frozenset()

    def covers(self, chunks: Sequence[RetrievedChunk]) -> bool:
        """Whether every chunk comes from a document this gate was calibrated on (True without a domain)."""
        if not self.domain_documents:
            return True
        return all(domain_key(c.content_hash) in self.domain_documents for c in chunks)

    def raw_logit(self, feats: Mapping[str, float]) -> float:
        z = self.intercept
        for name, mu, sd, w in zip(self.features, self.mean, self.scale, self.coef, strict=True):
            z += w * (float(feats[name]) - mu) / (sd or 1.0)
        return z

    def probability(self, feats: Mapping[str, float]) -> float:
        z = self.platt_a * self.raw_logit(feats) + self.platt_b
        return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))

    def band(self, p: float) -> Band:
        if p < self.decline_below:
            return "decline"
        return "answer" if p >= self.answer_above else "verify"

    @classmethod
    def load(cls, path: Path) -> GateModel:
        raw = json.loads(path.read_text(encoding="utf-8"))
        optional = {"domain", "domain_documents"}
        fields = {k: raw[k] for k in cls.__dataclass_fields__ if k not in optional or k in raw}
        for k in ("features", "mean", "scale", "coef"):
            fields[k] = tuple(fields[k])
        fields["domain_documents"] = frozenset(domain_key(h) for h in fields.get("domain_documents") or ())
        model = cls(**fields)
        if set(model.features) - set(FEATURES):
            raise ValueError(f"{path}: unknown features {sorted(set(model.features) - set(FEATURES))}")
        if not 0.0 <= model.decline_below <= model.answer_above <= 1.0:
            raise ValueError(f"{path}: need 0 <= decline_below <= answer_above <= 1")
        return model

    def to_json(self) -> dict[str, object]:
        out = asdict(self)
        out["domain_documents"] = sorted(self.domain_documents)
        return out


class CalibratedGate:
    """``AnswerabilityGate`` over a ``GateModel``; chunks without cross-encoder scores get the middle band.

    ``outside_domain``: what a ``decline`` becomes when the chunks the gate reads are not all from documents it
    was calibrated on: ``"verify"`` (generate, the verifier decides) or ``"decline"`` (trust the gate anyway).
    """

    def __init__(self, model: GateModel, *, outside_domain: OutsideDomain = "verify") -> None:
        self.model = model
        self.name = model.name
        self.outside_domain = outside_domain

    def decide(self, question: str, chunks: Sequence[RetrievedChunk]) -> GateDecision:
        if not chunks:
            return GateDecision(0.0, "decline", self.name, {})
        feats = features(question, chunks)
        if feats is None:  # no cross-encoder score to judge by: let the verifier decide after generating
            return GateDecision(0.5, "verify", f"{self.name} (no rerank scores)", {})
        p = self.model.probability(feats)
        band = self.model.band(p)
        calibrated = self.model.covers(top_chunks(chunks))
        if band == "decline" and not calibrated and self.outside_domain == "verify":
            band = "verify"
        rounded = {k: round(v, 4) for k, v in feats.items()}
        return GateDecision(round(p, 4), band, self.name, rounded, calibrated=calibrated)


def gate_from_settings(settings: ChatSettings, reranker: object) -> CalibratedGate | None:
    """The gate for the reranker that runs: ``RAG_ANSWERABILITY_MODEL``, else the one ``make adapt`` fitted with it
    (an adapted reranker), else the shipped one; None (with a warning) when the file is missing or was fitted
    for another reranker."""
    name = getattr(reranker, "name", "none")
    path = Path(settings.answerability_model) if settings.answerability_model else DEFAULT_GATE
    if not settings.answerability_model:
        adapted = find_adapted(settings.data_dir)
        if adapted is not None and adapted.name == name:  # the reranker that runs is the adapted one
            path = adapted.gate
    if not path.exists():
        logger.warning("answerability gate off: %s not found (make answerability)", path)
        return None
    model = GateModel.load(path)
    if name != model.reranker:
        logger.warning(
            "answerability gate off: %s was fitted on reranker %r scores, the API runs %r (make answerability)",
            path,
            model.reranker,
            name,
        )
        return None
    if not model.domain_documents:
        logger.warning("answerability gate %s records no calibration domain: trusted on every document", path)
    return CalibratedGate(model, outside_domain=settings.gate_outside_domain)
