"""FakeRagApi: an in-process stand-in for the API's /readyz, /search and /chat (unit tests only).

It answers from fixed tables, so a test knows exactly which documents a query ranks and whether a
question is declined, and can make a run worse on purpose. Every answer is built from the contract's
models (``services.contract.schemas``), so it validates as the real API's would. ``grounding`` adds
ChatResponse fields (``sentences``, ``decline_reason``, ``answerability``) per question; without it the
fake answers like a server that did not verify the answer (no sentences) and ran no gate. With
``answerability_gate: false`` in the request, ``ungated`` answers win. Failures have the API's error shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from services.contract.schemas import (
    ChatRequest,
    ChatResponse,
    ChunkOut,
    Citation,
    ErrorBody,
    ErrorDetail,
    Readiness,
    SearchRequest,
    SearchResponse,
)


def error(status: int, message: str) -> httpx.Response:
    """An error answer as the API sends it: FastAPI's ``detail`` plus OpenAI's ``error`` object."""
    kind = {404: "not_found_error", 503: "service_unavailable"}.get(status, "error")
    body = ErrorBody(detail=message, error=ErrorDetail(message=message, type=kind, code=status))
    return httpx.Response(status, json=body.model_dump(mode="json"))


@dataclass
class FakeRagApi:
    rankings: dict[str, list[str]] = field(default_factory=dict)  # query -> fitz-gov ids, best first
    answers: dict[str, tuple[str, list[str], bool]] = field(default_factory=dict)  # question -> (answer, ctx, declined)
    fail_queries: set[str] = field(default_factory=set)
    grounding: dict[str, dict[str, Any]] = field(default_factory=dict)  # question -> more ChatResponse fields
    ungated: dict[str, tuple[str, list[str], bool]] = field(default_factory=dict)  # answers with the gate off
    requests: list[httpx.Request] = field(default_factory=list)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/readyz":
            ready = Readiness(status="ready", checks={"reranker": "fake", "llm": True})
            return httpx.Response(200, json=ready.model_dump(mode="json", exclude_none=True))
        if request.url.path == "/search":
            return self.search(SearchRequest.model_validate_json(request.content))
        if request.url.path == "/chat":
            return self.chat(ChatRequest.model_validate_json(request.content))
        return error(404, "not found")

    def search(self, request: SearchRequest) -> httpx.Response:
        if request.query in self.fail_queries:
            return error(503, "busy")
        docs = self.rankings.get(request.query, [])[: request.top_k or 10]
        results = [
            ChunkOut(id=f"uuid-{d}#0", doc_id=f"uuid-{d}", source=f"/data/eval/corpus/{d}.md", title=d, section=None,
                     page=None, chunk_index=0, text=f"text of {d}", retrieval_score=1.0 - i / 10)
            for i, d in enumerate(docs)
        ]  # fmt: skip
        found = SearchResponse(query=request.query, mode=request.mode or "hybrid", reranker="fake", reranked=False,
                               candidates=len(results), results=results, timings_ms={"total": 5.0})  # fmt: skip
        return httpx.Response(200, json=found.model_dump(mode="json"))

    def chat(self, request: ChatRequest) -> httpx.Response:
        question = request.messages[-1].text()
        table = self.ungated if request.answerability_gate is False else {}
        answer, contexts, declined = table.get(question) or self.answers.get(question, ("I don't know.", [], True))
        sources = [
            Citation(n=i + 1, chunk_id=f"c{i}", doc_id=f"c{i}", source=f"/data/eval/corpus/c{i}.md", title=f"c{i}",
                     section=None, page=None, text=text, retrieval_score=1.0 - i / 10)
            for i, text in enumerate(contexts)
        ]  # fmt: skip
        reply = ChatResponse.model_validate(
            {"answer": answer, "citations": sources[:1], "sources": sources, "declined": declined, "model": "fake"}
            | self.grounding.get(question, {})
        )
        return httpx.Response(200, json=reply.model_dump(mode="json"))

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handler), base_url="http://fake")
