"""The chat flow (prepare -> gate -> generate -> hold/verify -> respond) as one typed pipeline, free of HTTP."""

from services.chat.errors import ChatError, InvalidRequest, LLMUnavailable, QueryTooLong
from services.chat.pipeline import (
    BAND_RULES,
    BandRule,
    ChatConfig,
    ChatEvent,
    ChatInput,
    ChatPipeline,
    ChatResult,
    DoneEvent,
    Draft,
    FailedEvent,
    Plan,
    Prepared,
    SearchOptions,
    SourcesEvent,
    TokenEvent,
)

__all__ = [
    "BAND_RULES",
    "BandRule",
    "ChatConfig",
    "ChatError",
    "ChatEvent",
    "ChatInput",
    "ChatPipeline",
    "ChatResult",
    "DoneEvent",
    "Draft",
    "FailedEvent",
    "InvalidRequest",
    "LLMUnavailable",
    "Plan",
    "Prepared",
    "QueryTooLong",
    "SearchOptions",
    "SourcesEvent",
    "TokenEvent",
]
