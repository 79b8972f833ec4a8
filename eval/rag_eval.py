"""Answer quality of the running API's ``/chat``, scored with Ragas 0.4.3.

- Cases to **abstain** on are scored on one thing: did the stack decline (the ``declined`` field)?
- Cases to **answer** are scored on whether it answered at all, and then with the Ragas metrics that need
  no LLM (always): non-LLM context precision / recall (retrieved chunk texts against the reference
  contexts, Levenshtein similarity >= 0.5 counts as a match), string similarity, ROUGE-L and BLEU of the
  answer against the reference text.
- Every case the stack answered (did not decline), whichever it expected, is scored on the grounding the
  API reports per answer sentence (``sentences``: its citations and whether the verifier found it
  supported): ``sentence_supported`` (share of its sentences supported), ``citation_coverage`` (share of
  its sentences citing at least one source) and ``citation_precision`` (share of the citations on its
  sentences whose sentence is supported, i.e. whose cited source the verifier accepted; only cases with
  a citation). The summary counts why cases were declined (``decline_reason``). An answer the server did
  not verify (``RAG_VERIFY_ANSWERS=false``) has no sentences and gets none of these metrics.
- With a judge LLM configured (``RAG_EVAL_JUDGE_BASE_URL``, any OpenAI-compatible server) also the
  LLM-judged ones: faithfulness, answer relevancy, context precision and context recall. A judge call that
  fails (timeout, malformed JSON from a small model) leaves that score out and is counted, not fatal.

Every metric is a mean over cases of a per-case value kept in ``CaseOutcome.scores`` (and in the report's
``per_case``), so its confidence interval and the paired comparison with an earlier run resample cases.

The chat requests run first (sequentially: one CPU LLM), then the scoring, each with a progress bar.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from eval.evalset import EvalItem
from eval.ir import judged_id
from services.contract.client import ApiClient, ApiClientError
from services.contract.schemas import ChatOptions, Filters, SentenceOut
from services.core.measure import latency_summary, mean
from services.core.observability import tracing

os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")  # else Ragas sends usage analytics at exit

logger = logging.getLogger(__name__)

BEHAVIOUR_METRICS = ("abstention_accuracy", "answer_rate")
GROUNDING_METRICS = ("sentence_supported", "citation_coverage", "citation_precision", "first_citation_correct")
NON_LLM_METRICS = ("non_llm_context_precision", "non_llm_context_recall", "string_similarity", "rouge_l", "bleu")
JUDGE_METRICS = ("faithfulness", "answer_relevancy", "context_precision", "context_recall")


@dataclass(slots=True)
class CaseOutcome:
    id: str
    expect: str
    question: str
    answer: str = ""
    declined: bool = False
    contexts: list[str] = field(default_factory=list)
    latency_ms: float = 0.0
    error: str = ""
    scores: dict[str, float] = field(default_factory=dict)
    judge_errors: list[str] = field(default_factory=list)
    sentences: list[SentenceOut] = field(default_factory=list)  # empty: the answer was not verified
    decline_reason: str | None = None
    answerability: dict[str, Any] | None = None
    sources: list[dict[str, Any]] = field(default_factory=list)  # n, doc, title and what the model read of each

    @property
    def correct_behaviour(self) -> bool:
        return self.declined if self.expect == "abstain" else not self.declined


def item_options(item: EvalItem, options: ChatOptions | None) -> ChatOptions | None:
    """The run's options, plus the item's leave-one-out exclusion: the question is asked of the corpus without
    its source document (narrowing whatever filters the run sets)."""
    if not item.exclude_docs:
        return options
    chosen = options.chosen() if options else {}
    filters = Filters(**chosen.pop("filters", {}))
    filters.exclude_doc_id = sorted({*filters.exclude_doc_id, *item.exclude_docs})
    return ChatOptions(**chosen, filters=filters)


def ask_all(api: ApiClient, items: Sequence[EvalItem], options: ChatOptions | None = None) -> list[CaseOutcome]:
    """Ask every case (``options``: per-request overrides such as the answerability gate off) and score its
    behaviour and grounding; the Ragas scores come later, from ``score_all``."""
    outcomes = []
    for item in tqdm(items, desc="chat", unit="case", dynamic_ncols=True):
        outcome = CaseOutcome(item.id, item.expect or "answer", item.question)
        with tracing.tracer().start_as_current_span("eval.chat", openinference_span_kind="chain") as span:
            span.set_attribute("input.value", item.question)
            started = time.perf_counter()
            try:
                reply = api.chat([{"role": "user", "content": item.question}], item_options(item, options))
            except ApiClientError as exc:
                outcome.error = exc.message
                span.set_attribute("eval.error", outcome.error)
            else:
                outcome.latency_ms = (time.perf_counter() - started) * 1000  # the client's wall time
                outcome.answer, outcome.declined = reply.answer, reply.declined
                outcome.contexts = [source.text for source in reply.sources]  # in prompt order
                outcome.sentences, outcome.decline_reason = reply.sentences, reply.decline_reason
                gate = reply.answerability
                outcome.answerability = gate.model_dump(mode="json") if gate else None
                outcome.sources = [
                    {
                        "n": c.n,
                        "doc": judged_id(c, set(item.relevant_docs)),
                        "title": c.title,
                        "read": c.excerpt or c.text,
                    }
                    for c in reply.sources
                ]
                outcome.scores.update(
                    behaviour_scores(outcome) | grounding_scores(outcome) | citation_scores(outcome, item)
                )
                span.set_attribute("output.value", reply.answer)
                span.set_attribute("eval.expect", outcome.expect)
                span.set_attribute("eval.correct_behaviour", outcome.correct_behaviour)
        outcomes.append(outcome)
    return outcomes


# --- scoring ----------------------------------------------------------------------------------------


def behaviour_scores(outcome: CaseOutcome) -> dict[str, float]:
    """1 when the case got the expected behaviour: answered (``answer_rate``) or declined (``abstention_accuracy``)."""
    name = "abstention_accuracy" if outcome.expect == "abstain" else "answer_rate"
    return {name: float(outcome.correct_behaviour)}


def grounding_scores(outcome: CaseOutcome) -> dict[str, float]:
    """Per-sentence support and citations of an answered case; empty when declined or not reported."""
    if outcome.declined or not outcome.sentences:
        return {}
    sentences = outcome.sentences
    out = {
        "sentence_supported": sum(s.supported for s in sentences) / len(sentences),
        "citation_coverage": sum(bool(s.citations) for s in sentences) / len(sentences),
    }
    citations = sum(len(s.citations) for s in sentences)
    if citations:
        out["citation_precision"] = sum(len(s.citations) for s in sentences if s.supported) / citations
    return out


def citation_scores(outcome: CaseOutcome, item: EvalItem) -> dict[str, float]:
    """``first_citation_correct``: for an answered case with judged documents, whether the answer's first verified
    citation is one of them (what a user clicks first). A case answered without any citation scores 0."""
    if outcome.declined or not item.relevant_docs or not outcome.sentences:
        return {}
    first = next((n for s in outcome.sentences for n in s.citations), None)
    docs = {src["n"]: src["doc"] for src in outcome.sources}
    return {"first_citation_correct": float(first is not None and docs.get(first) in item.relevant_docs)}


def non_llm_metrics() -> dict[str, Any]:
    # Ragas 0.4.3 moved string/ROUGE/BLEU to ``ragas.metrics.collections``; the non-LLM context metrics have
    # no collections version yet and their public re-export warns, so they come from their defining modules.
    from ragas.metrics._context_precision import NonLLMContextPrecisionWithReference
    from ragas.metrics._context_recall import NonLLMContextRecall
    from ragas.metrics.collections import BleuScore, NonLLMStringSimilarity, RougeScore

    return {
        "non_llm_context_precision": NonLLMContextPrecisionWithReference(),
        "non_llm_context_recall": NonLLMContextRecall(),
        "string_similarity": NonLLMStringSimilarity(),
        "rouge_l": RougeScore(rouge_type="rougeL"),
        "bleu": BleuScore(),
    }


async def _score_non_llm(metrics: dict[str, Any], item: EvalItem, outcome: CaseOutcome) -> dict[str, float]:
    from ragas.dataset_schema import SingleTurnSample

    out: dict[str, float] = {}
    if item.reference_contexts:
        if outcome.contexts:
            sample = SingleTurnSample(
                retrieved_contexts=outcome.contexts, reference_contexts=list(item.reference_contexts)
            )
            out["non_llm_context_precision"] = await metrics["non_llm_context_precision"].single_turn_ascore(sample)
            out["non_llm_context_recall"] = await metrics["non_llm_context_recall"].single_turn_ascore(sample)
        else:  # nothing retrieved: nothing relevant retrieved
            out["non_llm_context_precision"] = out["non_llm_context_recall"] = 0.0
    if item.reference:
        for name in ("string_similarity", "rouge_l", "bleu"):
            result = await metrics[name].ascore(reference=item.reference, response=outcome.answer or " ")
            out[name] = result.value
    return {k: float(v) for k, v in out.items()}


async def _score_judged(judge: dict[str, Any], item: EvalItem, outcome: CaseOutcome) -> None:
    calls = {
        "faithfulness": lambda m: m.ascore(
            user_input=item.question, response=outcome.answer, retrieved_contexts=outcome.contexts
        ),
        "answer_relevancy": lambda m: m.ascore(user_input=item.question, response=outcome.answer),
        "context_precision": lambda m: m.ascore(
            user_input=item.question, reference=item.reference, retrieved_contexts=outcome.contexts
        ),
        "context_recall": lambda m: m.ascore(
            user_input=item.question, retrieved_contexts=outcome.contexts, reference=item.reference
        ),
    }
    for name, call in calls.items():
        if name.startswith("context_") and not item.reference:
            continue
        try:
            result = await call(judge[name])
            value = float(result.value)
        except Exception as exc:  # a judge failure must cost one score, not the run
            outcome.judge_errors.append(f"{name}: {type(exc).__name__}: {str(exc)[:200]}")
            continue
        if not math.isnan(value):
            outcome.scores[name] = value


def score_all(items: Sequence[EvalItem], outcomes: Sequence[CaseOutcome], judge: dict[str, Any] | None) -> None:
    """Fill each answered case's ``scores`` (in place)."""
    metrics = non_llm_metrics()

    async def run() -> None:
        todo = [(i, o) for i, o in zip(items, outcomes, strict=True) if i.expect == "answer" and not o.error]
        for item, outcome in tqdm(todo, desc="ragas", unit="case", dynamic_ncols=True):
            outcome.scores.update(await _score_non_llm(metrics, item, outcome))
            if judge and not outcome.declined and outcome.contexts:
                await _score_judged(judge, item, outcome)

    asyncio.run(run())


def summarize(outcomes: Sequence[CaseOutcome], judged: bool) -> dict[str, Any]:
    """Each metric is the mean of its per-case value over the cases that have one (see ``CaseOutcome.scores``)."""
    ok = [o for o in outcomes if not o.error]
    metrics: dict[str, float] = {}
    for name in BEHAVIOUR_METRICS + GROUNDING_METRICS + NON_LLM_METRICS + (JUDGE_METRICS if judged else ()):
        values = [o.scores[name] for o in ok if name in o.scores]
        if values:
            metrics[name] = round(mean(values), 4)
    latency = latency_summary([o.latency_ms for o in ok])
    metrics |= {f"chat_latency_ms_{k}": v for k, v in latency.items() if k != "mean"}
    declined = [o for o in ok if o.declined]
    return {
        "cases": len(outcomes),
        "answer_cases": sum(o.expect == "answer" for o in outcomes),
        "abstain_cases": sum(o.expect == "abstain" for o in outcomes),
        "answered": len(ok) - len(declined),
        "errors": len(outcomes) - len(ok),
        "judge_errors": sum(len(o.judge_errors) for o in outcomes),
        "judged": judged,
        "grounding_reported": any(o.sentences for o in ok),  # the verifier ran on some answer
        "decline_reasons": decline_reasons(declined),
        "decline_reasons_by_expect": {
            expect: decline_reasons([o for o in declined if o.expect == expect]) for expect in ("answer", "abstain")
        },
        "metrics": metrics,
    }


def decline_reasons(declined: Sequence[CaseOutcome]) -> dict[str, int]:
    """How many declined cases gave each ``decline_reason`` ("unspecified": the server gave none)."""
    return dict(sorted(Counter(o.decline_reason or "unspecified" for o in declined).items()))
