"""Data that crosses a seam: loader -> chunker -> store -> retriever -> API.

Plain dataclasses so every stage can be tested without models or a store.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

# The closed sets of words that cross seams (settings, requests, job records), each defined once here and
# used as the type wherever such a word is passed.
RetrievalMode = Literal["dense", "sparse", "hybrid"]  # the first stage: BM25, vectors, or both fused by RRF
RerankerKind = Literal["cross-encoder", "none"]  # the second stage
InferenceBackend = Literal["torch", "onnx", "onnx-int8", "openvino", "openvino-int8"]  # what runs a transformer
EmbeddedEngine = Literal["edge", "local"]  # the in-process store: qdrant-edge, or qdrant-client's local mode
Quantization = Literal["none", "int8"]  # of the dense vectors, with the HNSW index (Edge)
IngestQueueKind = Literal["local", "redis"]  # where upload jobs wait (ingest/jobs/)
# What ingesting one file came to ("queued": handed to an ingest worker, the outcome comes later) ...
IngestStatus = Literal["added", "updated", "unchanged", "skipped", "failed", "deleted", "queued"]
# ... and where an ingest job stands; an upload answers with the first, or "processing" while its job runs.
JobState = Literal["queued", "processing", "complete", "failed", "cancelled"]
# What a job's pipeline run came to ("" until it ran): the words one ingested file can end with.
JobOutcome = Literal["", "added", "updated", "unchanged", "skipped", "failed"]
UploadStatus = Literal[IngestStatus, "processing", "cancelled"]
LlmServerKind = Literal["llama-server", "llama-cpp-python"]  # the local LLM servers services/llm/server.py runs

# A fixed namespace makes point and document ids deterministic across machines and runs,
# which is what lets re-ingestion overwrite instead of duplicate.
ID_NAMESPACE = uuid.UUID("6f1c3d9a-2b7e-4c51-9a0e-8d2f4b6c1e37")


def sha256_hex(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def doc_id_for(source: str) -> str:
    """A document is identified by where it came from; its content hash says which version."""
    return str(uuid.uuid5(ID_NAMESPACE, f"doc:{source}"))


@dataclass(frozen=True, slots=True)
class Block:
    """A structural unit of a document (a paragraph, a page's text, a section body, a table).

    A ``table`` block's text is a Markdown table (header row, separator, one line per row): the chunker keeps
    it whole when it fits a chunk and splits it by rows, the header repeated, when it does not."""

    text: str
    section: str | None = None
    page: int | None = None
    table: bool = False


@dataclass(slots=True)
class LoadedDocument:
    source: str
    title: str
    blocks: list[Block]
    content_hash: str
    media_type: str
    tags: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # for the uploader: which pages OCR read, how surely, which not

    @property
    def doc_id(self) -> str:
        return doc_id_for(self.source)


@dataclass(frozen=True, slots=True)
class Chunk:
    doc_id: str
    source: str
    title: str
    section: str | None
    page: int | None
    chunk_index: int
    text: str
    content_hash: str
    n_tokens: int
    tags: tuple[str, ...] = ()

    @property
    def point_id(self) -> str:
        # Index + text hash: an unchanged chunk keeps its id, a changed one gets a new id,
        # so replacing a file's chunks is "upsert the new set, delete ids not in it".
        return str(uuid.uuid5(ID_NAMESPACE, f"chunk:{self.doc_id}:{self.chunk_index}:{sha256_hex(self.text)}"))

    def payload(self, ingested_at: str) -> dict[str, object]:
        return {
            "doc_id": self.doc_id,
            "source": self.source,
            "title": self.title,
            "section": self.section,
            "page": self.page,
            "chunk_index": self.chunk_index,
            "text": self.text,
            "content_hash": self.content_hash,
            "n_tokens": self.n_tokens,
            "tags": list(self.tags),
            "ingested_at": ingested_at,
        }


@dataclass(slots=True)
class DocumentRecord:
    """One row of the document manifest; `status` makes an interrupted ingest visible and resumable."""

    doc_id: str
    source: str
    title: str
    content_hash: str
    media_type: str
    chunk_count: int
    status: str  # "pending" while its chunks are being written, "complete" after
    ingested_at: str
    tags: list[str] = field(default_factory=list)
    size_bytes: int = 0
    # Which model and chunking produced the chunks: a change re-ingests even unchanged files.
    index_signature: str = ""

    def to_payload(self) -> dict[str, object]:
        return {
            "doc_id": self.doc_id,
            "source": self.source,
            "title": self.title,
            "content_hash": self.content_hash,
            "media_type": self.media_type,
            "chunk_count": self.chunk_count,
            "status": self.status,
            "ingested_at": self.ingested_at,
            "tags": self.tags,
            "size_bytes": self.size_bytes,
            "index_signature": self.index_signature,
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> DocumentRecord:
        return cls(
            doc_id=str(payload["doc_id"]),
            source=str(payload["source"]),
            title=str(payload.get("title") or ""),
            content_hash=str(payload["content_hash"]),
            media_type=str(payload.get("media_type") or ""),
            chunk_count=int(payload.get("chunk_count") or 0),
            status=str(payload.get("status") or "complete"),
            ingested_at=str(payload.get("ingested_at") or ""),
            tags=list(payload.get("tags") or []),
            size_bytes=int(payload.get("size_bytes") or 0),
            index_signature=str(payload.get("index_signature") or ""),
        )


@dataclass(slots=True)
class RetrievedChunk:
    """A chunk as it travels retrieve -> rerank -> generate, with the score each stage gave it."""

    id: str
    text: str
    doc_id: str
    source: str
    title: str
    section: str | None
    page: int | None
    chunk_index: int
    tags: list[str]
    retrieval_score: float
    rerank_score: float | None = None
    late_interaction_score: float | None = None
    content_hash: str = ""  # sha256 of the source file's bytes: which document version this chunk came from

    @classmethod
    def from_payload(cls, point_id: str, score: float, payload: Mapping[str, Any]) -> RetrievedChunk:
        return cls(
            id=str(point_id),
            text=str(payload.get("text") or ""),
            doc_id=str(payload.get("doc_id") or ""),
            source=str(payload.get("source") or ""),
            title=str(payload.get("title") or ""),
            section=payload.get("section"),
            page=payload.get("page"),
            chunk_index=int(payload.get("chunk_index") or 0),
            tags=list(payload.get("tags") or []),
            retrieval_score=float(score),
            content_hash=str(payload.get("content_hash") or ""),
        )
