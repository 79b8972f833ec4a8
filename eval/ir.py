"""IR metrics of the running API's ``/search``: nDCG@10, MRR@10, recall@k and latency percentiles.

Documents are ranked by their best chunk (a document counts once, at its first rank; see services/core/measure.py).
A failed request is recorded as an error for that query and leaves it out of the means, so one bad
request is visible in the report without turning into a fake zero.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from tqdm import tqdm

from eval.evalset import EvalItem
from services.contract.client import ApiClient, ApiClientError
from services.contract.schemas import ChunkOut, Citation, SearchRequest
from services.core.measure import latency_summary, mean, mrr_at_k, ndcg_at_k, recall_at_k
from services.core.observability import tracing

RECALL_KS = (1, 5, 10)
SEARCH_TOP_K = 10


def judged_id(hit: ChunkOut | Citation, relevant: frozenset[str] | set[str]) -> str:
    """The id a hit is judged under: the judged id it matches, else its file name without extension.

    fitz-gov documents are ingested as ``<fitz-gov id>.md``, so the file name is the judged id; a user's
    set may instead name sources or the API's doc ids.
    """
    stem = PurePosixPath(hit.source.split("://", 1)[-1]).stem
    for candidate in (stem, hit.source, hit.doc_id):
        if candidate in relevant:
            return candidate
    return stem


@dataclass(frozen=True, slots=True)
class QueryOutcome:
    id: str
    ranked: list[str]
    relevant: list[str]
    latency_ms: float
    error: str = ""

    def scores(self) -> dict[str, float]:
        rel = set(self.relevant)
        out = {"ndcg@10": ndcg_at_k(self.ranked, rel, 10), "mrr@10": mrr_at_k(self.ranked, rel, 10)}
        out |= {f"recall@{k}": recall_at_k(self.ranked, rel, k) for k in RECALL_KS}
        return out


def run_search(api: ApiClient, items: Sequence[EvalItem], *, top_n: int | None = None) -> list[QueryOutcome]:
    outcomes = []
    for item in tqdm(items, desc="search", unit="query", dynamic_ncols=True):
        relevant = frozenset(item.relevant_docs)
        with tracing.tracer().start_as_current_span("eval.search", openinference_span_kind="chain") as span:
            span.set_attribute("input.value", item.question)
            request = SearchRequest(query=item.question, top_k=SEARCH_TOP_K, **({"top_n": top_n} if top_n else {}))
            started = time.perf_counter()
            try:
                result = api.search(request)
            except ApiClientError as exc:
                outcomes.append(QueryOutcome(item.id, [], sorted(relevant), 0.0, exc.message))
                span.set_attribute("eval.error", exc.message)
                continue
            latency_ms = (time.perf_counter() - started) * 1000  # the client's wall time, as a user waits
            ranked = [judged_id(hit, relevant) for hit in result.results]
            outcome = QueryOutcome(item.id, ranked, sorted(relevant), latency_ms)
            if span.is_recording():
                for name, value in outcome.scores().items():
                    span.set_attribute(f"eval.{name}", value)
            outcomes.append(outcome)
    return outcomes


def summarize(outcomes: Sequence[QueryOutcome]) -> dict[str, Any]:
    """Means over the queries that got an answer, latency percentiles, and how many failed."""
    ok = [o for o in outcomes if not o.error]
    per_query = [o.scores() for o in ok]
    metrics = {name: round(mean(s[name] for s in per_query), 4) for name in per_query[0]} if per_query else {}
    latency = latency_summary([o.latency_ms for o in ok])
    metrics |= {f"search_latency_ms_{k}": v for k, v in latency.items() if k != "mean"}
    return {"queries": len(outcomes), "errors": len(outcomes) - len(ok), "metrics": metrics}
