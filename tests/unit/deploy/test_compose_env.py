"""What each container is told, checked offline on compose.yaml and every combination of its overlays: only the
RAG_* variables that the settings class of the app it runs declares (the UI no Qdrant key, the ingest watcher no
API key), every one of them that tuning in .env may change, and none that would blank what its image bakes in.

The class is read from the code, not listed here: the module a container runs (``python -m MODULE``, and what
that module starts) is parsed for the ``services.core.settings`` class it builds. A container that runs no code
of this repository (Qdrant, Phoenix, llama.cpp, Redis, ...) gets no RAG_* variable at all.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic_settings import BaseSettings
from test_compose import module_file, python_modules_in
from test_dockerfiles import ALSO_RUN, instructions
from test_scale_compose import AIRGAP, CLUSTER, SCALE, merged

from services.core import settings as config

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[3]
NO_QDRANT_SERVER = ROOT / "deploy/compose.no-qdrant-server.yaml"
COMBINATIONS = {
    "compose.yaml": [],
    "airgap": [AIRGAP],
    "no-qdrant-server": [NO_QDRANT_SERVER],
    "airgap+no-qdrant-server": [AIRGAP, NO_QDRANT_SERVER],
    "scale": [SCALE],
    "qdrant-cluster": [CLUSTER],
    "scale+qdrant-cluster": [SCALE, CLUSTER],
    "airgap+scale": [AIRGAP, SCALE],
}
SETTINGS_CLASSES = {
    name: cls for name, cls in vars(config).items() if isinstance(cls, type) and issubclass(cls, BaseSettings)
}
# Settings an app declares that compose passes on purpose to no container: paths of a local run, which the images
# set (RAG_DATA_DIR=/data, RAG_MODEL_CACHE_DIR=/opt/models with the baked exports) or x-state does, and the queue,
# which only deploy/compose.scale.yaml wires (with the spool it shares). Passing them through from a .env written
# for `make run` would point a container at a host path.
NOT_PASSED = {
    "RAG_DATA_DIR",
    "RAG_QDRANT_PATH",
    "RAG_MODEL_CACHE_DIR",
    "RAG_UPLOAD_DIR",
    "RAG_INGEST_QUEUE",
    "RAG_REDIS_URL",
}
PASS_THROUGH = re.compile(r"\$\{(RAG_[A-Z0-9_]+):-\}")


def settings_class_built_by(module: str) -> type[BaseSettings]:
    """The one settings class ``module`` constructs (``IngestSettings()`` in ingest/cli.py, ...)."""
    path = module_file(module)
    assert path is not None, module
    called = {
        node.func.id
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in SETTINGS_CLASSES
    }
    assert len(called) == 1, f"{module} builds {sorted(called) or 'no settings class'}: expected exactly one"
    return SETTINGS_CLASSES[called.pop()]


def app_module(service: dict[str, Any]) -> str | None:
    """The module of this repository a container runs, if it runs one."""
    modules = python_modules_in(service.get("command") or [])
    return modules[0] if modules and module_file(modules[0]) else None


def declared(cls: type[BaseSettings]) -> set[str]:
    return {f"RAG_{name.upper()}" for name in cls.model_fields}


def told(service: dict[str, Any]) -> set[str]:
    return {var for var in service.get("environment") or {} if var.startswith("RAG_")}


def allowed(service: dict[str, Any]) -> set[str]:
    module = app_module(service)
    return declared(settings_class_built_by(module)) if module else set()


def test_each_entry_point_builds_its_own_apps_settings() -> None:
    built = {
        module: settings_class_built_by(module).__name__
        for module in ("services.api.main", "ingest.cli", "ingest.worker", "frontend.main", "eval.scheduler")
    }
    assert built == {
        "services.api.main": "ApiSettings",
        "ingest.cli": "IngestSettings",
        "ingest.worker": "IngestSettings",
        "frontend.main": "FrontendSettings",
        "eval.scheduler": "EvalSettings",
    }


@pytest.mark.parametrize("module", sorted({m for also in ALSO_RUN.values() for m in also}))
def test_what_a_container_also_runs_reads_the_same_settings(module: str) -> None:
    (service,) = [s for s, also in ALSO_RUN.items() if module in also]
    runner = app_module(merged()["services"][service])
    assert runner is not None
    assert settings_class_built_by(module) is settings_class_built_by(runner)


@pytest.mark.parametrize("overlays", COMBINATIONS.values(), ids=COMBINATIONS.keys())
def test_each_container_is_told_only_what_its_app_declares_and_reads_no_env_file(overlays: list[Path]) -> None:
    model = merged(*overlays)["services"]
    for name, service in model.items():
        assert "env_file" not in service, f"{name}: an env_file hands the container all of .env"
        assert told(service) - allowed(service) == set(), f"{name} is told what its app does not read"


def test_the_ui_and_eval_get_no_qdrant_key_and_the_ingest_processes_no_api_key() -> None:
    model = merged(SCALE)["services"]
    for name in ("frontend", "eval"):
        assert not {var for var in told(model[name]) if var.startswith("RAG_QDRANT")}, name
    for name in ("ingest", "worker"):
        assert {"RAG_API_KEY", "RAG_ENVIRONMENT"} & told(model[name]) == set(), name
    assert "RAG_EMBED_MODEL" not in told(merged(AIRGAP)["services"]["frontend"]), "the UI loads no model"


@pytest.mark.parametrize("service", ["api", "ingest", "frontend", "eval"])
def test_every_setting_of_the_app_reaches_its_container_from_env_unless_compose_sets_it(service: str) -> None:
    # The other side of the first test: a setting the app reads that compose forgot could not be tuned in .env.
    container = merged()["services"][service]
    assert declared(settings_class_built_by(app_module(container) or "")) - told(container) <= NOT_PASSED


@pytest.mark.parametrize("overlays", COMBINATIONS.values(), ids=COMBINATIONS.keys())
def test_a_pass_through_passes_the_variable_it_is_named_after(overlays: list[Path]) -> None:
    for name, service in merged(*overlays)["services"].items():
        for var, value in (service.get("environment") or {}).items():
            if var.startswith("RAG_") and isinstance(value, str) and value.startswith("${RAG_"):
                assert re.fullmatch(r"\$\{" + var + r"(:-|:\?[^}]*)\}", value), f"{name}.{var} = {value!r}"


def baked(dockerfile: Path) -> set[str]:
    """The RAG_* variables the image's final stage sets with ENV."""
    steps = instructions(dockerfile)
    last_from = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    return {var for op, arg in steps[last_from:] if op == "ENV" for var in re.findall(r"\b(RAG_[A-Z0-9_]+)=", arg)}


@pytest.mark.parametrize("overlays", COMBINATIONS.values(), ids=COMBINATIONS.keys())
def test_no_pass_through_can_blank_what_an_image_bakes_in(overlays: list[Path]) -> None:
    # An unset ${RAG_X:-} is an empty RAG_X in the container, which replaces the image's ENV RAG_X (the settings
    # then fall back to their default): RAG_MODEL_CACHE_DIR would lose the baked model exports that way.
    model = merged(*overlays)["services"]
    images = {s["image"]: ROOT / s["build"]["dockerfile"] for s in model.values() if "build" in s}
    for name, service in model.items():
        if service.get("image") not in images:
            continue
        env = service.get("environment") or {}
        for var in baked(images[service["image"]]) & set(env):
            value = str(env[var])
            assert value and not PASS_THROUGH.fullmatch(value), f"{name}.{var} = {value!r} blanks the image's"
