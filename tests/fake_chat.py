"""FAKE retriever, answerability gate and answer verifier, for unit tests of the chat pipeline and routes.

They are deterministic and count their calls, so a test knows what the pipeline asked for and when:

    retriever = FakeRetriever([router_chunk(), bread_chunk()])
    gate = FakeGate("verify", score=0.4)            # every question lands in the "verify" band
    verifier = FakeVerifier()                        # supported = every word of the sentence is in a source
    verifier = FakeVerifier(supported=False)         # nothing is supported
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any

from services.core.grounding.contracts import Band, GateDecision, SentenceSupport, Verification
from services.core.retrieval import SearchResult, SearchSpec
from services.core.types import RetrievedChunk

_MARKER = re.compile(r"\s*\[\d+\]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"[a-z0-9']+")


def chunk(n: int, title: str, text: str, rerank_score: float = 0.9) -> RetrievedChunk:
    return RetrievedChunk(
        id=f"chunk-{n}",
        text=text,
        doc_id=f"doc-{n}",
        source=f"upload://{title.lower().replace(' ', '-')}.md",
        title=title,
        section=None,
        page=None,
        chunk_index=0,
        tags=[],
        retrieval_score=1.0 - n / 10,
        rerank_score=rerank_score,
    )


ROUTER = chunk(1, "Router guide", "Hold the reset button for ten seconds. The lights then blink.")
BREAD = chunk(2, "Sourdough", "Sourdough needs a starter and a long rise.", rerank_score=0.2)
# A source whose first sentence is the refusal: the fake LLM (first sentence of [1]) then declines.
REFUSAL = chunk(3, "Notes", "I don't know based on the provided documents. Nothing else here.")


class FakeRetriever:
    """Returns its chunks (the first ``top_k``) for any query; records each call's query and options."""

    def __init__(self, chunks: Sequence[RetrievedChunk]) -> None:
        self.chunks = list(chunks)
        self.calls: list[dict[str, Any]] = []

    def search(self, query: str, spec: SearchSpec) -> SearchResult:
        self.calls.append({"query": query, **{f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)}})
        top_k = spec.top_k
        return SearchResult(
            query=query,
            mode=spec.mode,
            chunks=list(self.chunks[:top_k]),
            candidates=len(self.chunks),
            reranker="fake-reranker",
            reranked=True,
            timings_ms={"embed": 1.0, "retrieve": 2.0, "rerank": 3.0, "total": 6.0},
        )


class FakeGate:
    """Puts every question in one band (``band``), or raises ``fail`` when given; records the calls."""

    name = "fake-gate"

    def __init__(self, band: Band = "answer", score: float | None = None, fail: Exception | None = None) -> None:
        self.band = band
        self.score = score if score is not None else {"answer": 0.9, "verify": 0.5, "decline": 0.05}[band]
        self.fail = fail
        self.calls: list[tuple[str, list[RetrievedChunk]]] = []

    def decide(self, question: str, chunks: Sequence[RetrievedChunk]) -> GateDecision:
        self.calls.append((question, list(chunks)))
        if self.fail is not None:
            raise self.fail
        top = max((c.rerank_score or 0.0 for c in chunks), default=0.0)
        return GateDecision(self.score, self.band, self.name, {"top_rerank": top})


class FakeVerifier:
    """A sentence is supported by every source holding all its words (``supported`` forces the verdict).

    Like the real verifier, the answer it returns carries the verified markers before the sentence's final
    punctuation ("ten seconds [1]."), so a test can tell the verified answer from the model's raw text.
    """

    name = "fake-verifier"

    def __init__(self, supported: bool | None = None, fail: Exception | None = None) -> None:
        self.supported = supported
        self.fail = fail
        self.calls: list[tuple[str, list[str]]] = []

    def verify(self, answer: str, sources: Sequence[str], question: str | None = None) -> Verification:
        self.calls.append((answer, list(sources)))
        if self.fail is not None:
            raise self.fail
        plain = _MARKER.sub("", answer).strip()
        sentences: list[SentenceSupport] = []
        for text in (s for s in _SENTENCE_END.split(plain) if s.strip()):
            words = set(_WORD.findall(text.lower()))
            found = tuple(i + 1 for i, src in enumerate(sources) if words <= set(_WORD.findall(src.lower())))
            if self.supported is True:
                found = found or (1,)
            elif self.supported is False:
                found = ()
            markers = "".join(f"[{n}]" for n in found)
            body, end = (text[:-1], text[-1]) if text[-1] in ".!?" else (text, "")
            marked = f"{body} {markers}{end}" if found else text
            sentences.append(SentenceSupport(marked, found, bool(found), 1.0 if found else 0.0, ()))
        return Verification(tuple(sentences), " ".join(s.text for s in sentences))
