"""The tables (SQLAlchemy 2 declarative). A change here needs a migration in ``migrations/versions``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Turn(Base):
    """One answered question: what was asked, what was answered and what it rested on.

    ``id`` is the response's id (``ChatResponse.id``; the OpenAI route's completion id without ``chatcmpl-``):
    the request's trace id when tracing records, so feedback finds the trace's root span in Phoenix.
    """

    __tablename__ = "turns"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    conversation_id: Mapped[str | None] = mapped_column(String(128), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    route: Mapped[str] = mapped_column(String(32))
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    declined: Mapped[bool] = mapped_column(Boolean)
    decline_reason: Mapped[str | None] = mapped_column(String(64))
    trace_id: Mapped[str | None] = mapped_column(String(32))
    span_id: Mapped[str | None] = mapped_column(String(16))
    # sources, citations, the gate's decision and the models that answered: read back whole, never queried
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)

    feedback: Mapped[Feedback | None] = relationship(
        back_populates="turn", cascade="all, delete-orphan", passive_deletes=True, uselist=False
    )


class Feedback(Base):
    """A person's verdict on a turn: one per turn (a later one replaces it), reviewed before it joins the eval."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    turn_id: Mapped[str] = mapped_column(ForeignKey("turns.id", ondelete="CASCADE"), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    rating: Mapped[str] = mapped_column(String(8))  # up | down
    reason: Mapped[str | None] = mapped_column(String(32))
    comment: Mapped[str | None] = mapped_column(Text)
    review: Mapped[str] = mapped_column(String(16), index=True)  # none | pending | accepted | rejected
    expect: Mapped[str | None] = mapped_column(String(16))  # answer | abstain, set when accepted
    expect_docs: Mapped[list[str] | None] = mapped_column(JSON)
    annotated: Mapped[bool] = mapped_column(Boolean, default=False)  # sent to Phoenix as a span annotation

    turn: Mapped[Turn] = relationship(back_populates="feedback")
