"""The application state over both databases it runs on: SQLite (the default) and a real PostgreSQL server.

One suite, two engines (congruence): recording turns, feedback and its review, conversations, retention, and
the schema's migrations (a newer schema refused, two processes sharing one PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from postgres_server import postgres_server
from sqlalchemy import text

from services.core.settings import DatabaseSettings
from services.state.db import Database, DatabaseUnavailable, SchemaTooNew, head_revision
from services.state.store import AppState, TurnRecord, UnknownTurn

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'app.db'}"
        return
    base: str = request.getfixturevalue("pg_url")
    db = Database.open(DatabaseSettings(database_url=base), migrate=False)
    with db.engine.begin() as conn:  # each test starts from an empty database
        conn.execute(text("DROP TABLE IF EXISTS feedback, turns, alembic_version CASCADE"))
    db.close()
    yield base


def open_state(url: str, retention_days: int = 0) -> AppState:
    return AppState(Database.open(DatabaseSettings(database_url=url)), retention_days=retention_days)


def turn(i: int, conversation: str | None = "c1", **kw) -> TurnRecord:
    return TurnRecord(
        id=f"{i:032x}",
        question=f"question {i}?",
        answer=f"answer {i} [1]",
        declined=False,
        conversation_id=conversation,
        detail={"sources": [{"n": 1, "doc_id": "d1", "title": "Doc"}], "models": {"llm": "m"}},
        **kw,
    )


def test_a_turn_is_recorded_and_read_back_whole(url: str) -> None:
    state = open_state(url)
    state.record_turn(turn(1, span_id="00f067aa0ba902b7", trace_id="4bf92f3577b34da6a3ce929d0e0e4736"))
    got = state.turn(f"{1:032x}")
    assert (got.question, got.answer, got.conversation_id) == ("question 1?", "answer 1 [1]", "c1")
    assert got.detail["sources"][0]["doc_id"] == "d1" and got.span_id == "00f067aa0ba902b7"
    assert got.created_at is not None and got.created_at.tzinfo is not None
    assert state.turn(f"chatcmpl-{1:032x}").id == got.id  # the OpenAI route's completion id names it too
    with pytest.raises(UnknownTurn):
        state.turn("f" * 32)
    state.db.close()


def test_feedback_replaces_the_earlier_one_and_a_thumbs_down_waits_for_review(url: str) -> None:
    state = open_state(url)
    state.record_turn(turn(1))
    up = state.give_feedback(f"{1:032x}", "up")
    assert up.review == "none"
    down = state.give_feedback(f"{1:032x}", "down", "wrong_source", "cited the wrong page")
    assert (down.id, down.rating, down.review, down.comment) == (up.id, "down", "pending", "cited the wrong page")
    [pending] = state.feedback(review="pending")
    assert pending.turn is not None and pending.turn.question == "question 1?"
    with pytest.raises(UnknownTurn):
        state.give_feedback("e" * 32, "down")
    with pytest.raises(ValueError, match="expected behaviour"):
        state.review(down.id, accept=True)
    accepted = state.review(down.id, accept=True, expect="abstain")
    assert (accepted.review, accepted.expect) == ("accepted", "abstain")
    assert state.feedback(review="pending") == []
    assert [f.id for f in state.feedback(review="accepted")] == [down.id]
    state.db.close()


def test_conversations_list_newest_first_and_delete_with_their_feedback(url: str) -> None:
    state = open_state(url)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    state.record_turn(turn(1, "old", created_at=t0))
    state.record_turn(turn(2, "new", created_at=t0 + timedelta(minutes=1)))
    state.record_turn(turn(3, "old", created_at=t0 + timedelta(minutes=2)))
    state.record_turn(turn(4, None, created_at=t0))  # no conversation: an API call without a session
    state.give_feedback(f"{3:032x}", "down")
    listed = state.conversations()
    assert [(c.id, c.turns, c.title) for c in listed] == [("old", 2, "question 1?"), ("new", 1, "question 2?")]
    assert [t.id for t in state.conversation("old")] == [f"{1:032x}", f"{3:032x}"]
    assert state.conversation("old")[1].feedback is not None
    assert state.delete_conversation("old") == 2
    assert state.conversation("old") == [] and state.feedback() == []
    assert state.delete_conversation("old") == 0
    state.db.close()


def test_retention_forgets_old_turns_but_keeps_accepted_cases(url: str) -> None:
    state = open_state(url, retention_days=30)
    now = datetime(2026, 6, 1, tzinfo=UTC)
    state.record_turn(turn(1, created_at=now - timedelta(days=40)))
    state.record_turn(turn(2, created_at=now - timedelta(days=40)))
    state.record_turn(turn(3, created_at=now - timedelta(days=5)))
    fb = state.give_feedback(f"{2:032x}", "down")
    state.review(fb.id, accept=True, expect="answer", docs=["d1"])
    assert state.purge(now=now) == 1
    assert [t.id for t in state.conversation("c1")] == [f"{2:032x}", f"{3:032x}"]
    assert AppState(state.db, retention_days=0).purge(now=now + timedelta(days=999)) == 0
    state.db.close()


def test_the_state_survives_a_reopen(url: str) -> None:
    state = open_state(url)
    state.record_turn(turn(1))
    state.give_feedback(f"{1:032x}", "down", "missed_answer")
    state.db.close()
    again = open_state(url)
    assert again.db.revision() == head_revision()
    assert again.turn(f"{1:032x}").feedback is not None
    again.db.close()


def test_a_schema_newer_than_the_code_is_refused_and_left_alone(url: str) -> None:
    state = open_state(url)
    state.record_turn(turn(1))
    with state.db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    state.db.close()
    with pytest.raises(SchemaTooNew, match="9999"):
        open_state(url)
    db = Database.open(DatabaseSettings(database_url=url), migrate=False)
    assert db.revision() == "9999"
    assert AppState(db).turn(f"{1:032x}").question == "question 1?"  # nothing was touched
    db.close()


def test_two_processes_on_one_postgresql_share_the_state(pg_url: str) -> None:
    """Two API processes would each open the database: they migrate once between them and see each other's
    writes (threads stand in for the processes here; the API-level test runs two real ones)."""
    from concurrent.futures import ThreadPoolExecutor

    db = Database.open(DatabaseSettings(database_url=pg_url), migrate=False)
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS feedback, turns, alembic_version CASCADE"))
    db.close()
    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(lambda _: open_state(pg_url), range(2))
    a.record_turn(turn(1))
    assert b.give_feedback(f"{1:032x}", "down").rating == "down"
    assert a.feedback(review="pending")[0].turn_id == f"{1:032x}"
    a.db.close()
    b.db.close()


def test_a_database_that_is_down_is_a_clear_error() -> None:
    settings = DatabaseSettings(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none", database_timeout_s=1)
    with pytest.raises(DatabaseUnavailable, match="127.0.0.1"):
        Database.open(settings)
