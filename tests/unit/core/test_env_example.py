"""The .env.example is the settings' documentation: it must name every setting, only real ones, and keep each
group of services/core/settings.py in one section that names it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.core import settings as config
from services.core.settings import APP_SETTINGS, Settings

pytestmark = pytest.mark.unit
ENV_EXAMPLE = Path(__file__).resolve().parents[3] / ".env.example"
SECTION = re.compile(r"^# --- .*\[(\w+)\] ---$")


def documented() -> set[str]:
    return set(re.findall(r"^(RAG_[A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), flags=re.MULTILINE))


def variables(cls: type[config.CommonSettings]) -> set[str]:
    return {f"RAG_{name.upper()}" for name in cls.model_fields}


def test_settings_is_the_union_of_the_apps_classes() -> None:
    # What the launcher, the tools and the tests read is what some app reads: no setting belongs to no app.
    assert variables(Settings) == set().union(*(variables(app) for app in APP_SETTINGS))


@pytest.mark.parametrize("app", [Settings, *APP_SETTINGS], ids=lambda cls: cls.__name__)
def test_every_setting_is_documented_in_env_example(app: type[config.CommonSettings]) -> None:
    assert variables(app) - documented() == set()


def test_env_example_names_no_unknown_setting() -> None:
    assert documented() - variables(Settings) == set()


def group_of(field: str) -> str:
    """The settings group that declares ``field`` (the class whose own annotations hold it)."""
    return next(cls.__name__ for cls in Settings.__mro__ if field in vars(cls).get("__annotations__", {}))


def test_each_group_is_one_section_of_env_example_that_names_it() -> None:
    sections: dict[str, set[str]] = {}
    current = None
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.startswith("# --- "):
            match = SECTION.match(line)
            current = match.group(1) if match else None
            assert current not in sections, f"{current} has two sections"
            sections.setdefault(current or line, set())
        elif (var := re.match(r"^(RAG_[A-Z0-9_]+)=", line)) is not None:
            assert current is not None, f"{var.group(1)} is in a section that names no settings group"
            sections[current].add(var.group(1))
    groups: dict[str, set[str]] = {}
    for field in Settings.model_fields:
        groups.setdefault(group_of(field), set()).add(f"RAG_{field.upper()}")
    assert {name: names for name, names in sections.items() if names} == groups


def test_env_example_values_parse(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(re.sub(r"\s+#.*$", "", ENV_EXAMPLE.read_text(), flags=re.MULTILINE))
    settings = Settings(_env_file=env)
    assert settings.top_k == 5 and settings.retrieval_mode == "hybrid"
    for app in APP_SETTINGS:  # each app reads the same file and ignores the groups it does not have
        assert app(_env_file=env).data_dir == Path(".data")
