"""POST /feedback and /conversations over the chat routes (fakes for retrieval, gate, verifier and LLM; a real
SQLite file): every answer carries an id, is recorded under its conversation, and takes feedback by that id
or by the OpenAI route's completion id; bad input and a database that is down get clear errors."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_chat import BREAD, ROUTER, FakeGate, FakeRetriever, FakeVerifier
from fake_llm import FakeOpenAIServer
from fastapi.testclient import TestClient

from services.api.app import create_app
from services.api.components import Components
from services.contract.schemas import FEEDBACK_COMMENT_MAX_CHARS
from services.core.models.llm import OpenAICompatibleLLM
from services.core.models.reranker import NoReranker
from services.core.settings import ApiSettings

pytestmark = pytest.mark.unit

MESSAGES = [{"role": "user", "content": "How do I reset the router?"}]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as srv:
        yield srv


def components_for(server: FakeOpenAIServer, database_url: str) -> Components:
    return Components(
        settings=ApiSettings(_env_file=None, top_k=5, top_n=10, database_url=database_url, database_timeout_s=1),
        embedder=None,  # type: ignore[arg-type]
        store=None,  # type: ignore[arg-type]
        reranker=NoReranker(),
        llm=OpenAICompatibleLLM(server.base_url, model="fake-llm", max_retries=0),
        retriever=FakeRetriever([ROUTER, BREAD]),  # type: ignore[arg-type]
        pipeline=None,  # type: ignore[arg-type]
        gate=FakeGate("answer"),  # type: ignore[arg-type]
        verifier=FakeVerifier(),  # type: ignore[arg-type]
    )


@pytest.fixture
def client(server: FakeOpenAIServer, tmp_path: Path) -> Iterator[TestClient]:
    server.reset()
    with TestClient(create_app(components=components_for(server, f"sqlite:///{tmp_path / 'app.db'}"))) as c:
        yield c


def ask(client: TestClient, session: str | None = "conv-1", **body: Any) -> dict[str, Any]:
    headers = {"X-Session-Id": session} if session else {}
    r = client.post("/chat", json={"messages": MESSAGES, **body}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def test_an_answer_takes_feedback_by_its_id_and_its_conversation_shows_both(client: TestClient) -> None:
    first = ask(client)
    assert len(first["id"]) == 32
    r = client.post(
        "/feedback", json={"id": first["id"], "rating": "down", "reason": "wrong_source", "comment": "page 3"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["review"] == "pending" and r.json()["answer_id"] == first["id"]
    second = ask(client)
    assert second["id"] != first["id"]

    listed = client.get("/conversations").json()
    assert [(c["id"], c["turns"], c["title"]) for c in listed] == [("conv-1", 2, MESSAGES[0]["content"])]
    conversation = client.get("/conversations/conv-1").json()
    turns = conversation["turns"]
    assert [t["id"] for t in turns] == [first["id"], second["id"]]
    assert turns[0]["response"]["answer"] == first["answer"]
    assert turns[0]["response"]["sources"] == first["sources"]  # what it rested on, kept
    assert turns[0]["feedback"]["reason"] == "wrong_source" and turns[1]["feedback"] is None

    assert client.delete("/conversations/conv-1").status_code == 204
    assert client.get("/conversations/conv-1").status_code == 404
    assert client.delete("/conversations/conv-1").status_code == 404


def test_a_streamed_answer_is_recorded_before_its_done_event(client: TestClient) -> None:
    r = client.post("/chat", json={"messages": MESSAGES, "stream": True}, headers={"X-Session-Id": "s"})
    done = [json.loads(b.split("data:", 1)[1]) for b in r.text.split("\n\n") if b.startswith("event: done")]
    answer_id = done[0]["id"]
    assert client.post("/feedback", json={"id": answer_id, "rating": "up"}).status_code == 201
    assert client.get("/conversations/s").json()["turns"][0]["feedback"]["rating"] == "up"


@pytest.mark.parametrize("stream", [False, True])
def test_the_openai_route_takes_feedback_by_its_completion_id(client: TestClient, stream: bool) -> None:
    r = client.post("/v1/chat/completions", json={"messages": MESSAGES, "stream": stream})
    assert r.status_code == 200, r.text
    if stream:
        first = json.loads(r.text.split("data:", 1)[1].split("\n\n", 1)[0])
        completion_id = first["id"]
    else:
        completion_id = r.json()["id"]
    assert completion_id.startswith("chatcmpl-") and len(completion_id) == len("chatcmpl-") + 32
    r = client.post("/feedback", json={"id": completion_id, "rating": "down", "reason": "should_have_declined"})
    assert r.status_code == 201, r.text
    assert r.json()["answer_id"] == completion_id.removeprefix("chatcmpl-")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"id": "0" * 32, "rating": "down"}, 404),  # well formed, never given
        ({"id": "not-an-id", "rating": "down"}, 422),
        ({"id": "0" * 32, "rating": "meh"}, 422),
        ({"id": "0" * 32, "rating": "down", "reason": "because"}, 422),
        ({"id": "0" * 32, "rating": "down", "comment": "x" * (FEEDBACK_COMMENT_MAX_CHARS + 1)}, 422),
        ({"id": "0" * 32, "rating": "down", "extra": 1}, 422),
    ],
)
def test_bad_feedback_is_refused_with_its_reason(client: TestClient, body: dict[str, Any], status: int) -> None:
    r = client.post("/feedback", json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["message"]


def test_with_the_database_down_chat_answers_and_feedback_says_why(server: FakeOpenAIServer) -> None:
    server.reset()
    down = components_for(server, "postgresql+psycopg://nobody@127.0.0.1:1/ragstack")
    with TestClient(create_app(components=down)) as client:
        answer = ask(client)
        assert answer["answer"] and answer["id"]
        r = client.post("/feedback", json={"id": answer["id"], "rating": "down"})
        assert r.status_code == 503
        assert "database" in r.json()["error"]["message"] and "127.0.0.1" in r.json()["error"]["message"]
        assert r.headers["Retry-After"]
        assert client.get("/conversations").status_code == 503


def test_the_suite_never_writes_the_checkouts_database() -> None:
    """tests/conftest.py points every API a test builds at a temporary SQLite file; nothing may undo that (a
    conftest that unset it sent the whole suite's answers into the checkout's .data/app.db)."""
    assert "/ragstack-test-db-" in os.environ["RAG_DATABASE_URL"]
