from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from services.api.deps import ComponentsDep
from services.contract.schemas import Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: models loaded, Qdrant reachable, LLM reachable",
    description="503 when retrieval cannot work. An unreachable LLM alone gives 200 with status `degraded` "
    "(search still works), unless `strict=true`.",
    responses={
        200: {"model": Readiness, "description": "retrieval works (`degraded`: the LLM is down)"},
        503: {"model": Readiness, "description": "retrieval cannot work (or the LLM is down and `strict=true`)"},
    },
)
async def readyz(components: ComponentsDep, strict: bool = Query(False)) -> JSONResponse:
    checks: dict[str, Any] = {
        "embedder": components.embedder.ready,
        "reranker": components.reranker.name,
        "qdrant": await run_in_threadpool(components.store.ping),
        "llm": await components.llm.ping(),
    }
    core_ok = bool(checks["embedder"] and checks["qdrant"])
    ok = core_ok and (checks["llm"] or not strict)
    status = "ready" if core_ok and checks["llm"] else ("degraded" if core_ok else "unavailable")
    reasons = [
        text
        for failed, text in (
            (not checks["embedder"], "embedding model not loaded"),
            (not checks["qdrant"], "Qdrant unreachable: search and ingest answer 503 until it is back"),
            (not checks["llm"], "LLM unreachable: /chat answers 503 with the retrieved sources; /search works"),
        )
        if failed
    ]
    body = Readiness(status=status, checks=checks, reason="; ".join(reasons) or None)
    headers = None if ok else {"Retry-After": "5"}
    return JSONResponse(body.model_dump(exclude_none=True), status_code=200 if ok else 503, headers=headers)
