"""OpenAI-compatible surface, so any OpenAI client or chat UI can use the stack as a "model".

Responses follow the chat-completions schema; the sources used travel in an extra ``citations``
field (on the final chunk when streaming) that OpenAI clients ignore and RAG-aware ones can read.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from services.api import rag
from services.api.deps import ComponentsDep
from services.api.schemas import OpenAIChatRequest, RetrievalOptions
from services.api.sse import SSE_HEADERS, event
from services.core.llm import LLMUnavailableError

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["openai-compatible"])


def _model_name(components: Any) -> str:
    return f"rag:{components.settings.llm_model}"


@router.get("/models", summary="The single model this server exposes (RAG over the configured LLM)")
async def models(components: ComponentsDep) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": _model_name(components), "object": "model", "created": 0, "owned_by": "ragstack"}],
    }


@router.post("/chat/completions", summary="OpenAI-compatible chat completions, grounded in the documents")
async def chat_completions(body: OpenAIChatRequest, components: ComponentsDep, request: Request):  # noqa: ANN201
    options = body.rag or RetrievalOptions()
    rt = rag.RequestTrace("rag.chat", request.headers, body.messages[-1].text())
    with rt.active():
        prepared = await rag.prepare_chat(components, body.messages, options)
        params = rag.llm_params(body.max_completion_tokens or body.max_tokens, body.temperature)
        if body.stream:
            stream = await rag.open_stream(components, prepared, params)
        else:
            result = await rag.answer(components, prepared, params)
            rt.finish(result["answer"])
    completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    model = _model_name(components)
    if not body.stream:
        usage = result["usage"]
        return {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": result["answer"]},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": usage.get("prompt_tokens", 0),
                "completion_tokens": usage.get("completion_tokens", 0),
                "total_tokens": usage.get("total_tokens", 0),
            },
            "citations": result["citations"],
            "sources": result["sources"],
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

    async def events() -> AsyncIterator[bytes]:
        parts: list[str] = []
        error: BaseException | None = None
        try:
            yield chunk({"role": "assistant", "content": ""})
            async for delta in stream.deltas:
                if not parts:
                    stream.first_token()
                parts.append(delta)
                yield chunk({"content": delta})
            stream.finish("".join(parts))
            final = prepared.final("".join(parts), stream.state.model, stream.state.final_usage())
            yield chunk({}, stream.state.finish_reason or "stop", citations=final["citations"])
        except LLMUnavailableError as exc:
            logger.warning("stream failed: %s", exc)
            error = exc
            stream.fail(exc)
            yield event(None, {"error": {"message": str(exc), "type": "service_unavailable", "code": 503}})
        finally:
            stream.finish("".join(parts))
            await stream.close()
            rt.finish(error=error, output="".join(parts))
        yield event(None, "[DONE]")

    return StreamingResponse(events(), media_type="text/event-stream", headers=SSE_HEADERS)
