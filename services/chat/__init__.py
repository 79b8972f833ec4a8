"""The chat flow (retrieve -> gate -> generate -> verify) as one typed pipeline, free of HTTP."""

from services.chat.errors import ChatError, InvalidRequest, LLMUnavailable, QueryTooLong
from services.chat.pipeline import (
    ChatConfig,
    ChatEvent,
    ChatInput,
    ChatPipeline,
    ChatResult,
    DoneEvent,
    FailedEvent,
    SearchOptions,
    SourcesEvent,
    TokenEvent,
)

__all__ = [
    "ChatConfig",
    "ChatError",
    "ChatEvent",
    "ChatInput",
    "ChatPipeline",
    "ChatResult",
    "DoneEvent",
    "FailedEvent",
    "InvalidRequest",
    "LLMUnavailable",
    "QueryTooLong",
    "SearchOptions",
    "SourcesEvent",
    "TokenEvent",
]
