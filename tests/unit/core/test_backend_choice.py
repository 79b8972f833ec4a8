"""Backend plumbing that needs no model: names, cache folders, calibration text, staleness."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.core.factory import build_embedder, build_reranker
from services.core.models.backends import BACKENDS, cache_dir_for, calibration_texts, weights_digest
from services.core.models.embedder import SentenceTransformerEmbedder
from services.core.models.reranker import CrossEncoderReranker
from services.core.settings import Settings

pytestmark = pytest.mark.unit


def test_embedder_name_and_so_the_index_signature_change_with_the_backend() -> None:
    # The ingest signature is built from embedder.name: a new backend re-embeds instead of mixing vectors.
    torch_name = SentenceTransformerEmbedder("all-MiniLM-L6-v2", backend="torch").name
    int8_name = SentenceTransformerEmbedder("all-MiniLM-L6-v2", backend="onnx-int8").name
    assert torch_name == "all-MiniLM-L6-v2"  # unchanged: stores ingested before backends existed stay valid
    assert int8_name == "all-MiniLM-L6-v2@onnx-int8"


def test_unknown_backends_are_rejected_with_the_setting_named() -> None:
    with pytest.raises(ValueError, match="RAG_EMBED_BACKEND"):
        SentenceTransformerEmbedder("all-MiniLM-L6-v2", backend="tensorrt")
    with pytest.raises(ValueError, match="RAG_RERANKER_BACKEND"):
        CrossEncoderReranker(backend="tensorrt")


def cross_encoder(settings: Settings) -> CrossEncoderReranker:
    reranker = build_reranker(settings)
    assert isinstance(reranker, CrossEncoderReranker)
    return reranker


def test_settings_carry_the_backends_to_the_components(tmp_path: Path) -> None:
    s = Settings(
        _env_file=None, data_dir=tmp_path, model_cache_dir=None, embed_backend="openvino-int8", reranker_backend="onnx"
    )
    emb = build_embedder(s)
    rr = cross_encoder(s)
    assert (emb.backend, emb.model_cache) == ("openvino-int8", tmp_path / "models")
    assert (rr.backend, rr.model_cache) == ("onnx", tmp_path / "models")
    assert set(BACKENDS) == {"torch", "onnx", "onnx-int8", "openvino", "openvino-int8"}


def test_model_cache_can_live_outside_the_data_dir(tmp_path: Path) -> None:
    """Images bake exports into a folder of the image (/opt/models) while the data dir is a volume."""
    s = Settings(_env_file=None, data_dir=tmp_path / "data", model_cache_dir=tmp_path / "baked")
    assert build_embedder(s).model_cache == tmp_path / "baked"
    assert cross_encoder(s).model_cache == tmp_path / "baked"


def test_cache_folder_has_a_safe_name(tmp_path: Path) -> None:
    path = cache_dir_for(tmp_path, "BAAI/bge-small-en-v1.5", "onnx-int8")
    assert path == tmp_path / "BAAI_bge-small-en-v1.5-onnx-int8"


def test_calibration_text_is_offline_deterministic_and_varied() -> None:
    texts = calibration_texts(100)
    assert texts == calibration_texts(100)
    assert len(texts) == 100
    lengths = sorted(len(t) for t in texts)
    assert lengths[0] >= 20 and lengths[-1] > 4 * lengths[len(lengths) // 4]  # sentences and paragraphs


def test_weights_digest_follows_the_weights(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"a")
    first = weights_digest(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"b")
    assert weights_digest(tmp_path) != first
    assert weights_digest(tmp_path / "not-a-folder") != first  # a hub id hashes its name
