from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from services.api import rag
from services.api.deps import ComponentsDep
from services.api.schemas import ChatRequest, ChatResponse
from services.api.sse import SSE_HEADERS, event
from services.core.llm import LLMUnavailableError

logger = logging.getLogger(__name__)
router = APIRouter(tags=["chat"])

STREAM_DOC = """With `stream: true` the response is `text/event-stream` with events:
`sources` (the numbered chunks given to the model), `token` (`{"text": ...}`, many),
then `done` (the same object as the non-streaming response) or `error` (`{"message": ...}`)."""


@router.post(
    "/chat",
    response_model=ChatResponse,
    summary="Answer from the documents, with [n] citations",
    description=STREAM_DOC,
    responses={200: {"content": {"text/event-stream": {}}}, 503: {"description": "LLM or store unavailable"}},
)
async def chat(body: ChatRequest, components: ComponentsDep, request: Request):  # noqa: ANN201 - JSON or SSE
    question = body.messages[-1].text()
    rt = rag.RequestTrace("rag.chat", request.headers, question)
    with rt.active():
        prepared = await rag.prepare_chat(components, body.messages, body)
        params = rag.llm_params(body.max_tokens, body.temperature)
        if not body.stream:
            response = ChatResponse(**await rag.answer(components, prepared, params))
            rt.finish(response.answer)
            return response
        stream = await rag.open_stream(components, prepared, params)

    async def events() -> AsyncIterator[bytes]:
        yield event("sources", [c.model_dump() for c in prepared.sources_out()])
        parts: list[str] = []
        t0 = time.perf_counter()
        error: BaseException | None = None
        try:
            async for delta in stream.deltas:
                if not parts:
                    prepared.timings_ms["first_token"] = round((time.perf_counter() - t0) * 1000, 2)
                    stream.first_token()
                parts.append(delta)
                yield event("token", {"text": delta})
            prepared.timings_ms["generate"] = round((time.perf_counter() - t0) * 1000, 2)
            stream.finish("".join(parts))
            yield event("done", prepared.final("".join(parts), stream.state.model, stream.state.final_usage()))
        except LLMUnavailableError as exc:
            logger.warning("stream failed: %s", exc)
            error = exc
            stream.fail(exc)
            yield event("error", {"message": str(exc), "partial_answer": "".join(parts)})
        finally:
            stream.finish("".join(parts))  # a client that went away still gets its span closed
            await stream.close()
            rt.finish(error=error, output="".join(parts))

    return StreamingResponse(events(), media_type="text/event-stream", headers=SSE_HEADERS)
