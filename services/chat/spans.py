"""What the evidence, gate and verify steps record on their spans (OpenInference keys plus flat ``gate.*`` and
``verify.*`` ones that Phoenix can filter on). Called only when ``span.is_recording()``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from openinference.semconv.trace import SpanAttributes

from services.core.grounding.contracts import GateDecision, Verification
from services.core.observability.tracing import as_json, clip

if TYPE_CHECKING:
    from services.core.grounding.evidence import Excerpt


def evidence(n_chunks: int, excerpts: Sequence[Excerpt]) -> dict[str, Any]:
    """How much of the retrieved text went into the prompt (estimated tokens, sentences kept per source)."""
    chars = sum(len(e.text) for e in excerpts)
    return {
        SpanAttributes.OUTPUT_VALUE: clip("\n\n".join(e.text for e in excerpts)),
        "evidence.chunks_in": n_chunks,
        "evidence.sources": len(excerpts),
        "evidence.chars": chars,
        "evidence.sentences": as_json([e.sentences for e in excerpts]),
    }


def gate(question: str, n_sources: int, decision: GateDecision) -> dict[str, Any]:
    return {
        SpanAttributes.INPUT_VALUE: clip(question),
        SpanAttributes.OUTPUT_VALUE: decision.band,
        SpanAttributes.METADATA: as_json({"sources": n_sources, "features": decision.features}),
        "gate.score": float(decision.score),
        "gate.band": decision.band,
        "gate.model": decision.model,
        "gate.calibrated": decision.calibrated,
        "gate.features": as_json(decision.features),
    }


def verify(model: str, answer: str, verification: Verification, min_supported: float | None) -> dict[str, Any]:
    """``min_supported`` is the share the answer had to reach (``None`` when it could not be declined)."""
    supported = sum(s.supported for s in verification.sentences)
    attrs: dict[str, Any] = {
        SpanAttributes.INPUT_VALUE: clip(answer),
        SpanAttributes.OUTPUT_VALUE: clip(verification.answer),
        "verify.model": model,
        "verify.sentences": len(verification.sentences),
        "verify.supported": supported,
        "verify.supported_share": round(verification.supported_share, 4),
        "verify.citations": as_json(verification.citations),
    }
    if min_supported is not None:
        attrs["verify.min_supported"] = min_supported
    return attrs
