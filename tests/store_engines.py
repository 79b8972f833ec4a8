"""The embedded store a test should use: whichever engine the settings pick (``RAG_QDRANT_EMBEDDED_ENGINE``),
so one run of a suite covers the default engine and ``RAG_QDRANT_EMBEDDED_ENGINE=local`` runs it on the other."""

from __future__ import annotations

from pathlib import Path

from services.core.factory import build_store
from services.core.settings import Settings
from services.core.store import VectorStore


def open_store(path: str | Path, **settings: object) -> VectorStore:
    return build_store(Settings(_env_file=None, qdrant_path=str(path), **settings))  # type: ignore[arg-type]
