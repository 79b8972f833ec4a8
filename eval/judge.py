"""The LLM-judged Ragas metrics, built only when a judge is configured.

Any OpenAI-compatible server works (the local llama.cpp server, Ollama, TGI, a hosted model): Ragas asks it
for JSON (instructor's JSON mode), which a small CPU model sometimes gets wrong; such a call is counted as a
judge error in the report. Answer relevancy also needs embeddings: the stack's own bi-encoder serves them,
so nothing else is downloaded.
"""

from __future__ import annotations

from typing import Any

from services.core.settings import EmbedderSettings, EvalSettings


def stack_embeddings(settings: EmbedderSettings) -> Any:
    """Ragas' embedding interface over the stack's bi-encoder (only answer relevancy needs it)."""
    from ragas.embeddings.base import BaseRagasEmbedding

    from services.core.factory import build_embedder

    class StackEmbeddings(BaseRagasEmbedding):
        def __init__(self) -> None:
            super().__init__()
            self.embedder = build_embedder(settings)  # loaded by the first embed_text: a run may never need it

        def embed_text(self, text: str, **kwargs: Any) -> list[float]:
            self.embedder.warm_up()  # idempotent: loads once
            return self.embedder.embed_query(text).tolist()

        async def aembed_text(self, text: str, **kwargs: Any) -> list[float]:
            return self.embed_text(text)

    return StackEmbeddings()


def judge_model(settings: EvalSettings) -> str:
    return settings.eval_judge_model or settings.llm_model


def build_judge(settings: EvalSettings) -> dict[str, Any] | None:
    """The four judged metrics keyed by report name, or None when ``RAG_EVAL_JUDGE_BASE_URL`` is empty."""
    if not settings.eval_judge_base_url:
        return None
    from openai import AsyncOpenAI
    from ragas.llms.base import llm_factory
    from ragas.metrics.collections import AnswerRelevancy, ContextPrecisionWithReference, ContextRecall, Faithfulness

    client = AsyncOpenAI(
        base_url=settings.eval_judge_base_url,
        api_key=settings.eval_judge_api_key.get_secret_value(),
        timeout=settings.eval_judge_timeout_s,
        max_retries=1,
    )
    llm = llm_factory(judge_model(settings), provider="openai", client=client, temperature=0.0, max_tokens=1024)
    return {
        "faithfulness": Faithfulness(llm=llm),
        "answer_relevancy": AnswerRelevancy(llm=llm, embeddings=stack_embeddings(settings), strictness=1),
        "context_precision": ContextPrecisionWithReference(llm=llm),
        "context_recall": ContextRecall(llm=llm),
    }
