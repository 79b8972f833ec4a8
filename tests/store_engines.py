"""The embedded store a test should use: whichever engine the settings pick (``RAG_QDRANT_EMBEDDED_ENGINE``),
so one run of a suite covers the default engine and ``RAG_QDRANT_EMBEDDED_ENGINE=local`` runs it on the other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from services.core.factory import build_store
from services.core.settings import Settings
from services.core.storage.store import QdrantStore, VectorStore
from services.core.storage.store_edge import EdgeStore

ENGINES = ("edge", "local")  # the embedded engines (RAG_QDRANT_EMBEDDED_ENGINE) a store test can run on


def open_store(path: str | Path, **settings: object) -> VectorStore:
    return build_store(Settings(_env_file=None, qdrant_path=str(path), **settings))  # type: ignore[arg-type]


def stored_chunks(store: VectorStore, *fields: str) -> list[tuple[str, dict[str, Any]]]:
    """(id, payload) of every chunk the store holds, read through the engine's own scroll: what a test checks
    against the manifest, whichever engine (Edge, or qdrant-client local mode / a server) wrote it."""
    if isinstance(store, EdgeStore):
        return [
            (str(r.id), {f: (r.payload or {}).get(f) for f in fields})
            for page in store.pages(store.collection, batch=512)
            for r in page
        ]
    assert isinstance(store, QdrantStore), type(store)
    out: list[tuple[str, dict[str, Any]]] = []
    if not store.client.collection_exists(store.collection):
        return out
    offset = None
    while True:
        page, offset = store.client.scroll(store.collection, limit=512, offset=offset, with_payload=list(fields))
        out.extend((str(p.id), dict(p.payload or {})) for p in page)
        if offset is None:
            return out
