"""``make up`` / ``down`` / ``logs``: thin wrappers around ``docker compose``, with a clear message without Docker.

A FakeDocker script on PATH records the arguments each target passes, since no Docker engine runs here.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[3]
MAKE = shutil.which("make")
SYSTEM_PATH = "/usr/bin:/bin"


def make(target: str, path: str, *args: str) -> subprocess.CompletedProcess[str]:
    assert MAKE, "make is required"
    return subprocess.run(
        [MAKE, "--no-print-directory", "-C", str(ROOT), target, *args],
        env={"PATH": path, "HOME": str(ROOT)},
        capture_output=True,
        text=True,
    )


@pytest.fixture
def fake_docker(tmp_path: Path) -> tuple[str, Path]:
    """A ``docker`` that logs its arguments, one call per line, and succeeds."""
    log = tmp_path / "calls.log"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "docker"
    script.write_text(f'#!/bin/sh\n# FakeDocker\necho "$*" >> {log}\n')
    script.chmod(0o755)
    return f"{bin_dir}:{SYSTEM_PATH}", log


def calls(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if line != "compose version"]


def test_up_builds_starts_and_waits_for_health_with_the_chosen_llm_profile(fake_docker: tuple[str, Path]) -> None:
    path, log = fake_docker
    assert make("up", path).returncode == 0
    assert make("up", path, "LLM_PROFILE=gpu").returncode == 0
    assert calls(log) == [
        "compose --profile ollama up --detach --build --wait",
        "compose --profile gpu up --detach --build --wait",
    ]


def test_down_and_logs_cover_every_profile(fake_docker: tuple[str, Path]) -> None:
    path, log = fake_docker
    assert make("down", path).returncode == 0
    assert make("logs", path, "SERVICE=api").returncode == 0
    profiles = "--profile ollama --profile gpu --profile tgi"
    assert calls(log) == [f"compose {profiles} down", f"compose {profiles} logs --follow --tail=200 api"]


@pytest.mark.parametrize("target", ["up", "down", "logs"])
def test_without_docker_the_targets_say_what_to_install(target: str, tmp_path: Path) -> None:
    if Path("/usr/bin/docker").exists() or Path("/bin/docker").exists():
        pytest.skip("docker is installed in a system folder here")
    result = make(target, SYSTEM_PATH)
    assert result.returncode != 0
    assert "docker is not installed" in result.stdout and "make run" in result.stdout


def test_without_the_compose_plugin_the_targets_say_so(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "docker"
    script.write_text("#!/bin/sh\n# FakeDocker without the compose plugin\nexit 1\n")
    script.chmod(0o755)
    result = make("up", f"{bin_dir}:{SYSTEM_PATH}")
    assert result.returncode != 0 and "compose" in result.stdout and "missing" in result.stdout
