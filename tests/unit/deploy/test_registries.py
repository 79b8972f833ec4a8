"""The air-gap tests' list of hosts not to reach comes from this machine's pip and apt configuration."""

from __future__ import annotations

from pathlib import Path

import pytest
import registries

pytestmark = pytest.mark.unit


def test_pip_hosts_come_from_the_configuration_and_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", "https://index.example.test/simple")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "https://extra.example.test/simple file:///opt/wheels")
    hosts = registries.pip_hosts()
    assert {"index.example.test", "extra.example.test"} <= hosts
    assert all("/" not in h for h in hosts)


def test_apt_hosts_read_both_source_formats(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "a.sources").write_text("Types: deb\nURIs: http://deb822.example.test/debian\nSuites: bookworm\n")
    (tmp_path / "b.list").write_text(
        "deb [arch=amd64] http://oneline.example.test/debian bookworm main\n# deb http://x\n"
    )
    monkeypatch.setattr(registries, "APT_SOURCES", (tmp_path / "missing.list", tmp_path))
    assert registries.apt_hosts() == {"deb822.example.test", "oneline.example.test"}


def test_the_targets_hold_the_registries_and_a_documentation_address() -> None:
    targets = registries.outside_targets()
    assert registries.DOCUMENTATION_ADDRESS in targets and len(targets) >= 3
