"""What each stage records on its span, in OpenInference semantic conventions.

Phoenix renders these keys natively: retrieved documents with scores, reranker input/output lists,
LLM prompt messages and token counts. Builders are only called when ``span.is_recording()``, so a
request pays nothing for them when tracing is off or the trace is not sampled.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from openinference.semconv.trace import (
    DocumentAttributes,
    EmbeddingAttributes,
    MessageAttributes,
    RerankerAttributes,
    SpanAttributes,
)

from services.core.observability.tracing import as_json, clip
from services.core.types import RetrievedChunk

MAX_DOCUMENTS = 100  # a rerank of 500 candidates would otherwise make one span several MB


def chunk_metadata(chunk: RetrievedChunk) -> str:
    return as_json(
        {
            "doc_id": chunk.doc_id,
            "source": chunk.source,
            "title": chunk.title,
            "section": chunk.section,
            "page": chunk.page,
            "chunk_index": chunk.chunk_index,
            "retrieval_score": chunk.retrieval_score,
            "rerank_score": chunk.rerank_score,
        }
    )


def documents(prefix: str, chunks: Sequence[RetrievedChunk], *, score: str) -> dict[str, Any]:
    """``<prefix>.<i>.document.{id,score,content,metadata}`` for each chunk; ``score`` picks the stage's score."""
    attrs: dict[str, Any] = {}
    for i, chunk in enumerate(chunks[:MAX_DOCUMENTS]):
        value = chunk.rerank_score if score == "rerank" else chunk.retrieval_score
        base = f"{prefix}.{i}."
        attrs[base + DocumentAttributes.DOCUMENT_ID] = chunk.id
        attrs[base + DocumentAttributes.DOCUMENT_CONTENT] = clip(chunk.text, 2000)
        attrs[base + DocumentAttributes.DOCUMENT_METADATA] = chunk_metadata(chunk)
        if value is not None:
            attrs[base + DocumentAttributes.DOCUMENT_SCORE] = float(value)
    return attrs


def embedding(model: str, text: str) -> dict[str, Any]:
    return {
        SpanAttributes.EMBEDDING_MODEL_NAME: model,
        f"{SpanAttributes.EMBEDDING_EMBEDDINGS}.0.{EmbeddingAttributes.EMBEDDING_TEXT}": clip(text),
        SpanAttributes.INPUT_VALUE: clip(text),
    }


def retrieval(query: str, chunks: Sequence[RetrievedChunk], metadata: Mapping[str, Any]) -> dict[str, Any]:
    return {
        SpanAttributes.INPUT_VALUE: clip(query),
        SpanAttributes.METADATA: as_json(dict(metadata)),
        **documents(SpanAttributes.RETRIEVAL_DOCUMENTS, chunks, score="retrieval"),
    }


def rerank_input(model: str, query: str, top_k: int, candidates: Sequence[RetrievedChunk]) -> dict[str, Any]:
    return {
        RerankerAttributes.RERANKER_MODEL_NAME: model,
        RerankerAttributes.RERANKER_QUERY: clip(query),
        RerankerAttributes.RERANKER_TOP_K: top_k,
        SpanAttributes.INPUT_VALUE: clip(query),
        **documents(RerankerAttributes.RERANKER_INPUT_DOCUMENTS, candidates, score="retrieval"),
    }


def rerank_output(kept: Sequence[RetrievedChunk], skipped_reason: str | None) -> dict[str, Any]:
    attrs = documents(RerankerAttributes.RERANKER_OUTPUT_DOCUMENTS, kept, score="rerank")
    if skipped_reason:
        attrs[SpanAttributes.METADATA] = as_json({"skipped_reason": skipped_reason})
    return attrs


def _messages(prefix: str, messages: Iterable[Mapping[str, str]]) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for i, message in enumerate(messages):
        attrs[f"{prefix}.{i}.{MessageAttributes.MESSAGE_ROLE}"] = message.get("role", "")
        attrs[f"{prefix}.{i}.{MessageAttributes.MESSAGE_CONTENT}"] = clip(message.get("content", ""))
    return attrs


def llm_request(model: str, messages: Sequence[Mapping[str, str]], params: Mapping[str, Any]) -> dict[str, Any]:
    return {
        SpanAttributes.LLM_MODEL_NAME: model,
        SpanAttributes.LLM_INVOCATION_PARAMETERS: as_json({k: v for k, v in params.items() if v is not None}),
        SpanAttributes.INPUT_VALUE: as_json([dict(m) for m in messages]),
        SpanAttributes.INPUT_MIME_TYPE: "application/json",
        **_messages(SpanAttributes.LLM_INPUT_MESSAGES, messages),
    }


def llm_response(text: str, model: str, usage: Mapping[str, int], first_token_ms: float | None) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        SpanAttributes.OUTPUT_VALUE: clip(text),
        SpanAttributes.LLM_MODEL_NAME: model,
        **_messages(SpanAttributes.LLM_OUTPUT_MESSAGES, [{"role": "assistant", "content": text}]),
    }
    counts = {
        SpanAttributes.LLM_TOKEN_COUNT_PROMPT: usage.get("prompt_tokens"),
        SpanAttributes.LLM_TOKEN_COUNT_COMPLETION: usage.get("completion_tokens"),
        SpanAttributes.LLM_TOKEN_COUNT_TOTAL: usage.get("total_tokens"),
    }
    if counts[SpanAttributes.LLM_TOKEN_COUNT_TOTAL] is None and counts[SpanAttributes.LLM_TOKEN_COUNT_COMPLETION]:
        counts[SpanAttributes.LLM_TOKEN_COUNT_TOTAL] = (usage.get("prompt_tokens") or 0) + usage["completion_tokens"]
    attrs.update({k: int(v) for k, v in counts.items() if v is not None})
    if first_token_ms is not None:
        attrs["llm.time_to_first_token_ms"] = round(first_token_ms, 2)
    return attrs


def chain_input(value: str) -> dict[str, Any]:
    return {SpanAttributes.INPUT_VALUE: clip(value)}


def chain_output(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return {SpanAttributes.OUTPUT_VALUE: clip(value)}
    return {
        SpanAttributes.OUTPUT_VALUE: clip(as_json(value), 20_000),
        SpanAttributes.OUTPUT_MIME_TYPE: "application/json",
    }
