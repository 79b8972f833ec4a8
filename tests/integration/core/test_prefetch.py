"""The image build's model step (``python -m services.core.models.prefetch``), run offline as the tests can."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.core.models.model_registry import EMBEDDERS, RERANKERS
from services.core.models.prefetch import main, needs_download

pytestmark = pytest.mark.integration


def test_only_uncached_hub_ids_need_a_download(tmp_path: Path) -> None:
    assert not needs_download("all-MiniLM-L6-v2", EMBEDDERS)  # packaged
    assert not needs_download("fitzgov-minilm-l6", RERANKERS)  # shipped in models/
    assert not needs_download(str(tmp_path), EMBEDDERS)  # a local folder
    assert needs_download("BAAI/bge-small-en-v1.5-not-cached-here", EMBEDDERS)


def test_prefetch_loads_each_model_the_way_the_services_do(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--embedder", "all-MiniLM-L6-v2", "--reranker", "fitzgov-minilm-l6"]) == 0
    out = capsys.readouterr().out
    assert "bi-encoder all-MiniLM-L6-v2@openvino-int8: 384-d" in out  # the default backends, as the API runs
    assert "cross-encoder fitzgov-minilm-l6@openvino-int8: loads and scores" in out


def test_prefetch_bakes_the_backend_exports_into_the_model_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An image sets RAG_MODEL_CACHE_DIR; the build's exports are what the container then loads offline."""
    monkeypatch.setenv("RAG_MODEL_CACHE_DIR", str(tmp_path / "baked"))
    monkeypatch.setenv("RAG_RERANKER_BACKEND", "onnx-int8")
    assert main(["--reranker", "fitzgov-minilm-l6"]) == 0
    assert "cross-encoder fitzgov-minilm-l6@onnx-int8: loads and scores" in capsys.readouterr().out
    assert (tmp_path / "baked" / "fitzgov-minilm-l6-onnx-int8" / "export.json").is_file()


def test_prefetch_fails_the_build_for_a_model_that_would_not_load_offline(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--embedder", "example-org/never-downloaded-model"]) == 1
    assert "RAG_EMBED_MODEL" in capsys.readouterr().err
