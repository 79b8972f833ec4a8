"""Second stage: re-score the first stage's candidates with a model that reads query and passage together.

Usage::

    rr = CrossEncoderReranker("fitzgov-minilm-l6", backend="onnx-int8", model_cache=Path(".data/models"))
    rr.warm_up()                                       # loads the model; the constructor touches nothing
    top = rr.rerank("how do I reset my password?", candidates, top_k=5)   # each has .rerank_score
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

from services.core.models.backends import BACKENDS, cache_dir_for, use_backend
from services.core.models.model_registry import RERANKERS, LoadOnce, resolve
from services.core.settings import RerankerSettings
from services.core.types import InferenceBackend, RetrievedChunk

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder

logger = logging.getLogger(__name__)


class Reranker(Protocol):
    """A second-stage component: built cheaply, loaded by ``warm_up()`` (idempotent, thread-safe), then used."""

    name: str

    @property
    def ready(self) -> bool:
        """Whether ``warm_up()`` has loaded what ``rerank`` needs."""

    def warm_up(self) -> None: ...

    def rerank(
        self, query: str, candidates: Sequence[RetrievedChunk], top_k: int, min_score: float | None = None
    ) -> list[RetrievedChunk]: ...


def passage_for(chunk: RetrievedChunk) -> str:
    return titled_passage(chunk.title, chunk.text)


def titled_passage(title: str, text: str) -> str:
    """Title above text. The title carries context a chunk lacks ("Q3 Sales" above "revenue rose 23%"); the
    reranker was trained on title + text, so everything it scores (chunks, evidence) has this shape."""
    if not title or text.startswith(title):  # Markdown chunks often open with their heading
        return text
    return f"{title}\n{text}"


def fused_order(ce_scores: npt.ArrayLike, first_stage: Sequence[float], weight: float) -> list[int]:
    """Indices by descending ``(1 - weight) * ce + weight * minmax(first_stage)``; stable for ties."""
    ce = np.asarray(ce_scores, dtype=np.float64)
    fs = np.asarray(first_stage, dtype=np.float64)
    span = fs.max() - fs.min() if len(fs) else 0.0
    norm = (fs - fs.min()) / span if span > 0 else np.zeros_like(fs)
    combined = (1 - weight) * ce + weight * norm
    return sorted(range(len(combined)), key=lambda i: -combined[i])


class NoReranker:
    """Keeps the first stage's order: the `none` option, and the fallback when reranking fails."""

    name = "none"
    ready = True  # nothing to load

    def warm_up(self) -> None:
        pass

    def rerank(
        self, query: str, candidates: Sequence[RetrievedChunk], top_k: int, min_score: float | None = None
    ) -> list[RetrievedChunk]:
        return list(candidates[:top_k])


# One place for defaults: a reranker built directly orders as the configured stack does (the settings'
# fusion weight), not by the cross-encoder alone. The backend stays torch: no conversion on first use.
_DEFAULTS = RerankerSettings.model_fields


class CrossEncoderReranker:
    """Scores (query, passage) pairs jointly; optionally blends in the first stage's evidence.

    ``fusion_weight`` w orders by ``(1 - w) * ce + w * minmax(first-stage score)``: a cross-encoder that
    is unsure (a paraphrase far from its training data) then defers to the retriever instead of letting
    noise decide. ``rerank_score`` always reports the raw cross-encoder probability.

    The constructor only stores the configuration (no path is resolved, no model loaded); ``warm_up()``
    loads the model once, whichever thread calls it first, and ``score``/``score_pairs``/``rerank`` raise a
    ``RuntimeError`` until then rather than loading it on a request. The stack builds rerankers in
    ``services.core.factory.build_reranker``.
    """

    def __init__(
        self,
        model: str = "fitzgov-minilm-l6",
        *,
        batch_size: int = 32,
        max_length: int = 256,
        device: str = "cpu",
        fusion_weight: float = _DEFAULTS["rerank_fusion_weight"].default,
        backend: InferenceBackend = "torch",
        model_cache: Path | str = Path(".data/models"),
        name: str | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"RAG_RERANKER_BACKEND={backend!r} is not one of {', '.join(BACKENDS)}")
        self.model_ref = model  # a packaged alias, a folder or a hub id: where the weights come from
        self.name = name or model  # what it is called: the answerability gate is fitted to one name
        self.backend = backend  # what runs the transformer (services/core/models/backends.py)
        self.model_cache = Path(model_cache)  # exports of non-torch backends
        self.batch_size = batch_size
        self.max_length = max_length  # caps query+passage tokens: cost is quadratic in length
        self.device = device
        self.fusion_weight = fusion_weight
        self._model: LoadOnce[CrossEncoder] = LoadOnce(f"cross-encoder {self.name}", self._load)

    @property
    def ready(self) -> bool:
        return self._model.ready

    def warm_up(self) -> None:
        """Find and load the model (exporting it for a non-torch backend on first use); later calls return at once."""
        self._model.warm_up()

    def _load(self) -> CrossEncoder:
        target, _ = resolve(self.model_ref, RERANKERS, "RAG_RERANKER_MODEL")  # a missing model fails here, fast
        from sentence_transformers import CrossEncoder

        logger.info("loading cross-encoder %s from %s", self.name, target)
        model = CrossEncoder(target, device=self.device, max_length=self.max_length, local_files_only=True)
        use_backend(
            model,
            self.backend,
            cache_dir=cache_dir_for(self.model_cache, self.name, self.backend),
            source=Path(target),
            pairs=True,
        )
        return model

    @property
    def model(self) -> CrossEncoder:
        return self._model.get()

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        model = self.model
        if not passages:
            return np.zeros(0, dtype=np.float32)
        scores = model.predict([(query, p) for p in passages], batch_size=self.batch_size, show_progress_bar=False)
        return np.asarray(scores, dtype=np.float32)

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Many (query, passage) pairs in one batched call: the verifier scores a whole answer at once."""
        model = self.model
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        scores = model.predict(list(pairs), batch_size=self.batch_size, show_progress_bar=False)
        return np.asarray(scores, dtype=np.float32)

    def rerank(
        self, query: str, candidates: Sequence[RetrievedChunk], top_k: int, min_score: float | None = None
    ) -> list[RetrievedChunk]:
        if self.fusion_weight >= 1.0 and min_score is None:
            # The first stage alone orders (the default: this model ranks worse than dense retrieval, see its
            # card) and nothing is filtered: only the kept chunks need a score (the gate reads them), so the
            # cross-encoder runs on top_k pairs, not top_n. Same output, half the work at 5 of 10.
            candidates = [
                candidates[i]
                for i in fused_order([0.0] * len(candidates), [c.retrieval_score for c in candidates], 1.0)
            ]
            candidates = candidates[:top_k]
        scores = self.score(query, [passage_for(c) for c in candidates])
        for chunk, score in zip(candidates, scores, strict=True):
            chunk.rerank_score = float(score)
        order = fused_order(scores, [c.retrieval_score for c in candidates], self.fusion_weight)
        ranked = [candidates[i] for i in order]
        if min_score is not None:
            ranked = [c for c in ranked if (c.rerank_score or 0.0) >= min_score]
        return ranked[:top_k]
