from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from services.api.deps import ComponentsDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: models loaded, Qdrant reachable, LLM reachable",
    description="503 when retrieval cannot work. An unreachable LLM alone gives 200 with status `degraded` "
    "(search still works), unless `strict=true`.",
)
async def readyz(components: ComponentsDep, strict: bool = Query(False)) -> JSONResponse:
    checks: dict[str, Any] = {
        "embedder": getattr(components.embedder, "_model", True) is not None,
        "reranker": components.reranker.name,
        "qdrant": await run_in_threadpool(components.store.ping),
        "llm": await components.llm.ping(),
    }
    core_ok = bool(checks["embedder"] and checks["qdrant"])
    ok = core_ok and (checks["llm"] or not strict)
    status = "ready" if core_ok and checks["llm"] else ("degraded" if core_ok else "unavailable")
    return JSONResponse({"status": status, "checks": checks}, status_code=200 if ok else 503)
