"""The heavy objects the API serves with, built once per process (in the lifespan) from settings.

Usage::

    components = build_components(settings)  # cheap: no model is loaded, no collection created
    components.warm_up()                     # the models, the collections: what /readyz reports
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from ingest.factory import build_pipeline, build_queue, build_spool
from ingest.jobs import IngestJob, JobQueue, JobRunner, JobStatus, UploadSpool
from ingest.maintenance import IndexMaintainer
from ingest.pipeline import IngestPipeline
from services.chat.pipeline import ChatConfig, ChatPipeline
from services.core.factory import (
    build_embedder,
    build_evidence,
    build_gate,
    build_llm,
    build_reranker,
    build_store,
    build_verifier,
    sentence_scorer,
)
from services.core.grounding.contracts import AnswerabilityGate, AnswerVerifier
from services.core.grounding.evidence import EvidenceSelector
from services.core.models.embedder import Embedder
from services.core.models.llm import LLMClient
from services.core.models.reranker import Reranker
from services.core.retrieval import Retriever
from services.core.settings import ApiSettings
from services.core.storage.store import VectorStore
from services.state.db import Database, DatabaseUnavailable, SchemaTooNew
from services.state.store import AppState

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Components:
    settings: ApiSettings
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
    # the cross-encoder the verifier and the evidence selector score sentences with: the reranker itself, except
    # when that is one make adapt fitted (their thresholds were chosen on the shipped one's scores)
    scorer: Reranker | None = None
    queue: JobQueue | None = None  # upload jobs (ingest/jobs/); None: built from the settings when first used
    spool: UploadSpool | None = None
    state: AppState | None = None  # conversations and feedback (services/state); opened on first use
    _state_error: str = field(default="", repr=False)
    _state_retry_at: float = field(default=0.0, repr=False)
    _state_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _worker: threading.Thread | None = field(default=None, repr=False)
    _worker_stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _worker_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def warm_up(self) -> None:
        """Load the models and create the store's collections: the API's start-up (idempotent, thread-safe)."""
        self.embedder.warm_up()
        self.reranker.warm_up()
        if self.scorer is not None:
            self.scorer.warm_up()  # idempotent: the same object as the reranker unless it is an adapted one
        self.pipeline.warm_up()  # the chunker, and the collections (a Qdrant server that is down defers them)

    # -- application state --------------------------------------------------------------------------

    STATE_RETRY_S = 5.0

    def app_state(self) -> AppState:
        """The application database, opened on first use, and again once it is back after being down.

        Raises ``DatabaseUnavailable`` with the reason (the feedback and conversation routes' 503); tried at most
        every few seconds while it fails, so a database that is down costs a request nothing but the error."""
        with self._state_lock:
            if self.state is not None:
                return self.state
            now = time.monotonic()
            if now < self._state_retry_at:
                raise DatabaseUnavailable(self._state_error)
            try:
                db = Database.open(self.settings)
            except (DatabaseUnavailable, SchemaTooNew) as exc:
                self._state_error, self._state_retry_at = str(exc), now + self.STATE_RETRY_S
                logger.error("application database unavailable: %s", exc)
                raise DatabaseUnavailable(str(exc)) from exc
            self.state = AppState(db, retention_days=self.settings.conversation_retention_days)
            try:
                if forgotten := self.state.purge():
                    logger.info("forgot %d turns past the %d-day retention", forgotten, self.state.retention_days)
            except DatabaseUnavailable as exc:
                logger.warning("retention purge skipped: %s", exc)
            return self.state

    # -- ingest jobs --------------------------------------------------------------------------------

    def jobs(self) -> tuple[JobQueue, UploadSpool]:
        with self._worker_lock:
            if self.queue is None:
                self.queue = build_queue(self.settings)
            if self.spool is None:
                self.spool = build_spool(self.settings)
            return self.queue, self.spool

    def start_ingest_worker(self) -> None:
        """With the local queue, the API's own worker thread (idempotent; restarts after stop). With Redis the
        workers are other processes and this does nothing. Jobs a crash left in the journal run now."""
        queue, spool = self.jobs()
        if queue.kind != "local":
            return
        with self._worker_lock:
            if self._worker is not None and self._worker.is_alive():
                return
            self._worker_stop = threading.Event()
            runner = JobRunner(queue, spool, self.pipeline, maintainer=self.maintainer, consumer="api")
            self._worker = threading.Thread(
                target=runner.run, args=(self._worker_stop,), kwargs={"poll_s": 0.5}, name="ingest-jobs", daemon=True
            )
            self._worker.start()

    def stop_ingest_worker(self, timeout_s: float = 60) -> None:
        """Let the job in hand finish, then stop the thread (a job left queued runs at the next start)."""
        self._worker_stop.set()
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.join(timeout_s)
            if worker.is_alive():
                logger.warning("the ingest worker thread did not stop within %.0f s", timeout_s)

    def submit_job(self, job: IngestJob, data: bytes) -> None:
        """Spool the bytes, then queue the job: a queue that refuses it leaves no orphan in the spool."""
        queue, spool = self.jobs()
        self.start_ingest_worker()
        spool.put(job.blob, data)
        try:
            queue.submit(job)
        except BaseException:
            spool.discard(job.blob)
            raise

    def job_status(self, job: IngestJob) -> JobStatus:
        queue, _ = self.jobs()
        return queue.status(job.doc_id) or JobStatus.of(job, "queued")

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
        self.stop_ingest_worker()
        if self.state is not None:
            self.state.db.close()
        if self.queue is not None:
            self.queue.close()
        if self.maintainer is not None:
            self.maintainer.stop()
        self.store.close()  # an index build in flight ends here (Edge stops its child process)
        if self.maintainer is not None and not self.maintainer.join(timeout=30):
            logger.warning("the index maintenance thread did not stop within 30 s")


def build_components(
    settings: ApiSettings, *, embedder: Embedder | None = None, store: VectorStore | None = None
) -> Components:
    """The API's wiring: every component from the settings, none loaded yet (``Components.warm_up`` loads them).

    Tests pass a shared, already-loaded ``embedder`` and their own ``store``; the rest is built as in production.
    """
    embedder = embedder if embedder is not None else build_embedder(settings)
    store = store if store is not None else build_store(settings)
    reranker = build_reranker(settings)
    scorer = sentence_scorer(settings, reranker)
    return Components(
        settings=settings,
        embedder=embedder,
        store=store,
        reranker=reranker,
        llm=build_llm(settings),
        retriever=Retriever(embedder, store, reranker),
        pipeline=build_pipeline(settings, embedder, store),
        gate=build_gate(settings, reranker),
        verifier=build_verifier(settings, scorer),
        evidence=build_evidence(settings, scorer),
        maintainer=IndexMaintainer(store),
        scorer=scorer,
    )
