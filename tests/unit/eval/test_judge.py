"""The LLM-judged metrics: built only when a judge is configured; a failing judge costs scores, not the run."""

from __future__ import annotations

import asyncio

import pytest

from eval.evalset import EvalItem
from eval.judge import build_judge, judge_model
from eval.rag_eval import JUDGE_METRICS, CaseOutcome, _score_judged, summarize
from services.core.settings import EvalSettings

pytestmark = pytest.mark.unit


def test_no_judge_without_a_url() -> None:
    assert build_judge(EvalSettings(_env_file=None)) is None


def test_judge_metrics_are_built_for_any_openai_compatible_url() -> None:
    settings = EvalSettings(_env_file=None, eval_judge_base_url="http://127.0.0.1:9/v1", llm_model="qwen")
    judge = build_judge(settings)
    assert judge is not None and set(judge) == set(JUDGE_METRICS)
    assert judge_model(settings) == "qwen"  # the stack's own model unless RAG_EVAL_JUDGE_MODEL says otherwise


def test_an_unreachable_judge_is_counted_not_fatal() -> None:
    settings = EvalSettings(_env_file=None, eval_judge_base_url="http://127.0.0.1:9/v1", eval_judge_timeout_s=2)
    judge = build_judge(settings)
    item = EvalItem("a", "Where?", expect="answer", reference="In the matrix.", reference_contexts=("In the matrix.",))
    outcome = CaseOutcome("a", "answer", "Where?", answer="In the matrix.", contexts=["In the matrix."])
    asyncio.run(_score_judged(judge, item, outcome))
    assert outcome.scores == {} and len(outcome.judge_errors) == 4
    summary = summarize([outcome], judged=True)
    assert summary["judge_errors"] == 4 and "faithfulness" not in summary["metrics"]
