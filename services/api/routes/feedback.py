"""POST /feedback: a person's thumbs up or down on an answer; GET/DELETE /conversations: the answers kept per chat.

Feedback is stored with the answer it judges (question, answer, sources, the gate's decision, the models) and,
when tracing is on, sent to Phoenix as an annotation on the answer's root span, so the dashboard filters traces
by thumbs. A thumbs-down waits for review (``python -m eval.feedback``) before it becomes a case of the nightly
evaluation. The database being down makes these routes answer 503 with the reason; /chat keeps answering.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Annotated

import httpx
from fastapi import APIRouter, BackgroundTasks, HTTPException, Path, Query, status
from starlette.concurrency import run_in_threadpool

from services.api.deps import ComponentsDep
from services.contract.schemas import (
    ChatResponse,
    ConversationOut,
    ConversationSummary,
    FeedbackOut,
    FeedbackRequest,
    TurnOut,
)
from services.core.observability.phoenix_rest import PhoenixRest, phoenix_base_url
from services.state.store import FeedbackRecord, TurnRecord

logger = logging.getLogger(__name__)
router = APIRouter(tags=["feedback"])

ConversationId = Annotated[str, Path(min_length=1, max_length=128)]


def feedback_out(f: FeedbackRecord) -> FeedbackOut:
    return FeedbackOut(
        id=f.id,
        answer_id=f.turn_id,
        rating=f.rating,
        reason=f.reason,
        comment=f.comment,
        review=f.review,
        created_at=f.created_at,
    )


def turn_out(t: TurnRecord) -> TurnOut:
    assert t.created_at is not None
    return TurnOut(
        id=t.id,
        question=t.question,
        created_at=t.created_at,
        response=ChatResponse.model_validate(t.detail),
        feedback=feedback_out(t.feedback) if t.feedback else None,
    )


def annotate(base_url: str, span_id: str, f: FeedbackRecord, mark: Callable[[int], None], tries: int = 6) -> None:
    """Send the feedback to Phoenix as an annotation of the answer's root span (replacing an earlier one).

    The span reaches Phoenix in the exporter's next batch, so a 404 right after the answer is retried."""
    rest = PhoenixRest(base_url)
    explanation = " — ".join(x for x in (f.reason, f.comment) if x) or None
    try:
        for attempt in range(tries):
            try:
                rest.annotate_span(
                    span_id,
                    label=f"thumbs_{f.rating}",
                    score=1.0 if f.rating == "up" else 0.0,
                    explanation=explanation,
                    metadata={"answer_id": f.turn_id, "reason": f.reason, "feedback_id": f.id},
                    identifier=f"feedback-{f.turn_id}",
                )
                mark(f.id)
                return
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code != 404 or attempt == tries - 1:
                    raise
                time.sleep(min(8.0, 0.5 * 2**attempt))
    except Exception as exc:  # never the request's failure: the feedback is stored either way
        logger.warning("feedback %s not annotated in Phoenix: %s", f.id, exc)
    finally:
        rest.close()


@router.post(
    "/feedback",
    response_model=FeedbackOut,
    status_code=status.HTTP_201_CREATED,
    summary="Thumbs up or down on an answer, with an optional reason and comment",
    responses={404: {"description": "no answer with this id is on record"}},
)
async def give_feedback(body: FeedbackRequest, components: ComponentsDep, background: BackgroundTasks) -> FeedbackOut:
    record = await run_in_threadpool(
        lambda: components.app_state().give_feedback(body.id, body.rating, body.reason, body.comment)
    )
    settings = components.settings
    base = phoenix_base_url(settings.tracing_endpoint, settings.phoenix_api_url)
    span_id = record.turn.span_id if record.turn else None
    if base and span_id:
        background.add_task(annotate, base, span_id, record, components.app_state().mark_annotated)
    return feedback_out(record)


@router.get("/conversations", response_model=list[ConversationSummary], summary="Conversations, most recent first")
async def list_conversations(
    components: ComponentsDep, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[ConversationSummary]:
    found = await run_in_threadpool(lambda: components.app_state().conversations(limit))
    return [
        ConversationSummary(id=c.id, title=c.title, turns=c.turns, started_at=c.started_at, updated_at=c.updated_at)
        for c in found
    ]


@router.get(
    "/conversations/{conversation_id}",
    response_model=ConversationOut,
    summary="A conversation's answers in order (the X-Session-Id its requests carried)",
    responses={404: {"description": "no such conversation"}},
)
async def get_conversation(conversation_id: ConversationId, components: ComponentsDep) -> ConversationOut:
    turns = await run_in_threadpool(lambda: components.app_state().conversation(conversation_id))
    if not turns:
        raise HTTPException(status_code=404, detail=f"no conversation {conversation_id!r}")
    return ConversationOut(id=conversation_id, turns=[turn_out(t) for t in turns])


@router.delete(
    "/conversations/{conversation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Forget a conversation and the feedback on it",
    responses={404: {"description": "no such conversation"}},
)
async def delete_conversation(conversation_id: ConversationId, components: ComponentsDep) -> None:
    if not await run_in_threadpool(lambda: components.app_state().delete_conversation(conversation_id)):
        raise HTTPException(status_code=404, detail=f"no conversation {conversation_id!r}")
