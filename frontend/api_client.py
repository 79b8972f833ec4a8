"""The chat UI's only way to the API: an httpx client with typed results and typed failures.

Why typed failures: the UI must tell "the API is down" from "the LLM is down but here is what was
retrieved" from "your request was refused", and each needs a different message. Every request carries
the conversation's ``X-Session-Id`` and the W3C trace context of the current span, so one chat turn is
one trace across frontend and API.

Usage::

    client = ApiClient("http://127.0.0.1:8000", api_key=None)
    async for event in client.stream_chat([{"role": "user", "content": "hi"}], ChatOptions(), session_id):
        if isinstance(event, TokenEvent):
            print(event.text, end="")
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from services.core.tracing import SESSION_HEADER, inject_headers
from services.core.types import RetrievalMode

# --- failures ------------------------------------------------------------------------------------


class ApiClientError(Exception):
    """Base of every failure the UI shows; ``message`` is written for a person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ApiDownError(ApiClientError):
    """The API cannot be reached (refused, timed out, connection dropped)."""


class LLMDownError(ApiClientError):
    """The API answered 503 because the LLM is down, but still sent the sources it retrieved."""

    def __init__(self, message: str, sources: list[Source]) -> None:
        super().__init__(message)
        self.sources = sources


class ApiHTTPError(ApiClientError):
    """Any other non-2xx answer (401 bad key, 413 too large, 422 invalid, 503 busy or store down, ...)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# --- data ----------------------------------------------------------------------------------------


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True, slots=True)
class Source:
    """One numbered chunk given to the model (the API's ``Citation``)."""

    n: int
    source: str
    title: str
    text: str
    chunk_id: str = ""
    doc_id: str = ""
    section: str | None = None
    page: int | None = None
    retrieval_score: float | None = None
    rerank_score: float | None = None
    excerpt: str | None = None  # what the model read of it (the evidence sentences); None: the whole text

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Source:
        return cls(
            n=int(d["n"]),
            source=str(d.get("source", "")),
            title=str(d.get("title") or d.get("source", "")),
            text=str(d.get("text", "")),
            chunk_id=str(d.get("chunk_id", "")),
            doc_id=str(d.get("doc_id", "")),
            section=d.get("section"),
            page=d.get("page"),
            retrieval_score=_float(d.get("retrieval_score")),
            rerank_score=_float(d.get("rerank_score")),
            excerpt=None if d.get("excerpt") is None else str(d["excerpt"]),
        )


@dataclass(frozen=True, slots=True)
class ChatOptions:
    """The retrieval settings a power user changes per question."""

    mode: RetrievalMode = "hybrid"
    rerank: bool = True
    top_k: int = 5
    sources: Sequence[str] = ()

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"mode": self.mode, "rerank": self.rerank, "top_k": self.top_k}
        if self.sources:
            body["filters"] = {"source": list(self.sources)}
        return body


@dataclass(frozen=True, slots=True)
class SourcesEvent:
    sources: list[Source]


@dataclass(frozen=True, slots=True)
class TokenEvent:
    text: str


@dataclass(frozen=True, slots=True)
class AnswerSentence:
    """One answer sentence as the API's verifier judged it: its verified citations, if any source supports it."""

    text: str
    citations: tuple[int, ...] = ()
    supported: bool = True
    score: float = 0.0

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AnswerSentence:
        return cls(
            text=str(d.get("text", "")),
            citations=tuple(int(n) for n in d.get("citations") or ()),
            supported=bool(d.get("supported", True)),
            score=float(d.get("score") or 0.0),
        )


@dataclass(frozen=True, slots=True)
class Answerability:
    """The API's gate before generating: probability that the sources hold the answer, and its band."""

    score: float
    band: str  # answer | verify | decline
    model: str = ""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Answerability:
        return cls(score=float(d.get("score") or 0.0), band=str(d.get("band", "")), model=str(d.get("model", "")))


@dataclass(frozen=True, slots=True)
class DoneEvent:
    """The final event (or the non-streaming answer). ``answer`` carries the verified ``[n]`` markers.

    ``sentences``, ``decline_reason`` and ``answerability`` come from servers that verify answers;
    an older server leaves them out (empty, None, None).
    """

    answer: str
    sources: list[Source]
    citations: list[Source]
    declined: bool = False
    model: str = ""
    usage: dict[str, int] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)
    sentences: tuple[AnswerSentence, ...] = ()
    decline_reason: str | None = None  # no_relevant_sources | unsupported_answer | model_declined
    answerability: Answerability | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DoneEvent:
        gate = d.get("answerability")
        return cls(
            answer=str(d.get("answer", "")),
            sources=[Source.from_dict(s) for s in d.get("sources") or []],
            citations=[Source.from_dict(s) for s in d.get("citations") or []],
            declined=bool(d.get("declined", False)),
            model=str(d.get("model", "")),
            usage=dict(d.get("usage") or {}),
            timings_ms=dict(d.get("timings_ms") or {}),
            sentences=tuple(AnswerSentence.from_dict(s) for s in d.get("sentences") or ()),
            decline_reason=str(d["decline_reason"]) if d.get("decline_reason") else None,
            answerability=Answerability.from_dict(gate) if isinstance(gate, dict) else None,
        )


@dataclass(frozen=True, slots=True)
class StreamErrorEvent:
    """The answer broke off after streaming started (LLM died, connection lost); keeps what arrived."""

    message: str
    partial_answer: str = ""


ChatEvent = SourcesEvent | TokenEvent | DoneEvent | StreamErrorEvent


@dataclass(frozen=True, slots=True)
class Document:
    doc_id: str
    source: str
    title: str
    chunk_count: int = 0
    status: str = ""
    media_type: str = ""
    ingested_at: str = ""
    size_bytes: int = 0
    tags: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Document:
        return cls(
            doc_id=str(d["doc_id"]),
            source=str(d.get("source", "")),
            title=str(d.get("title") or d.get("source", "")),
            chunk_count=int(d.get("chunk_count") or 0),
            status=str(d.get("status", "")),
            media_type=str(d.get("media_type", "")),
            ingested_at=str(d.get("ingested_at", "")),
            size_bytes=int(d.get("size_bytes") or 0),
            tags=tuple(d.get("tags") or ()),
        )


@dataclass(frozen=True, slots=True)
class UploadOutcome:
    filename: str
    status: str  # added | updated | unchanged | skipped | failed | queued | processing
    source: str = ""
    doc_id: str = ""
    chunks: int = 0
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("added", "updated", "unchanged")


@dataclass(frozen=True, slots=True)
class UploadResult:
    files: list[UploadOutcome]
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class Readiness:
    status: str  # ready | degraded (LLM down) | unavailable
    checks: dict[str, Any] = field(default_factory=dict)


# --- server-sent events --------------------------------------------------------------------------


class SSEParser:
    """Incremental text/event-stream parser: feed it lines, get ``(event, data)`` at each blank line.

    Follows the WHATWG rules the API relies on: ``event:`` names the event (default "message"),
    several ``data:`` lines join with newlines, lines starting with ``:`` are comments (keep-alives).
    """

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []

    def feed(self, line: str) -> tuple[str, str] | None:
        line = line.rstrip("\r\n")
        if not line:
            if not self._data:
                self._event = ""
                return None
            out = (self._event or "message", "\n".join(self._data))
            self._event, self._data = "", []
            return out
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        return None

    def flush(self) -> tuple[str, str] | None:
        """An event left without its closing blank line (the stream ended right after it)."""
        return self.feed("")


# --- the client ----------------------------------------------------------------------------------


def error_message(response: httpx.Response) -> str:
    """The human-readable reason in one of the API's error bodies (``error.message``, else ``detail``)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or f"HTTP {response.status_code}"
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        detail = body.get("detail")
        if isinstance(detail, str):
            return detail
        if detail is not None:
            return json.dumps(detail)[:300]
    return f"HTTP {response.status_code}"


def raise_for_status(response: httpx.Response) -> None:
    """Map a non-2xx answer to the typed error the UI shows (the body must already be read)."""
    if response.is_success:
        return
    message = error_message(response)
    if response.status_code == 503:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("sources"), list):
            raise LLMDownError(message, [Source.from_dict(s) for s in body["sources"]])
    if response.status_code == 401:
        message = f"the API refused the key ({message}); set RAG_API_KEY to the API's key"
    raise ApiHTTPError(response.status_code, message)


class ApiClient:
    """Talks to the RAG API. Stateless apart from its settings, so one instance serves every session."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 300.0,
        connect_timeout_s: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = httpx.Timeout(timeout_s, connect=connect_timeout_s)
        self._transport = transport  # httpx.MockTransport in unit tests

    def headers(self, session_id: str | None) -> dict[str, str]:
        headers: dict[str, str] = {}
        if session_id:
            headers[SESSION_HEADER] = session_id
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return inject_headers(headers)

    @asynccontextmanager
    async def _client(self) -> AsyncIterator[httpx.AsyncClient]:
        # One short-lived client per call: Gradio handlers may run on different event loops/threads.
        async with httpx.AsyncClient(
            base_url=self.base_url, timeout=self.timeout, transport=self._transport, follow_redirects=False
        ) as client:
            yield client

    def _down(self, exc: Exception) -> ApiDownError:
        reason = type(exc).__name__ if not str(exc) else f"{type(exc).__name__}: {exc}"
        return ApiDownError(f"cannot reach the API at {self.base_url} ({reason})")

    async def _request(self, method: str, path: str, session_id: str | None, **kwargs: Any) -> httpx.Response:
        try:
            async with self._client() as client:
                response = await client.request(method, path, headers=self.headers(session_id), **kwargs)
        except httpx.TransportError as exc:
            raise self._down(exc) from exc
        raise_for_status(response)
        return response

    async def readiness(self, session_id: str | None = None) -> Readiness:
        """``/readyz``; a 503 there is an answer (status ``unavailable``), not an error."""
        try:
            async with self._client() as client:
                response = await client.get("/readyz", headers=self.headers(session_id))
        except httpx.TransportError as exc:
            raise self._down(exc) from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code not in (200, 503) or not isinstance(body, dict):
            raise ApiHTTPError(response.status_code, error_message(response))
        return Readiness(status=str(body.get("status", "unavailable")), checks=dict(body.get("checks") or {}))

    async def list_documents(self, session_id: str | None = None) -> list[Document]:
        response = await self._request("GET", "/documents", session_id)
        return [Document.from_dict(d) for d in response.json()]

    async def delete_document(self, doc_id: str, session_id: str | None = None) -> dict[str, Any]:
        response = await self._request("DELETE", f"/documents/{doc_id}", session_id)
        return dict(response.json())

    async def upload(self, paths: Sequence[str | Path], tags: str = "", session_id: str | None = None) -> UploadResult:
        """Send several files in one multipart request; the API reports each file on its own."""
        files = []
        for raw in paths:
            path = Path(raw)
            media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            files.append(("files", (path.name, path.read_bytes(), media_type)))
        if not files:
            return UploadResult(files=[])
        data = {"tags": tags} if tags.strip() else None
        response = await self._request("POST", "/documents", session_id, files=files, data=data)
        body = response.json()
        outcomes = [
            UploadOutcome(
                filename=str(f.get("filename", "")),
                status=str(f.get("status", "")),
                source=str(f.get("source", "")),
                doc_id=str(f.get("doc_id", "")),
                chunks=int(f.get("chunks") or 0),
                reason=str(f.get("reason", "")),
            )
            for f in body.get("files", [])
        ]
        return UploadResult(files=outcomes, seconds=float(body.get("seconds", 0.0)))

    async def stream_chat(
        self, messages: list[dict[str, str]], options: ChatOptions, session_id: str | None = None
    ) -> AsyncIterator[ChatEvent]:
        """POST /chat with ``stream: true``; yields sources, tokens, then exactly one done or error event.

        Raises before the first event when the API is down (ApiDownError), the LLM is down (LLMDownError,
        with the retrieved sources) or the request is refused (ApiHTTPError). A stream that breaks off
        later ends with a StreamErrorEvent carrying the partial answer instead of raising.
        """
        body = {"messages": messages, "stream": True, **options.body()}
        parts: list[str] = []
        started = False  # once an event went out, failures become a StreamErrorEvent, not an exception
        parser = SSEParser()
        try:
            async with (
                self._client() as client,
                client.stream("POST", "/chat", json=body, headers=self.headers(session_id)) as response,
            ):
                if not response.is_success:
                    await response.aread()
                    raise_for_status(response)
                async for line in response.aiter_lines():
                    parsed = parser.feed(line)
                    if parsed is None:
                        continue
                    event = self._event(*parsed)
                    if event is None:
                        continue
                    if isinstance(event, TokenEvent):
                        parts.append(event.text)
                    started = True
                    yield event
                    if isinstance(event, DoneEvent | StreamErrorEvent):
                        return
                tail = parser.flush()
                if tail is not None and (event := self._event(*tail)) is not None:
                    yield event
                    if isinstance(event, DoneEvent | StreamErrorEvent):
                        return
        except httpx.TransportError as exc:
            if not started:
                raise self._down(exc) from exc
            yield StreamErrorEvent(f"lost the connection to the API ({type(exc).__name__})", "".join(parts))
            return
        yield StreamErrorEvent("the API ended the answer early (no final event)", "".join(parts))

    @staticmethod
    def _event(name: str, data: str) -> ChatEvent | None:
        try:
            payload = json.loads(data)
        except ValueError:
            return None
        if name == "sources":
            return SourcesEvent([Source.from_dict(s) for s in payload])
        if name == "token":
            return TokenEvent(str(payload.get("text", "")))
        if name == "done":
            return DoneEvent.from_dict(payload)
        if name == "error":
            return StreamErrorEvent(str(payload.get("message", "error")), str(payload.get("partial_answer", "")))
        return None  # unknown events are for newer clients
