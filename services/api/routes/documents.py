from __future__ import annotations

import asyncio
import re
import time
import unicodedata
import uuid
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Query, UploadFile
from starlette.concurrency import run_in_threadpool

from ingest.jobs import DONE, IngestJob, JobStatus, ended
from services.api.components import Components
from services.api.deps import ComponentsDep
from services.contract.schemas import DocumentOut, DocumentStatus, IngestOutcome, IngestResponse
from services.core.storage.store import StoreUnavailableError
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


def require_doc_id(doc_id: str) -> None:
    """Document ids are UUIDs (``doc_id_for``): anything else names no document (the store would reject it)."""
    try:
        uuid.UUID(doc_id)
    except ValueError:
        raise HTTPException(404, f"no document with id {doc_id!r}") from None


def _out(record: DocumentRecord) -> DocumentOut:
    return DocumentOut(**{k: v for k, v in record.to_payload().items() if k in DocumentOut.model_fields})


MAX_WAIT_S = 600.0


@router.post(
    "",
    response_model=IngestResponse,
    summary="Upload and ingest files (txt, md, html, pdf, docx, csv, xlsx, png, jpg, tiff)",
)
async def upload(
    components: ComponentsDep,
    files: Annotated[list[UploadFile], File(description="one or more documents")],
    tags: Annotated[str, Form(description="comma-separated tags for all files")] = "",
    wait_s: Annotated[
        float | None,
        Query(
            ge=0,
            le=MAX_WAIT_S,
            description="how long to wait for the ingest jobs before answering (default RAG_UPLOAD_WAIT_S; 0 = "
            "answer at once with status queued, then poll GET /documents/{doc_id})",
        ),
    ] = None,
) -> IngestResponse:
    """Each file becomes an ingest job (ingest/jobs/): stored in the spool, queued, run by a worker (the API's
    own thread with RAG_INGEST_QUEUE=local, `ingest.worker` processes with redis). The response waits up to
    ``wait_s`` and reports each file on its own: a bad file is skipped with its reason and the others land;
    a file still queued or processing at the deadline says so, with the ``doc_id`` to poll.

    A batch that wrote chunks asks for the store's index upkeep once its job ends (Edge: the HNSW build past
    RAG_QDRANT_INDEX_THRESHOLD, in a child process while queries go on; see docs/embedded-store.md).
    """
    if len(files) > MAX_FILES:
        raise HTTPException(413, f"{len(files)} files in one request; the limit is {MAX_FILES}")
    tag_list = [t.strip() for t in tags.split(",") if t.strip()][:20]
    settings = components.settings
    if components.jobs()[0].kind == "local" and not await run_in_threadpool(components.store.ping):
        # This process would run the jobs: refuse now rather than queue work that cannot run (nothing kept).
        raise StoreUnavailableError("Qdrant unavailable: the store does not answer; nothing was accepted, retry")
    limit = settings.max_upload_bytes
    started = time.perf_counter()
    slots: list[IngestOutcome | IngestJob] = []  # a rejected file's outcome now, or its job
    for upload_file in files:
        name = safe_filename(upload_file.filename)
        if not name:
            slots.append(IngestOutcome(filename="", source="", status="skipped", reason="missing file name"))
            continue
        data = await upload_file.read(limit + 1)
        source = f"upload://{name}"
        if len(data) > limit:
            slots.append(
                IngestOutcome(filename=name, source=source, status="skipped", reason=f"file larger than {limit} bytes")
            )
            continue
        job = IngestJob.new(filename=name, source=source, tags=tag_list)
        try:
            await run_in_threadpool(components.submit_job, job, data)
        except Exception as exc:  # the queue (Redis) is down: nothing was accepted for this file
            raise HTTPException(
                503, f"the ingest queue is unavailable ({type(exc).__name__}: {exc}); nothing was lost: retry"
            ) from exc
        slots.append(job)
    jobs = [s for s in slots if isinstance(s, IngestJob)]
    statuses = await wait_for_jobs(components, jobs, settings.upload_wait_s if wait_s is None else wait_s)
    outcomes = [s if isinstance(s, IngestOutcome) else outcome_of(s, statuses[s.job_id]) for s in slots]
    return IngestResponse(files=outcomes, seconds=round(time.perf_counter() - started, 3))


async def wait_for_jobs(components: Components, jobs: list[IngestJob], wait_s: float) -> dict[str, JobStatus]:
    """Each job's status once all have ended or ``wait_s`` passed, polled without holding a thread."""
    deadline = time.monotonic() + wait_s
    delay = 0.05
    while True:
        current = await run_in_threadpool(lambda: {j.job_id: components.job_status(j) for j in jobs})
        if all(map(ended, jobs, current.values())) or time.monotonic() >= deadline:
            return current
        await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, 0.5)


def outcome_of(job: IngestJob, status: JobStatus) -> IngestOutcome:
    """The response's word for a job: the pipeline's outcome once it ended, else queued or processing."""
    base = {"filename": job.filename, "source": job.source, "doc_id": job.doc_id, "job_id": job.job_id}
    if status.job_id != job.job_id:  # the same file was uploaded again meanwhile: that job now speaks for it
        return IngestOutcome(**base, status="queued", reason="a newer upload of this document is being ingested")
    if status.state in ("queued", "processing", "cancelled"):
        return IngestOutcome(**base, status=status.state, reason=status.reason)
    if status.outcome in ("added", "updated", "unchanged", "skipped"):  # skipped: failed, with the loader's reason
        return IngestOutcome(**base, status=status.outcome, chunks=status.chunks, reason=status.reason)
    return IngestOutcome(**base, status="failed", reason=status.reason or "the job ended without an outcome")


@router.get(
    "/{doc_id}",
    response_model=DocumentStatus,
    summary="One document's ingest status (queued, processing, complete, failed) and manifest entry",
    responses={404: {"description": "no job and no document with this id"}},
)
async def document_status(doc_id: str, components: ComponentsDep) -> DocumentStatus:
    require_doc_id(doc_id)
    queue, _ = components.jobs()
    job = await run_in_threadpool(queue.status, doc_id)
    record = await run_in_threadpool(components.store.get_document, doc_id)
    document = _out(record) if record is not None else None
    if job is not None:
        return DocumentStatus(**asdict(job), document=document)
    if record is None:
        raise HTTPException(404, f"no document with id {doc_id!r}")
    complete = record.status == "complete"
    return DocumentStatus(
        doc_id=doc_id,
        source=record.source,
        state="complete" if complete else "failed",
        reason="" if complete else "its ingest was interrupted: upload it again (a folder sync redoes it)",
        chunks=record.chunk_count,
        updated_at=record.ingested_at,
        document=document,
    )


@router.post(
    "/{doc_id}/cancel",
    response_model=DocumentStatus,
    summary="Stop the document's ingest job: a queued one never runs, a running one stops before it writes",
    responses={
        404: {"description": "no ingest job for this document"},
        409: {"description": "its latest job has already ended (complete, failed or cancelled)"},
    },
)
async def cancel_ingest(doc_id: str, components: ComponentsDep) -> DocumentStatus:
    require_doc_id(doc_id)
    queue, _ = components.jobs()
    current = await run_in_threadpool(queue.status, doc_id)
    if current is None:
        raise HTTPException(404, f"no ingest job for document {doc_id!r}")
    asked: JobStatus | None = None if current.state in DONE else await run_in_threadpool(queue.cancel, doc_id)
    status = asked or current
    if status.state in ("complete", "failed") or current.state in DONE:
        raise HTTPException(409, f"the latest ingest job of {doc_id!r} has already ended ({status.state})")
    record = await run_in_threadpool(components.store.get_document, doc_id)
    return DocumentStatus(**asdict(status), document=_out(record) if record is not None else None)


@router.get("", response_model=list[DocumentOut], summary="List ingested documents")
async def list_documents(components: ComponentsDep) -> list[DocumentOut]:
    return [_out(r) for r in await run_in_threadpool(components.store.list_documents)]


@router.delete("/{doc_id}", summary="Delete a document and all its chunks")
async def delete_document(doc_id: str, components: ComponentsDep) -> dict[str, object]:
    require_doc_id(doc_id)
    record = await run_in_threadpool(components.store.get_document, doc_id)
    if record is None:
        raise HTTPException(404, f"no document with id {doc_id!r}")
    removed = await run_in_threadpool(components.pipeline.delete, doc_id)
    return {"deleted": doc_id, "source": record.source, "chunks_removed": removed}
