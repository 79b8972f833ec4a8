"""OpenAI-compatible chat-completions client (llama.cpp server, Ollama, TGI, vLLM, OpenAI).

Retries are bounded and happen only before the first token: a stream that broke half-way cannot be
replayed without duplicating text, so that failure is reported, not retried.

Usage::

    llm = OpenAICompatibleLLM("http://127.0.0.1:8080/v1", model="qwen2.5-coder-0.5b-instruct")
    reply = await llm.complete([{"role": "user", "content": "hi"}])
    async with llm.stream(messages) as deltas:
        async for delta in deltas: ...
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

logger = logging.getLogger(__name__)
Message = dict[str, str]


class LLMUnavailableError(RuntimeError):
    """The LLM server cannot be reached, timed out, or failed after bounded retries."""


@dataclass(slots=True)
class Completion:
    text: str
    model: str
    finish_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class StreamState:
    """Filled in while a stream is consumed: what arrived besides the text."""

    model: str = ""
    finish_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    content_chunks: int = 0

    def final_usage(self) -> dict[str, int]:
        """The server's usage when it sent one; else the count of content chunks, which servers that ignore
        ``stream_options.include_usage`` (llama-cpp-python's among them) send one per generated token."""
        return self.usage or {"completion_tokens": self.content_chunks}


class LLMClient(Protocol):
    model: str

    async def complete(self, messages: Sequence[Message], **params: Any) -> Completion: ...

    def stream(
        self, messages: Sequence[Message], state: StreamState | None = None, **params: Any
    ) -> contextlib.AbstractAsyncContextManager[AsyncIterator[str]]: ...

    async def ping(self) -> bool: ...

    async def aclose(self) -> None: ...


def _error_message(error: object) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error)[:300]
    return str(error)[:300]


async def _deltas(response: httpx.Response, state: StreamState) -> AsyncIterator[str]:
    """The text of a streamed answer, piece by piece; ``state`` takes the rest. A stream that fails, breaks or
    ends without a finish reason raises ``LLMUnavailableError``: a cut answer must not pass for a short one."""
    try:
        async with contextlib.aclosing(_sse_events(response.aiter_lines())) as events:
            async for event in events:
                for text in _take_event(event, state):
                    state.content_chunks += 1
                    yield text
    except httpx.HTTPError as exc:
        raise LLMUnavailableError(f"LLM stream broke: {type(exc).__name__}") from exc
    if state.finish_reason is None:  # [DONE] or EOF before any finish reason: a cut, not an answer
        raise LLMUnavailableError("LLM stream ended before the answer finished")


async def _sse_events(lines: AsyncIterator[str]) -> AsyncGenerator[Any, None]:
    """The JSON payloads of the ``data:`` lines up to ``[DONE]``; other lines (keep-alive comments, ``event:``
    fields) and a payload that is not JSON are skipped, as a server's noise is no reason to drop an answer."""
    async for line in lines:
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            return
        try:
            event = json.loads(payload)
        except ValueError:
            continue
        yield event


def _take_event(event: Any, state: StreamState) -> list[str]:
    """Notes a stream event's model, usage and finish reason in ``state``; returns its text pieces."""
    if event.get("error"):  # llama.cpp, vLLM and TGI report mid-stream failures this way
        raise LLMUnavailableError(f"LLM failed mid-stream: {_error_message(event['error'])}")
    state.model = event.get("model") or state.model
    if event.get("usage"):
        state.usage = {k: int(v) for k, v in event["usage"].items() if isinstance(v, int)}
    texts = []
    for choice in event.get("choices") or []:
        if choice.get("finish_reason"):
            state.finish_reason = choice["finish_reason"]
        text = (choice.get("delta") or {}).get("content")
        if text:
            texts.append(text)
    return texts


class OpenAICompatibleLLM:
    def __init__(
        self,
        base_url: str,
        *,
        model: str,
        api_key: str = "not-needed",
        timeout_s: float = 120.0,
        connect_timeout_s: float = 3.0,
        max_retries: int = 2,
        max_tokens: int = 384,
        temperature: float = 0.1,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.max_retries = max_retries
        self.defaults: dict[str, Any] = {"max_tokens": max_tokens, "temperature": temperature}
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
        )

    def _body(self, messages: Sequence[Message], stream: bool, params: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": list(messages), "stream": stream}
        body.update(self.defaults)
        body.update({k: v for k, v in params.items() if v is not None})
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body

    async def _send(self, body: dict[str, Any], *, stream: bool) -> httpx.Response:
        attempt = 0
        while True:
            try:
                request = self._client.build_request("POST", "/chat/completions", json=body)
                response = await self._client.send(request, stream=stream)
                if response.status_code < 500 and response.status_code != 429:
                    if response.status_code >= 400:
                        detail = (await response.aread()).decode("utf-8", "replace")[:300]
                        await response.aclose()
                        raise LLMUnavailableError(f"LLM rejected the request ({response.status_code}): {detail}")
                    return response
                await response.aclose()
                error = f"LLM answered {response.status_code}"
            except httpx.TimeoutException as exc:
                error = f"LLM timed out ({type(exc).__name__})"
            except httpx.TransportError as exc:
                error = f"LLM unreachable at {self.base_url}: {type(exc).__name__}"
            if attempt >= self.max_retries:
                raise LLMUnavailableError(error)
            attempt += 1
            logger.warning("%s; retry %d/%d", error, attempt, self.max_retries)
            await asyncio.sleep(0.25 * 2**attempt)

    async def complete(self, messages: Sequence[Message], **params: Any) -> Completion:
        response = await self._send(self._body(messages, False, params), stream=False)
        try:
            data = response.json()
            choice = data["choices"][0]
            return Completion(
                text=choice["message"].get("content") or "",
                model=data.get("model", self.model),
                finish_reason=choice.get("finish_reason"),
                usage={k: int(v) for k, v in (data.get("usage") or {}).items() if isinstance(v, int)},
            )
        except (ValueError, KeyError, IndexError) as exc:
            raise LLMUnavailableError(f"LLM returned an unexpected body: {exc}") from exc

    @contextlib.asynccontextmanager
    async def stream(
        self, messages: Sequence[Message], state: StreamState | None = None, **params: Any
    ) -> AsyncIterator[AsyncIterator[str]]:
        """Connects (with retries) on enter, so a dead server surfaces before any byte is sent to a client."""
        response = await self._send(self._body(messages, True, params), stream=True)
        state = state if state is not None else StreamState()
        try:
            yield _deltas(response, state)
        finally:
            await response.aclose()

    async def ping(self) -> bool:
        try:
            response = await self._client.get("/models", timeout=2.0)
            return response.status_code == 200
        except httpx.HTTPError:
            return False

    async def aclose(self) -> None:
        await self._client.aclose()
