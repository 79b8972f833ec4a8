"""The one place configuration lives: every knob is an env var (prefix ``RAG_``) or a line in ``.env``.

Settings come in groups, one small class per concern (the store, the embedder, tracing, ...), and each app
builds the class made of the groups it reads, so a process is validated against, and in compose handed, only
what it uses:

    app (entry point)                              class              groups
    API (services.api.main)                        ApiSettings        IngestSettings + ChatPipelineSettings
                                                                      + API key + API server + database
    ingest CLI, folder watcher, worker             IngestSettings     common, tracing, embedder, chunking,
      (ingest.cli, ingest.worker)                                     store, ingestion
    chat UI (frontend.main)                        FrontendSettings   common, tracing, API key, retrieval
                                                                      defaults, request limits, frontend
    evaluation (eval.run, eval.scheduler)          EvalSettings       common, tracing, API key, embedder,
                                                                      LLM model, evaluation, database
    local Phoenix (services.phoenix.server)        PhoenixSettings    common, Phoenix server
    local LLM server (services.llm.server)         LlmServerSettings  common, LLM model, LLM server
    launcher (make run), bench, train, tests       Settings           all of the above

A function takes the narrowest group it reads (``build_store(settings: StoreSettings)``), so every app class
holding that group can be passed to it. A variable's name is its field's (``RAG_TOP_K``) whatever the class:
one ``.env`` serves every app, and each ignores what it does not declare. Each field is documented in
``.env.example``; validators reject combinations that cannot work so a misconfiguration fails at start-up,
not in the middle of a request. The closed sets of words (retrieval mode, backend, ...) are
``services.core.types``'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, computed_field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.core.types import (
    EmbeddedEngine,
    InferenceBackend,
    IngestQueueKind,
    LlmServerKind,
    Quantization,
    RerankerKind,
    RetrievalMode,
)

Environment = Literal["local", "production"]
GgufAlias = Literal["qwen2.5-coder-0.5b", "smollm2-135m", "qwen2.5-coder-1.5b"]  # = services/llm/gguf.py MODELS


class CommonSettings(BaseSettings):
    """What every app reads, and how every group is read: ``RAG_<FIELD>`` from the environment, else ``.env``;
    empty means unset. Every group below extends it."""

    model_config = SettingsConfigDict(
        env_prefix="RAG_",
        env_file=".env",
        env_ignore_empty=True,
        extra="ignore",
    )

    data_dir: Path = Path(".data")
    log_level: str = "INFO"


class TracingSettings(CommonSettings):
    """OpenTelemetry / OpenInference -> Phoenix (services/core/observability/tracing.py)."""

    tracing_endpoint: str | None = Field(None, description="OTLP/HTTP traces URL; empty = tracing off")
    tracing_project: str = "ragstack"
    tracing_sample_ratio: float = Field(1.0, ge=0, le=1)
    tracing_queue_size: int = Field(2048, ge=16, description="spans buffered; beyond it they are dropped")
    tracing_export_timeout_s: float = Field(2.0, gt=0)
    phoenix_api_url: str | None = Field(
        None,
        description="Phoenix's REST API (feedback annotations, eval experiments); empty = the tracing endpoint's "
        "scheme and host",
    )


class DatabaseSettings(CommonSettings):
    """The application database: conversations and feedback (services/state). SQLite in the data dir unless a URL
    names another (PostgreSQL in compose: ``postgresql+psycopg://user:password@host:5432/db``)."""

    database_url: SecretStr | None = Field(
        None, description="SQLAlchemy URL of the application database; empty = sqlite:///<data_dir>/app.db"
    )
    database_timeout_s: float = Field(5.0, gt=0, description="connect / lock wait before the database counts as down")
    conversation_retention_days: int = Field(
        90, ge=0, description="turns older than this are forgotten (accepted eval cases are kept); 0 = keep all"
    )

    @property
    def resolved_database_url(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{(self.data_dir / 'app.db').resolve()}"


class ApiKeySettings(CommonSettings):
    """The API's bearer key: the API checks it, its clients (chat UI, evaluation) send it."""

    environment: Environment = "local"
    api_key: SecretStr | None = None

    @model_validator(mode="after")
    def _production_needs_a_key(self) -> ApiKeySettings:
        if self.environment == "production" and self.api_key is None:
            raise ValueError("RAG_ENVIRONMENT=production requires RAG_API_KEY")
        return self


# --- models --------------------------------------------------------------------------------------------------


class ModelRuntimeSettings(CommonSettings):
    """Where and how the bi-encoder and the cross-encoder run."""

    model_cache_dir: Path | None = Field(
        None, description="exports of the onnx/openvino backends; default <data_dir>/models"
    )
    device: str = "cpu"
    hf_hub_offline: bool = True

    @property
    def resolved_model_cache_dir(self) -> Path:
        return self.model_cache_dir or self.data_dir / "models"


class EmbedderSettings(ModelRuntimeSettings):
    """The bi-encoder (services/core/models/embedder.py)."""

    embed_model: str = "all-MiniLM-L6-v2"
    embed_query_prefix: str | None = None
    embed_passage_prefix: str | None = None
    embed_normalize: bool | None = None
    embed_batch_size: int = Field(32, ge=1, le=1024)
    embed_backend: InferenceBackend = Field(
        "openvino-int8", description="what runs the bi-encoder; exports cached in model_cache_dir (make bench)"
    )


# --- the index: chunking, store, ingestion -----------------------------------------------------------------


class ChunkingSettings(CommonSettings):
    chunk_size: int = Field(200, ge=16, description="target tokens per chunk (embedder's tokenizer)")
    chunk_overlap: int = Field(40, ge=0)
    embed_context_header: bool = Field(
        True,
        description=(
            "embed each chunk as 'title — section' + newline + text (the stored text is unchanged). On by"
            " default: in hybrid retrieval it lifts chunk nDCG@10 by 0.04 on many-section handbooks and doc"
            " nDCG@10 by 0.02 on fitz-gov, both CI-separated (docs/ingestion.md). Switching it re-embeds every file"
        ),
    )

    @model_validator(mode="after")
    def _overlap_below_chunk_size(self) -> ChunkingSettings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(f"RAG_CHUNK_OVERLAP ({self.chunk_overlap}) must be < RAG_CHUNK_SIZE ({self.chunk_size})")
        return self


class StoreSettings(CommonSettings):
    """The vector store: a Qdrant server, or an embedded engine in a folder (services/core/factory.py)."""

    qdrant_url: str | None = None
    qdrant_path: str | None = None  # ":memory:" for an ephemeral store; default <data_dir>/qdrant
    qdrant_api_key: SecretStr | None = None
    qdrant_timeout_s: float = Field(10.0, gt=0)
    collection: str = "chunks"
    late_interaction: bool = Field(
        False, description="store per-token vectors at ingest (enables the late-interaction rerank stage)"
    )
    qdrant_embedded_engine: EmbeddedEngine = Field(
        "edge",
        description="the embedded store (no RAG_QDRANT_URL): qdrant-edge, Qdrant's engine in-process, or "
        "qdrant-client's local mode (docs/embedded-store.md; `ingest migrate-store` moves a local folder to Edge)",
    )
    qdrant_index_threshold: int = Field(
        100_000,
        ge=0,
        description="Edge: build the HNSW index at the end of an ingest run once the store holds this many chunks "
        "(exact search below it); 0 = never",
    )
    qdrant_hnsw_ef: int = Field(
        512,
        ge=1,
        le=4096,
        description="HNSW search breadth (ef) for dense queries once the graph is built (Edge and server); higher "
        "is closer to exact and slower (bench.embedded_store --points; docs/embedded-store.md)",
    )
    qdrant_hnsw_m: int = Field(
        16,
        ge=4,
        le=128,
        description="Edge: links per node of the HNSW graph the index build makes; more is higher recall at a "
        "given ef, a slower build and more memory (docs/embedded-store.md, a million points)",
    )
    qdrant_hnsw_ef_construct: int = Field(
        100, ge=4, le=1000, description="Edge: search breadth while building the HNSW graph; more is a better graph"
    )
    qdrant_shard_number: int | None = Field(
        None, ge=1, description="server: shards of a new collection (a cluster: a multiple of the node count)"
    )
    qdrant_replication_factor: int | None = Field(
        None, ge=1, description="server: copies of each shard of a new collection (2 survives one lost node)"
    )
    qdrant_write_consistency_factor: int | None = Field(
        None, ge=1, description="server: replicas that must acknowledge a write to a new collection"
    )
    qdrant_quantization: Quantization = Field(
        "none", description="Edge: int8 scalar quantisation of the dense vectors, built with the HNSW index"
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def resolved_qdrant_path(self) -> str:
        return self.qdrant_path or str(self.data_dir / "qdrant")


class IngestionSettings(CommonSettings):
    """Limits checked before parsing, and the queue upload jobs wait in (ingest/jobs/)."""

    max_file_bytes: int = Field(50 * 1024 * 1024, ge=1)
    max_uncompressed_bytes: int = Field(200 * 1024 * 1024, ge=1, description="zip-bomb guard for DOCX")
    max_pdf_pages: int = Field(2000, ge=1)
    ocr: bool = Field(True, description="OCR (Tesseract) for PDF pages without a text layer and for images")
    ocr_language: str = Field(
        "eng", pattern=r"^[a-z_]{3,}(\+[a-z_]{3,})*$", description="Tesseract languages, e.g. eng or eng+deu"
    )
    ocr_dpi: int = Field(300, ge=72, le=600, description="resolution PDF pages are rendered at for OCR")
    ingest_queue: IngestQueueKind = Field(
        "local",
        description="where upload jobs wait (ingest/jobs/): in the API process, or a Redis stream read by "
        "`python -m ingest.worker` processes (docs/scaling.md)",
    )
    redis_url: str | None = Field(None, description="redis://host:6379/0 when RAG_INGEST_QUEUE=redis")
    upload_dir: Path | None = Field(
        None, description="the spool of uploads waiting for a worker; default <data_dir>/uploads (shared in compose)"
    )
    ingest_max_attempts: int = Field(3, ge=1, le=20, description="deliveries of a job before it is failed")
    ingest_retry_backoff_s: float = Field(
        5.0, ge=0, description="a failed job waits this long before its next try, doubling each time (max 5 min)"
    )
    ingest_visibility_timeout_s: float = Field(
        300.0, gt=0, description="a job a worker holds without a heartbeat this long goes to another worker"
    )

    @property
    def resolved_upload_dir(self) -> Path:
        return self.upload_dir or self.data_dir / "uploads"


# --- the query path: retrieval, reranking, LLM, grounding --------------------------------------------------


class RetrievalSettings(CommonSettings):
    """The retrieval defaults of a request (a request may override them; the chat UI starts from them)."""

    retrieval_mode: RetrievalMode = "hybrid"
    top_n: int = Field(10, ge=1, le=500, description="candidates from the first stage (rerank depth; make bench)")
    top_k: int = Field(5, ge=1, le=100, description="chunks kept after reranking")
    reranker: RerankerKind = "cross-encoder"

    @model_validator(mode="after")
    def _top_k_within_top_n(self) -> RetrievalSettings:
        if self.top_k > self.top_n:
            raise ValueError(f"RAG_TOP_K ({self.top_k}) must be <= RAG_TOP_N ({self.top_n})")
        return self


class RerankerSettings(RetrievalSettings, ModelRuntimeSettings):
    """The cross-encoder ``RAG_RERANKER`` picks (services/core/models/reranker.py)."""

    reranker_model: str = "fitzgov-minilm-l6"
    reranker_batch_size: int = Field(32, ge=1)
    reranker_backend: InferenceBackend = Field("openvino-int8", description="what runs the cross-encoder (make bench)")
    reranker_max_length: int = Field(256, ge=16, le=512)
    rerank_min_score: float | None = None
    rerank_fusion_weight: float = Field(
        1.0, ge=0, le=1, description="blend of first-stage score into the order (1 = first-stage order; see README)"
    )
    adapted_models: bool = Field(
        False,
        description="serve the cross-encoder and gate that make adapt fitted on this deployment's documents "
        "(<data dir>/adapted) when they exist and were made from RAG_RERANKER_MODEL. Off by default: on the "
        "out-of-domain set they cost 0.31 of the answer rate (docs/grounding.md, section 7)",
    )


class LlmModelSettings(CommonSettings):
    """The model name the LLM client asks for, the local server answers to, and the eval judge defaults to."""

    llm_model: str = "qwen2.5-coder-0.5b-instruct"


class LlmSettings(LlmModelSettings):
    """The client of any OpenAI-compatible server (services/core/models/llm.py)."""

    llm_base_url: str = "http://127.0.0.1:8080/v1"
    llm_api_key: SecretStr = SecretStr("not-needed")
    llm_timeout_s: float = Field(120.0, gt=0)
    llm_connect_timeout_s: float = Field(3.0, gt=0)
    llm_max_retries: int = Field(2, ge=0, le=10)
    llm_max_tokens: int = Field(384, ge=1)
    llm_temperature: float = Field(0.1, ge=0, le=2)


class ChatSettings(CommonSettings):
    """What a chat turn may hold and how its answer is grounded: the prompt's evidence, the answerability gate
    (services/core/grounding/answerability.py) and the answer verifier (services/core/grounding/verify.py)."""

    max_query_chars: int = Field(2000, ge=10)
    max_history_messages: int = Field(12, ge=1)
    context_max_chars: int = Field(6000, ge=500, description="budget of chunk text put into the prompt")
    evidence_max_tokens: int = Field(
        350,
        ge=0,
        description="evidence budget (estimated tokens): the question's best sentences of the top chunks go into "
        "the prompt instead of whole chunks (prefill is most of the time to first token on a CPU); 0 = whole chunks",
    )
    evidence_neighbours: int = Field(1, ge=0, le=5, description="sentences kept on each side of a chosen one")
    extractive_fallback: bool = Field(
        True,
        description="when the gate finds the question clearly answerable and the model still says it does not know, "
        "answer with the best evidence sentence, quoted and cited (extractive: true)",
    )
    answerability_model: str = Field(
        "", description="gate file (make answerability); empty = the shipped models/answerability/gate.json"
    )
    answerability_gate: bool = Field(
        True, description="decline without calling the LLM when the gate says the sources cannot answer"
    )
    gate_outside_domain: Literal["verify", "decline"] = Field(
        "verify",
        description="when the top sources come from documents the gate was not calibrated on, its decline is no "
        "evidence: 'verify' generates and lets the verifier decide; 'decline' trusts the gate everywhere",
    )
    verify_answers: bool = Field(True, description="check each answer sentence against the sources")
    verify_min_supported: float = Field(
        0.5, ge=0, le=1, description="share of supported sentences an uncertain (gate band verify) answer needs"
    )
    verify_threshold: float = Field(0.5, ge=0, le=1, description="support a source needs to back a sentence")
    verify_lexical_weight: float = Field(
        0.5, ge=0, le=1, description="blend of word overlap into the cross-encoder's support score"
    )
    verify_strict_claims: bool = Field(
        True,
        description="a sentence whose numbers, dates or names a source lacks gets no support from it "
        "(a constraint applied after the scores, not a weight)",
    )


class ChatPipelineSettings(EmbedderSettings, RerankerSettings, StoreSettings, LlmSettings, ChatSettings):
    """Everything the query path is built from (services.chat: retriever, reranker, gate, LLM, verifier)."""


# --- serving -------------------------------------------------------------------------------------------------


class RequestLimitsSettings(CommonSettings):
    """Limits the API enforces; the chat UI applies the same ones to itself."""

    max_upload_bytes: int = Field(25 * 1024 * 1024, ge=1024)
    max_concurrent_requests: int = Field(16, ge=1)


class ApiServerSettings(RequestLimitsSettings):
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    cors_origins: list[str] = Field(default_factory=list)
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    upload_wait_s: float = Field(
        120.0,
        ge=0,
        description="how long POST /documents waits for its jobs before answering with status queued "
        "(0 = at once; a request may lower it with ?wait_s=)",
    )
    openai_sources_footer: bool = Field(
        True,
        description="/v1/chat/completions ends the answer's text with the cited sources, so a plain OpenAI "
        "client shows what the answer rests on (the grounding fields carry them either way)",
    )


# --- one class per app ---------------------------------------------------------------------------------------
# The groups share bases, so Python needs one order of them that every class agrees with; bases listed in another
# order fail at import ("Cannot create a consistent method resolution order"): follow the order used below.


class IngestSettings(TracingSettings, EmbedderSettings, ChunkingSettings, StoreSettings, IngestionSettings):
    """The ingest pipeline and its processes: ``python -m ingest.cli`` (sync, watch, ...), ``ingest.worker``."""


class ApiSettings(IngestSettings, ChatPipelineSettings, ApiKeySettings, ApiServerSettings, DatabaseSettings):
    """``python -m services.api.main``: the API ingests (uploads, in-process queue) and answers."""


class FrontendSettings(TracingSettings, RetrievalSettings, ApiKeySettings, RequestLimitsSettings):
    """``python -m frontend.main``: the chat UI, a client of the API over HTTP."""

    frontend_host: str = "127.0.0.1"
    frontend_port: int = Field(7860, ge=1, le=65535)
    frontend_api_url: str = Field("http://127.0.0.1:8000", description="base URL of the API the chat UI calls")
    frontend_timeout_s: float = Field(300.0, gt=0, description="longest wait for one API answer (streamed chat)")


class EvalSettings(TracingSettings, EmbedderSettings, LlmModelSettings, ApiKeySettings, DatabaseSettings):
    """``python -m eval.run`` / ``eval.scheduler`` (make eval): measures a running API; the judge's embeddings
    are the stack's bi-encoder, and its model defaults to ``RAG_LLM_MODEL``."""

    eval_api_url: str = Field("http://127.0.0.1:8000", description="the running API the evaluation measures")
    eval_schedule: str = Field("02:00", description="daily 'HH:MM' (UTC), comma list, or 5-field cron in UTC")
    eval_sample_size: int = Field(200, ge=1, description="retrieval queries per scheduled/default run")
    eval_rag_sample_size: int = Field(0, ge=0, description="RAG cases per scheduled/default run; 0 = all of the split")
    eval_reports_dir: Path = Path("eval/reports")
    eval_regression_threshold: float = Field(0.05, ge=0, le=1, description="a drop beyond this at 95% confidence fails")
    eval_request_timeout_s: float = Field(600.0, gt=0, description="longest wait for one /search or /chat answer")
    eval_judge_base_url: str | None = Field(
        None, description="OpenAI-compatible judge LLM; empty = no LLM metrics; 'local' = the LLM make eval boots"
    )
    eval_judge_model: str | None = None
    eval_judge_api_key: SecretStr = SecretStr("not-needed")
    eval_judge_timeout_s: float = Field(900.0, gt=0, description="per judge call; a CPU model is slow")
    eval_generated_set: Path | None = Field(
        None,
        description="a generated question set the nightly run also measures (its test split); empty = "
        "<data dir>/generated/latest/questions.jsonl when make generate has written one",
    )


class PhoenixSettings(CommonSettings):
    """``python -m services.phoenix.server`` (make run): the Phoenix server from its own venv. In compose the
    phoenix image runs Phoenix itself and reads none of these."""

    phoenix_host: str = "127.0.0.1"
    phoenix_port: int = 6006
    phoenix_grpc_port: int = 4317
    phoenix_venv: Path = Path(".venv-phoenix")


class LlmServerSettings(LlmModelSettings):
    """``python -m services.llm.server`` (make run): the local LLM server and its packaged GGUF. In compose the
    llamacpp image runs llama-server with its own flags and reads none of these."""

    llm_host: str = "127.0.0.1"
    llm_port: int = 8080
    llm_gguf: GgufAlias = "qwen2.5-coder-0.5b"
    llm_ctx: int = Field(4096, ge=512, description="context per request (llama-server: per slot)")
    llm_threads: int = Field(2, ge=1)
    llm_server: Literal["auto", LlmServerKind] = Field(
        "auto",
        description="the local server: llama.cpp's llama-server (parallel slots, prefix reuse) or llama-cpp-python's "
        "(one request at a time); auto = llama-server when make llm-setup built it (docs/llm-serving.md)",
    )
    llm_parallel: int = Field(
        4, ge=1, le=64, description="llama-server: requests decoded together (slots); its context is ctx x parallel"
    )
    llm_cache_reuse: int = Field(
        256,
        ge=0,
        description="llama-server: smallest run of cached tokens (past the common prefix) reused by KV shifting; "
        "0 = the common prefix only",
    )
    llm_cache_ram_mib: int = Field(
        1024,
        ge=0,
        description="llama-server: host memory (MiB) for the prompt caches of idle slots, restored when a prompt "
        "with the same prefix returns (llama.cpp's default is 8192); 0 = off",
    )


class Settings(ApiSettings, FrontendSettings, EvalSettings, PhoenixSettings, LlmServerSettings):
    """Every setting: what the launcher (``make run``) starts is all of the apps above, and the tools (bench,
    train, the offline retrieval eval) and the tests build whichever parts they need from it."""


APP_SETTINGS: tuple[type[CommonSettings], ...] = (
    ApiSettings,
    IngestSettings,
    FrontendSettings,
    EvalSettings,
    PhoenixSettings,
    LlmServerSettings,
)
