"""FakeRagApi: an in-process stand-in for the API's /readyz, /search and /chat (unit tests only).

It answers from fixed tables, so a test knows exactly which documents a query ranks and whether a
question is declined, and can make a run worse on purpose. ``grounding`` adds the newer /chat fields
(``sentences``, ``decline_reason``, ``answerability``) per question; without it the fake answers like a
server that predates them. With ``answerability_gate: false`` in the request, ``ungated`` answers win.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import httpx


@dataclass
class FakeRagApi:
    rankings: dict[str, list[str]] = field(default_factory=dict)  # query -> fitz-gov ids, best first
    answers: dict[str, tuple[str, list[str], bool]] = field(default_factory=dict)  # question -> (answer, ctx, declined)
    fail_queries: set[str] = field(default_factory=set)
    grounding: dict[str, dict] = field(default_factory=dict)  # question -> extra /chat response fields
    ungated: dict[str, tuple[str, list[str], bool]] = field(default_factory=dict)  # answers with the gate off
    requests: list[httpx.Request] = field(default_factory=list)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/readyz":
            return httpx.Response(200, json={"status": "ready", "checks": {"reranker": "fake", "llm": True}})
        body = json.loads(request.content)
        if request.url.path == "/search":
            if body["query"] in self.fail_queries:
                return httpx.Response(503, json={"detail": "busy"})
            docs = self.rankings.get(body["query"], [])[: body["top_k"]]
            results = [
                {"doc_id": f"uuid-{d}", "source": f"/data/eval/corpus/{d}.md", "title": d, "text": f"text of {d}",
                 "retrieval_score": 1.0 - i / 10, "rerank_score": None}
                for i, d in enumerate(docs)
            ]  # fmt: skip
            return httpx.Response(200, json={"results": results, "timings_ms": {"total": 5.0}})
        if request.url.path == "/chat":
            question = body["messages"][-1]["content"]
            table = self.ungated if body.get("answerability_gate") is False else {}
            answer, contexts, declined = table.get(question) or self.answers.get(question, ("I don't know.", [], True))
            sources = [{"n": i + 1, "doc_id": f"c{i}", "text": t} for i, t in enumerate(contexts)]
            reply = {"answer": answer, "citations": sources[:1], "sources": sources, "declined": declined}
            return httpx.Response(200, json=reply | self.grounding.get(question, {}))
        return httpx.Response(404, json={"detail": "not found"})

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handler), base_url="http://fake")
