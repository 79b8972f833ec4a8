"""What can go wrong in a chat, as domain errors: the API maps each to an HTTP status in one place
(``services/api/errors.py``); the pipeline knows nothing of HTTP."""

from __future__ import annotations

from collections.abc import Sequence

from services.core.types import RetrievedChunk


class ChatError(Exception):
    """Base of the chat pipeline's errors; ``message`` is what the caller is told."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(ChatError):
    """The request cannot be answered as sent (no final user message, ``top_k > top_n``)."""


class QueryTooLong(ChatError):
    """The question is longer than ``RAG_MAX_QUERY_CHARS``."""

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(f"query is {length} characters; the limit is {limit} (RAG_MAX_QUERY_CHARS)")
        self.length = length
        self.limit = limit


class LLMUnavailable(ChatError):
    """The LLM is down or broke off; carries the retrieved sources, so the user still sees what was found, and
    what the prompt held of each (``excerpts``, aligned with ``sources``; None when it held whole chunks)."""

    def __init__(
        self, message: str, sources: Sequence[RetrievedChunk] = (), excerpts: Sequence[str] | None = None
    ) -> None:
        super().__init__(message)
        self.sources = list(sources)
        self.excerpts = None if excerpts is None else list(excerpts)
