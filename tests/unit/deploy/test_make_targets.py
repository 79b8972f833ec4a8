"""``make up`` / ``down`` / ``logs``: thin wrappers around the compose command: ``docker compose`` when a Docker
engine answers, else podman-compose after ``make podman-setup`` (what this kind of machine runs).

A FakeDocker script on PATH records the arguments each target passes, since no Docker engine runs here; the
Podman path is read from ``make -n`` (a dry run: nothing is installed by the test).
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
    return [line for line in log.read_text().splitlines() if line not in ("compose version", "info")]


def test_up_builds_starts_and_waits_for_health_with_the_chosen_llm_profile(fake_docker: tuple[str, Path]) -> None:
    path, log = fake_docker
    assert make("up", path).returncode == 0
    assert make("up", path, "LLM_PROFILE=ollama").returncode == 0
    assert make("up", path, "AIRGAP=1").returncode == 0
    assert calls(log) == [
        "compose -f compose.yaml --profile llamacpp up --detach --build --wait",
        "compose -f compose.yaml --profile ollama up --detach --build --wait",
        "compose -f compose.yaml -f deploy/compose.airgap.yaml --profile llamacpp up --detach --build --wait",
    ]


def test_down_and_logs_cover_every_profile(fake_docker: tuple[str, Path]) -> None:
    path, log = fake_docker
    assert make("down", path).returncode == 0
    assert make("logs", path, "SERVICE=api").returncode == 0
    profiles = "--profile llamacpp --profile ollama --profile gpu --profile tgi"
    assert calls(log) == [
        f"compose -f compose.yaml {profiles} down",
        f"compose -f compose.yaml {profiles} logs --follow --tail=200 api",
    ]


@pytest.mark.parametrize("target", ["up", "down", "logs"])
def test_without_docker_the_targets_set_up_and_use_podman(target: str) -> None:
    if Path("/usr/bin/docker").exists() and subprocess.run(["docker", "info"], capture_output=True).returncode == 0:
        pytest.skip("a Docker engine answers here")
    result = make(target, SYSTEM_PATH, "-n")
    assert result.returncode == 0, result.stderr
    assert "deploy/podman/setup.sh engine" in result.stdout  # podman-setup first
    assert ".venv-compose/bin/podman-compose -f compose.yaml" in result.stdout
    if target == "up":
        assert "deploy/podman/wait-healthy.sh ragstack" in result.stdout


def test_without_the_compose_plugin_podman_is_used(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "docker"
    script.write_text("#!/bin/sh\n# FakeDocker without the compose plugin\nexit 1\n")
    script.chmod(0o755)
    result = make("up", f"{bin_dir}:{SYSTEM_PATH}", "-n")
    assert result.returncode == 0 and "podman-compose" in result.stdout and "docker compose" not in result.stdout
