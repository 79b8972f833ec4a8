"""Limits enforced before a route runs: body size and concurrent heavy requests.

The body limit counts bytes as they arrive (a lying or absent Content-Length cannot get past it), and
the concurrency limit turns overload into a fast 503 with Retry-After instead of unbounded latency.
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class _TooLarge(HTTPException):
    """An HTTPException so that body parsers re-raise it as is (FastAPI turns other errors into 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds the limit of {limit} bytes")


def _json_error(status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> tuple[dict, dict]:
    body = json.dumps({"detail": message, "error": {"message": message, "type": "error", "code": status}}).encode()
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        + (headers or []),
    }
    return start, {"type": "http.response.body", "body": body}


class LimitsMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_upload_bytes: int,
        max_concurrent: int,
        upload_prefix: str = "/documents",
        heavy_prefixes: tuple[str, ...] = ("/search", "/chat", "/v1/chat/completions", "/documents"),
    ) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.max_upload = max_upload_bytes
        self.upload_prefix = upload_prefix
        self.heavy_prefixes = heavy_prefixes
        self.max_concurrent = max_concurrent
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        limit = self.max_upload if path.startswith(self.upload_prefix) else self.max_body
        heavy = scope["method"] != "GET" and path.startswith(self.heavy_prefixes)
        refusal = self._refusal(scope, limit, heavy)
        if refusal is not None:
            await self._reply(send, *refusal)
            return
        if heavy:
            self.in_flight += 1
        try:
            await self._counted(scope, receive, send, limit)
        finally:
            if heavy:
                self.in_flight -= 1

    def _refusal(self, scope: Scope, limit: int, heavy: bool) -> tuple[int, str, list[tuple[bytes, bytes]]] | None:
        """What to answer before reading anything: a declared body over the limit, or no room for a heavy one."""
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return 413, f"request body is {int(declared)} bytes; the limit is {limit}", []
        if heavy and self.in_flight >= self.max_concurrent:
            return 503, f"server busy: {self.in_flight} requests in flight; retry shortly", [(b"retry-after", b"1")]
        return None

    async def _counted(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """Run the app with the body counted as it arrives: past ``limit`` it is a 413 (if nothing was sent)."""
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._reply(send, 413, f"request body exceeds the limit of {limit} bytes")

    @staticmethod
    async def _reply(send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        start, body = _json_error(status, message, headers)
        await send(start)
        await send(body)
