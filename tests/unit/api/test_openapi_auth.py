"""The OpenAPI document declares the auth the runtime enforces: no credentials at all in local mode (no
RAG_API_KEY), a required HTTP bearer scheme on every route but the probes when a key is configured."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fake_chat import BREAD, ROUTER, FakeRetriever
from fastapi.testclient import TestClient
from pydantic import SecretStr

from services.api.app import create_app
from services.api.components import Components
from services.core.models.reranker import NoReranker
from services.core.settings import ApiSettings

pytestmark = pytest.mark.unit

KEY = "s3cret-key"
PROBES = {"/healthz", "/readyz"}


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            yield method.upper(), path, op


def spec_for(**settings: Any) -> dict[str, Any]:
    return create_app(ApiSettings(_env_file=None, **settings)).openapi()


def test_local_mode_declares_no_credentials() -> None:
    spec = spec_for()
    for method, path, op in operations(spec):
        assert "security" not in op, f"{method} {path}"
        assert not [p for p in op.get("parameters", []) if p["name"].lower() == "authorization"], f"{method} {path}"
        assert "401" not in op["responses"], f"{method} {path}"
    assert "securitySchemes" not in spec.get("components", {})
    assert "security" not in spec


def test_with_a_key_every_route_but_the_probes_requires_the_bearer_scheme() -> None:
    spec = spec_for(api_key=SecretStr(KEY))
    scheme = spec["components"]["securitySchemes"]["HTTPBearer"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    protected = 0
    for method, path, op in operations(spec):
        if path in PROBES:
            assert "security" not in op and "401" not in op["responses"], f"{method} {path}"
            continue
        assert op["security"] == [{"HTTPBearer": []}], f"{method} {path}"
        assert "401" in op["responses"], f"{method} {path}"
        # The scheme carries the header; it is not also a required parameter.
        assert not [p for p in op.get("parameters", []) if p["name"].lower() == "authorization"], f"{method} {path}"
        protected += 1
    assert protected >= 7


def components(**settings: Any) -> Components:
    """Components of fakes: /v1/models and /search run without any model."""
    return Components(
        settings=ApiSettings(_env_file=None, top_k=2, top_n=5, **settings),
        embedder=None,  # type: ignore[arg-type]
        store=None,  # type: ignore[arg-type]
        reranker=NoReranker(),
        llm=None,  # type: ignore[arg-type]
        retriever=FakeRetriever([ROUTER, BREAD]),  # type: ignore[arg-type]
        pipeline=None,  # type: ignore[arg-type]
    )


def test_local_mode_serves_requests_without_a_header() -> None:
    with TestClient(create_app(components=components())) as client:
        assert client.get("/v1/models").status_code == 200
        assert client.post("/search", json={"query": "router"}).status_code == 200
        # A stray header is ignored, as the document (which declares none) implies.
        assert client.get("/v1/models", headers={"Authorization": "Bearer anything"}).status_code == 200


def test_with_a_key_requests_without_the_right_bearer_token_get_401() -> None:
    with TestClient(create_app(components=components(api_key=SecretStr(KEY)))) as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
            r = client.post("/search", json={"query": "router"}, headers=headers)
            assert r.status_code == 401, headers
            assert r.headers["www-authenticate"] == "Bearer"
            assert r.json()["error"]["type"] == "authentication_error"
        assert client.get("/v1/models", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        assert client.post("/search", json={"query": "router"}, headers={"Authorization": f"Bearer {KEY}"}).is_success
        assert client.get("/healthz").status_code == 200
