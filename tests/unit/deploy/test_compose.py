"""compose.yaml, checked offline: the Compose Specification schema, then what the schema cannot see."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[3]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, dict] = COMPOSE["services"]


def test_compose_file_matches_the_compose_specification() -> None:
    exe = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
    result = subprocess.run(
        [exe, "--builtin-schema", "vendor.compose-spec", str(ROOT / "compose.yaml")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_dependency_exists_and_waits_for_health() -> None:
    for name, service in SERVICES.items():
        for dep, cond in (service.get("depends_on") or {}).items():
            assert dep in SERVICES, f"{name} depends on unknown service {dep}"
            assert cond == {"condition": "service_healthy"}, f"{name} -> {dep}"


def test_every_service_has_a_healthcheck_and_builds_from_existing_files() -> None:
    for name, service in SERVICES.items():
        assert "healthcheck" in service, name
        build = service.get("build")
        if build:
            assert (ROOT / build["context"] / build["dockerfile"]).is_file(), name


def test_only_the_api_publishes_a_port_for_now() -> None:
    published = {name for name, s in SERVICES.items() if s.get("ports")}
    assert published == {"api"}


def test_container_commands_are_entry_points_the_local_tests_run() -> None:
    # python -m services.api.main runs in tests/slow/test_stack_real_llm.py; ingest.cli in the CLI tests.
    assert SERVICES["api"]["command"] == ["python", "-m", "services.api.main"]
    assert SERVICES["ingest"]["command"][:3] == ["python", "-m", "ingest.cli"]


def test_no_secret_has_a_default_in_the_file() -> None:
    text = (ROOT / "compose.yaml").read_text()
    for var in ("RAG_API_KEY", "RAG_QDRANT_API_KEY"):
        assert f"${{{var}:?" in text, f"{var} must be required (${{{var}:?...}}), never defaulted"


DOCKERFILES = sorted(
    p for unit in ("services", "ingest", "frontend", "eval") for p in (ROOT / unit).rglob("Dockerfile")
)


def test_every_compose_build_uses_a_linted_dockerfile() -> None:
    built = {ROOT / s["build"]["context"] / s["build"]["dockerfile"] for s in SERVICES.values() if s.get("build")}
    assert built and built <= set(DOCKERFILES)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_dockerfiles_pass_hadolint(dockerfile: Path) -> None:
    exe = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([exe, "--failure-threshold", "info", str(dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
