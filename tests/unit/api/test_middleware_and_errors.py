"""LimitsMiddleware (body size, concurrency), the error shape, and upload filename sanitising, on a tiny app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI, HTTPException, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel

from services.api import errors
from services.api.middleware import LimitsMiddleware
from services.api.routes.documents import safe_filename
from services.core.models.llm import LLMUnavailableError

pytestmark = pytest.mark.unit

MAX_BODY = 1024
MAX_UPLOAD = 4096


class Item(BaseModel):
    name: str


def make_app(max_concurrent: int = 4) -> FastAPI:
    app = FastAPI()
    errors.install(app)

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    @app.post("/items")
    async def items(item: Item) -> dict[str, str]:
        return {"name": item.name}

    @app.post("/documents")
    async def documents(request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    @app.post("/search")
    async def slow_search(request: Request) -> dict[str, bool]:
        await asyncio.sleep(float(request.query_params.get("sleep", "0")))
        if request.query_params.get("fail"):
            raise RuntimeError("the route crashed")
        return {"ok": True}

    @app.get("/teapot")
    async def teapot() -> None:
        raise HTTPException(418, "short and stout")

    @app.get("/llm")
    async def llm() -> None:
        raise LLMUnavailableError("LLM unreachable at http://x: ConnectError")

    app.add_middleware(
        LimitsMiddleware, max_body_bytes=MAX_BODY, max_upload_bytes=MAX_UPLOAD, max_concurrent=max_concurrent
    )
    return app


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(make_app()) as c:
        yield c


def test_small_body_passes(client: TestClient) -> None:
    r = client.post("/echo", content=b"x" * 100)
    assert r.status_code == 200 and r.json() == {"received": 100}


def test_declared_content_length_over_limit_is_413(client: TestClient) -> None:
    r = client.post("/echo", content=b"x" * (MAX_BODY + 1))
    assert r.status_code == 413
    body = r.json()
    assert f"the limit is {MAX_BODY}" in body["detail"]
    assert body["error"]["code"] == 413 and body["error"]["message"] == body["detail"]


def test_upload_prefix_has_its_own_larger_limit(client: TestClient) -> None:
    assert client.post("/documents", content=b"x" * (MAX_BODY * 2)).status_code == 200
    r = client.post("/documents", content=b"x" * (MAX_UPLOAD + 1))
    assert r.status_code == 413 and str(MAX_UPLOAD) in r.json()["detail"]


def _chunks(total: int, size: int = 256) -> Iterator[bytes]:
    for _ in range(total // size):
        yield b"x" * size


@pytest.mark.parametrize("path", ["/echo", "/items"])
def test_chunked_body_without_content_length_over_limit_is_413(client: TestClient, path: str) -> None:
    r = client.post(path, content=_chunks(MAX_BODY * 4), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert str(MAX_BODY) in r.json()["detail"]
    assert r.json()["error"]["code"] == 413


def test_lying_content_length_does_not_get_past_the_limit() -> None:
    app = make_app()

    async def body() -> AsyncIterator[bytes]:
        for part in _chunks(MAX_BODY * 4):
            yield part

    async def main() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as ac:
            request = ac.build_request("POST", "/echo", content=body())
            request.headers["content-length"] = "10"
            return await ac.send(request)

    assert asyncio.run(main()).status_code == 413


def test_second_concurrent_heavy_request_gets_503_with_retry_after() -> None:
    app = make_app(max_concurrent=1)

    async def main() -> tuple[httpx.Response, httpx.Response, httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=10) as ac:

            async def second() -> httpx.Response:
                await asyncio.sleep(0.2)  # the first request is inside the route by now
                return await ac.post("/search")

            async def light() -> httpx.Response:
                await asyncio.sleep(0.2)
                return await ac.post("/echo", content=b"{}")  # not a heavy path: never throttled

            first, busy, other = await asyncio.gather(ac.post("/search?sleep=1.0"), second(), light())
            after = await ac.post("/search")  # the slot was released
            return first, busy, other, after

    first, busy, other, after = asyncio.run(main())
    assert first.status_code == 200
    assert busy.status_code == 503
    assert busy.headers["retry-after"] == "1"
    assert "busy" in busy.json()["detail"]
    assert other.status_code == 200
    assert after.status_code == 200


def test_get_is_never_throttled() -> None:
    middleware = LimitsMiddleware(make_app(), max_body_bytes=MAX_BODY, max_upload_bytes=MAX_UPLOAD, max_concurrent=1)
    middleware.in_flight = 1  # pretend a heavy request is running
    with TestClient(middleware) as c:
        assert c.get("/teapot").status_code == 418
        assert c.post("/search").status_code == 503
    assert middleware.in_flight == 1


def test_a_heavy_request_that_crashes_still_releases_its_slot() -> None:
    app = make_app(max_concurrent=1)
    with TestClient(app, raise_server_exceptions=False) as c:
        assert c.post("/search?fail=1").status_code == 500
        assert c.post("/search").status_code == 200  # not 503: the crashed request gave its slot back


def test_error_shape_for_http_and_validation_errors(client: TestClient) -> None:
    r = client.get("/teapot")
    assert r.status_code == 418
    assert r.json()["detail"] == "short and stout" and r.json()["error"]["message"] == "short and stout"
    r = client.post("/items", json={"nom": "x"})
    assert r.status_code == 422
    assert "name" in r.json()["error"]["message"]
    assert r.json()["error"]["type"] == "invalid_request_error"
    r = client.post("/items", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422


def test_llm_unavailable_maps_to_503(client: TestClient) -> None:
    r = client.get("/llm")
    assert r.status_code == 503
    assert r.headers["retry-after"] == "5"
    assert "unreachable" in r.json()["error"]["message"]


def test_routing_errors_have_the_same_shape(client: TestClient) -> None:
    r = client.get("/nope")
    assert r.status_code == 404
    assert r.json()["error"] == {"message": "Not Found", "type": "not_found_error", "code": 404}
    r = client.get("/search")
    assert r.status_code == 405
    assert r.json()["error"]["code"] == 405


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\x\\a.pdf", "a.pdf"),
        ("a\x00b\x1f\x7fc.md", "abc.md"),
        ("re\u200bport.md", "report.md"),  # zero-width space is a format char (Cf)
        ("  many   spaces .md ", "many spaces .md"),
        (".hidden.md", "hidden.md"),
        ("dir/", ""),
        ("", ""),
        (None, ""),
    ],
)
def test_safe_filename(raw: str | None, expected: str) -> None:
    assert safe_filename(raw) == expected


def test_safe_filename_is_bounded() -> None:
    assert len(safe_filename("a" * 1000 + ".md")) == 200
