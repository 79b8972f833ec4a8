"""OpenAICompatibleLLM against a fake OpenAI-compatible HTTP server: text, streaming, retries, timeouts."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fake_llm import FakeOpenAIServer, fake_answer

from services.core.grounding.prompt import NO_ANSWER
from services.core.models.llm import Completion, LLMUnavailableError, OpenAICompatibleLLM, StreamState

pytestmark = pytest.mark.unit

PROMPT = (
    "Sources:\n<<<\n[1] Router guide\nHold the reset button for ten seconds. The lights then blink.\n\n"
    "[2] Bread\nSourdough needs a starter.\n>>>\n\nQuestion: how do I reset the router?\n\nAnswer with [n] citations:"
)
MESSAGES = [{"role": "system", "content": "rules"}, {"role": "user", "content": PROMPT}]
EXPECTED = "Hold the reset button for ten seconds. [1]"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as srv:
        yield srv


@pytest.fixture
def srv(server: FakeOpenAIServer) -> FakeOpenAIServer:
    server.reset()
    return server


def run(coro_fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run an async function with a fresh client bound to this event loop, closing the client after."""
    llm_kwargs = kwargs.pop("llm", {})

    async def main() -> Any:
        llm = OpenAICompatibleLLM(llm_kwargs.pop("base_url"), model="fake-llm", **llm_kwargs)
        try:
            return await coro_fn(llm, *args, **kwargs)
        finally:
            await llm.aclose()

    return asyncio.run(main())


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _complete(llm: OpenAICompatibleLLM, **params: Any) -> Completion:
    return await llm.complete(MESSAGES, **params)


async def _stream(llm: OpenAICompatibleLLM) -> tuple[list[str], StreamState]:
    state = StreamState(model=llm.model)
    async with llm.stream(MESSAGES, state) as deltas:
        parts = [d async for d in deltas]
    return parts, state


def test_fake_answer_contract() -> None:
    assert fake_answer(MESSAGES) == EXPECTED
    no_sources = [{"role": "user", "content": "Sources:\n<<<\n(no sources found)\n>>>\n\nQuestion: x"}]
    assert fake_answer(no_sources) == NO_ANSWER


def test_complete_returns_text_and_usage(srv: FakeOpenAIServer) -> None:
    completion = run(_complete, llm={"base_url": srv.base_url, "max_tokens": 17, "temperature": 0.3})
    assert completion.text == EXPECTED
    assert completion.finish_reason == "stop"
    assert completion.model == "fake-llm"
    assert completion.usage["completion_tokens"] == len(EXPECTED.split())
    assert completion.usage["total_tokens"] > completion.usage["completion_tokens"]
    body = srv.requests[-1]
    assert body["stream"] is False and body["max_tokens"] == 17 and body["temperature"] == 0.3
    assert body["messages"] == MESSAGES


def test_per_call_params_override_defaults_and_none_is_ignored(srv: FakeOpenAIServer) -> None:
    run(_complete, max_tokens=5, temperature=None, llm={"base_url": srv.base_url, "max_tokens": 17})
    assert srv.requests[-1]["max_tokens"] == 5
    assert srv.requests[-1]["temperature"] == 0.1  # the default, not None


def test_stream_yields_words_and_fills_state(srv: FakeOpenAIServer) -> None:
    parts, state = run(_stream, llm={"base_url": srv.base_url})
    assert len(parts) == len(EXPECTED.split()) > 1
    assert "".join(parts) == EXPECTED
    assert state.finish_reason == "stop"
    assert state.model == "fake-llm"
    assert state.usage["completion_tokens"] == len(parts)
    body = srv.requests[-1]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_503_twice_then_ok_succeeds_with_two_retries(srv: FakeOpenAIServer) -> None:
    srv.fail_status, srv.fail_times = 503, 2
    completion = run(_complete, llm={"base_url": srv.base_url, "max_retries": 2})
    assert completion.text == EXPECTED
    assert len(srv.requests) == 3


def test_stream_retries_before_first_token(srv: FakeOpenAIServer) -> None:
    srv.fail_status, srv.fail_times = 429, 1
    parts, _ = run(_stream, llm={"base_url": srv.base_url, "max_retries": 1})
    assert "".join(parts) == EXPECTED
    assert len(srv.requests) == 2


def test_always_500_raises_after_bounded_retries(srv: FakeOpenAIServer) -> None:
    srv.fail_status = 500
    with pytest.raises(LLMUnavailableError, match="500"):
        run(_complete, llm={"base_url": srv.base_url, "max_retries": 2})
    assert len(srv.requests) == 1 + 2


def test_400_is_not_retried(srv: FakeOpenAIServer) -> None:
    srv.fail_status = 400
    with pytest.raises(LLMUnavailableError, match="400"):
        run(_complete, llm={"base_url": srv.base_url, "max_retries": 2})
    assert len(srv.requests) == 1


def test_stream_400_raises_on_enter(srv: FakeOpenAIServer) -> None:
    srv.fail_status = 400
    with pytest.raises(LLMUnavailableError, match="400"):
        run(_stream, llm={"base_url": srv.base_url, "max_retries": 2})
    assert len(srv.requests) == 1


@pytest.mark.parametrize(
    ("cut", "reason"),
    [
        ("error", "mid-stream: fake: KV cache full"),
        ("eof", "ended before the answer finished"),
        ("done", "ended before the answer finished"),
    ],
)
def test_a_stream_cut_short_raises_instead_of_ending_as_an_answer(srv: FakeOpenAIServer, cut: str, reason: str) -> None:
    """A server that gives up mid-answer must not look like a (short or empty) finished answer."""
    srv.stream_cut = cut
    with pytest.raises(LLMUnavailableError, match=reason):
        run(_stream, llm={"base_url": srv.base_url})


def test_closed_port_fails_fast() -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    t0 = time.perf_counter()
    with pytest.raises(LLMUnavailableError, match="unreachable"):
        run(_complete, llm={"base_url": url, "max_retries": 0, "connect_timeout_s": 0.5})
    assert time.perf_counter() - t0 < 5


def test_slow_server_times_out(srv: FakeOpenAIServer) -> None:
    srv.delay_s = 2.0
    t0 = time.perf_counter()
    with pytest.raises(LLMUnavailableError, match="timed out"):
        run(_complete, llm={"base_url": srv.base_url, "max_retries": 0, "timeout_s": 0.5})
    assert time.perf_counter() - t0 < 2.5


def test_ping() -> None:
    async def ping(llm: OpenAICompatibleLLM) -> bool:
        return await llm.ping()

    with FakeOpenAIServer() as srv:
        assert run(ping, llm={"base_url": srv.base_url}) is True
        srv.fail_status = 503
        assert run(ping, llm={"base_url": srv.base_url}) is False
    assert run(ping, llm={"base_url": f"http://127.0.0.1:{closed_port()}/v1"}) is False


def _stream_over(transport: httpx.AsyncBaseTransport) -> tuple[list[str], StreamState]:
    """``_stream`` with the HTTP exchange in memory: for streams a real server would not send on request."""

    async def main() -> tuple[list[str], StreamState]:
        llm = OpenAICompatibleLLM("http://llm.invalid/v1", model="fake-llm")
        await llm._client.aclose()
        llm._client = httpx.AsyncClient(base_url=llm.base_url, transport=transport)
        try:
            return await _stream(llm)
        finally:
            await llm.aclose()

    return asyncio.run(main())


def test_stream_skips_what_is_not_an_event_and_reads_nothing_after_done() -> None:
    """SSE comments (keep-alives), other fields and an unreadable payload are skipped, not fatal; [DONE] ends it."""
    sse = "\n".join(
        [
            ": keep-alive",
            "event: message",
            'data: {"model": "m1", "choices": [{"delta": {"content": "Hello"}, "finish_reason": null}]}',
            "data: {not json",
            'data: {"choices": [{"delta": {"content": " world"}, "finish_reason": "stop"}]}',
            'data: {"choices": [], "usage": {"completion_tokens": 2, "note": "not a count"}}',
            "data: [DONE]",
            'data: {"choices": [{"delta": {"content": "after done"}}]}',
        ]
    )
    parts, state = _stream_over(httpx.MockTransport(lambda _: httpx.Response(200, text=sse)))
    assert parts == ["Hello", " world"]
    assert state.model == "m1" and state.finish_reason == "stop"
    assert state.usage == {"completion_tokens": 2}


class _BrokenBody(httpx.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'data: {"choices": [{"delta": {"content": "Hi"}, "finish_reason": null}]}\n\n'
        raise httpx.ReadError("connection reset by peer")


def test_a_connection_lost_mid_stream_raises_llm_unavailable() -> None:
    transport = httpx.MockTransport(lambda _: httpx.Response(200, stream=_BrokenBody()))
    with pytest.raises(LLMUnavailableError, match="stream broke: ReadError"):
        _stream_over(transport)
