"""The regression gate: compare a run with the previous comparable one and say what got worse, with confidence.

Only runs over the same items (same ``EvalSet.key``) and the same request overrides (``--gate-off``,
``--verify-off``: see ``comparison_key``) are compared: a sample and the full split, two data sets, or a
run with the answerability gate off would differ by design, not by a change in the stack.

The rule. A quality metric (all in [0, 1], higher is better) is a mean over items, and two runs over the
same items differ by noise (the LLM's sampling, ties in ranking) as well as by real changes. So the gate
pairs the items both runs scored, bootstraps the mean of ``previous - current`` over them
(``eval/stats.py``), and fails the metric only when the **lower bound of its 95 % interval is above the
threshold**: the metric dropped by more than the threshold with 95 % confidence. A metric with fewer than
``MIN_PAIRED_ITEMS`` paired items is reported but not tested (a bootstrap over a handful of items claims
more confidence than it has). Latency is reported but never fails the gate: on shared CPUs it moves with
the neighbours' load, so it belongs in benchmarks.

The per-item values come from the previous run's ``runs/<run id>/report.json`` (``per_query`` and
``per_case``); when that file is gone or holds none, the verdict says "no comparison" and why, and passes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval.report import load_report, per_item_values
from eval.stats import Interval, common_ids, paired_drop

# Everything in a report's flat ``metrics`` dict that is not a latency is a quality metric.
NOT_GATED_PREFIXES = ("search_latency", "chat_latency")
CONFIDENCE = 0.95
MIN_PAIRED_ITEMS = 10
N_RESAMPLES = 2000

ItemValues = dict[str, dict[str, float]]  # metric -> {item id: value}


@dataclass(frozen=True, slots=True)
class Change:
    metric: str
    previous: float
    current: float
    gated: bool = True
    drop: Interval | None = None  # paired bootstrap of previous - current over the common items
    paired: int = 0  # items both runs scored
    note: str = ""  # why the metric was not tested, if it was not

    @property
    def delta(self) -> float:
        return round(self.current - self.previous, 4)

    @property
    def delta_ci(self) -> tuple[float, float] | None:
        """The interval of ``current - previous`` (negative: worse), from the paired bootstrap."""
        if self.drop is None or not math.isfinite(self.drop.low):
            return None
        return round(-self.drop.high, 4), round(-self.drop.low, 4)

    def regressed(self, threshold: float) -> bool:
        # the float tolerance keeps a drop of exactly the threshold a pass
        return self.gated and self.drop is not None and self.drop.low > threshold + 1e-9

    def as_dict(self) -> dict[str, Any]:
        ci = self.delta_ci
        out: dict[str, Any] = {"previous": self.previous, "current": self.current, "delta": self.delta}
        if self.gated:
            out |= {"delta_ci": list(ci) if ci else None, "paired": self.paired}
            if self.drop is not None and math.isfinite(self.drop.mean):
                out["paired_delta"] = round(-self.drop.mean, 4)
        else:
            out["gated"] = False
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True, slots=True)
class Verdict:
    previous_run: str | None
    regressions: list[Change]
    changes: list[Change]
    threshold: float
    confidence: float = CONFIDENCE
    reason: str = ""  # set when the runs could not be compared item by item (then nothing can fail)
    compared: bool = field(default=False)

    @property
    def failed(self) -> bool:
        return bool(self.regressions)

    def as_dict(self) -> dict[str, Any]:
        return {
            "previous_run": self.previous_run,
            "threshold": self.threshold,
            "confidence": self.confidence,
            "rule": f"fail when the lower bound of the {self.confidence:.0%} paired-bootstrap interval of "
            f"(previous - current) exceeds the threshold; at least {MIN_PAIRED_ITEMS} paired items",
            "compared": self.compared,
            "reason": self.reason or None,
            "failed": self.failed,
            "regressions": [{"metric": c.metric, **c.as_dict()} for c in self.regressions],
            "changes": {c.metric: c.as_dict() for c in self.changes},
        }


def gated(metric: str) -> bool:
    return not metric.startswith(NOT_GATED_PREFIXES)


def compare(
    current: dict[str, float],
    previous: dict[str, float] | None,
    threshold: float,
    previous_run: str | None,
    *,
    current_items: ItemValues | None = None,
    previous_items: ItemValues | None = None,
    reason: str = "",
    confidence: float = CONFIDENCE,
    min_paired: int = MIN_PAIRED_ITEMS,
    n_resamples: int = N_RESAMPLES,
) -> Verdict:
    """Test every quality metric both runs have on the items both scored (see the module docstring).

    Without ``previous`` this run is the baseline. Without per-item values on either side the means are
    listed, nothing is tested, and ``reason`` (or a default) says why.
    """
    if previous is None:
        return Verdict(
            None, [], [], threshold, confidence, reason or "no previous comparable run: this is the baseline"
        )
    metrics = [m for m in sorted(current) if m in previous]
    if not previous_items or current_items is None:
        why = reason or f"previous run {previous_run} kept no per-item values: means listed, nothing tested"
        changes = [Change(m, float(previous[m]), float(current[m]), gated(m), note="not tested") for m in metrics]
        return Verdict(previous_run, [], changes, threshold, confidence, why)
    changes = []
    for m in metrics:
        prev, cur = float(previous[m]), float(current[m])
        if not gated(m):
            changes.append(Change(m, prev, cur, gated=False))
        elif m not in previous_items or m not in current_items:
            changes.append(Change(m, prev, cur, note="no per-item values on one side: not tested"))
        else:
            n = len(common_ids(previous_items[m], current_items[m]))
            if n < min_paired:
                changes.append(Change(m, prev, cur, paired=n, note=f"only {n} paired items: not tested"))
                continue
            drop = paired_drop(previous_items[m], current_items[m], n_resamples=n_resamples, confidence=confidence)
            changes.append(Change(m, prev, cur, drop=drop, paired=n))
    regressions = [c for c in changes if c.regressed(threshold)]
    return Verdict(previous_run, regressions, changes, threshold, confidence, reason, compared=True)


def previous_items(reports_dir: Path, run: str) -> tuple[ItemValues | None, str]:
    """The per-item values of an earlier run from its saved report, or None and the reason they are missing."""
    path = reports_dir / "runs" / run / "report.json"
    report = load_report(path)
    if report is None:
        return None, f"previous run {run}: {path} is missing or unreadable, so no comparison item by item"
    items = per_item_values(report)
    if not items:
        return None, f"previous run {run}: its report kept no per-item values, so no comparison item by item"
    return items, ""


def comparison_key(dataset_key: str, chat_options: dict[str, Any] | None = None) -> str:
    """Runs compare only within one key: the items asked, plus any request override (gate or verifier off).

    With no override the key is the data set's key, so runs from before overrides existed stay comparable.
    """
    overrides = sorted((k, v) for k, v in (chat_options or {}).items() if v is not None)
    return dataset_key + "".join(f"|{k}={'on' if v else 'off'}" for k, v in overrides)


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


def previous_comparable(history: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    """The latest completed run with the same comparison key (rows before keys existed: their dataset key)."""
    for row in reversed(history):
        if row.get("compare_key", row.get("dataset_key")) == key and row.get("complete", True):
            return row
    return None
