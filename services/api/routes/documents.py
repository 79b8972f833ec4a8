from __future__ import annotations

import re
import time
import unicodedata
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, File, Form, HTTPException, UploadFile
from starlette.concurrency import run_in_threadpool

from services.api.deps import ComponentsDep
from services.api.schemas import DocumentOut, IngestOutcome, IngestResponse
from services.core.types import DocumentRecord

router = APIRouter(prefix="/documents", tags=["documents"])
MAX_FILES = 50


def safe_filename(raw: str | None) -> str:
    """The last path component, without control characters: an upload can never name a path on disk.

    Uploaded bytes are parsed in memory and stored under an ``upload://`` source, but the name still
    shows up in the UI, logs and citations, so "../../etc/passwd" becomes "passwd".
    """
    name = (raw or "").replace("\\", "/").split("/")[-1]
    name = "".join(ch for ch in unicodedata.normalize("NFC", name) if unicodedata.category(ch)[0] != "C")
    name = re.sub(r"\s+", " ", name).strip().lstrip(".")
    return name[:200]


def _out(record: DocumentRecord) -> DocumentOut:
    return DocumentOut(**{k: v for k, v in record.to_payload().items() if k in DocumentOut.model_fields})


@router.post("", response_model=IngestResponse, summary="Upload and ingest files (txt, md, html, pdf, docx)")
async def upload(
    components: ComponentsDep,
    background: BackgroundTasks,
    files: Annotated[list[UploadFile], File(description="one or more documents")],
    tags: Annotated[str, Form(description="comma-separated tags for all files")] = "",
) -> IngestResponse:
    """Each file is reported on its own: a bad file is skipped with its reason and the others still land.

    Once the response is sent, a batch that wrote chunks asks for the store's index upkeep (Edge: the HNSW
    build past RAG_QDRANT_INDEX_THRESHOLD, in a child process while queries go on; see docs/embedded-store.md).
    """
    if len(files) > MAX_FILES:
        raise HTTPException(413, f"{len(files)} files in one request; the limit is {MAX_FILES}")
    tag_list = [t.strip() for t in tags.split(",") if t.strip()][:20]
    limit = components.settings.max_upload_bytes
    started = time.perf_counter()
    outcomes: list[IngestOutcome] = []
    for upload_file in files:
        name = safe_filename(upload_file.filename)
        if not name:
            outcomes.append(IngestOutcome(filename="", source="", status="skipped", reason="missing file name"))
            continue
        data = await upload_file.read(limit + 1)
        source = f"upload://{name}"
        if len(data) > limit:
            outcomes.append(
                IngestOutcome(filename=name, source=source, status="skipped", reason=f"file larger than {limit} bytes")
            )
            continue
        report = await run_in_threadpool(components.pipeline.ingest_bytes, data, name, source, tag_list)
        for o in report.outcomes:
            outcomes.append(
                IngestOutcome(
                    filename=name, source=o.source, status=o.status, doc_id=o.doc_id, chunks=o.chunks, reason=o.reason
                )
            )
    if components.maintainer is not None and any(o.status in ("added", "updated") for o in outcomes):
        background.add_task(components.maintainer.schedule)
    return IngestResponse(files=outcomes, seconds=round(time.perf_counter() - started, 3))


@router.get("", response_model=list[DocumentOut], summary="List ingested documents")
async def list_documents(components: ComponentsDep) -> list[DocumentOut]:
    return [_out(r) for r in await run_in_threadpool(components.store.list_documents)]


@router.delete("/{doc_id}", summary="Delete a document and all its chunks")
async def delete_document(doc_id: str, components: ComponentsDep) -> dict[str, object]:
    record = await run_in_threadpool(components.store.get_document, doc_id)
    if record is None:
        raise HTTPException(404, f"no document with id {doc_id!r}")
    removed = await run_in_threadpool(components.pipeline.delete, doc_id)
    return {"deleted": doc_id, "source": record.source, "chunks_removed": removed}
