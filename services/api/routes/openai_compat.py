"""OpenAI-compatible surface, so any OpenAI client or chat UI can use the stack as a "model".

Responses follow the chat-completions schema; the grounding travels in extra fields that OpenAI clients
ignore and RAG-aware ones read: ``citations``, ``sources``, ``sentences``, ``declined``, ``decline_reason``
and ``answerability`` on the response (on the final chunk when streaming, which also carries ``answer``,
the text with verified ``[n]`` markers); each source carries the ``excerpt`` of it that the prompt held. The
same pipeline and mapping as /chat, only encoded differently.

A client that reads only ``content`` sees the grounding too: the text ends with the cited sources
(``rag.sources_footer``; ``RAG_OPENAI_SOURCES_FOOTER=false`` turns it off), after the answer, not in place
of it. The ``answer`` field stays the answer alone.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from services.api import rag
from services.api.deps import ComponentsDep
from services.api.sse import SSE_HEADERS, event
from services.chat.pipeline import DoneEvent, FailedEvent, SourcesEvent, TokenEvent
from services.contract.schemas import ChatOptions, ChatResponse, OpenAIChatRequest
from services.state.store import COMPLETION_PREFIX

router = APIRouter(prefix="/v1", tags=["openai-compatible"])


def _model_name(components: Any) -> str:
    return f"rag:{components.settings.llm_model}"


@router.get("/models", summary="The single model this server exposes (RAG over the configured LLM)")
async def models(components: ComponentsDep) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": _model_name(components), "object": "model", "created": 0, "owned_by": "ragstack"}],
    }


@router.post(
    "/chat/completions",
    summary="OpenAI-compatible chat completions, grounded in the documents",
    description="With `stream: true` the response is `text/event-stream`: `chat.completion.chunk` objects, the "
    "last one with the grounding fields, then `[DONE]`.",
    # The JSON body is undeclared (OpenAI's schema, plus the grounding fields); both media types are documented.
    responses={200: {"content": {"text/event-stream": {}}}, 503: {"description": "LLM or store unavailable"}},
)
async def chat_completions(body: OpenAIChatRequest, components: ComponentsDep, request: Request):
    pipeline = components.chat_pipeline()
    turn = rag.chat_input(
        body.messages, body.rag or ChatOptions(), body.max_completion_tokens or body.max_tokens, body.temperature
    )
    question = body.messages[-1].text()
    rt = rag.RequestTrace("rag.chat", request.headers, question)
    completion_id = f"{COMPLETION_PREFIX}{rt.answer_id}"  # POST /feedback takes it as the answer's id
    created = int(time.time())
    model = _model_name(components)
    with_footer = components.settings.openai_sources_footer

    def footer(response: ChatResponse) -> str:
        return rag.sources_footer(response) if with_footer else ""

    if not body.stream:
        with rt.active():
            result = await pipeline.answer(turn)
        rt.finish(result.answer)
        response = rag.chat_response(result, rt.answer_id)
        await rag.record_turn(components.app_state, rag.turn_record(rt, question, response, "openai"))
        usage = result.usage
        return {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": response.answer + footer(response)},
                    "finish_reason": result.finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": usage.get("prompt_tokens", 0),
                "completion_tokens": usage.get("completion_tokens", 0),
                "total_tokens": usage.get("total_tokens", 0),
            },
            **rag.openai_extensions(response),
        }

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        obj = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        obj.update(extra)
        return event(None, obj)

    async def chunks(stream: rag.EventStream) -> AsyncIterator[bytes]:
        async for item in stream:
            match item:
                case SourcesEvent():
                    yield chunk({"role": "assistant", "content": ""})
                case TokenEvent(text=text):
                    yield chunk({"content": text})
                case DoneEvent(result=result):
                    response = rag.chat_response(result, rt.answer_id)
                    await rag.record_turn(components.app_state, rag.turn_record(rt, question, response, "openai"))
                    if text := footer(response):
                        yield chunk({"content": text})
                    extra = rag.openai_extensions(response)
                    yield chunk({}, result.finish_reason, answer=response.answer, **extra)
                case FailedEvent(error=error):
                    yield event(None, {"error": {"message": error.message, "type": "service_unavailable", "code": 503}})
        yield event(None, "[DONE]")

    stream = await rag.EventStream.open(rt, pipeline.run(turn))
    return StreamingResponse(chunks(stream), media_type="text/event-stream", headers=SSE_HEADERS)
