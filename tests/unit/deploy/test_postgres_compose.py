"""The compose stack's application database: the postgres image (deploy/postgres) and how the API and the nightly
evaluation reach it. Its start script runs for real in tests/integration/state/test_postgres_image.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from test_dockerfiles import PACKAGE_DOCKERFILES, global_args, instructions
from test_dockerfiles import test_dockerfiles_pass_hadolint as assert_hadolint_passes

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
SERVICES = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
POSTGRES = SERVICES["postgres"]
DOCKERFILE = ROOT / POSTGRES["build"]["dockerfile"]


def test_the_image_passes_hadolint() -> None:
    assert DOCKERFILE in PACKAGE_DOCKERFILES
    assert_hadolint_passes(DOCKERFILE)


def test_built_here_on_the_pinned_debian_of_the_llamacpp_runtime_as_uid_10001() -> None:
    steps = instructions(DOCKERFILE)
    defaults = global_args(steps)
    llamacpp_runtime = global_args(instructions(ROOT / SERVICES["llamacpp"]["build"]["dockerfile"]))
    assert defaults["BASE_IMAGE"] == llamacpp_runtime["RUNTIME_IMAGE"], "one Debian snapshot for the stack"
    assert POSTGRES["build"]["args"]["BASE_IMAGE"] == "${DEBIAN_IMAGE:-" + defaults["BASE_IMAGE"] + "}"
    assert any(op == "RUN" and "--no-install-recommends postgresql-15" in arg for op, arg in steps)
    assert [arg for op, arg in steps if op == "USER"][-1] == "10001"
    for op, arg in steps:
        if op == "COPY":
            assert (ROOT / arg.split()[0]).is_file(), arg
    healthcheck = [arg for op, arg in steps if op == "HEALTHCHECK"][-1]
    assert POSTGRES["healthcheck"]["test"][1:] == yaml.safe_load(healthcheck.split("CMD", 1)[1].strip())


def test_its_state_is_a_named_volume_it_is_not_published_and_its_password_is_required() -> None:
    assert POSTGRES["volumes"] == ["postgres-data:/data"]
    assert "ports" not in POSTGRES
    assert re.fullmatch(r"\$\{POSTGRES_PASSWORD:\?[^}]+\}", POSTGRES["environment"]["POSTGRES_PASSWORD"])


def test_the_api_and_eval_share_it_and_the_api_waits_for_it() -> None:
    urls = {name: SERVICES[name]["environment"]["RAG_DATABASE_URL"] for name in ("api", "eval")}
    assert len(set(urls.values())) == 1
    assert re.fullmatch(
        r"postgresql\+psycopg://ragstack:\$\{POSTGRES_PASSWORD:\?[^}]+\}@postgres:5432/ragstack", urls["api"]
    )
    assert SERVICES["api"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert SERVICES["eval"]["depends_on"]["api"] == {"condition": "service_healthy"}
