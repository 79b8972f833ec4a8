"""The layering contracts of `make lint` can fail: the project's own [tool.importlinter] contracts, run over a
skeleton tree of the same packages, pass as it is and break on one deliberate upward import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = (
    "services", "services/core", "services/chat", "services/contract", "services/api", "services/llm",
    "services/phoenix", "services/datasets", "services/state", "ingest", "frontend", "eval", "bench", "train",
)  # fmt: skip


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"]
    return subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    for package in PACKAGES:
        (tmp_path / package).mkdir(parents=True)
        (tmp_path / package / "__init__.py").write_text("")
    for module in ("services/launcher.py", "services/healthcheck.py"):
        (tmp_path / module).write_text("")
    (tmp_path / "frontend" / "app.py").write_text("import services.contract\nimport services.core\n")  # allowed
    return tmp_path


def test_the_contracts_keep_a_tree_that_points_down(tree: Path) -> None:
    result = lint_imports(tree)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "target", "contract"),
    [
        ("services/core/x.py", "services.api", "core <- ingestion and chat pipelines"),
        ("services/contract/x.py", "services.chat", "core <- ingestion and chat pipelines"),
        ("frontend/x.py", "services.chat", "The chat UI reaches the pipelines only through the API"),
    ],
)
def test_one_upward_import_breaks_its_contract(tree: Path, module: str, target: str, contract: str) -> None:
    (tree / module).write_text(f"import {target}\n")
    result = lint_imports(tree)
    assert result.returncode != 0
    assert contract in result.stdout and f"-> {target}" in result.stdout


def test_the_development_guide_shows_the_layers_the_contracts_define() -> None:
    """docs/development.md's layering table is the contract in words: each layer's packages, top to bottom."""
    import re
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    layers = next(c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers")["layers"]
    guide = (ROOT / "docs/development.md").read_text(encoding="utf-8")
    table = next(b for b in guide[guide.index("## Layering") :].split("\n\n") if b.startswith("| layer"))
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| layer")]
    assert len(rows) == len(layers)
    for row, layer in zip(rows, layers, strict=True):
        packages = set(re.split(r"\s*[|:]\s*", layer))
        documented = set(re.findall(r"`([a-z_.]+)`", row.split("|")[2]))
        assert packages == documented, (row, layer)
