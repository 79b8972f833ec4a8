"""Shared by the reliability tests: the hostile corpus (built once), the real SmolLM2 server, app builders."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures_docs import API_CORPUS
from hostile import HostileCase, hostile_cases
from llm_server import free_port, start_llm_server, stop

from services.api.components import Components, build_components
from services.core.factory import build_store
from services.core.models.embedder import SentenceTransformerEmbedder
from services.core.settings import Settings
from services.core.storage.store import VectorStore

LLM_ALIAS = "smollm2-135m"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.reliability)


@pytest.fixture(scope="session")
def hostile() -> list[HostileCase]:
    return hostile_cases()


@pytest.fixture(scope="session")
def llm_server() -> Iterator[tuple[Any, str]]:
    """The real llama.cpp server with the packaged SmolLM2-135M, shared by the modules that never stop it."""
    proc, base_url = start_llm_server(LLM_ALIAS)
    try:
        yield proc, base_url
    finally:
        stop(proc)


def closed_port_url(path: str = "/v1") -> str:
    return f"http://127.0.0.1:{free_port()}{path}"


def rel_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "_env_file": None,
        "qdrant_path": ":memory:",
        "reranker": "none",
        "llm_model": LLM_ALIAS,
        "llm_max_tokens": 24,
        "llm_max_retries": 0,
        "llm_connect_timeout_s": 1.0,
        "top_n": 10,
        "top_k": 2,
        "context_max_chars": 1500,  # short prompts: SmolLM2 on a shared 2-core CPU
    }
    values.update(overrides)
    return Settings(**values)


def build(settings: Settings, embedder: SentenceTransformerEmbedder, store: VectorStore | None = None) -> Components:
    """The app's components as create_app builds them, around the session's already-loaded embedder; the store
    is the one the settings pick: an ephemeral qdrant-edge store by default (``RAG_QDRANT_EMBEDDED_ENGINE``)."""
    built = build_components(settings, embedder=embedder, store=store or build_store(settings))
    built.warm_up()
    return built


def close(components: Components) -> None:
    with contextlib.suppress(Exception):  # the LLM client's loop belonged to a finished TestClient
        asyncio.run(components.llm.aclose())  # type: ignore[attr-defined]
    components.close_sync()


def replace(components: Components, **changes: Any) -> Components:
    return dataclasses.replace(components, **changes)


def corpus_files() -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (name, text.encode(), "text/markdown")) for name, text in API_CORPUS.items()]
