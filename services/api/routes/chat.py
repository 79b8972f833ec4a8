"""POST /chat: the chat pipeline's events as JSON (one body) or as server-sent events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from services.api import rag
from services.api.deps import ComponentsDep
from services.api.sse import SSE_HEADERS, event
from services.chat.pipeline import DoneEvent, FailedEvent, SourcesEvent, TokenEvent
from services.contract.schemas import ChatRequest, ChatResponse, Citation, StreamError

router = APIRouter(tags=["chat"])

STREAM_DOC = """With `stream: true` the response is `text/event-stream` with events:
`sources` (the numbered chunks given to the model, each with the `excerpt` of it that the prompt held),
`token` (`{"text": ...}`, many), then `done` (the same object as the non-streaming response) or `error`
(`{"message": ..., "partial_answer": ...}`).

When the answerability gate declines (or nothing was found) the LLM is not called: one `token` carries the
refusal and `done` says `decline_reason: "no_relevant_sources"`. When the gate is unsure, the answer is
verified before any of it is sent: one `token` carries the verified answer (or the refusal,
`decline_reason: "unsupported_answer"`). `done.answer` is the answer with verified `[n]` markers, which may
differ from the streamed tokens' markers; clients should show it once it arrives."""


async def sse(stream: rag.EventStream, record: Callable[[ChatResponse], Awaitable[None]]) -> AsyncIterator[bytes]:
    async for item in stream:
        match item:
            case SourcesEvent(sources=sources, excerpts=excerpts):
                yield event("sources", [c.model_dump() for c in Citation.numbered(sources, excerpts)])
            case TokenEvent(text=text):
                yield event("token", {"text": text})
            case DoneEvent(result=result):
                response = rag.chat_response(result, stream.rt.answer_id)
                await record(response)  # before `done`: feedback on it may follow at once
                yield event("done", response.model_dump(mode="json"))
            case FailedEvent(error=error, partial_answer=partial):
                yield event("error", StreamError(message=error.message, partial_answer=partial).model_dump())


@router.post(
    "/chat",
    response_model=ChatResponse,
    summary="Answer from the documents, with verified [n] citations",
    description=STREAM_DOC,
    responses={200: {"content": {"text/event-stream": {}}}, 503: {"description": "LLM or store unavailable"}},
)
async def chat(body: ChatRequest, components: ComponentsDep, request: Request):  # JSON or SSE
    pipeline = components.chat_pipeline()
    turn = rag.chat_input(body.messages, body, body.max_tokens, body.temperature)
    question = body.messages[-1].text()
    rt = rag.RequestTrace("rag.chat", request.headers, question)

    async def record(response: ChatResponse) -> None:
        await rag.record_turn(components.app_state, rag.turn_record(rt, question, response, "chat"))

    if not body.stream:
        with rt.active():
            result = await pipeline.answer(turn)
        rt.finish(result.answer)
        response = rag.chat_response(result, rt.answer_id)
        await record(response)
        return response
    stream = await rag.EventStream.open(rt, pipeline.run(turn))
    return StreamingResponse(sse(stream, record), media_type="text/event-stream", headers=SSE_HEADERS)
