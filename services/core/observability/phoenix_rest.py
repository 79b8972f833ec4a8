"""Phoenix's REST API, the few calls the stack makes besides exporting spans: annotate a span (users' feedback),
read annotations back.

Why REST and not the ``arize-phoenix-client`` package: the app venv must not pin Phoenix's own dependencies
(docs/tracing.md), and two POSTs need no SDK. The base URL is the tracing endpoint's origin
(``http://host:6006/v1/traces`` -> ``http://host:6006``) unless ``RAG_PHOENIX_URL`` names another.

    rest = PhoenixRest("http://127.0.0.1:6006")
    rest.annotate_span(span_id, "user_feedback", label="thumbs_down", score=0.0, explanation="wrong source")
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

ANNOTATION_NAME = "user_feedback"


def phoenix_base_url(tracing_endpoint: str | None, override: str | None = None) -> str | None:
    """Where Phoenix's REST API answers: the override, else the tracing endpoint's scheme and host."""
    if override:
        return override.rstrip("/")
    if not tracing_endpoint:
        return None
    parts = urlsplit(tracing_endpoint)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


class PhoenixRest:
    def __init__(self, base_url: str, *, timeout_s: float = 5.0, api_key: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout_s, headers=headers)

    def annotate_span(
        self,
        span_id: str,
        name: str = ANNOTATION_NAME,
        *,
        label: str | None = None,
        score: float | None = None,
        explanation: str | None = None,
        metadata: dict[str, Any] | None = None,
        identifier: str = "",
        annotator_kind: str = "HUMAN",
    ) -> None:
        """Create (or, with the same ``identifier``, replace) an annotation on a span. Raises on failure,
        including 404 when Phoenix has not received the span (yet: the exporter batches)."""
        body = {
            "data": [
                {
                    "span_id": span_id,
                    "name": name,
                    "annotator_kind": annotator_kind,
                    "result": {"label": label, "score": score, "explanation": explanation},
                    "metadata": metadata or {},
                    "identifier": identifier,
                }
            ]
        }
        response = self._client.post("/v1/span_annotations", params={"sync": "true"}, json=body)
        response.raise_for_status()

    def span_annotations(self, project: str, span_ids: list[str]) -> list[dict[str, Any]]:
        response = self._client.get(
            f"/v1/projects/{project}/span_annotations", params={"span_ids": span_ids, "limit": 100}
        )
        response.raise_for_status()
        return list(response.json().get("data", []))

    def close(self) -> None:
        self._client.close()
