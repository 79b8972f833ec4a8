"""Schemathesis over the app on fakes (FakeEmbedder, in-memory Qdrant, the FAKE LLM server), in both auth modes:
no request the schema allows or almost allows gets a 5xx, responses match the schema, and the declared auth is
the enforced one (local mode: none declared, none needed; with a key: the bearer scheme, 401 without it).
The real models and LLM are fuzzed in tests/reliability/test_schemathesis.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fake_embedder import FakeEmbedder
from fake_llm import FakeOpenAIServer
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from schema_fuzz import fuzz_every_operation

from services.api.app import create_app
from services.api.components import build_components
from services.core.settings import ApiSettings
from services.core.storage.store import QdrantStore

pytestmark = pytest.mark.unit

KEY = "fuzz-key-0123456789"
MAX_EXAMPLES = 8
DOCS = {
    "router.md": "# Router\n\nHold the reset button for ten seconds. The lights then blink.\n",
    "bread.md": "# Sourdough\n\nSourdough needs a starter and a long rise.\n",
}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as srv:
        yield srv


@pytest.fixture(params=["local", "key"])
def app_and_headers(request: pytest.FixtureRequest, server: FakeOpenAIServer) -> Iterator[tuple[FastAPI, dict]]:
    extra: dict[str, Any] = {"api_key": SecretStr(KEY)} if request.param == "key" else {}
    headers = {"Authorization": f"Bearer {KEY}"} if extra else {}
    s = ApiSettings(
        _env_file=None,
        qdrant_path=":memory:",
        reranker="none",
        llm_base_url=server.base_url,
        llm_model="fake",
        llm_max_retries=0,
        top_n=10,
        top_k=2,
        max_concurrent_requests=64,  # a fuzzer's burst is not overload
        **extra,
    )
    store = QdrantStore(path=":memory:", collection=s.collection)
    components = build_components(s, embedder=FakeEmbedder(), store=store)
    components.warm_up()
    app = create_app(components=components)
    try:
        with TestClient(app) as client:
            files = [("files", (name, text.encode(), "text/markdown")) for name, text in DOCS.items()]
            assert client.post("/documents", files=files, headers=headers).status_code == 200
            yield app, headers
    finally:
        components.close_sync()


def test_api_conforms_to_its_schema_in_both_auth_modes(app_and_headers: tuple[FastAPI, dict]) -> None:
    app, headers = app_and_headers
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9
    checked = fuzz_every_operation(operations, headers, max_examples=MAX_EXAMPLES, keep_corpus=False)
    assert len(checked) >= len(operations)
