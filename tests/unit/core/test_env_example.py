"""The .env.example is the settings' documentation: it must name every setting, and only real ones."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.core.settings import Settings

pytestmark = pytest.mark.unit
ENV_EXAMPLE = Path(__file__).resolve().parents[3] / ".env.example"


def documented() -> set[str]:
    return set(re.findall(r"^(RAG_[A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), flags=re.MULTILINE))


def test_every_setting_is_documented_in_env_example() -> None:
    expected = {f"RAG_{name.upper()}" for name in Settings.model_fields}
    assert expected - documented() == set()


def test_env_example_names_no_unknown_setting() -> None:
    expected = {f"RAG_{name.upper()}" for name in Settings.model_fields}
    assert documented() - expected == set()


def test_env_example_values_parse(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(re.sub(r"\s+#.*$", "", ENV_EXAMPLE.read_text(), flags=re.MULTILINE))
    settings = Settings(_env_file=env)
    assert settings.top_k == 5 and settings.retrieval_mode == "hybrid"
