from __future__ import annotations

from fastapi import APIRouter, Request

from services.api import rag
from services.api.deps import ComponentsDep
from services.contract.schemas import SearchRequest, SearchResponse

router = APIRouter(tags=["retrieval"])


@router.post("/search", response_model=SearchResponse, summary="Retrieve and rerank chunks for a query")
async def search(body: SearchRequest, components: ComponentsDep, request: Request) -> SearchResponse:
    """First stage (dense, sparse or hybrid) to `top_n`, cross-encoder rerank to `top_k`, with per-stage timings."""
    rt = rag.RequestTrace("rag.search", request.headers, body.query)
    with rt.active():
        result = await components.chat_pipeline().search(body.query, rag.search_options(body))
        response = rag.search_response(result)
    rt.finish([r.id for r in response.results])
    return response
