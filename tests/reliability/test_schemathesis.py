"""Property-based fuzzing of the API from its own OpenAPI document (schemathesis): whatever a client sends
that the schema allows or almost allows, the app over real components (packaged embedder, in-memory Qdrant
with a small corpus, the real SmolLM2 server) answers without a 5xx, and its responses match the schema.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from conftest import build, close, corpus_files, rel_settings
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from schema_fuzz import fuzz_every_operation

from services.api.app import create_app
from services.core.models.embedder import SentenceTransformerEmbedder

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

API_KEY = "fuzz-key-0123456789"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
MAX_EXAMPLES = 12
# Not checked: "a schema-valid request is accepted". The schema cannot express the API's cross-field rules
# (top_k <= top_n; late_interaction only over a collection ingested with per-token vectors), which answer 422.


@pytest.fixture(scope="module")
def fuzz_app(embedder: SentenceTransformerEmbedder, llm_server: tuple[object, str]) -> Iterator[FastAPI]:
    url = llm_server[1]
    # Generous limits: a fuzzer's burst of requests must not be mistaken for overload (503 is tested elsewhere).
    components = build(
        rel_settings(
            llm_base_url=url,
            llm_max_tokens=8,
            llm_timeout_s=120.0,
            max_concurrent_requests=64,
            api_key=SecretStr(API_KEY),  # the schema declares bearer auth: schemathesis checks it is enforced
        ),
        embedder,
    )
    app = create_app(components=components)
    try:
        with TestClient(app) as client:  # runs the lifespan: app.state.components is set
            r = client.post("/documents", files=corpus_files(), headers=AUTH)
            assert r.status_code == 200
            yield app
    finally:
        close(components)


def test_api_conforms_to_its_schema(fuzz_app: FastAPI) -> None:
    """Every operation in /openapi.json, ``MAX_EXAMPLES`` generated requests each (valid and edge-case ones)."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} >= {
        "POST /search",
        "POST /chat",
        "POST /documents",
        "GET /documents",
        "DELETE /documents/{doc_id}",
        "POST /v1/chat/completions",
        "GET /readyz",
    }
    checked = fuzz_every_operation(operations, AUTH, max_examples=MAX_EXAMPLES, keep_corpus=True)
    assert len(checked) >= len(operations)
