"""The pip-audit wrapper behind ``make audit``: an audit where every package was skipped is not a pass."""

from __future__ import annotations

import importlib.util
import sys

import pytest
from llm_server import REPO_ROOT

pytestmark = [pytest.mark.reliability, pytest.mark.unit]

spec = importlib.util.spec_from_file_location("audit_dependencies", REPO_ROOT / "scripts" / "audit_dependencies.py")
audit = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
sys.modules[spec.name] = audit  # type: ignore[union-attr]  # dataclasses look their module up
spec.loader.exec_module(audit)  # type: ignore[union-attr]

CLEAN = {"name": "fastapi", "version": "0.165.0", "vulns": []}
SKIPPED = {"name": "torch", "version": "2.13.0+cpu", "skip_reason": "Dependency not found on PyPI"}
VULNERABLE = {
    "name": "jinja2",
    "version": "3.1.2",
    "vulns": [{"id": "GHSA-h5c8-rqwp-cp95", "fix_versions": ["3.1.3"], "aliases": []}],
}


def test_clean_audit_passes_and_lists_what_was_skipped() -> None:
    verdict = audit.judge({"dependencies": [CLEAN, SKIPPED]})
    assert verdict.code == 0
    assert "1 packages audited, 1 skipped" in verdict.lines[0]
    assert any("torch 2.13.0+cpu" in line for line in verdict.lines)


def test_a_known_vulnerability_fails_with_its_id_and_fix() -> None:
    verdict = audit.judge({"dependencies": [CLEAN, VULNERABLE]})
    assert verdict.code == 1
    assert any("GHSA-h5c8-rqwp-cp95" in line and "3.1.3" in line for line in verdict.lines)


def test_nothing_audited_is_a_failure_with_a_reason_unless_allowed() -> None:
    report = {"dependencies": [SKIPPED, {**SKIPPED, "name": "numpy"}]}
    verdict = audit.judge(report)
    assert verdict.code == 2
    assert any("nothing could be audited" in line and "AUDIT_ALLOW_UNAUDITED" in line for line in verdict.lines)
    assert audit.judge(report, allow_unaudited=True).code == 0
