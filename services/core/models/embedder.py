"""Bi-encoder: text -> dense vector, with the per-model query/passage conventions applied.

Usage::

    emb = SentenceTransformerEmbedder("all-MiniLM-L6-v2", backend="onnx-int8", model_cache=Path(".data/models"))
    emb.warm_up()                                           # loads the model; the constructor touches nothing
    q = emb.embed_query("how do I reset my password?")      # np.ndarray, shape (384,)
    P = emb.embed_passages(["To reset your password ..."])  # shape (1, 384)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from services.core.models.backends import BACKENDS, cache_dir_for, use_backend
from services.core.models.model_registry import EMBEDDERS, LoadOnce, resolve, spec_for
from services.core.types import InferenceBackend

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from transformers import PreTrainedTokenizerBase

logger = logging.getLogger(__name__)


@runtime_checkable
class Embedder(Protocol):
    """A bi-encoder component: built cheaply, loaded by ``warm_up()``, then used.

    ``name`` is known from the configuration alone; everything else needs the model, so call
    ``warm_up()`` (idempotent and thread-safe) first.
    """

    name: str

    @property
    def ready(self) -> bool:
        """Whether ``warm_up()`` has loaded the model (what the API's readiness probe reports)."""

    def warm_up(self) -> None: ...

    @property
    def dimension(self) -> int: ...

    @property
    def max_tokens(self) -> int:
        """Longest passage (in tokenizer tokens, without special tokens) the model reads in full."""

    def count_tokens(self, text: str) -> int: ...

    def embed_query(self, text: str) -> np.ndarray: ...

    def embed_passages(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray: ...


@runtime_checkable
class TokenEmbedder(Protocol):
    """An embedder that can also return one vector per token, for late interaction (ColBERT-style MaxSim)."""

    def embed_query_tokens(self, text: str) -> np.ndarray: ...

    def embed_passages_with_tokens(self, texts: Sequence[str]) -> tuple[np.ndarray, list[np.ndarray]]: ...


class SentenceTransformerEmbedder:
    """Any sentence-transformers bi-encoder; prefixes and normalisation come from the registry or settings.

    The constructor only stores the configuration: it resolves no path and loads no model, so building
    one is free (the ingest CLI builds one even to delete a document). ``warm_up()`` finds the weights and
    loads them, once, whichever thread calls it first; every method that needs the model raises a
    ``RuntimeError`` until then instead of loading it behind the caller's back (a load takes seconds and
    may fail, which belongs at start-up, not in the middle of a request). The stack builds embedders in
    ``services.core.factory.build_embedder``.

    ``backend`` picks what runs the transformer (``torch``, ``onnx``, ``onnx-int8``, ``openvino``,
    ``openvino-int8``; see services/core/models/backends.py). Vectors differ slightly between backends, so
    ``name`` carries the backend (except for torch, keeping existing stores valid) and the ingest index
    signature, which is built from it, changes with it: switching backends re-embeds instead of mixing.
    """

    def __init__(
        self,
        model: str = "all-MiniLM-L6-v2",
        *,
        query_prefix: str | None = None,
        passage_prefix: str | None = None,
        normalize: bool | None = None,
        batch_size: int = 32,
        device: str = "cpu",
        backend: InferenceBackend = "torch",
        model_cache: Path | str = Path(".data/models"),
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"RAG_EMBED_BACKEND={backend!r} is not one of {', '.join(BACKENDS)}")
        self.model_name = model
        self.backend = backend
        self.name = model if backend == "torch" else f"{model}@{backend}"
        self.model_cache = Path(model_cache)  # exports of non-torch backends
        spec = spec_for(model, EMBEDDERS)  # conventions only: where the weights are is resolved in warm_up
        self.query_prefix = spec.query_prefix if query_prefix is None else query_prefix
        self.passage_prefix = spec.passage_prefix if passage_prefix is None else passage_prefix
        self.normalize = spec.normalize if normalize is None else normalize
        self.batch_size = batch_size
        self.device = device
        self._model: LoadOnce[SentenceTransformer] = LoadOnce(f"bi-encoder {self.name}", self._load)

    @property
    def ready(self) -> bool:
        return self._model.ready

    def warm_up(self) -> None:
        """Find and load the model (exporting it for a non-torch backend on first use); later calls return at once."""
        self._model.warm_up()

    def _load(self) -> SentenceTransformer:
        target, _ = resolve(self.model_name, EMBEDDERS, "RAG_EMBED_MODEL")  # a missing model fails here, fast
        from sentence_transformers import SentenceTransformer

        logger.info("loading bi-encoder %s from %s", self.name, target)
        model = SentenceTransformer(target, device=self.device, local_files_only=True)
        use_backend(
            model,
            self.backend,
            cache_dir=cache_dir_for(self.model_cache, self.model_name, self.backend),
            source=Path(target),
        )
        return model

    @property
    def model(self) -> SentenceTransformer:
        return self._model.get()

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        return self.model.tokenizer

    @property
    def dimension(self) -> int:
        dim = self.model.get_embedding_dimension()
        assert dim is not None
        return int(dim)

    @property
    def max_tokens(self) -> int:
        # Room for [CLS]/[SEP] and the passage prefix, so a chunk of this size is never truncated.
        prefix = self.count_tokens(self.passage_prefix) if self.passage_prefix else 0
        limit = self.model.max_seq_length
        if limit is None:
            raise ValueError(f"{self.name} declares no max_seq_length: chunks could not be sized to fit it")
        return int(limit) - 2 - prefix

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def embed_query(self, text: str) -> np.ndarray:
        vec = self.model.encode(
            [self.query_prefix + text],
            normalize_embeddings=self.normalize,
            convert_to_numpy=True,
            show_progress_bar=False,  # one query: a bar per question would flood a tool's log at INFO
        )
        return np.asarray(vec[0], dtype=np.float32)

    def embed_passages(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vecs = self.model.encode(
            [self.passage_prefix + t for t in texts],
            batch_size=self.batch_size,
            normalize_embeddings=self.normalize,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        return np.asarray(vecs, dtype=np.float32)

    # -- late interaction: the same forward pass, keeping the per-token vectors --------------------

    def _token_outputs(self, texts: list[str]) -> list[dict]:
        # output_value=None gives one dict of outputs per text; the library's overloads do not say so.
        return self.model.encode(  # type: ignore[return-value]
            texts, batch_size=self.batch_size, output_value=None, convert_to_numpy=True, show_progress_bar=False
        )

    def _tokens(self, out: dict) -> np.ndarray:
        mask = np.asarray(out["attention_mask"], dtype=bool)
        ids = np.asarray(out["input_ids"])
        special = np.isin(ids, list(self.tokenizer.all_special_ids))
        vecs = np.asarray(out["token_embeddings"], dtype=np.float32)[mask & ~special]
        if len(vecs) == 0:  # an all-special text: keep one vector so the point stays valid
            vecs = np.asarray(out["token_embeddings"], dtype=np.float32)[:1]
        return vecs / np.clip(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12, None)

    def embed_query_tokens(self, text: str) -> np.ndarray:
        return self._tokens(self._token_outputs([self.query_prefix + text])[0])

    def embed_passages_with_tokens(self, texts: Sequence[str]) -> tuple[np.ndarray, list[np.ndarray]]:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32), []
        outs = self._token_outputs([self.passage_prefix + t for t in texts])
        dense = np.stack([np.asarray(o["sentence_embedding"], dtype=np.float32) for o in outs])
        if self.normalize:
            dense /= np.clip(np.linalg.norm(dense, axis=1, keepdims=True), 1e-12, None)
        return dense, [self._tokens(o) for o in outs]
