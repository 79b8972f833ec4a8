"""The contracts of the grounding guarantees: the answerability gate and the answer verifier.

Why they are the pipeline's and not the model's: a 0.5B model rarely writes ``[n]`` and happily answers
what the documents do not hold. So the pipeline decides *before* generating whether the retrieved
sources can answer at all (``AnswerabilityGate``), and checks *after* generating which source supports
each answer sentence (``AnswerVerifier``). Both hold whatever LLM is behind the API.

Implementations: ``services/core/grounding/answerability.py`` (calibrated gate) and
``services/core/grounding/verify.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from services.core.types import RetrievedChunk

# decline: clearly unanswerable, refuse without calling the LLM; answer: clearly answerable, generate and
# stream; verify: the uncertain middle, generate and let the verifier keep the answer or decline.
Band = Literal["answer", "verify", "decline"]
DeclineReason = Literal["no_relevant_sources", "unsupported_answer", "model_declined"]


@dataclass(frozen=True, slots=True)
class GateDecision:
    score: float  # calibrated probability that the sources hold the answer
    band: Band
    model: str
    features: dict[str, float] = field(default_factory=dict)
    # False when the sources come from documents the gate was never calibrated on: its score is no evidence
    # there, so it does not decline before generation (the band is at least "verify").
    calibrated: bool = True


class AnswerabilityGate(Protocol):
    name: str

    def decide(self, question: str, chunks: Sequence[RetrievedChunk]) -> GateDecision: ...


@dataclass(frozen=True, slots=True)
class SentenceSupport:
    text: str
    citations: tuple[int, ...]  # verified 1-based source numbers (empty when no source supports it)
    supported: bool
    score: float  # the best source's support score, in [0, 1]
    model_citations: tuple[int, ...] = ()  # what the model itself wrote, before verification


@dataclass(frozen=True, slots=True)
class Verification:
    sentences: tuple[SentenceSupport, ...]
    answer: str  # the answer text with the verified [n] markers in place of the model's

    @property
    def citations(self) -> list[int]:
        """Verified source numbers in order of first appearance."""
        seen: list[int] = []
        for s in self.sentences:
            seen.extend(n for n in s.citations if n not in seen)
        return seen

    @property
    def supported_share(self) -> float:
        return sum(s.supported for s in self.sentences) / len(self.sentences) if self.sentences else 0.0


class AnswerVerifier(Protocol):
    name: str

    def verify(self, answer: str, sources: Sequence[str], question: str | None = None) -> Verification:
        """``sources[i]`` is the text the model saw as ``[i + 1]`` (title and text); ``question`` what was asked
        (a sentence that only restates it claims nothing)."""
        ...
