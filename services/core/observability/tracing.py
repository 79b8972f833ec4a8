"""OpenTelemetry + OpenInference tracing: one setup call per process, spans that cost nothing when off.

Why this shape:
- Export is always through a ``BatchSpanProcessor`` with a bounded queue and a short export timeout,
  so a Phoenix that is down or slow can drop spans but never fail or slow a request.
- With no endpoint configured nothing is installed: spans are OpenTelemetry no-ops, and every place
  that builds span attributes checks ``span.is_recording()`` first, so tracing off costs a few
  function calls per request.
- The provider is held here, not as the OpenTelemetry global (which may be set once per process and
  makes FastAPI/Gradio emit untyped HTTP spans), so tests can install an in-memory exporter per test.

Usage::

    setup_tracing(settings, service_name="api")
    with tracer().start_as_current_span("retrieve", openinference_span_kind="retriever") as span:
        ...
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagate import extract, inject
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from services.core.settings import TracingSettings

logger = logging.getLogger(__name__)

SESSION_HEADER = "X-Session-Id"
MAX_ATTRIBUTE_CHARS = 4000  # chunk texts and prompts are cut so one span stays a few tens of KB

_lock = threading.Lock()
_provider: trace.TracerProvider | None = None
_tracers: dict[str, Any] = {}


def build_provider(
    settings: TracingSettings, service_name: str, processors: Sequence[SpanProcessor] = ()
) -> TracerProvider | None:
    """A provider exporting to ``RAG_TRACING_ENDPOINT`` (OTLP/HTTP), plus any extra processors (tests)."""
    if not settings.tracing_endpoint and not processors:
        return None
    resource = Resource.create(
        {
            "service.name": f"ragstack-{service_name}",
            "openinference.project.name": settings.tracing_project,
        }
    )
    provider = TracerProvider(resource=resource, sampler=ParentBased(TraceIdRatioBased(settings.tracing_sample_ratio)))
    if settings.tracing_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=settings.tracing_endpoint, timeout=settings.tracing_export_timeout_s)
        provider.add_span_processor(
            BatchSpanProcessor(
                exporter,
                max_queue_size=settings.tracing_queue_size,
                max_export_batch_size=min(512, settings.tracing_queue_size),
                schedule_delay_millis=1000,
                export_timeout_millis=int(settings.tracing_export_timeout_s * 1000),
            )
        )
    for processor in processors:
        provider.add_span_processor(processor)
    return provider


def setup_tracing(
    settings: TracingSettings, service_name: str, processors: Sequence[SpanProcessor] = ()
) -> TracerProvider | None:
    """Install this process's provider (or none when tracing is off). Returns it so callers can flush it."""
    provider = build_provider(settings, service_name, processors)
    install(provider)
    if provider is not None:
        logger.info(
            "tracing to %s (project %s, sampling %.2f)",
            settings.tracing_endpoint or "in-process processors",
            settings.tracing_project,
            settings.tracing_sample_ratio,
        )
    return provider


def install(provider: trace.TracerProvider | None) -> None:
    global _provider
    with _lock:
        _provider = provider
        _tracers.clear()
    # Deliberately NOT the OpenTelemetry global: FastAPI (and Gradio's FastAPI app) emit their own untyped
    # HTTP spans whenever a global provider exists, which would bury the OpenInference tree in Phoenix.
    # Context propagation (traceparent) works without it.


def shutdown() -> None:
    """Flush and stop the exporter (at process exit); a down collector makes this wait at most its timeout."""
    provider = _provider
    if isinstance(provider, TracerProvider):
        provider.force_flush(timeout_millis=2000)
        provider.shutdown()
    install(None)


def tracer(name: str = "ragstack") -> Any:
    """An OpenInference tracer over the installed provider (a no-op tracer when tracing is off)."""
    cached = _tracers.get(name)
    if cached is not None:
        return cached
    from openinference.instrumentation import OITracer, TraceConfig

    provider = _provider or trace.NoOpTracerProvider()
    oi = OITracer(provider.get_tracer(name), config=TraceConfig())
    with _lock:
        _tracers[name] = oi
    return oi


def enabled() -> bool:
    return _provider is not None


def inject_headers(headers: dict[str, str] | None = None) -> dict[str, str]:
    """Add W3C ``traceparent`` of the current span to outgoing HTTP headers (a no-op when off)."""
    headers = dict(headers or {})
    inject(headers)
    return headers


def context_from(headers: Mapping[str, str]) -> Context:
    """The caller's trace context (frontend -> API), so one chat turn is one trace across services."""
    return extract(dict(headers))


@contextmanager
def session(session_id: str | None) -> Iterator[None]:
    """Tag every span in this block with the conversation's session id (one chat = one Phoenix session)."""
    if not session_id:
        yield
        return
    from openinference.instrumentation import using_session

    with using_session(session_id[:128]):
        yield


def clip(text: str | None, limit: int = MAX_ATTRIBUTE_CHARS) -> str:
    text = text or ""
    return text if len(text) <= limit else text[:limit] + "…"


def as_json(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)
