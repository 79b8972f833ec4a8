"""The image build's model step (``python -m services.core.prefetch``), run offline as the tests can."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.core.model_registry import EMBEDDERS, RERANKERS
from services.core.prefetch import main, needs_download

pytestmark = pytest.mark.integration


def test_only_uncached_hub_ids_need_a_download(tmp_path: Path) -> None:
    assert not needs_download("all-MiniLM-L6-v2", EMBEDDERS)  # packaged
    assert not needs_download("fitzgov-minilm-l6", RERANKERS)  # shipped in models/
    assert not needs_download(str(tmp_path), EMBEDDERS)  # a local folder
    assert needs_download("BAAI/bge-small-en-v1.5-not-cached-here", EMBEDDERS)


def test_prefetch_loads_each_model_the_way_the_services_do(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--embedder", "all-MiniLM-L6-v2", "--reranker", "fitzgov-minilm-l6"]) == 0
    out = capsys.readouterr().out
    assert "bi-encoder all-MiniLM-L6-v2: 384-d" in out
    assert "cross-encoder fitzgov-minilm-l6: loads and scores" in out


def test_prefetch_fails_the_build_for_a_model_that_would_not_load_offline(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--embedder", "example-org/never-downloaded-model"]) == 1
    assert "RAG_EMBED_MODEL" in capsys.readouterr().err
