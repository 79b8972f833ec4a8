"""The API over real components: packaged embedder, in-memory Qdrant, the real SmolLM2 server (one per session)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from fixtures_docs import API_CORPUS as CORPUS
from llm_server import start_llm_server, stop

from services.api.app import create_app
from services.api.components import Components, build_components
from services.core.models.embedder import SentenceTransformerEmbedder
from services.core.settings import Settings
from services.core.storage.store import QdrantStore

REPO_ROOT = Path(__file__).resolve().parents[3]
RERANKER_WEIGHTS = REPO_ROOT / "models" / "reranker-fitzgov-minilm-l6" / "model.safetensors"
LLM_ALIAS = "smollm2-135m"


@pytest.fixture(scope="session")
def llm_base_url() -> Iterator[str]:
    """The real llama.cpp server with the packaged SmolLM2-135M GGUF, started once per session."""
    proc, base_url = start_llm_server(LLM_ALIAS)
    try:
        yield base_url
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def api_embedder(request: pytest.FixtureRequest) -> SentenceTransformerEmbedder:
    """The session's packaged all-MiniLM-L6-v2 (shared with the other suites when tests/conftest.py has it)."""
    try:
        return request.getfixturevalue("embedder")
    except pytest.FixtureLookupError:
        emb = SentenceTransformerEmbedder("all-MiniLM-L6-v2")
        emb.warm_up()
        return emb


@pytest.fixture(scope="session")
def api_settings(llm_base_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        _env_file=None,
        qdrant_path=":memory:",
        upload_dir=tmp_path_factory.mktemp("uploads"),  # the job spool and journal: never the repo's .data
        reranker="cross-encoder" if RERANKER_WEIGHTS.exists() else "none",
        llm_base_url=llm_base_url,
        llm_model=LLM_ALIAS,
        llm_max_tokens=48,
        top_n=20,
        top_k=3,
    )


def close_llm(llm: object) -> None:
    # The client's connections belong to the TestClient's (now finished) event loop: best effort only.
    with contextlib.suppress(Exception):
        asyncio.run(llm.aclose())  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def components(api_settings: Settings, api_embedder: SentenceTransformerEmbedder) -> Iterator[Components]:
    store = QdrantStore(path=":memory:", collection=api_settings.collection)
    built = build_components(api_settings, embedder=api_embedder, store=store)
    built.warm_up()  # what create_app's lifespan does for the components it builds itself
    try:
        yield built
    finally:
        close_llm(built.llm)
        built.close_sync()


def _no_5xx(response: httpx.Response) -> None:
    assert response.status_code < 500, f"{response.request.method} {response.request.url} -> {response.status_code}"


@pytest.fixture(scope="session")
def client(components: Components) -> Iterator[TestClient]:
    """The app over the shared components; any 5xx response fails the test that caused it."""
    with TestClient(create_app(components=components)) as c:
        c.event_hooks = {"request": [], "response": [_no_5xx]}
        yield c


@pytest.fixture(scope="session")
def corpus(client: TestClient) -> dict[str, str]:
    """Ingest CORPUS through POST /documents; returns filename -> doc_id."""
    files = [("files", (name, text.encode(), "text/markdown")) for name, text in CORPUS.items()]
    r = client.post("/documents", files=files, data={"tags": "corpus"})
    assert r.status_code == 200, r.text
    outcomes = r.json()["files"]
    assert [o["status"] for o in outcomes] == ["added"] * len(CORPUS), outcomes
    return {o["filename"]: o["doc_id"] for o in outcomes}
