"""FastAPI application factory.

``create_app()`` builds the components from settings in the lifespan and warms them up (loads the models,
creates the collections) before serving; tests pass prebuilt, already warmed ``Components`` so a whole suite
loads each model once.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool

from services.api import errors
from services.api.components import Components, build_components
from services.api.deps import require_api_key
from services.api.middleware import LimitsMiddleware
from services.api.routes import chat, documents, feedback, health, openai_compat, search
from services.core.observability import tracing
from services.core.settings import ApiSettings
from services.state.db import DatabaseUnavailable

logger = logging.getLogger(__name__)

DESCRIPTION = """Retrieval-augmented generation over your documents: BGE-style bi-encoder + BM25 hybrid
retrieval in Qdrant, cross-encoder reranking, grounded answers with `[n]` citations from any
OpenAI-compatible LLM. Send `Authorization: Bearer <RAG_API_KEY>` when a key is configured."""


def create_app(settings: ApiSettings | None = None, components: Components | None = None) -> FastAPI:
    settings = components.settings if components else (settings or ApiSettings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = components is None
        provider = tracing.setup_tracing(settings, "api") if settings.tracing_endpoint else None
        if components is None:
            built = build_components(settings)
            try:
                built.warm_up()  # before the first request: a model that cannot load stops the start-up here
                built.start_ingest_worker()  # local queue: its thread, and the jobs a crash left unfinished
            except BaseException:
                built.close_sync()  # release the store (an embedded folder's lock) for the next start
                raise
            app.state.components = built
            with suppress(DatabaseUnavailable):  # migrate now; a database that is down is logged, chat still serves
                await run_in_threadpool(built.app_state)
        else:
            app.state.components = components
        logger.info("API ready on %s:%s", settings.api_host, settings.api_port)
        try:
            yield
        finally:
            if owned:
                await app.state.components.llm.aclose()
                app.state.components.close_sync()
            if provider is not None:
                tracing.shutdown()

    # FastAPI's native HTTP spans are off: each request is one OpenInference CHAIN span (services/api/rag.py),
    # which Phoenix renders as the root of the request's tree instead of an untyped "POST /chat" parent.
    app = FastAPI(
        title="ragstack API",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    errors.install(app)
    # The OpenAPI document says what the runtime does: with RAG_API_KEY set, every route but the probes requires
    # the bearer scheme and lists the 401; without one (local mode) nothing reads the header, so none is declared.
    keyed = settings.api_key is not None
    protected = [Depends(require_api_key)] if keyed else []
    responses = {**errors.RESPONSES, **errors.AUTH_RESPONSES} if keyed else errors.RESPONSES
    app.include_router(health.router, responses=errors.RESPONSES)
    for router in (search.router, chat.router, openai_compat.router, documents.router, feedback.router):
        app.include_router(router, dependencies=protected, responses=responses)
    app.add_middleware(
        LimitsMiddleware,
        max_body_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.max_upload_bytes * 4,  # several files per request; each is capped too
        max_concurrent=settings.max_concurrent_requests,
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    return app
