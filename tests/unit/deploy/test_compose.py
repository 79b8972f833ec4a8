"""compose.yaml, checked offline: the Compose Specification schema, then what the schema cannot see.

There is no Docker engine on the machines that run these tests, so every promise the deployment makes
(what waits for what, what is published, which command each container runs, where secrets come from) is
checked here against the file itself and against the repository the images are built from.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ingest.watch import DEFAULT_HEARTBEAT

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[3]
COMPOSE_TEXT = (ROOT / "compose.yaml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, dict] = COMPOSE["services"]
OURS = {"api", "ingest", "frontend", "eval"}  # this repository's Python code runs in them
BUILT_HERE = OURS | {"llamacpp", "phoenix", "postgres"}  # built from this repository's Dockerfiles, nothing pulled
TRACING = "http://phoenix:6006/v1/traces"

# service -> (command, where the same entry point runs locally)
ENTRY_POINTS = {
    "api": (["python", "-m", "services.api.main"], "services/launcher.py and tests/slow/test_stack_real_llm.py"),
    "frontend": (["python", "-m", "frontend.main"], "the launcher and tests/browser"),
    "eval": (["python", "-m", "eval.scheduler"], "tests/unit/eval"),
    "ingest": (["python", "-m", "ingest.cli", "watch", "/documents"], "tests/integration/ingest/test_watch.py"),
}


def check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
    return subprocess.run([exe, "--builtin-schema", "vendor.compose-spec", str(path)], capture_output=True, text=True)


def test_compose_file_matches_the_compose_specification() -> None:
    result = check_jsonschema(ROOT / "compose.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "compose.yaml"
    broken.write_text(COMPOSE_TEXT.replace("    stop_grace_period: 20s", "    stop_grace_periode: 20s"))
    assert check_jsonschema(broken).returncode != 0


def test_every_dependency_exists_and_waits_for_health() -> None:
    for name, service in SERVICES.items():
        for dep, cond in (service.get("depends_on") or {}).items():
            assert dep in SERVICES, f"{name} depends on unknown service {dep}"
            assert cond["condition"] == "service_healthy", f"{name} -> {dep}"
            # Only the LLM profiles may be absent: the API answers without an LLM (chat degrades to 503).
            if cond.get("required", True) is False:
                assert SERVICES[dep].get("profiles"), f"{name} -> {dep}: optional only for a profile service"
    assert {"qdrant"} <= set(SERVICES["api"]["depends_on"]) and "qdrant" in SERVICES["ingest"]["depends_on"]
    assert "api" in SERVICES["frontend"]["depends_on"] and "api" in SERVICES["eval"]["depends_on"]


def test_every_service_has_a_healthcheck_a_restart_policy_and_resource_limits() -> None:
    for name, service in SERVICES.items():
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), name
        assert service.get("restart") == "unless-stopped", name
        assert service["deploy"]["resources"]["limits"]["memory"], name


def test_every_build_context_and_dockerfile_exists() -> None:
    built = {name for name, s in SERVICES.items() if "build" in s}
    assert built == BUILT_HERE
    for name in built:
        build = SERVICES[name]["build"]
        assert (ROOT / build["context"] / build["dockerfile"]).is_file(), name


def test_only_the_ui_the_api_and_phoenix_are_published_on_the_publish_address() -> None:
    published = {name: s["ports"] for name, s in SERVICES.items() if s.get("ports")}
    assert published == {
        "api": ["${PUBLISH_ADDRESS:-127.0.0.1}:${API_PORT:-8000}:8000"],
        "frontend": ["${PUBLISH_ADDRESS:-127.0.0.1}:${UI_PORT:-7860}:7860"],
        "phoenix": ["${PUBLISH_ADDRESS:-127.0.0.1}:${PHOENIX_PORT:-6006}:6006"],
    }


def module_file(module: str) -> Path | None:
    base = ROOT / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__main__.py"):
        if candidate.is_file():
            return candidate
    return None


@pytest.mark.parametrize("service", sorted(ENTRY_POINTS))
def test_container_command_is_the_entry_point_the_local_stack_runs(service: str) -> None:
    command, _where = ENTRY_POINTS[service]
    assert SERVICES[service]["command"] == command
    module = command[2]
    assert module_file(module) is not None, f"{service}: python -m {module} has no module in the repository"
    local = [ROOT / "services" / "launcher.py", *(ROOT / "tests").rglob("*.py")]
    users = [p for p in local if module in p.read_text() and p != Path(__file__).resolve()]
    assert users, f"{service}: nothing in the launcher or the tests runs {module}"


def python_modules_in(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "-m"]


def test_healthchecks_run_probes_that_exist_and_the_heartbeat_path_matches_the_watcher() -> None:
    for name in OURS:
        test = SERVICES[name]["healthcheck"]["test"]
        assert test[0] == "CMD" and python_modules_in(test) == ["services.healthcheck"], name
        assert module_file("services.healthcheck")
    assert str(DEFAULT_HEARTBEAT) in SERVICES["ingest"]["healthcheck"]["test"]
    assert SERVICES["api"]["healthcheck"]["test"][-1] == "http://127.0.0.1:8000/healthz"
    assert SERVICES["frontend"]["healthcheck"]["test"][-1] == "http://127.0.0.1:7860/"


def test_every_app_container_traces_to_phoenix_and_phoenix_phones_nowhere() -> None:
    for name in OURS:
        assert SERVICES[name]["environment"]["RAG_TRACING_ENDPOINT"] == TRACING, name
    for name in OURS - {"frontend"}:  # those that load a model never download one; the UI loads none
        assert SERVICES[name]["environment"]["RAG_HF_HUB_OFFLINE"] == "true", name
    phoenix = SERVICES["phoenix"]
    assert phoenix["environment"]["PHOENIX_TELEMETRY_ENABLED"] == "false"
    assert phoenix["environment"]["PHOENIX_ALLOW_EXTERNAL_RESOURCES"] == "false"


def test_container_wiring_is_fixed_whatever_env_says_and_no_service_reads_an_env_file() -> None:
    # .env reaches a container only through the ${RAG_X:-} pass-throughs of its app's settings (an env_file would
    # hand it all of .env); the wiring is written out, so nothing in .env or the shell can change it.
    api = SERVICES["api"]["environment"]
    assert api["RAG_API_HOST"] == "0.0.0.0" and api["RAG_QDRANT_URL"] == "http://qdrant:6333"
    assert SERVICES["frontend"]["environment"]["RAG_FRONTEND_API_URL"] == "http://api:8000"
    assert SERVICES["frontend"]["environment"]["RAG_FRONTEND_HOST"] == "0.0.0.0"
    assert SERVICES["eval"]["environment"]["RAG_EVAL_API_URL"] == "http://api:8000"
    assert SERVICES["eval"]["environment"]["RAG_EVAL_REPORTS_DIR"] == "/reports"
    for name, service in SERVICES.items():
        assert "env_file" not in service, name


def test_the_embedding_model_baked_into_each_image_is_the_one_it_is_told_to_use() -> None:
    # Queries (api) and passages (ingest) must be embedded by the same model, and that model must be in the image.
    for name in ("api", "ingest"):
        assert SERVICES[name]["build"]["args"]["EMBED_MODEL"] == SERVICES[name]["environment"]["RAG_EMBED_MODEL"]
    assert SERVICES["api"]["build"]["args"]["EMBED_MODEL"] == SERVICES["ingest"]["build"]["args"]["EMBED_MODEL"]
    assert SERVICES["api"]["build"]["args"]["RERANKER_MODEL"] == SERVICES["api"]["environment"]["RAG_RERANKER_MODEL"]


def test_no_secret_is_in_the_file() -> None:
    for var in ("RAG_API_KEY", "RAG_QDRANT_API_KEY", "POSTGRES_PASSWORD"):
        uses = re.findall(r"\$\{" + var + r"([^}]*)\}", COMPOSE_TEXT)
        assert uses and all(u.startswith(":?") for u in uses), f"{var} must be required (${{{var}:?...}})"
    for name, service in SERVICES.items():
        env = service.get("environment") or {}
        for key, value in env.items():
            if re.search(r"KEY|TOKEN|PASSWORD|SECRET", key):
                assert re.fullmatch(r"\$\{[A-Z_]+(:\?[^}]*|:-)\}", str(value)), f"{name}.{key} = {value!r}"


def test_every_variable_is_documented_in_env_example() -> None:
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE))
    used = {var for text in strings(COMPOSE) for var in re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)", text)}
    assert "RAG_API_KEY" in used and "EMBED_MODEL" in used
    assert used - documented == set()


def strings(node: object) -> list[str]:
    """Every string in the parsed file (values and keys), which is what Compose interpolates."""
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in strings(k) + strings(v)]
    if isinstance(node, list):
        return [s for item in node for s in strings(item)]
    return [node] if isinstance(node, str) else []


def test_images_are_pinned_and_state_lives_in_named_volumes() -> None:
    for name, service in SERVICES.items():
        if "build" not in service:
            image = service["image"]
            assert ":" in image and not image.endswith(":latest"), name
    declared = set(COMPOSE["volumes"])
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith(("$", ".", "/")):
                assert source in declared, f"{name}: volume {source} is not declared"
    stateful = {"qdrant": "/qdrant/storage", "ollama": "/root/.ollama", "phoenix": "/mnt/data", "eval": "/reports"}
    for name, path in stateful.items():
        assert any(v.endswith(":" + path) for v in SERVICES[name]["volumes"]), name


def test_qdrant_server_is_the_minor_version_of_the_client_the_tests_use() -> None:
    from importlib.metadata import version

    client = version("qdrant-client").split(".")[:2]
    server = SERVICES["qdrant"]["image"].split(":v")[1].split(".")[:2]
    assert server == client


def test_llm_profiles_and_gpu_reservations() -> None:
    assert SERVICES["llamacpp"]["profiles"] == ["llamacpp"]
    assert SERVICES["ollama"]["profiles"] == ["ollama"]
    assert SERVICES["ollama-gpu"]["profiles"] == ["gpu"]
    assert SERVICES["tgi"]["profiles"] == ["tgi"]
    assert "ollama" in SERVICES["ollama-gpu"]["networks"]["default"]["aliases"]  # the API's default URL still works
    for name in ("ollama-gpu", "tgi"):
        devices = SERVICES[name]["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["capabilities"] == ["gpu"], name
    assert not (set(SERVICES) - {"llamacpp", "ollama", "ollama-gpu", "tgi"}) & {
        n for n, s in SERVICES.items() if s.get("profiles")
    }, "only the LLMs are optional"


def test_phoenix_image_is_the_version_the_local_tracing_tests_run() -> None:
    makefile = (ROOT / "Makefile").read_text()
    local = re.search(r"^PHOENIX_VERSION\s*:?=\s*(\S+)", makefile, re.MULTILINE)
    assert local, "the Makefile pins the local Phoenix server"
    dockerfile = (ROOT / SERVICES["phoenix"]["build"]["dockerfile"]).read_text()
    assert f"ARG PHOENIX_VERSION={local.group(1)}\n" in dockerfile
    assert '"arize-phoenix==${PHOENIX_VERSION}"' in dockerfile


def test_the_default_llm_is_the_llamacpp_profile_the_api_points_at() -> None:
    api = SERVICES["api"]["environment"]
    assert api["RAG_LLM_BASE_URL"] == "${LLM_BASE_URL:-http://llamacpp:8080/v1}"
    assert re.search(r"^LLM_PROFILE \?= llamacpp$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert SERVICES["api"]["depends_on"]["llamacpp"] == {"condition": "service_healthy", "required": False}
    # The model name the API sends is the alias the server answers to.
    command = SERVICES["llamacpp"]["command"]
    assert command[command.index("--alias") + 1] == api["RAG_LLM_MODEL"]
