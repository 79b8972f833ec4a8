"""The Chat tab's handlers (frontend.app.ChatActions) against a FAKE API: feedback, reopening a kept
conversation, a new chat, and what each hands back to the components it is wired to."""

from __future__ import annotations

import asyncio
import json
import typing
from typing import Any

import gradio as gr
import httpx
import pytest

from frontend import render
from frontend.app import ChatActions
from frontend.chat import ChatState
from services.contract.client import AsyncApiClient
from services.contract.schemas import ChatResponse, ConversationOut, TurnOut

pytestmark = pytest.mark.unit

ANSWER_ID = "a" * 32
KEPT_ID = "c" * 32
NOW = "2026-12-07T00:00:00Z"
SOURCE = {"n": 1, "chunk_id": "c1", "doc_id": "d1", "source": "upload://router.md", "title": "router.md",
          "section": None, "page": None, "text": "Unplug it.", "rerank_score": 0.5, "retrieval_score": 0.4}  # fmt: skip
KEPT = ConversationOut(
    id=KEPT_ID,
    turns=[
        TurnOut(id=ANSWER_ID, question="how do I restart the router?", created_at=NOW,
                response=ChatResponse(id=ANSWER_ID, answer="Unplug it [1].", sources=[SOURCE], citations=[],
                                      declined=False, model="m"))
    ],
)  # fmt: skip
KEEP = gr.update()
HIDDEN = gr.update(visible=False)


class FakeApi:
    """A FAKE of the RAG API's feedback and conversation routes; ``fail`` makes every call a 500."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if self.fail:
            return httpx.Response(500, json={"detail": "the database is down"})
        if path == "/feedback":
            body = json.loads(request.content)
            return httpx.Response(200, json={"id": 1, "answer_id": body["id"], "rating": body["rating"],
                                             "review": "pending", "created_at": NOW})  # fmt: skip
        if path == "/conversations":
            return httpx.Response(200, json=[{"id": KEPT_ID, "title": "how do I restart the router?", "turns": 1,
                                              "started_at": NOW, "updated_at": NOW}])  # fmt: skip
        if path == f"/conversations/{KEPT_ID}":
            return httpx.Response(200, content=KEPT.model_dump_json())
        return httpx.Response(404, json={"detail": "not found"})

    def handlers(self) -> ChatActions:
        return ChatActions(AsyncApiClient("http://api.test", transport=httpx.MockTransport(self)))

    def feedback_bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests if r.url.path == "/feedback"]


def answered() -> ChatState:
    """A conversation whose answer (display index 1) the API keeps as ANSWER_ID."""
    return ChatState.restore(KEPT.model_copy(update={"id": "s" * 32}))


def like(index: int, liked: Any) -> gr.LikeData:
    return gr.LikeData(None, {"index": index, "value": "Unplug it", "liked": liked})


def test_gradio_sees_the_like_data_parameter() -> None:
    # Gradio passes gr.LikeData only to a parameter whose type hint resolves to it.
    hints = typing.get_type_hints(FakeApi().handlers().on_like)
    assert hints["data"] is gr.LikeData


def test_a_thumbs_down_is_sent_and_opens_the_reason_form() -> None:
    api, state = FakeApi(), answered()
    out = asyncio.run(api.handlers().on_like(state, like(1, False)))
    assert out == (state, render.feedback_note("down"), gr.update(visible=True))
    assert state.feedback_for == ANSWER_ID
    assert api.feedback_bodies() == [{"id": ANSWER_ID, "rating": "down"}]
    assert {r.headers["x-session-id"] for r in api.requests} == {state.session_id}


def test_a_thumbs_up_is_sent_and_closes_the_reason_form() -> None:
    api, state = FakeApi(), answered()
    state.feedback_for = "earlier"
    out = asyncio.run(api.handlers().on_like(state, like([1, 0], True)))  # type: ignore[arg-type]  # 2-d index
    assert out == (state, render.feedback_note("up"), HIDDEN)
    assert state.feedback_for is None and api.feedback_bodies() == [{"id": ANSWER_ID, "rating": "up"}]


@pytest.mark.parametrize(
    ("state", "index", "liked", "note"),
    [
        (None, 1, True, render.feedback_note("none")),  # before on_load made a state
        (ChatState(), 1, True, render.feedback_note("none")),  # an answer the API keeps no record of
        ("answered", 1, "", ""),  # the thumb pressed again: taken back
    ],
)
def test_a_like_that_names_no_record_or_is_taken_back_sends_nothing(
    state: ChatState | str | None, index: int, liked: Any, note: str
) -> None:
    api = FakeApi()
    chat_state = answered() if state == "answered" else state
    out = asyncio.run(api.handlers().on_like(chat_state, like(index, liked)))  # type: ignore[arg-type]
    assert out == (chat_state, note, HIDDEN)
    assert api.requests == []


def test_feedback_the_api_cannot_record_is_said_and_the_form_stays_shut() -> None:
    state = answered()
    out = asyncio.run(FakeApi(fail=True).handlers().on_like(state, like(1, False)))
    assert out == (state, render.feedback_note("failed", "the database is down"), HIDDEN)
    assert state.feedback_for is None


def test_the_reason_goes_with_a_second_thumbs_down_and_the_form_resets() -> None:
    api, state = FakeApi(), answered()
    state.feedback_for = ANSWER_ID
    out = asyncio.run(api.handlers().send_reason(state, "wrong_source", ""))
    assert out == (render.feedback_note("sent"), HIDDEN, None, "")
    assert api.feedback_bodies() == [{"id": ANSWER_ID, "rating": "down", "reason": "wrong_source"}]


def test_a_reason_without_a_thumbs_down_sends_nothing_and_a_failed_one_keeps_the_form() -> None:
    api = FakeApi()
    assert asyncio.run(api.handlers().send_reason(answered(), "wrong_source", "x")) == (
        render.feedback_note("none"), HIDDEN, None, ""
    )  # fmt: skip
    assert api.requests == []
    state = answered()
    state.feedback_for = ANSWER_ID
    out = asyncio.run(FakeApi(fail=True).handlers().send_reason(state, "other", "see page 2"))
    assert out == (render.feedback_note("failed", "the database is down"), KEEP, KEEP, KEEP)


def test_reopening_a_kept_conversation_shows_it_as_it_was() -> None:
    current = ChatState()
    state, remembered, display, sources, info, past = asyncio.run(FakeApi().handlers().reopen(current, KEPT_ID))
    assert state.session_id == KEPT_ID and remembered == KEPT_ID
    assert display == ChatState.restore(KEPT).display and display is not state.display
    assert sources == state.sources_html() and 'id="src-1-1"' in sources
    assert info == state.info_html() and past is None


@pytest.mark.parametrize("conversation_id", [None, "", "current", "d" * 32])
def test_reopening_nothing_the_open_one_or_one_the_api_forgot_changes_nothing(conversation_id: str | None) -> None:
    current = ChatState()
    wanted = current.session_id if conversation_id == "current" else conversation_id
    out = asyncio.run(FakeApi().handlers().reopen(current, wanted))
    assert out == (current, KEEP, KEEP, KEEP, KEEP, KEEP)


def test_reopening_while_the_api_fails_says_so_under_the_chat() -> None:
    current = ChatState()
    out = asyncio.run(FakeApi(fail=True).handlers().reopen(current, KEPT_ID))
    assert out == (current, KEEP, KEEP, KEEP, render.error_message("the database is down"), KEEP)


def test_a_new_chat_gets_a_new_session_and_an_empty_view() -> None:
    api = FakeApi()
    state, remembered, chatbot, sources, question, info, form, past = asyncio.run(api.handlers().start_new_chat())
    assert isinstance(state, ChatState) and remembered == state.session_id and state.display == []
    assert (chatbot, sources, question, info, form) == ([], state.sources_html(), "", state.info_html(), HIDDEN)
    assert past["choices"] and [c[1] for c in past["choices"]] == [KEPT_ID] and past["value"] is None
    assert {r.headers["x-session-id"] for r in api.requests} == {state.session_id}
