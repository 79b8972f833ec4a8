"""Load on loopback against the real API process (uvicorn) and the real SmolLM2 server.

Phase 1: 8 concurrent clients mix /search and /chat for a fixed time: every request succeeds; p50/p95 are
printed and written to ``.data/reliability/load.json`` (``RAG_LOAD_REPORT`` to change). No assertion on
speed: this machine's numbers are not a contract. It runs on both embedded stores: qdrant-edge (the default;
the report is its run) and qdrant-client's local mode (an API process of its own).
Phase 2: a burst of 20 simultaneous /chat requests over ``RAG_MAX_CONCURRENT_REQUESTS=10``: the excess is
refused at once with 503 + Retry-After (back-pressure), the rest are answered, and the server carries on.
The API runs with tracing pointed at a closed port (Phoenix down) and with both secrets set, and its log
is checked for them afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from apiproc import ApiProcess, start_api
from conftest import LLM_ALIAS, closed_port_url, corpus_files
from llm_server import REPO_ROOT
from store_engines import ENGINES

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

CLIENTS = 8
CHAT_CLIENTS = 2  # of the 8: /search and /chat in turn; the other 6 search (the LLM serves one at a time)
DURATION_S = 8.0
LIMIT = 10
BURST = 20
API_KEY = "sk-load-API-5e1d0c9b8a7f"
LLM_KEY = "sk-load-LLM-3b2a1f0e9d8c"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
QUERIES = [
    "my internet box froze, how do I reboot it?",
    "how long should bread dough rise?",
    "when is the tax return due?",
    "what makes a volcano erupt?",
    "how do I get a new password?",
]


def _start(llm_server: tuple[object, str], tmp_path_factory: pytest.TempPathFactory, engine: str) -> ApiProcess:
    process = start_api(
        tmp_path_factory.mktemp(f"load-{engine}"),
        {
            "RAG_QDRANT_EMBEDDED_ENGINE": engine,
            "RAG_LLM_BASE_URL": llm_server[1],
            "RAG_LLM_MODEL": LLM_ALIAS,
            "RAG_LLM_MAX_TOKENS": "4",
            "RAG_LLM_TIMEOUT_S": "120",
            "RAG_MAX_CONCURRENT_REQUESTS": str(LIMIT),
            "RAG_TOP_K": "2",
            "RAG_CONTEXT_MAX_CHARS": "1500",
            "RAG_API_KEY": API_KEY,
            "RAG_LLM_API_KEY": LLM_KEY,
            "RAG_TRACING_ENDPOINT": closed_port_url("/v1/traces"),
        },
    )
    try:
        r = httpx.post(f"{process.base}/documents", files=corpus_files(), headers=AUTH, timeout=120)
        assert r.status_code == 200 and {f["status"] for f in r.json()["files"]} == {"added"}, r.text
    except BaseException:
        process.stop()
        raise
    return process


@pytest.fixture(scope="module")
def api(llm_server: tuple[object, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    """The API on the default embedded store, qdrant-edge."""
    process = _start(llm_server, tmp_path_factory, "edge")
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def api_on(
    request: pytest.FixtureRequest, llm_server: tuple[object, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiProcess]:
    """The API on the engine the test is parametrised with: the module's Edge one, or one on local mode."""
    if request.param == "edge":
        yield request.getfixturevalue("api")
        return
    process = _start(llm_server, tmp_path_factory, request.param)
    try:
        yield process
        assert process.crash_lines() == []
    finally:
        process.stop()


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1] if len(values) >= 2 else values[0]


async def _client(base: str, n: int, deadline: float, log: list[tuple[str, int, float, str]]) -> None:
    async with httpx.AsyncClient(base_url=base, headers=AUTH, timeout=180) as http:
        i = n
        while time.monotonic() < deadline:
            query = QUERIES[i % len(QUERIES)]
            if n < CHAT_CLIENTS and i % 2:
                path, body = "/chat", {"messages": [{"role": "user", "content": query}]}
            else:
                path, body = "/search", {"query": query}
            t0 = time.perf_counter()
            r = await http.post(path, json=body)
            log.append((path, r.status_code, time.perf_counter() - t0, r.text[:200] if r.status_code != 200 else ""))
            i += 1


@pytest.mark.parametrize("api_on", ENGINES, indirect=True)
def test_sustained_load_has_no_errors_and_reports_p95(api_on: ApiProcess, request: pytest.FixtureRequest) -> None:
    engine = request.node.callspec.params["api_on"]
    log: list[tuple[str, int, float, str]] = []

    async def run() -> None:
        deadline = time.monotonic() + DURATION_S
        await asyncio.gather(*(_client(api_on.base, n, deadline, log) for n in range(CLIENTS)))

    started = time.perf_counter()
    asyncio.run(run())
    wall = time.perf_counter() - started
    errors = [entry for entry in log if entry[1] != 200]
    assert not errors, errors[:5]
    report: dict[str, object] = {
        "engine": engine,
        "clients": CLIENTS,
        "duration_s": round(wall, 1),
        "requests": len(log),
    }
    for path in ("/search", "/chat"):
        latencies = [entry[2] * 1000 for entry in log if entry[0] == path]
        assert latencies, f"no {path} request completed"
        report[path] = {
            "requests": len(latencies),
            "p50_ms": round(statistics.median(latencies), 1),
            "p95_ms": round(p95(latencies), 1),
            "max_ms": round(max(latencies), 1),
        }
    report["requests_per_s"] = round(len(log) / wall, 2)
    if engine == "edge":  # the default store's run is the report
        out = Path(os.environ.get("RAG_LOAD_REPORT", REPO_ROOT / ".data" / "reliability" / "load.json"))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2))
    print(f"\nload: {json.dumps(report)}")


def test_burst_over_the_limit_gets_fast_503_with_retry_after(api: ApiProcess) -> None:
    async def one(http: httpx.AsyncClient, n: int) -> tuple[int, float, str, str]:
        t0 = time.perf_counter()
        r = await http.post("/chat", json={"messages": [{"role": "user", "content": QUERIES[n % len(QUERIES)]}]})
        return r.status_code, time.perf_counter() - t0, r.headers.get("retry-after", ""), r.text[:200]

    async def burst() -> list[tuple[int, float, str, str]]:
        limits = httpx.Limits(max_connections=BURST, max_keepalive_connections=BURST)
        async with httpx.AsyncClient(base_url=api.base, headers=AUTH, timeout=300, limits=limits) as http:
            return await asyncio.gather(*(one(http, n) for n in range(BURST)))

    results = asyncio.run(burst())
    accepted = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] == 503]
    assert len(accepted) + len(refused) == BURST, [r for r in results if r[0] not in (200, 503)]
    assert 1 <= len(accepted) <= LIMIT
    assert len(refused) >= BURST - LIMIT
    for _, _, retry_after, text in refused:
        assert retry_after.isdigit(), text
        assert "busy" in json.loads(text)["error"]["message"]
    # Refusals are immediate: every one came back before the quickest accepted answer.
    assert max(r[1] for r in refused) < min(r[1] for r in accepted)
    print(
        f"\nburst: {len(accepted)} answered (p95 {p95([r[1] * 1000 for r in accepted]):.0f} ms), "
        f"{len(refused)} refused (max {max(r[1] for r in refused) * 1000:.0f} ms)"
    )
    # The server carries on normally afterwards.
    r = httpx.post(f"{api.base}/search", json={"query": QUERIES[0]}, headers=AUTH, timeout=60)
    assert r.status_code == 200


def test_the_server_log_holds_no_secret_and_no_crash(api: ApiProcess) -> None:
    httpx.post(f"{api.base}/search", json={"query": "x"}, headers={"Authorization": f"Bearer {API_KEY}-no"}, timeout=30)
    text = api.log_text()
    assert "POST /search" in text  # the access log is there, so the check below means something
    assert API_KEY not in text and LLM_KEY not in text
    assert api.crash_lines() == []
    assert api.proc.poll() is None
