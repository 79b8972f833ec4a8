"""FAKE bi-encoder for tests that need real ingest and a real store but not the model: deterministic unit
vectors seeded by the text (same text, same vector), words counted as tokens. It has nothing to load, but it
keeps the component contract: ``ready`` turns true on ``warm_up()``, which counts its calls.

    embedder = FakeEmbedder()            # 16-d
    pipeline = build_pipeline(settings, embedder, store)
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np


class FakeEmbedder:
    name = "fake-embedder"

    def __init__(self, dimension: int = 16) -> None:
        self._dimension = dimension
        self.ready = False
        self.warm_ups = 0

    def warm_up(self) -> None:
        self.warm_ups += 1
        self.ready = True

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def max_tokens(self) -> int:
        return 256

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def _vector(self, text: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        v = np.random.default_rng(seed).standard_normal(self._dimension).astype(np.float32)
        return v / np.linalg.norm(v)

    def embed_query(self, text: str) -> np.ndarray:
        return self._vector(text)

    def embed_passages(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        return np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, self._dimension), np.float32)
