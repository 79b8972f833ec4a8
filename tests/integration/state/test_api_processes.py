"""The application database under real API processes (``python -m services.api.main``): two of them on one real
PostgreSQL share answers, feedback and conversations; with the default SQLite, one restarted keeps them.

No LLM is needed: on an empty store an answer is declined before any LLM call, and it is recorded like any other.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from apiproc import ApiProcess, start_api
from postgres_server import postgres_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NO_LLM = {"RAG_LLM_BASE_URL": "http://127.0.0.1:9/v1", "RAG_LLM_MAX_RETRIES": "0"}


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


def ask(api: ApiProcess, session: str) -> str:
    body = {"messages": [{"role": "user", "content": "Is anything indexed yet?"}]}
    r = httpx.post(f"{api.base}/chat", json=body, headers={"X-Session-Id": session}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["decline_reason"] == "no_relevant_sources"
    return str(r.json()["id"])


def test_two_api_processes_on_one_postgresql_share_feedback_and_conversations(pg_url: str, tmp_path: Path) -> None:
    env = NO_LLM | {"RAG_DATABASE_URL": pg_url}
    first = start_api(tmp_path / "a", env)  # each its own embedded store; one database
    second = start_api(tmp_path / "b", env)
    try:
        answer = ask(first, "shared-conversation")
        r = httpx.post(f"{second.base}/feedback", json={"id": answer, "rating": "down", "reason": "other"}, timeout=30)
        assert r.status_code == 201, r.text
        ask(second, "shared-conversation")
        kept = httpx.get(f"{first.base}/conversations/shared-conversation", timeout=30).json()
        assert [t["id"] for t in kept["turns"]][0] == answer and len(kept["turns"]) == 2
        assert kept["turns"][0]["feedback"]["rating"] == "down"
    finally:
        first.stop()
        second.stop()
    assert not first.crash_lines() and not second.crash_lines()


def test_the_default_sqlite_keeps_them_across_a_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAG_DATABASE_URL", raising=False)  # tests/conftest.py's; the default is <data dir>/app.db
    data = tmp_path / "data"
    data.mkdir()
    api = start_api(data, NO_LLM)
    try:
        answer = ask(api, "kept")
        assert httpx.post(f"{api.base}/feedback", json={"id": answer, "rating": "up"}, timeout=30).status_code == 201
    finally:
        api.stop()
    assert (data / "app.db").is_file()
    again = start_api(data, NO_LLM)
    try:
        kept = httpx.get(f"{again.base}/conversations/kept", timeout=30).json()
        assert kept["turns"][0]["id"] == answer and kept["turns"][0]["feedback"]["rating"] == "up"
    finally:
        again.stop()
