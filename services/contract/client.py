"""The API's one client: requests and responses are the API's own pydantic models, failures are typed.

Two faces over one set of helpers, because the callers live in two worlds:

- ``AsyncApiClient``: the chat UI (Gradio handlers are coroutines): readiness, documents, uploads and the
  streamed chat, as events.
- ``ApiClient``: blocking callers (the evaluation, scripts): readiness, ``/search`` and ``/chat`` in one body.
  Any ``httpx.Client`` can be handed in (tests pass FastAPI's TestClient).

Why typed failures: a caller must tell "the API is down" from "the LLM is down but here is what was
retrieved" from "your request was refused", and each needs a different message. Every request carries the
W3C trace context of the current span (and the UI's ``X-Session-Id``), so one chat turn is one trace across
the caller and the API.

Usage::

    api = AsyncApiClient("http://127.0.0.1:8000", api_key=None)
    async for event in api.stream_chat([{"role": "user", "content": "hi"}], ChatOptions(), session_id):
        if isinstance(event, TokenEvent):
            print(event.text, end="")

    with ApiClient("http://127.0.0.1:8000") as api:
        reply = api.chat([{"role": "user", "content": "hi"}], ChatOptions(verify=False))
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from services.contract.schemas import (
    ChatMessage,
    ChatOptions,
    ChatRequest,
    ChatResponse,
    Citation,
    ConversationOut,
    ConversationSummary,
    DocumentOut,
    DocumentStatus,
    FeedbackOut,
    FeedbackRequest,
    IngestResponse,
    Readiness,
    SearchRequest,
    SearchResponse,
    StreamError,
)
from services.core.observability.tracing import SESSION_HEADER, inject_headers

M = TypeVar("M", bound=BaseModel)

# --- failures ------------------------------------------------------------------------------------


class ApiClientError(Exception):
    """Base of every failure a caller shows; ``message`` is written for a person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ApiDownError(ApiClientError):
    """The API cannot be reached (refused, timed out, connection dropped)."""


class LLMDownError(ApiClientError):
    """The API answered 503 because the LLM is down, but still sent the sources it retrieved."""

    def __init__(self, message: str, sources: list[Citation]) -> None:
        super().__init__(message)
        self.sources = sources


class ApiHTTPError(ApiClientError):
    """Any other non-2xx answer (401 bad key, 413 too large, 422 invalid, 503 busy or store down, ...)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ApiResponseError(ApiClientError):
    """A 2xx answer whose body is not what the contract says (a proxy's page, another server's version)."""


# --- streamed chat events ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourcesEvent:
    sources: list[Citation]


@dataclass(frozen=True, slots=True)
class TokenEvent:
    text: str


@dataclass(frozen=True, slots=True)
class StreamErrorEvent:
    """The answer broke off after streaming started (LLM died, connection lost); keeps what arrived."""

    message: str
    partial_answer: str = ""


# ``ChatResponse`` is the final event: the same object as the non-streaming answer.
ChatEvent = SourcesEvent | TokenEvent | ChatResponse | StreamErrorEvent

_CITATIONS = TypeAdapter(list[Citation])
_DOCUMENTS = TypeAdapter(list[DocumentOut])
_CONVERSATIONS = TypeAdapter(list[ConversationSummary])


def parse_event(name: str, data: str) -> ChatEvent | None:
    """One server-sent event of ``POST /chat`` as a typed event; None for an unknown or unreadable one."""
    try:
        if name == "sources":
            return SourcesEvent(_CITATIONS.validate_json(data))
        if name == "token":
            return TokenEvent(str(json.loads(data).get("text", "")))
        if name == "done":
            return ChatResponse.model_validate_json(data)
        if name == "error":
            error = StreamError.model_validate_json(data)
            return StreamErrorEvent(error.message, error.partial_answer)
    except (ValueError, AttributeError):  # pydantic's ValidationError is a ValueError
        return None
    return None  # unknown events are for newer clients


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


# --- the parts both faces share ----------------------------------------------------------------------


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
    """Map a non-2xx answer to its typed error (the body must already be read)."""
    if response.is_success:
        return
    message = error_message(response)
    if response.status_code == 503:
        try:
            sources = _CITATIONS.validate_python(response.json().get("sources"))
        except (ValueError, AttributeError, ValidationError):
            sources = None
        if sources is not None:
            raise LLMDownError(message, sources)
    if response.status_code == 401:
        message = f"the API refused the key ({message}); set RAG_API_KEY to the API's key"
    raise ApiHTTPError(response.status_code, message)


def parse(model: type[M], response: httpx.Response) -> M:
    """The body as the contract's model, or ApiResponseError saying what came instead."""
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise ApiResponseError(
            f"{response.request.method} {response.request.url.path} returned a body that does not match"
            f" {model.__name__} ({exc.error_count()} errors, first: {exc.errors()[0]['msg']}): {response.text[:200]}"
        ) from exc


def readiness_of(response: httpx.Response) -> Readiness:
    """``/readyz``'s answer; a 503 there is an answer (``unavailable``), not an error."""
    if response.status_code not in (200, 503):
        raise ApiHTTPError(response.status_code, error_message(response))
    return parse(Readiness, response)


def chat_request(messages: Sequence[Mapping[str, Any]], options: ChatOptions | None, *, stream: bool) -> dict[str, Any]:
    """The JSON body of ``POST /chat``: only the options a caller set are sent (the server decides the rest)."""
    chosen = options.chosen() if options else {}
    request = ChatRequest(messages=[ChatMessage(**m) for m in messages], stream=stream, **chosen)
    return request.model_dump(mode="json", exclude_unset=True, exclude_none=True)


class _Client:
    """Settings and headers of both faces."""

    def __init__(
        self, base_url: str, *, api_key: str | None = None, timeout_s: float = 300.0, connect_timeout_s: float = 5.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = httpx.Timeout(timeout_s, connect=connect_timeout_s)

    def headers(self, session_id: str | None = None) -> dict[str, str]:
        headers: dict[str, str] = {}
        if session_id:
            headers[SESSION_HEADER] = session_id
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return inject_headers(headers)

    def _down(self, exc: Exception) -> ApiDownError:
        reason = type(exc).__name__ if not str(exc) else f"{type(exc).__name__}: {exc}"
        return ApiDownError(f"cannot reach the API at {self.base_url} ({reason})")


# --- blocking: evaluation, scripts -------------------------------------------------------------------


class ApiClient(_Client):
    """Blocking client of ``/readyz``, ``/search`` and ``/chat``. Close it (or use it as a context manager)."""

    def __init__(
        self,
        base_url: str = "",
        *,
        api_key: str | None = None,
        timeout_s: float = 600.0,
        connect_timeout_s: float = 5.0,
        http: httpx.Client | None = None,
    ) -> None:
        if http is not None and not base_url:
            base_url = str(http.base_url)
        super().__init__(
            base_url,
            api_key=api_key,
            timeout_s=timeout_s,
            connect_timeout_s=connect_timeout_s,
        )
        self.http = http or httpx.Client(base_url=self.base_url, timeout=self.timeout, follow_redirects=False)

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.http.request(method, path, headers=self.headers(), **kwargs)
        except httpx.TransportError as exc:
            raise self._down(exc) from exc

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._send(method, path, **kwargs)
        raise_for_status(response)
        return response

    def readiness(self) -> Readiness:
        return readiness_of(self._send("GET", "/readyz"))

    def ready(self) -> bool:
        """True when ``/readyz`` answers 200 (retrieval works; the LLM may be degraded)."""
        try:
            return self._send("GET", "/readyz").status_code == 200
        except ApiClientError:
            return False

    def search(self, request: SearchRequest) -> SearchResponse:
        body = request.model_dump(mode="json", exclude_unset=True)
        return parse(SearchResponse, self._request("POST", "/search", json=body))

    def chat(self, messages: Sequence[Mapping[str, Any]], options: ChatOptions | None = None) -> ChatResponse:
        """One answer in one body (``stream: false``); ``options``: only what is set is sent."""
        return parse(ChatResponse, self._request("POST", "/chat", json=chat_request(messages, options, stream=False)))

    def feedback(self, request: FeedbackRequest) -> FeedbackOut:
        return parse(FeedbackOut, self._request("POST", "/feedback", json=request.model_dump(exclude_none=True)))

    def conversation(self, conversation_id: str) -> ConversationOut:
        return parse(ConversationOut, self._request("GET", f"/conversations/{quote(conversation_id, safe='')}"))


# --- asynchronous: the chat UI -----------------------------------------------------------------------


class AsyncApiClient(_Client):
    """Talks to the API from coroutines. Stateless apart from its settings, so one serves every session."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 300.0,
        connect_timeout_s: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, api_key=api_key, timeout_s=timeout_s, connect_timeout_s=connect_timeout_s)
        self._transport = transport  # httpx.MockTransport in unit tests

    @asynccontextmanager
    async def _client(self) -> AsyncIterator[httpx.AsyncClient]:
        # One short-lived client per call: Gradio handlers may run on different event loops/threads.
        async with httpx.AsyncClient(
            base_url=self.base_url, timeout=self.timeout, transport=self._transport, follow_redirects=False
        ) as client:
            yield client

    async def _send(self, method: str, path: str, session_id: str | None, **kwargs: Any) -> httpx.Response:
        try:
            async with self._client() as client:
                return await client.request(method, path, headers=self.headers(session_id), **kwargs)
        except httpx.TransportError as exc:
            raise self._down(exc) from exc

    async def _request(self, method: str, path: str, session_id: str | None, **kwargs: Any) -> httpx.Response:
        response = await self._send(method, path, session_id, **kwargs)
        raise_for_status(response)
        return response

    async def readiness(self, session_id: str | None = None) -> Readiness:
        return readiness_of(await self._send("GET", "/readyz", session_id))

    async def list_documents(self, session_id: str | None = None) -> list[DocumentOut]:
        response = await self._request("GET", "/documents", session_id)
        try:
            return _DOCUMENTS.validate_json(response.content)
        except ValidationError as exc:
            raise ApiResponseError(f"GET /documents returned a body that is not a document list: {exc}") from exc

    async def document_status(self, doc_id: str, session_id: str | None = None) -> DocumentStatus:
        return parse(DocumentStatus, await self._request("GET", f"/documents/{doc_id}", session_id))

    async def cancel_ingest(self, doc_id: str, session_id: str | None = None) -> DocumentStatus:
        """Stop the document's ingest job (``POST /documents/{doc_id}/cancel``)."""
        return parse(DocumentStatus, await self._request("POST", f"/documents/{doc_id}/cancel", session_id))

    async def delete_document(self, doc_id: str, session_id: str | None = None) -> dict[str, Any]:
        response = await self._request("DELETE", f"/documents/{doc_id}", session_id)
        return dict(response.json())

    async def upload(
        self, paths: Sequence[str | Path], tags: str = "", session_id: str | None = None
    ) -> IngestResponse:
        """Send several files in one multipart request; the API reports each file on its own."""
        files = []
        for raw in paths:
            path = Path(raw)
            media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            files.append(("files", (path.name, path.read_bytes(), media_type)))
        if not files:
            return IngestResponse(files=[], seconds=0.0)
        data = {"tags": tags} if tags.strip() else None
        return parse(IngestResponse, await self._request("POST", "/documents", session_id, files=files, data=data))

    async def feedback(self, request: FeedbackRequest, session_id: str | None = None) -> FeedbackOut:
        body = request.model_dump(exclude_none=True)
        return parse(FeedbackOut, await self._request("POST", "/feedback", session_id, json=body))

    async def conversations(self, session_id: str | None = None, limit: int = 50) -> list[ConversationSummary]:
        response = await self._request("GET", "/conversations", session_id, params={"limit": limit})
        try:
            return _CONVERSATIONS.validate_json(response.content)
        except ValidationError as exc:
            raise ApiResponseError(f"GET /conversations returned a body that is not a list: {exc}") from exc

    async def conversation(self, conversation_id: str, session_id: str | None = None) -> ConversationOut | None:
        """Its answers in order; None when the API keeps none under this id."""
        path = f"/conversations/{quote(conversation_id, safe='')}"
        response = await self._send("GET", path, session_id)
        if response.status_code == 404:
            return None
        raise_for_status(response)
        return parse(ConversationOut, response)

    async def stream_chat(
        self, messages: Sequence[Mapping[str, Any]], options: ChatOptions | None = None, session_id: str | None = None
    ) -> AsyncIterator[ChatEvent]:
        """POST /chat with ``stream: true``; yields sources, tokens, then exactly one ChatResponse or error event.

        Raises before the first event when the API is down (ApiDownError), the LLM is down (LLMDownError,
        with the retrieved sources) or the request is refused (ApiHTTPError). A stream that breaks off
        later ends with a StreamErrorEvent carrying the partial answer instead of raising.
        """
        body = chat_request(messages, options, stream=True)
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
                    if parsed is None or (event := parse_event(*parsed)) is None:
                        continue
                    if isinstance(event, TokenEvent):
                        parts.append(event.text)
                    started = True
                    yield event
                    if isinstance(event, ChatResponse | StreamErrorEvent):
                        return
                tail = parser.flush()
                if tail is not None and (event := parse_event(*tail)) is not None:
                    yield event
                    if isinstance(event, ChatResponse | StreamErrorEvent):
                        return
        except httpx.TransportError as exc:
            if not started:
                raise self._down(exc) from exc
            yield StreamErrorEvent(f"lost the connection to the API ({type(exc).__name__})", "".join(parts))
            return
        yield StreamErrorEvent("the API ended the answer early (no final event)", "".join(parts))
