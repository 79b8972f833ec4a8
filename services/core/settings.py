"""The one place configuration lives: every knob is an env var (prefix ``RAG_``) or a line in ``.env``.

Each field is documented in ``.env.example``; validators reject combinations that cannot work so a
misconfiguration fails at start-up, not in the middle of a request.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, computed_field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

RetrievalMode = Literal["dense", "sparse", "hybrid"]
RerankerKind = Literal["cross-encoder", "none"]
InferenceBackend = Literal["torch", "onnx", "onnx-int8", "openvino", "openvino-int8"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RAG_",
        env_file=".env",
        env_ignore_empty=True,
        extra="ignore",
    )

    environment: Literal["local", "production"] = "local"
    data_dir: Path = Path(".data")
    log_level: str = "INFO"

    # --- bi-encoder -------------------------------------------------------------------------
    embed_model: str = "all-MiniLM-L6-v2"
    embed_query_prefix: str | None = None
    embed_passage_prefix: str | None = None
    embed_normalize: bool | None = None
    embed_batch_size: int = Field(32, ge=1, le=1024)
    embed_backend: InferenceBackend = Field(
        "openvino-int8", description="what runs the bi-encoder; exports cached in model_cache_dir (make bench)"
    )
    model_cache_dir: Path | None = Field(
        None, description="exports of the onnx/openvino backends; default <data_dir>/models"
    )
    device: str = "cpu"
    hf_hub_offline: bool = True

    # --- chunking ---------------------------------------------------------------------------
    chunk_size: int = Field(200, ge=16, description="target tokens per chunk (embedder's tokenizer)")
    chunk_overlap: int = Field(40, ge=0)
    embed_context_header: bool = Field(
        False,
        description=(
            "embed each chunk as 'title — section' + newline + text (the stored text is unchanged). Off by"
            " default: it changes every stored vector and its effect on nDCG (fitz-gov) is not measured yet"
        ),
    )

    # --- vector store -------------------------------------------------------------------------
    qdrant_url: str | None = None
    qdrant_path: str | None = None  # ":memory:" for an ephemeral store; default <data_dir>/qdrant
    qdrant_api_key: SecretStr | None = None
    qdrant_timeout_s: float = Field(10.0, gt=0)
    collection: str = "chunks"
    late_interaction: bool = Field(
        False, description="store per-token vectors at ingest (enables the late-interaction rerank stage)"
    )
    upsert_batch_size: int = Field(128, ge=1)
    qdrant_embedded_engine: Literal["edge", "local"] = Field(
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
    qdrant_shard_number: int | None = Field(
        None, ge=1, description="server: shards of a new collection (a cluster: a multiple of the node count)"
    )
    qdrant_replication_factor: int | None = Field(
        None, ge=1, description="server: copies of each shard of a new collection (2 survives one lost node)"
    )
    qdrant_write_consistency_factor: int | None = Field(
        None, ge=1, description="server: replicas that must acknowledge a write to a new collection"
    )
    qdrant_quantization: Literal["none", "int8"] = Field(
        "none", description="Edge: int8 scalar quantisation of the dense vectors, built with the HNSW index"
    )

    # --- retrieval & reranking -------------------------------------------------------------------
    retrieval_mode: RetrievalMode = "hybrid"
    top_n: int = Field(10, ge=1, le=500, description="candidates from the first stage (rerank depth; make bench)")
    top_k: int = Field(5, ge=1, le=100, description="chunks kept after reranking")
    reranker: RerankerKind = "cross-encoder"
    reranker_model: str = "fitzgov-minilm-l6"
    reranker_batch_size: int = Field(32, ge=1)
    reranker_backend: InferenceBackend = Field("openvino-int8", description="what runs the cross-encoder (make bench)")
    reranker_max_length: int = Field(256, ge=16, le=512)
    rerank_min_score: float | None = None
    rerank_fusion_weight: float = Field(
        1.0, ge=0, le=1, description="blend of first-stage score into the order (1 = first-stage order; see README)"
    )

    # --- LLM (any OpenAI-compatible server) ----------------------------------------------------
    llm_base_url: str = "http://127.0.0.1:8080/v1"
    llm_model: str = "qwen2.5-coder-0.5b-instruct"
    llm_api_key: SecretStr = SecretStr("not-needed")
    llm_timeout_s: float = Field(120.0, gt=0)
    llm_connect_timeout_s: float = Field(3.0, gt=0)
    llm_max_retries: int = Field(2, ge=0, le=10)
    llm_max_tokens: int = Field(384, ge=1)
    llm_temperature: float = Field(0.1, ge=0, le=2)
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

    # --- grounding: the answerability gate (services/core/answerability.py) ----------------------
    answerability_model: str = Field(
        "", description="gate file (make answerability); empty = the shipped models/answerability/gate.json"
    )
    answerability_gate: bool = Field(
        True, description="decline without calling the LLM when the gate says the sources cannot answer"
    )

    # --- grounding: the answer verifier (services/core/verify.py) -------------------------------
    verify_answers: bool = Field(True, description="check each answer sentence against the sources")
    verify_min_supported: float = Field(
        0.5, ge=0, le=1, description="share of supported sentences an uncertain (gate band verify) answer needs"
    )
    verify_threshold: float = Field(0.5, ge=0, le=1, description="support a source needs to back a sentence")
    verify_lexical_weight: float = Field(
        0.5, ge=0, le=1, description="blend of word overlap into the cross-encoder's support score"
    )

    # --- API ----------------------------------------------------------------------------------
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_key: SecretStr | None = None
    cors_origins: list[str] = Field(default_factory=list)
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    max_query_chars: int = Field(2000, ge=10)
    max_history_messages: int = Field(12, ge=1)
    max_upload_bytes: int = Field(25 * 1024 * 1024, ge=1024)
    max_concurrent_requests: int = Field(16, ge=1)

    # --- ingestion ------------------------------------------------------------------------------
    max_file_bytes: int = Field(50 * 1024 * 1024, ge=1)
    max_uncompressed_bytes: int = Field(200 * 1024 * 1024, ge=1, description="zip-bomb guard for DOCX")
    max_pdf_pages: int = Field(2000, ge=1)
    ingest_queue: Literal["local", "redis"] = Field(
        "local",
        description="where upload jobs wait (ingest/jobs.py): in the API process, or a Redis stream read by "
        "`python -m ingest.worker` processes (docs/scaling.md)",
    )
    redis_url: str | None = Field(None, description="redis://host:6379/0 when RAG_INGEST_QUEUE=redis")
    upload_dir: Path | None = Field(
        None, description="the spool of uploads waiting for a worker; default <data_dir>/uploads (shared in compose)"
    )
    upload_wait_s: float = Field(
        120.0,
        ge=0,
        description="how long POST /documents waits for its jobs before answering with status queued "
        "(0 = at once; a request may lower it with ?wait_s=)",
    )
    ingest_max_attempts: int = Field(3, ge=1, le=20, description="deliveries of a job before it is failed")
    ingest_retry_backoff_s: float = Field(
        5.0, ge=0, description="a failed job waits this long before its next try, doubling each time (max 5 min)"
    )
    ingest_visibility_timeout_s: float = Field(
        300.0, gt=0, description="a job a worker holds without a heartbeat this long goes to another worker"
    )

    # --- tracing (OpenTelemetry / OpenInference -> Phoenix) ---------------------------------------
    tracing_endpoint: str | None = Field(None, description="OTLP/HTTP traces URL; empty = tracing off")
    tracing_project: str = "ragstack"
    tracing_sample_ratio: float = Field(1.0, ge=0, le=1)
    tracing_queue_size: int = Field(2048, ge=16, description="spans buffered; beyond it they are dropped")
    tracing_export_timeout_s: float = Field(2.0, gt=0)

    # --- local Phoenix server (make run): its own venv, see services/phoenix/server.py ---------------
    phoenix_host: str = "127.0.0.1"
    phoenix_port: int = 6006
    phoenix_grpc_port: int = 4317
    phoenix_venv: Path = Path(".venv-phoenix")

    # --- chat frontend (Gradio) -------------------------------------------------------------------
    frontend_host: str = "127.0.0.1"
    frontend_port: int = Field(7860, ge=1, le=65535)
    frontend_api_url: str = Field("http://127.0.0.1:8000", description="base URL of the API the chat UI calls")
    frontend_timeout_s: float = Field(300.0, gt=0, description="longest wait for one API answer (streamed chat)")

    # --- evaluation (python -m eval.run / eval.scheduler, make eval) ------------------------------
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

    # --- local LLM server (make run) -------------------------------------------------------------
    llm_host: str = "127.0.0.1"
    llm_port: int = 8080
    llm_gguf: Literal["qwen2.5-coder-0.5b", "smollm2-135m"] = "qwen2.5-coder-0.5b"
    llm_ctx: int = Field(4096, ge=512, description="context per request (llama-server: per slot)")
    llm_threads: int = Field(2, ge=1)
    llm_server: Literal["auto", "llama-server", "llama-cpp-python"] = Field(
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

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(f"RAG_CHUNK_OVERLAP ({self.chunk_overlap}) must be < RAG_CHUNK_SIZE ({self.chunk_size})")
        if self.top_k > self.top_n:
            raise ValueError(f"RAG_TOP_K ({self.top_k}) must be <= RAG_TOP_N ({self.top_n})")
        if self.environment == "production" and self.api_key is None:
            raise ValueError("RAG_ENVIRONMENT=production requires RAG_API_KEY")
        return self

    @computed_field  # type: ignore[prop-decorator]
    @property
    def resolved_qdrant_path(self) -> str:
        return self.qdrant_path or str(self.data_dir / "qdrant")

    @property
    def resolved_model_cache_dir(self) -> Path:
        return self.model_cache_dir or self.data_dir / "models"

    @property
    def resolved_upload_dir(self) -> Path:
        return self.upload_dir or self.data_dir / "uploads"


@lru_cache
def get_settings() -> Settings:
    return Settings()
