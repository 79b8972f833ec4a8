"""The heavy objects the API serves with, built once per process (in the lifespan) from settings."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ingest.factory import build_pipeline
from ingest.maintenance import IndexMaintainer
from ingest.pipeline import IngestPipeline
from services.chat.pipeline import ChatConfig, ChatPipeline
from services.core.embedder import Embedder
from services.core.evidence import EvidenceSelector, evidence_from_settings
from services.core.factory import build_embedder, build_store
from services.core.grounding import AnswerabilityGate, AnswerVerifier
from services.core.llm import LLMClient, OpenAICompatibleLLM
from services.core.reranker import CrossEncoderReranker, NoReranker, Reranker
from services.core.retrieval import Retriever
from services.core.settings import Settings
from services.core.store import VectorStore

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Components:
    settings: Settings
    embedder: Embedder
    store: VectorStore
    reranker: Reranker
    llm: LLMClient
    retriever: Retriever
    pipeline: IngestPipeline
    gate: AnswerabilityGate | None = None
    verifier: AnswerVerifier | None = None
    evidence: EvidenceSelector | None = None
    maintainer: IndexMaintainer | None = None  # builds the store's index after uploads, off the request path

    def chat_pipeline(self) -> ChatPipeline:
        """The chat flow over these components (cheap: built per request, so a replaced LLM is picked up)."""
        return ChatPipeline(
            self.retriever,
            self.llm,
            gate=self.gate,
            verifier=self.verifier,
            evidence=self.evidence,
            config=ChatConfig.from_settings(self.settings),
        )

    def close_sync(self) -> None:
        if self.maintainer is not None:
            self.maintainer.stop()
        self.store.close()  # an index build in flight ends here (Edge stops its child process)
        if self.maintainer is not None and not self.maintainer.join(timeout=30):
            logger.warning("the index maintenance thread did not stop within 30 s")


def build_reranker(settings: Settings) -> Reranker:
    if settings.reranker == "none":
        return NoReranker()
    reranker = CrossEncoderReranker.from_settings(settings)
    reranker.warm_up()
    return reranker


def build_gate(settings: Settings, reranker: Reranker) -> AnswerabilityGate | None:
    """The answerability gate (it scores with the reranker); None when it cannot run with this setup."""
    from services.core.answerability import gate_from_settings

    return gate_from_settings(settings, reranker)


def build_verifier(settings: Settings, reranker: Reranker) -> AnswerVerifier | None:
    """The answer verifier; it scores sentences with the cross-encoder when there is one."""
    from services.core.verify import verifier_from_settings

    scorer = reranker if isinstance(reranker, CrossEncoderReranker) else None
    return verifier_from_settings(settings, scorer)


def build_llm(settings: Settings) -> OpenAICompatibleLLM:
    return OpenAICompatibleLLM(
        settings.llm_base_url,
        model=settings.llm_model,
        api_key=settings.llm_api_key.get_secret_value(),
        timeout_s=settings.llm_timeout_s,
        connect_timeout_s=settings.llm_connect_timeout_s,
        max_retries=settings.llm_max_retries,
        max_tokens=settings.llm_max_tokens,
        temperature=settings.llm_temperature,
    )


def build_components(settings: Settings) -> Components:
    embedder = build_embedder(settings)
    embedder.warm_up()
    return assemble(settings, embedder, build_store(settings))


def assemble(settings: Settings, embedder: Embedder, store: VectorStore) -> Components:
    """Wire the components around an embedder and a store (tests pass shared, already-loaded ones)."""
    reranker = build_reranker(settings)
    return Components(
        settings=settings,
        embedder=embedder,
        store=store,
        reranker=reranker,
        llm=build_llm(settings),
        retriever=Retriever(embedder, store, reranker),
        pipeline=build_pipeline(settings, embedder, store),
        gate=build_gate(settings, reranker),
        verifier=build_verifier(settings, reranker),
        evidence=evidence_from_settings(settings, reranker if isinstance(reranker, CrossEncoderReranker) else None),
        maintainer=IndexMaintainer(store),
    )
