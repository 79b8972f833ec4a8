"""One error shape for every failure: FastAPI's ``detail`` plus OpenAI's ``error`` object.

So both plain HTTP clients and OpenAI SDKs show the reason. Dependencies that are down map to 503
with the reason and a Retry-After; nothing a client sends may produce a 500. The chat pipeline's domain
errors (``services.chat.errors``) get their status here, in ``status_for``, and nowhere else.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.chat.errors import ChatError, InvalidRequest, LLMUnavailable, QueryTooLong
from services.contract.schemas import Citation, ErrorBody
from services.core.models.llm import LLMUnavailableError
from services.core.models.model_registry import ModelUnavailableError
from services.core.retrieval import LateInteractionUnavailableError
from services.core.storage.store import StoreUnavailableError
from services.state.db import DatabaseUnavailable
from services.state.store import UnknownTurn

logger = logging.getLogger(__name__)

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    503: "service_unavailable",
}


def error_response(
    status: int,
    message: str,
    *,
    detail: Any = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    if detail is None and status == 422:
        # The OpenAPI document promises FastAPI's validation shape for every 422 (a list under ``detail``),
        # so the app's own 422s (top_k > top_n, late interaction unavailable, ...) use it too.
        detail = [{"loc": ["body"], "msg": message, "type": "value_error"}]
    body: dict[str, Any] = {
        "detail": detail if detail is not None else message,
        "error": {"message": message, "type": _TYPES.get(status, "error"), "code": status},
    }
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers)


def _documented(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


# Declared on every route so the OpenAPI document lists what clients really get (schemathesis checks it).
RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _documented("malformed request (e.g. a broken multipart body)"),
    404: _documented("no such document, answer or conversation"),
    413: _documented("body, upload or query over its limit"),
    503: _documented(
        "a dependency (LLM, Qdrant, the application database) is down, or too many requests are in flight; "
        "see Retry-After"
    ),
}
# Only on the routes that require a key, and only when one is configured (RAG_API_KEY).
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {401: _documented("missing or invalid API key")}


def status_for(exc: BaseException) -> int:
    """The HTTP status of an exception, where the API answers with one (the chain span records it too)."""
    if isinstance(exc, ChatError):
        return _CHAT_STATUS.get(type(exc), 500)
    if isinstance(exc, StarletteHTTPException):
        return exc.status_code
    if isinstance(exc, RequestValidationError | LateInteractionUnavailableError):
        return 422
    if isinstance(exc, LLMUnavailableError | StoreUnavailableError | ModelUnavailableError | DatabaseUnavailable):
        return 503
    if isinstance(exc, UnknownTurn):
        return 404
    return 500


# The chat pipeline's domain errors, mapped here and nowhere else.
_CHAT_STATUS: dict[type[ChatError], int] = {InvalidRequest: 422, QueryTooLong: 413, LLMUnavailable: 503}


def chat_error_response(exc: ChatError) -> JSONResponse:
    status = status_for(exc)
    if isinstance(exc, LLMUnavailable):
        # A dead LLM still returns the retrieved sources: the user sees what was found.
        return error_response(
            status,
            f"{exc.message}; retrieval still works (POST /search)",
            headers={"Retry-After": "5"},
            extra={"sources": [c.model_dump() for c in Citation.numbered(exc.sources, exc.excerpts)]},
        )
    return error_response(status, exc.message)


def install(app: FastAPI) -> None:
    # Starlette's class, not FastAPI's subclass: routing 404/405 and the body-limit 413 are Starlette's.
    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        summary = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: {e.get('msg')}" for e in errors
        )
        # Pydantic's input echo may be huge or contain bytes: drop it from the response.
        slim = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in errors]
        return error_response(422, f"invalid request: {summary}"[:1000], detail=slim)

    @app.exception_handler(LLMUnavailableError)
    async def _llm(_: Request, exc: LLMUnavailableError) -> JSONResponse:
        return error_response(503, str(exc), headers={"Retry-After": "5"})

    @app.exception_handler(ChatError)
    async def _chat(_: Request, exc: ChatError) -> JSONResponse:
        return chat_error_response(exc)

    @app.exception_handler(StoreUnavailableError)
    async def _store(_: Request, exc: StoreUnavailableError) -> JSONResponse:
        return error_response(503, str(exc), headers={"Retry-After": "5"})

    @app.exception_handler(DatabaseUnavailable)
    async def _database(_: Request, exc: DatabaseUnavailable) -> JSONResponse:
        return error_response(503, f"application database unavailable: {exc}", headers={"Retry-After": "5"})

    @app.exception_handler(UnknownTurn)
    async def _unknown_turn(_: Request, exc: UnknownTurn) -> JSONResponse:
        return error_response(404, f"no answer {exc.args[0]!r} is on record (never given, deleted, or past retention)")

    @app.exception_handler(LateInteractionUnavailableError)
    async def _late(_: Request, exc: LateInteractionUnavailableError) -> JSONResponse:
        return error_response(422, str(exc))

    @app.exception_handler(ModelUnavailableError)
    async def _model(_: Request, exc: ModelUnavailableError) -> JSONResponse:
        return error_response(503, str(exc))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error")
        return error_response(500, f"internal error: {type(exc).__name__}")
