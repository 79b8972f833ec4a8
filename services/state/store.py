"""What the API and the tools do with the application state: record turns, take feedback, review it, list
conversations, forget what is past its retention.

Every method is synchronous (SQLAlchemy sessions); the API calls them from its thread pool. Values cross
this seam as the frozen dataclasses below, never as ORM objects bound to a session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from services.state.db import Database
from services.state.tables import Feedback, Turn

Rating = Literal["up", "down"]
Review = Literal["none", "pending", "accepted", "rejected"]
Expect = Literal["answer", "abstain"]
FEEDBACK_REASONS = ("wrong_source", "should_have_declined", "missed_answer", "unhelpful", "other")


class UnknownTurn(LookupError):
    """No answer with this id is on record (never given, deleted, or past its retention)."""


@dataclass(frozen=True, slots=True)
class TurnRecord:
    id: str
    question: str
    answer: str
    declined: bool
    decline_reason: str | None = None
    conversation_id: str | None = None
    route: str = "chat"
    trace_id: str | None = None
    span_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    feedback: FeedbackRecord | None = None


@dataclass(frozen=True, slots=True)
class FeedbackRecord:
    id: int
    turn_id: str
    rating: Rating
    reason: str | None
    comment: str | None
    review: Review
    created_at: datetime
    expect: Expect | None = None
    expect_docs: list[str] | None = None
    annotated: bool = False
    turn: TurnRecord | None = None  # filled by the review listing


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    id: str
    title: str  # its first question, cut
    turns: int
    started_at: datetime
    updated_at: datetime


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite hands naive datetimes back


def _feedback(row: Feedback, with_turn: bool = False) -> FeedbackRecord:
    return FeedbackRecord(
        id=row.id,
        turn_id=row.turn_id,
        rating=row.rating,  # type: ignore[arg-type]
        reason=row.reason,
        comment=row.comment,
        review=row.review,  # type: ignore[arg-type]
        created_at=_utc(row.created_at),
        expect=row.expect,  # type: ignore[arg-type]
        expect_docs=row.expect_docs,
        annotated=row.annotated,
        turn=_turn(row.turn) if with_turn else None,
    )


def _turn(row: Turn, with_feedback: bool = False) -> TurnRecord:
    return TurnRecord(
        id=row.id,
        question=row.question,
        answer=row.answer,
        declined=row.declined,
        decline_reason=row.decline_reason,
        conversation_id=row.conversation_id,
        route=row.route,
        trace_id=row.trace_id,
        span_id=row.span_id,
        detail=dict(row.detail or {}),
        created_at=_utc(row.created_at),
        feedback=_feedback(row.feedback) if with_feedback and row.feedback is not None else None,
    )


class AppState:
    def __init__(self, db: Database, *, retention_days: int = 0) -> None:
        self.db = db
        self.retention_days = retention_days

    # --- turns ----------------------------------------------------------------------------------

    def record_turn(self, turn: TurnRecord) -> None:
        with self.db.session() as s:
            s.add(
                Turn(
                    id=turn.id,
                    conversation_id=turn.conversation_id,
                    created_at=turn.created_at or datetime.now(UTC),
                    route=turn.route,
                    question=turn.question,
                    answer=turn.answer,
                    declined=turn.declined,
                    decline_reason=turn.decline_reason,
                    trace_id=turn.trace_id,
                    span_id=turn.span_id,
                    detail=turn.detail,
                )
            )

    def turn(self, turn_id: str) -> TurnRecord:
        with self.db.session() as s:
            row = s.get(Turn, _turn_key(turn_id))
            if row is None:
                raise UnknownTurn(turn_id)
            return _turn(row, with_feedback=True)

    # --- feedback -------------------------------------------------------------------------------

    def give_feedback(
        self, turn_id: str, rating: Rating, reason: str | None = None, comment: str | None = None
    ) -> FeedbackRecord:
        """Record (or replace) the feedback on a turn, returned with its turn. A thumbs-down waits for review; a
        thumbs-up needs none."""
        review: Review = "pending" if rating == "down" else "none"
        with self.db.session() as s:
            turn = s.get(Turn, _turn_key(turn_id))
            if turn is None:
                raise UnknownTurn(turn_id)
            row = turn.feedback
            if row is None:
                row = Feedback(turn_id=turn.id)
                s.add(row)
            row.created_at = datetime.now(UTC)
            row.rating, row.reason, row.comment = rating, reason, comment
            row.review, row.expect, row.expect_docs, row.annotated = review, None, None, False
            s.flush()
            return _feedback(row, with_turn=True)

    def mark_annotated(self, feedback_id: int) -> None:
        with self.db.session() as s:
            row = s.get(Feedback, feedback_id)
            if row is not None:
                row.annotated = True

    def feedback(
        self, review: Review | None = None, rating: Rating | None = None, limit: int = 100
    ) -> list[FeedbackRecord]:
        """Feedback, newest first, each with its turn (for review and for the eval's user cases)."""
        with self.db.session() as s:
            q = select(Feedback).order_by(Feedback.created_at.desc(), Feedback.id.desc()).limit(limit)
            if review is not None:
                q = q.where(Feedback.review == review)
            if rating is not None:
                q = q.where(Feedback.rating == rating)
            return [_feedback(row, with_turn=True) for row in s.scalars(q)]

    def review(
        self, feedback_id: int, accept: bool, expect: Expect | None = None, docs: list[str] | None = None
    ) -> FeedbackRecord:
        """Accept a thumbs-down as a regression case (what the stack should have done) or reject it."""
        if accept and expect is None:
            raise ValueError("accepting a case needs its expected behaviour: answer (citing documents) or abstain")
        with self.db.session() as s:
            row = s.get(Feedback, feedback_id)
            if row is None:
                raise LookupError(f"no feedback #{feedback_id}")
            row.review = "accepted" if accept else "rejected"
            row.expect = expect if accept else None
            row.expect_docs = list(docs or []) if accept else None
            s.flush()
            return _feedback(row, with_turn=True)

    # --- conversations --------------------------------------------------------------------------

    def conversations(self, limit: int = 50) -> list[ConversationSummary]:
        with self.db.session() as s:
            last = func.max(Turn.created_at)
            rows = s.execute(
                select(Turn.conversation_id, func.count(), func.min(Turn.created_at), last)
                .where(Turn.conversation_id.is_not(None))
                .group_by(Turn.conversation_id)
                .order_by(last.desc())
                .limit(limit)
            ).all()
            out = []
            for cid, n, first, latest in rows:
                assert cid is not None  # filtered above
                title = s.scalars(
                    select(Turn.question).where(Turn.conversation_id == cid).order_by(Turn.created_at).limit(1)
                ).first()
                out.append(ConversationSummary(cid, _title(title or ""), n, _utc(first), _utc(latest)))
            return out

    def conversation(self, conversation_id: str) -> list[TurnRecord]:
        """Its turns in the order they were asked (empty when there is none)."""
        with self.db.session() as s:
            rows = s.scalars(
                select(Turn).where(Turn.conversation_id == conversation_id).order_by(Turn.created_at, Turn.id)
            )
            return [_turn(r, with_feedback=True) for r in rows]

    def delete_conversation(self, conversation_id: str) -> int:
        with self.db.session() as s:
            ids = list(s.scalars(select(Turn.id).where(Turn.conversation_id == conversation_id)))
            if ids:
                _delete_turns(s, ids)
            return len(ids)

    def purge(self, now: datetime | None = None) -> int:
        """Forget turns older than the retention (0 days: keep everything). Turns whose feedback was accepted as an
        eval case are kept: they are the regression suite."""
        if self.retention_days <= 0:
            return 0
        cutoff = (now or datetime.now(UTC)) - timedelta(days=self.retention_days)
        with self.db.session() as s:
            kept = select(Feedback.turn_id).where(Feedback.review == "accepted")
            ids = list(s.scalars(select(Turn.id).where(Turn.created_at < cutoff, Turn.id.not_in(kept))))
            if ids:
                _delete_turns(s, ids)
            return len(ids)


def _delete_turns(s: Session, ids: list[str]) -> None:
    """Turns and their feedback (explicitly: the foreign key's cascade is not relied on across engines)."""
    s.execute(delete(Feedback).where(Feedback.turn_id.in_(ids)))
    s.execute(delete(Turn).where(Turn.id.in_(ids)))


COMPLETION_PREFIX = "chatcmpl-"


def _turn_key(turn_id: str) -> str:
    """The OpenAI route's completion id is ``chatcmpl-<turn id>``: feedback may name either."""
    return turn_id.removeprefix(COMPLETION_PREFIX)


def _title(question: str, limit: int = 80) -> str:
    text = " ".join(question.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"
