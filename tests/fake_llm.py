"""A FAKE OpenAI-compatible chat server, for unit tests only.

It is a real HTTP server (uvicorn in a background thread on a free 127.0.0.1 port) so the client's
networking, retries, timeouts and SSE parsing run for real; only the "model" is fake. Its reply is
deterministic: the first sentence of source [1] of the prompt (format: services/core/grounding/prompt.py),
followed by " [1]", streamed word by word; with no sources it answers ``NO_ANSWER``.

Usage::

    with FakeOpenAIServer() as srv:
        llm = OpenAICompatibleLLM(srv.base_url, model="fake")
        srv.fail_status, srv.fail_times = 503, 2   # the next two requests get a 503
        srv.delay_s = 1.0                          # every request waits a second before answering
        srv.requests                               # chat-completion bodies received, in order
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from services.core.grounding.prompt import NO_ANSWER

_FIRST_SOURCE = re.compile(r"^\[1\][^\n]*\n(.+?)(?=\n\n\[\d+\]|\n>>>|\Z)", re.S | re.M)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


def fake_answer(messages: list[dict[str, Any]]) -> str:
    """What the fake model says for these messages (exposed so tests can compute the expectation)."""
    user = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    content = user.get("content") if user else ""
    if isinstance(content, list):
        content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    match = _FIRST_SOURCE.search(content or "")
    if not match:
        return NO_ANSWER
    text = " ".join(match.group(1).split())
    sentence = _SENTENCE_END.split(text, maxsplit=1)[0].strip()
    return f"{sentence} [1]" if sentence else NO_ANSWER


def _words(answer: str) -> list[str]:
    """Word-by-word deltas whose concatenation is exactly ``answer``."""
    parts = answer.split(" ")
    return [p + " " for p in parts[:-1]] + [parts[-1]]


class FakeOpenAIServer:
    def __init__(self, model: str = "fake-llm") -> None:
        self.model = model
        self.fail_status: int | None = None
        self.fail_times: int = 0  # 0: every request fails while fail_status is set; N: only the next N
        self.delay_s: float = 0.0
        # After one word: "error" sends an error event, "eof" closes, "done" sends a bare [DONE] (what
        # llama-cpp-python's server does to a stream that a newer request interrupts).
        self.stream_cut: str | None = None
        self.requests: list[dict[str, Any]] = []
        self._failed = 0
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self.port = 0

    # -- knobs ---------------------------------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self.fail_status = None
            self.fail_times = 0
            self.delay_s = 0.0
            self.stream_cut = None
            self.requests.clear()
            self._failed = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _should_fail(self) -> int | None:
        with self._lock:
            if self.fail_status is None:
                return None
            if self.fail_times and self._failed >= self.fail_times:
                return None
            self._failed += 1
            return self.fail_status

    # -- the app ---------------------------------------------------------------------------------------

    async def _models(self, request: Request) -> Response:
        await asyncio.sleep(self.delay_s)
        status = self._should_fail()
        if status is not None:
            return self._error(status)
        return JSONResponse({"object": "list", "data": [{"id": self.model, "object": "model", "owned_by": "fake"}]})

    async def _chat(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return self._error(400, "body is not JSON")
        self.requests.append(body)
        await asyncio.sleep(self.delay_s)
        status = self._should_fail()
        if status is not None:
            return self._error(status)
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
            return self._error(400, "'messages' must be a non-empty list")
        answer = fake_answer(body["messages"])
        words = _words(answer)
        prompt_words = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
        usage = {
            "prompt_tokens": prompt_words,
            "completion_tokens": len(words),
            "total_tokens": prompt_words + len(words),
        }
        cid = f"chatcmpl-fake{len(self.requests)}"
        created = int(time.time())
        if not body.get("stream"):
            return JSONResponse(
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": created,
                    "model": self.model,
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}
                    ],
                    "usage": usage,
                }
            )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
            obj = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return f"data: {json.dumps(obj)}\n\n"

        async def events() -> AsyncIterator[str]:
            yield chunk({"role": "assistant", "content": ""})
            for word in words:
                yield chunk({"content": word})
                if self.stream_cut == "error":
                    yield f"data: {json.dumps({'error': {'message': 'fake: KV cache full', 'code': 500}})}\n\n"
                    return
                if self.stream_cut == "eof":
                    return
                if self.stream_cut == "done":
                    yield "data: [DONE]\n\n"
                    return
            yield chunk({}, "stop")
            if include_usage:
                obj = {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": self.model,
                    "choices": [],
                    "usage": usage,
                }
                yield f"data: {json.dumps(obj)}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @staticmethod
    def _error(status: int, message: str | None = None) -> JSONResponse:
        message = message or f"fake failure {status}"
        return JSONResponse({"error": {"message": message, "type": "fake", "code": status}}, status_code=status)

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> FakeOpenAIServer:
        app = Starlette(
            routes=[
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
            ]
        )
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            log_level="warning",
            lifespan="off",
            loop="asyncio",
            http="h11",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="fake-llm", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("FakeOpenAIServer did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
