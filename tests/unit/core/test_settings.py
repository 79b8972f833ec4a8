"""Settings: env vars are read and combinations that cannot work are rejected at start-up."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.core.settings import (
    ApiSettings,
    ChatPipelineSettings,
    EvalSettings,
    FrontendSettings,
    IngestSettings,
    Settings,
)

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("RAG_"):
            monkeypatch.delenv(name)


def test_defaults_are_valid() -> None:
    settings = Settings(_env_file=None)
    assert settings.chunk_overlap < settings.chunk_size
    assert settings.top_k <= settings.top_n


def test_overlap_not_smaller_than_chunk_size_is_rejected_naming_the_setting() -> None:
    with pytest.raises(ValidationError, match="RAG_CHUNK_OVERLAP"):
        Settings(_env_file=None, chunk_size=100, chunk_overlap=100)
    with pytest.raises(ValidationError, match="RAG_CHUNK_OVERLAP"):
        Settings(_env_file=None, chunk_size=100, chunk_overlap=150)


def test_top_k_above_top_n_is_rejected() -> None:
    with pytest.raises(ValidationError, match="RAG_TOP_K"):
        Settings(_env_file=None, top_k=10, top_n=5)
    assert Settings(_env_file=None, top_k=5, top_n=5).top_k == 5


def test_production_without_api_key_is_rejected() -> None:
    with pytest.raises(ValidationError, match="RAG_API_KEY"):
        Settings(_env_file=None, environment="production")
    settings = Settings(_env_file=None, environment="production", api_key="s3cret")
    assert settings.api_key is not None and settings.api_key.get_secret_value() == "s3cret"


def test_env_vars_with_rag_prefix_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_TOP_K", "7")
    monkeypatch.setenv("RAG_CHUNK_SIZE", "128")
    settings = Settings(_env_file=None)
    assert settings.top_k == 7
    assert settings.chunk_size == 128


def test_invalid_env_combination_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_CHUNK_SIZE", "32")
    with pytest.raises(ValidationError, match="RAG_CHUNK_OVERLAP"):
        Settings(_env_file=None)  # default overlap 40 >= 32


def test_qdrant_path_defaults_under_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path))
    assert Settings(_env_file=None).resolved_qdrant_path == str(tmp_path / "qdrant")


def test_each_app_reads_and_validates_only_its_own_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_ENVIRONMENT", "production")  # no RAG_API_KEY
    monkeypatch.setenv("RAG_QDRANT_API_KEY", "qdrant-secret")
    for app in (FrontendSettings, EvalSettings, ApiSettings):  # they send or check the API key
        with pytest.raises(ValidationError, match="RAG_API_KEY"):
            app(_env_file=None)
    ingest = IngestSettings(_env_file=None)  # the ingest processes never see the API key
    assert ingest.qdrant_api_key is not None and not hasattr(ingest, "api_key")
    frontend = FrontendSettings(_env_file=None, api_key="k")
    assert not hasattr(frontend, "qdrant_api_key") and "qdrant_api_key" not in FrontendSettings.model_fields


def test_a_group_validates_wherever_it_is_used() -> None:
    with pytest.raises(ValidationError, match="RAG_TOP_K"):
        FrontendSettings(_env_file=None, top_k=10, top_n=5)  # the UI starts from the retrieval defaults
    with pytest.raises(ValidationError, match="RAG_CHUNK_OVERLAP"):
        IngestSettings(_env_file=None, chunk_size=100, chunk_overlap=100)


def test_the_api_settings_hold_every_group_the_ingest_and_chat_pipelines_are_built_from() -> None:
    assert issubclass(ApiSettings, IngestSettings) and issubclass(ApiSettings, ChatPipelineSettings)
    assert issubclass(Settings, ApiSettings) and issubclass(Settings, FrontendSettings)


# Classes built directly (tests, tools, notebooks) must behave as the configured stack does: a default that
# disagrees with its setting is how a reranker once reranked in code and not in production. The backends are the
# one documented difference: a class defaults to torch (no conversion on first use), the stack to the measured
# faster int8 backend (make bench).
CONSTRUCTOR_SETTINGS = {
    "reranker": {
        "model": "reranker_model",
        "batch_size": "reranker_batch_size",
        "max_length": "reranker_max_length",
        "device": "device",
        "fusion_weight": "rerank_fusion_weight",
    },
    "embedder": {"model": "embed_model", "batch_size": "embed_batch_size", "device": "device"},
}


@pytest.mark.parametrize("component", sorted(CONSTRUCTOR_SETTINGS))
def test_constructor_defaults_agree_with_the_settings(component: str) -> None:
    import inspect

    from services.core.models.embedder import SentenceTransformerEmbedder
    from services.core.models.reranker import CrossEncoderReranker

    cls = {"reranker": CrossEncoderReranker, "embedder": SentenceTransformerEmbedder}[component]
    defaults = Settings(_env_file=None)
    parameters = inspect.signature(cls.__init__).parameters
    for argument, setting in CONSTRUCTOR_SETTINGS[component].items():
        assert parameters[argument].default == getattr(defaults, setting), (cls.__name__, argument, setting)
    assert parameters["backend"].default == "torch"


def test_chat_config_defaults_agree_with_the_settings() -> None:
    import dataclasses

    from services.chat import ChatConfig

    assert ChatConfig() == ChatConfig.from_settings(Settings(_env_file=None))
    assert {f.name for f in dataclasses.fields(ChatConfig)} - {"search"} <= set(Settings.model_fields)


def test_every_setting_is_read_by_the_code() -> None:
    """A setting that is declared, documented and passed in compose but read by nothing misleads its users
    (``RAG_UPSERT_BATCH_SIZE`` was one): each field of every settings class is used outside its declaration."""
    import inspect
    import re

    from pydantic_settings import BaseSettings

    import services.core.settings as module

    root = Path(__file__).resolve().parents[3]
    classes = [
        c
        for c in vars(module).values()
        if inspect.isclass(c) and issubclass(c, BaseSettings) and c.__module__ == module.__name__
    ]
    fields = {name for c in classes for name in c.model_fields}
    declared = Path(module.__file__).read_text(encoding="utf-8")
    code = "\n".join(
        p.read_text(encoding="utf-8")
        for package in ("services", "ingest", "frontend", "eval", "bench", "train")
        for p in (root / package).rglob("*.py")
        if p != Path(module.__file__)
    )
    unread = sorted(
        f
        for f in fields
        if not re.search(rf"\b{f}\b", code) and not re.search(rf"\b(self|s|settings)\.{f}\b", declared)
    )
    assert len(fields) > 100 and unread == []
