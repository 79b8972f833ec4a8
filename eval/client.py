"""A small, typed client for the two routes the evaluation measures: ``POST /search`` and ``POST /chat``.

It talks HTTP to the *running* API, so what is measured is the deployed configuration (retrieval mode,
reranker, LLM), not a re-assembly of it. Any ``httpx.Client`` can be handed in (tests pass FastAPI's
TestClient); the latency recorded is the client-side wall time of each request.

Usage::

    with ApiClient.connect("http://127.0.0.1:8000", api_key=None, timeout_s=600) as api:
        hits = api.search("how did Q3 sales compare with Q2?", top_k=10)
        reply = api.chat("How did Q3 sales compare with Q2?")
        ungated = api.chat("How did Q3 sales compare with Q2?", ChatOptions(answerability_gate=False))
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import httpx

from services.core import tracing


class ApiError(RuntimeError):
    """The API answered with an error or could not be reached; the message says which."""


@dataclass(frozen=True, slots=True)
class Hit:
    doc_id: str
    source: str
    title: str
    text: str
    retrieval_score: float
    rerank_score: float | None

    def key(self, relevant: frozenset[str] | set[str]) -> str:
        """The id this hit is judged under: the judged id it matches, else its file name without extension.

        fitz-gov documents are ingested as ``<fitz-gov id>.md``, so the file name is the judged id; a user's
        set may instead name sources or the API's doc ids.
        """
        stem = PurePosixPath(self.source.split("://", 1)[-1]).stem
        for candidate in (stem, self.source, self.doc_id):
            if candidate in relevant:
                return candidate
        return stem


@dataclass(frozen=True, slots=True)
class SearchResult:
    hits: list[Hit]
    latency_ms: float
    server_timings_ms: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Sentence:
    """One answer sentence as the API's verifier judged it."""

    text: str
    citations: list[int]  # 1-based source numbers the sentence cites
    supported: bool
    score: float

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> Sentence:
        return cls(
            text=str(row.get("text", "")),
            citations=[int(n) for n in row.get("citations") or []],
            supported=bool(row.get("supported", False)),
            score=float(row.get("score") or 0.0),
        )


@dataclass(frozen=True, slots=True)
class ChatResult:
    answer: str
    contexts: list[str]  # the text of every source given to the model, in prompt order
    cited: list[str]  # doc ids of the sources the answer cites
    declined: bool
    latency_ms: float
    server_timings_ms: dict[str, float] = field(default_factory=dict)
    # Grounding fields; None when the server predates them (then the metrics built on them are skipped).
    sentences: list[Sentence] | None = None
    decline_reason: str | None = None  # "no_relevant_sources" | "unsupported_answer" | "model_declined"
    answerability: dict[str, Any] | None = None  # {"score", "band", "model"}


@dataclass(frozen=True, slots=True)
class ChatOptions:
    """Per-request overrides of the server's grounding settings; None sends nothing (the server decides).

    ``ChatOptions(answerability_gate=False)`` asks for an answer even when the gate would decline, to
    measure what the gate is worth. An older server rejects unknown fields, so only set ones are sent.
    """

    answerability_gate: bool | None = None
    verify: bool | None = None

    def body(self) -> dict[str, bool]:
        return {k: v for k, v in (("answerability_gate", self.answerability_gate), ("verify", self.verify))
                if v is not None}  # fmt: skip


class ApiClient:
    def __init__(self, http: httpx.Client, *, api_key: str | None = None) -> None:
        self.http = http
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    @classmethod
    def connect(cls, base_url: str, *, api_key: str | None = None, timeout_s: float = 600.0) -> ApiClient:
        timeout = httpx.Timeout(timeout_s, connect=5.0)
        return cls(httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout), api_key=api_key)

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def ready(self) -> bool:
        """True when the API answers ``/readyz`` with 200 (retrieval works; the LLM may be degraded)."""
        try:
            return self.http.get("/readyz", headers=self.headers).status_code == 200
        except httpx.HTTPError:
            return False

    def info(self) -> dict[str, Any]:
        """The readiness checks (reranker, LLM up), recorded in the report as the measured configuration."""
        try:
            return dict(self.http.get("/readyz", headers=self.headers).json())
        except (httpx.HTTPError, ValueError):
            return {}

    def search(self, query: str, *, top_k: int = 10, top_n: int | None = None) -> SearchResult:
        body: dict[str, Any] = {"query": query, "top_k": top_k}
        if top_n is not None:
            body["top_n"] = top_n
        data, latency = self._post("/search", body)
        hits = [
            Hit(
                doc_id=str(r.get("doc_id", "")),
                source=str(r.get("source", "")),
                title=str(r.get("title", "")),
                text=str(r.get("text", "")),
                retrieval_score=float(r.get("retrieval_score", 0.0)),
                rerank_score=r.get("rerank_score"),
            )
            for r in data.get("results", [])
        ]
        return SearchResult(hits, latency, dict(data.get("timings_ms") or {}))

    def chat(self, question: str, options: ChatOptions | None = None) -> ChatResult:
        body: dict[str, Any] = {"messages": [{"role": "user", "content": question}], "stream": False}
        body |= (options or ChatOptions()).body()
        data, latency = self._post("/chat", body)
        sentences = data.get("sentences")
        answerability = data.get("answerability")
        return ChatResult(
            answer=str(data.get("answer", "")),
            contexts=[str(s.get("text", "")) for s in data.get("sources", [])],
            cited=[str(c.get("doc_id", "")) for c in data.get("citations", [])],
            declined=bool(data.get("declined", False)),
            latency_ms=latency,
            server_timings_ms=dict(data.get("timings_ms") or {}),
            sentences=[Sentence.from_json(r) for r in sentences] if isinstance(sentences, list) else None,
            decline_reason=data.get("decline_reason"),
            answerability=dict(answerability) if isinstance(answerability, dict) else None,
        )

    def _post(self, path: str, body: dict[str, Any]) -> tuple[dict[str, Any], float]:
        # traceparent: the API's spans for this request join the evaluation's trace in Phoenix
        headers = tracing.inject_headers(self.headers)
        started = time.perf_counter()
        try:
            response = self.http.post(path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ApiError(f"POST {path} failed: {type(exc).__name__}: {exc}") from exc
        latency = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise ApiError(f"POST {path} -> {response.status_code}: {response.text[:300]}")
        try:
            return response.json(), latency
        except ValueError as exc:
            raise ApiError(f"POST {path} returned non-JSON: {response.text[:200]}") from exc
