"""Request and response models: the API's contract, and what its OpenAPI document shows.

The API serves these, and the one client (``services.contract.client``) parses with them, so a field added
here reaches the chat UI and the evaluation without a hand-kept copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.core.grounding.contracts import Band, DeclineReason
from services.core.types import JobOutcome, JobState, RetrievalMode, RetrievedChunk, UploadStatus


class Filters(BaseModel):
    """Restrict retrieval to some documents. Unknown fields are an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")
    source: list[str] = Field(default_factory=list, max_length=100, description="exact source paths/URIs")
    doc_id: list[str] = Field(default_factory=list, max_length=100)
    tags: list[str] = Field(default_factory=list, max_length=100)
    exclude_doc_id: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="documents never returned (narrows only; the evaluation's leave-one-out near misses)",
    )


class RetrievalOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: RetrievalMode | None = Field(None, description="first stage; default from RAG_RETRIEVAL_MODE")
    top_n: int | None = Field(None, ge=1, le=500, description="first-stage candidates")
    top_k: int | None = Field(None, ge=1, le=100, description="chunks returned after reranking")
    rerank: bool = Field(True, description="cross-encoder stage (when a reranker is configured)")
    late_interaction: bool | None = Field(
        None, description="MaxSim re-scoring of the first stage over per-token vectors; default RAG_LATE_INTERACTION"
    )
    min_score: float | None = Field(None, description="drop reranked chunks scoring below this")
    filters: Filters | None = None


class SearchRequest(RetrievalOptions):
    query: str = Field(..., min_length=1, max_length=20_000)

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("query must not be empty")
        return value


class ChunkOut(BaseModel):
    id: str
    doc_id: str
    source: str
    title: str
    section: str | None
    page: int | None
    chunk_index: int
    text: str
    tags: list[str] = []
    retrieval_score: float = Field(description="first-stage score (cosine, BM25, RRF or MaxSim by mode)")
    late_interaction_score: float | None = None
    rerank_score: float | None = None

    @classmethod
    def from_chunk(cls, chunk: RetrievedChunk) -> ChunkOut:
        return cls.model_validate(chunk, from_attributes=True)  # the same names, field for field


class SearchResponse(BaseModel):
    query: str
    mode: RetrievalMode
    reranker: str
    reranked: bool
    rerank_skipped_reason: str | None = None
    late_interaction: bool = False
    candidates: int
    results: list[ChunkOut]
    timings_ms: dict[str, float]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = Field(default="", max_length=20_000)

    def text(self) -> str:
        if isinstance(self.content, list):  # OpenAI content parts: keep the text ones
            return " ".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class ChatOptions(RetrievalOptions):
    """Retrieval options plus the grounding toggles of a chat (``None``: the server's setting)."""

    answerability_gate: bool | None = Field(
        None,
        description="decline without calling the LLM when the sources cannot answer; default RAG_ANSWERABILITY_GATE",
    )
    verify: bool | None = Field(
        None, description="check each answer sentence against the sources; default RAG_VERIFY_ANSWERS"
    )

    def chosen(self) -> dict[str, Any]:
        """The options a caller set, as JSON; ``None`` counts as unset (the server's setting applies), so an
        older server that rejects unknown fields only sees the ones a caller really chose."""
        return self.model_dump(mode="json", exclude_unset=True, exclude_none=True)


class ChatRequest(ChatOptions):
    messages: list[ChatMessage] = Field(..., min_length=1, max_length=200)
    stream: bool = False
    max_tokens: int | None = Field(None, ge=1, le=4096)
    temperature: float | None = Field(None, ge=0, le=2)


class Citation(BaseModel):
    n: int = Field(description="the number used in the answer, [n]")
    chunk_id: str
    doc_id: str
    source: str
    title: str
    section: str | None
    page: int | None
    text: str = Field(description="the whole chunk (see excerpt for what the model read of it)")
    rerank_score: float | None = None
    retrieval_score: float
    excerpt: str | None = Field(
        None,
        description="what the model read from this source: the evidence sentences put into the prompt "
        "(None: the whole text)",
    )

    @classmethod
    def from_chunk(cls, n: int, chunk: RetrievedChunk, excerpt: str | None = None) -> Citation:
        return cls(
            n=n,
            chunk_id=chunk.id,
            doc_id=chunk.doc_id,
            source=chunk.source,
            title=chunk.title,
            section=chunk.section,
            page=chunk.page,
            text=chunk.text,
            rerank_score=chunk.rerank_score,
            retrieval_score=chunk.retrieval_score,
            excerpt=excerpt,
        )

    @classmethod
    def numbered(cls, chunks: Sequence[RetrievedChunk], excerpts: Sequence[str] | None = None) -> list[Citation]:
        """The sources as the prompt numbers them, ``[1]`` first; ``excerpts`` (one per chunk, or None when the
        prompt held whole chunks) is what the prompt held of each."""
        texts: Sequence[str | None] = [None] * len(chunks) if excerpts is None else excerpts
        return [cls.from_chunk(i + 1, c, e) for i, (c, e) in enumerate(zip(chunks, texts, strict=True))]


class SentenceOut(BaseModel):
    text: str = Field(description="one sentence of the answer")
    citations: list[int] = Field(description="verified source numbers supporting it (empty when none does)")
    supported: bool
    score: float = Field(description="the best source's support score, 0..1")


class AnswerabilityOut(BaseModel):
    score: float = Field(description="calibrated probability that the sources hold the answer")
    band: Band
    model: str
    calibrated: bool = Field(
        True,
        description="false when the sources come from documents the gate was not calibrated on: it then never "
        "declines before generation, the verifier decides",
    )


class ChatResponse(BaseModel):
    id: str = Field(
        "",
        description="the answer's id (32 hex digits), for POST /feedback; the OpenAI route's completion id is "
        "chatcmpl-<this id>",
    )
    answer: str = Field(description="the answer with verified [n] markers (the refusal text when declined)")
    citations: list[Citation] = Field(description="sources cited in the answer, by [n]")
    sources: list[Citation] = Field(description="all sources given to the model, numbered as in the prompt")
    sentences: list[SentenceOut] = Field(
        default_factory=list, description="per-sentence support from the verifier (empty when not verified)"
    )
    declined: bool = Field(description="the answer is a refusal: see decline_reason")
    decline_reason: DeclineReason | None = Field(
        None,
        description="no_relevant_sources: nothing relevant was found, the LLM was not called; unsupported_answer: "
        "an uncertain answer the sources did not support; model_declined: the model said it does not know",
    )
    answerability: AnswerabilityOut | None = Field(None, description="the answerability gate's decision, when it ran")
    extractive: bool = Field(
        False,
        description="the model said it does not know although the gate found the sources answer the question: the "
        "answer quotes the evidence sentence that bears most on it, cited",
    )
    model: str = Field(description="the LLM that answered; empty when none was called")
    usage: dict[str, int] = {}
    retrieval: dict[str, Any] = {}
    timings_ms: dict[str, float] = Field(
        default_factory=dict,
        description="per step: embed, retrieve, rerank, gate, llm_connect, first_token, generate, verify, total",
    )


# --- feedback and conversations -------------------------------------------------------------------

FeedbackReason = Literal["wrong_source", "should_have_declined", "missed_answer", "unhelpful", "other"]
FEEDBACK_COMMENT_MAX_CHARS = 2000
ANSWER_ID_PATTERN = r"^(chatcmpl-)?[0-9a-f]{32}$"


class FeedbackRequest(BaseModel):
    """A person's verdict on one answer. A later one on the same answer replaces it."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(
        ...,
        pattern=ANSWER_ID_PATTERN,
        description="the answer's id: ChatResponse.id, or the completion id of /v1/chat/completions",
    )
    rating: Literal["up", "down"]
    reason: FeedbackReason | None = Field(None, description="why a thumbs-down (optional)")
    comment: str | None = Field(None, max_length=FEEDBACK_COMMENT_MAX_CHARS)


class FeedbackOut(BaseModel):
    id: int
    answer_id: str
    rating: Literal["up", "down"]
    reason: str | None = None
    comment: str | None = None
    review: Literal["none", "pending", "accepted", "rejected"] = Field(
        description="a thumbs-down waits for review (python -m eval.feedback) before it joins the nightly eval"
    )
    created_at: datetime


class TurnOut(BaseModel):
    id: str
    question: str
    created_at: datetime
    response: ChatResponse = Field(description="the answer as it was given (its timings left out)")
    feedback: FeedbackOut | None = None


class ConversationSummary(BaseModel):
    id: str
    title: str = Field(description="its first question")
    turns: int
    started_at: datetime
    updated_at: datetime


class ConversationOut(BaseModel):
    id: str
    turns: list[TurnOut]


# --- OpenAI-compatible ------------------------------------------------------------------------


class OpenAIChatRequest(BaseModel):
    """The subset of OpenAI's chat-completions request this server honours; other fields are ignored."""

    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    messages: list[ChatMessage] = Field(..., min_length=1, max_length=200)
    stream: bool = False
    max_tokens: int | None = Field(None, ge=1, le=4096)
    max_completion_tokens: int | None = Field(None, ge=1, le=4096)
    temperature: float | None = Field(None, ge=0, le=2)
    rag: ChatOptions | None = Field(None, description="retrieval and grounding options (extension)")


# --- documents ---------------------------------------------------------------------------------


class DocumentOut(BaseModel):
    doc_id: str
    source: str
    title: str
    media_type: str
    chunk_count: int
    status: str
    ingested_at: str
    size_bytes: int
    tags: list[str] = []


class IngestOutcome(BaseModel):
    """One uploaded file (``added``, ``updated`` and ``unchanged`` mean it is searchable). ``queued`` or
    ``processing``: its job had not ended when the response was sent (see ``wait_s``); poll
    ``GET /documents/{doc_id}`` for the outcome."""

    filename: str
    source: str
    status: UploadStatus
    doc_id: str = ""
    chunks: int = 0
    reason: str = ""
    job_id: str = ""


class DocumentStatus(BaseModel):
    """Where a document stands: its latest ingest job (if this API's queue still knows it) and its manifest
    entry (once it has one). ``state`` is the job's; without a job record it follows the manifest entry.
    A running job shows its progress (``stage``, ``pages``, ``chunks_done`` of ``chunks_total``); a cancelled
    one wrote nothing, so ``document`` is still the previous version (if there was one)."""

    doc_id: str
    source: str
    state: JobState
    outcome: JobOutcome = Field("", description="the pipeline's word once the job ran (empty before)")
    reason: str = ""
    attempts: int = 0
    chunks: int = 0
    job_id: str = ""
    updated_at: str = ""
    stage: str = Field("", description="while processing: parsed, embedding or writing")
    pages: int = Field(0, description="pages read (PDF; 0 where the format has none)")
    chunks_done: int = Field(0, description="chunks embedded so far, of chunks_total")
    chunks_total: int = 0
    document: DocumentOut | None = None


class IngestResponse(BaseModel):
    files: list[IngestOutcome]
    seconds: float


# --- errors and readiness ---------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    message: str
    type: str
    code: int


class ErrorBody(BaseModel):
    """What every non-2xx answer looks like (a chat 503 also carries the retrieved ``sources``)."""

    model_config = ConfigDict(extra="allow")
    detail: Any
    error: ErrorDetail


class Readiness(BaseModel):
    """``GET /readyz``: 200 when retrieval works (``degraded``: the LLM is down), 503 ``unavailable``."""

    status: Literal["ready", "degraded", "unavailable"]
    checks: dict[str, Any] = Field(description="embedder loaded, reranker name, qdrant and llm reachable")
    reason: str | None = Field(None, description="what is down, for a person")


class StreamError(BaseModel):
    """The ``error`` event of a streamed chat: the answer broke off; ``partial_answer`` is what was sent."""

    message: str
    partial_answer: str = ""
