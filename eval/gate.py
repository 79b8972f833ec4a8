"""The regression gate: compare a run with the previous comparable one and say what got worse.

Only runs over the same items (same ``EvalSet.key``) are compared: a sample and the full split, or two
data sets, would differ by noise of selection, not by a change in the stack. Quality metrics (all in
[0, 1], higher is better) fail the gate when they drop by more than the threshold. Latency is reported
but never fails the gate: on shared CPUs it moves with the neighbours' load, so it belongs in benchmarks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Everything in a report's flat ``metrics`` dict that is not a latency or a count is a quality metric.
NOT_GATED_PREFIXES = ("search_latency", "chat_latency")


@dataclass(frozen=True, slots=True)
class Change:
    metric: str
    previous: float
    current: float

    @property
    def delta(self) -> float:
        return round(self.current - self.previous, 4)


@dataclass(frozen=True, slots=True)
class Verdict:
    previous_run: str | None
    regressions: list[Change]
    changes: list[Change]
    threshold: float

    @property
    def failed(self) -> bool:
        return bool(self.regressions)

    def as_dict(self) -> dict[str, Any]:
        return {
            "previous_run": self.previous_run,
            "threshold": self.threshold,
            "failed": self.failed,
            "regressions": [
                {"metric": c.metric, "previous": c.previous, "current": c.current, "delta": c.delta}
                for c in self.regressions
            ],  # fmt: skip
            "changes": {
                c.metric: {"previous": c.previous, "current": c.current, "delta": c.delta} for c in self.changes
            },  # fmt: skip
        }


def gated(metric: str) -> bool:
    return not metric.startswith(NOT_GATED_PREFIXES)


def compare(current: dict[str, float], previous: dict[str, float] | None, threshold: float, previous_run: str | None
            ) -> Verdict:  # fmt: skip
    """A metric regresses when ``previous - current > threshold`` (with a float tolerance); equal runs pass."""
    if previous is None:
        return Verdict(None, [], [], threshold)
    changes = [Change(m, float(previous[m]), float(current[m])) for m in sorted(current) if m in previous]
    regressions = [c for c in changes if gated(c.metric) and c.previous - c.current > threshold + 1e-9]
    return Verdict(previous_run, regressions, changes, threshold)


def read_history(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by a crash must not block every later run
    return rows


def previous_comparable(history: list[dict[str, Any]], dataset_key: str) -> dict[str, Any] | None:
    """The latest completed run over the same items, if any."""
    for row in reversed(history):
        if row.get("dataset_key") == dataset_key and row.get("complete", True):
            return row
    return None
