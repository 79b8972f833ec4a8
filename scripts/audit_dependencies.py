"""``make audit`` (part of ``make lint``): pip-audit over the project venv, with a verdict a person can act on.

pip-audit asks PyPI's vulnerability data about each installed ``name==version``. When that service cannot
answer (offline, a mirror without the per-version JSON API) pip-audit still prints "No known
vulnerabilities found" while every package was in fact skipped: this wrapper refuses to call that a pass.

Exit codes: 0 audited and clean; 1 known vulnerabilities; 2 nothing could be audited (service unreachable),
unless ``AUDIT_ALLOW_UNAUDITED=1``; pip-audit's own code when it fails to run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field


@dataclass
class Verdict:
    code: int
    lines: list[str] = field(default_factory=list)


def judge(report: dict, allow_unaudited: bool = False) -> Verdict:
    deps = report.get("dependencies", [])
    skipped = [d for d in deps if d.get("skip_reason")]
    audited = [d for d in deps if not d.get("skip_reason")]
    vulnerable = [d for d in audited if d.get("vulns")]
    lines = [f"pip-audit: {len(audited)} packages audited, {len(skipped)} skipped, {len(vulnerable)} vulnerable"]
    for dep in vulnerable:
        for vuln in dep["vulns"]:
            fixes = ", ".join(vuln.get("fix_versions") or []) or "no fix released"
            lines.append(f"  {dep['name']} {dep['version']}: {vuln['id']} (fixed in: {fixes})")
    if vulnerable:
        return Verdict(1, lines)
    if deps and not audited:
        lines.append(
            "  nothing could be audited: the vulnerability service did not answer for any package "
            f"(first reason: {skipped[0]['skip_reason']!r}). Check that PyPI's JSON API "
            "(<index>/pypi/<name>/<version>/json) is reachable, or run with AUDIT_ALLOW_UNAUDITED=1 to accept an "
            "unaudited environment."
        )
        return Verdict(0 if allow_unaudited else 2, lines)
    if skipped:  # e.g. torch's local "+cpu" build is not on PyPI: worth listing, not failing over
        lines.append("  not audited: " + ", ".join(f"{d['name']} {d.get('version', '')}".strip() for d in skipped))
    return Verdict(0, lines)


def main() -> int:
    cmd = [sys.executable, "-m", "pip_audit", "--skip-editable", "--progress-spinner", "off", "--format", "json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        print(f"pip-audit failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}", file=sys.stderr)
        return proc.returncode or 3
    verdict = judge(report, allow_unaudited=os.environ.get("AUDIT_ALLOW_UNAUDITED") == "1")
    print("\n".join(verdict.lines), file=sys.stderr if verdict.code else sys.stdout)
    return verdict.code


if __name__ == "__main__":
    sys.exit(main())
