"""Writing a run: ``<reports>/runs/<run id>/`` (JSON, Markdown, PNG charts), a ``latest/`` copy, and one line
appended to ``<reports>/history.jsonl``.

The JSON is the record (every metric, the per-query and per-case details, the gate's verdict); the
Markdown is what a person reads; the charts are the metrics of this run and the trend over the comparable
runs in the history. ``SCHEMA_VERSION`` changes when a field changes meaning.

Every quality metric is a mean over items, and each item's value is kept (``per_query``: the IR scores
of each query; ``per_case[].scores``: every per-case metric), so ``metrics_ci`` holds its 95 % bootstrap
interval (``{"mean", "low", "high", "n"}``; low/high null with fewer than two items) and a later run can
pair with this one item by item (eval/gate.py).

Two runs over the same items, e.g. with and without the answerability gate, side by side::

    python -m eval.report compare 20261203T020000Z 20261203T023000Z     # Markdown on stdout
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eval.stats import Interval, bootstrap_ci, common_ids, paired_drop
from services.core.measure import fmt_interval

SCHEMA_VERSION = 2  # 2: metrics_ci, every per-case metric in per_case[].scores, gate with paired intervals
REPORT_FILES = ("report.json", "report.md", "metrics.png", "history.png")
REQUIRED_KEYS = ("schema_version", "run_id", "started_at", "dataset", "metrics", "metrics_ci", "retrieval",
                 "rag", "gate")  # fmt: skip
TREND_METRICS = ("ndcg@10", "mrr@10", "recall@10", "abstention_accuracy", "answer_rate", "rouge_l",
                 "non_llm_context_recall", "sentence_supported", "faithfulness")  # fmt: skip
CONFIDENCE = 0.95


def validate(report: dict[str, Any]) -> None:
    """The minimal contract readers of report.json and history.jsonl rely on."""
    missing = [k for k in REQUIRED_KEYS if k not in report]
    if missing:
        raise ValueError(f"report lacks {missing}")
    if not all(isinstance(v, int | float) for v in report["metrics"].values()):
        raise ValueError("report metrics must all be numbers")
    if not all({"mean", "low", "high", "n"} <= set(v) for v in report["metrics_ci"].values()):
        raise ValueError("every metrics_ci entry needs mean, low, high and n")


def history_row(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": report["run_id"],
        "started_at": report["started_at"],
        "dataset_key": report["dataset"]["key"],
        "compare_key": report.get("compare_key", report["dataset"]["key"]),
        "complete": report.get("complete", True),
        "gate_failed": report["gate"]["failed"],
        "metrics": report["metrics"],
        "metrics_ci": {k: [v["low"], v["high"]] for k, v in report.get("metrics_ci", {}).items()},
    }


# --- per-item values and intervals -------------------------------------------------------------------


def load_report(path: Path) -> dict[str, Any] | None:
    """A saved report.json, or None when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def per_item_values(report: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """metric -> {item id: value} for every metric of ``report["metrics"]`` that kept per-item values.

    IR scores live in ``per_query`` (flat), RAG scores in ``per_case[].scores``; failed requests have none.
    Reports from before schema 2 kept no per-case answer_rate / abstention_accuracy: they are rebuilt from
    ``expect`` and ``declined``, so an old run can still be paired with a new one.
    """
    names = set(report.get("metrics", {}))
    out: dict[str, dict[str, float]] = {}
    for row in report.get("per_query") or []:
        if row.get("error"):
            continue
        for name in names.intersection(row):
            if _number(row[name]):
                out.setdefault(name, {})[str(row["id"])] = float(row[name])
    for row in report.get("per_case") or []:
        if row.get("error"):
            continue
        scores = dict(row.get("scores") or {})
        if "declined" in row and row.get("expect") in ("answer", "abstain"):
            behaviour = "abstention_accuracy" if row["expect"] == "abstain" else "answer_rate"
            scores.setdefault(behaviour, float(bool(row["declined"]) == (row["expect"] == "abstain")))
        for name in names.intersection(scores):
            if _number(scores[name]):
                out.setdefault(name, {})[str(row["id"])] = float(scores[name])
    return out


def metrics_ci(
    items: Mapping[str, Mapping[str, float]], *, confidence: float = CONFIDENCE, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """``{metric: {"mean", "low", "high", "n"}}``: the percentile-bootstrap interval of each metric's mean."""
    return {
        name: _ci_entry(bootstrap_ci(values.values(), confidence=confidence, seed=seed), len(values))
        for name, values in sorted(items.items())
    }


def _ci_entry(ci: Interval, n: int) -> dict[str, Any]:
    # JSON has no NaN: an undefined bound (one item) is null
    return {"mean": _round(ci.mean), "low": _round(ci.low), "high": _round(ci.high), "n": n}


def _round(value: float) -> float | None:
    return round(value, 4) if math.isfinite(value) else None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def write_run(report: dict[str, Any], reports_dir: Path, history: list[dict[str, Any]]) -> Path:
    """Write every file of one run; ``history`` is the history *before* this run (for the trend chart)."""
    validate(report)
    run_dir = reports_dir / "runs" / report["run_id"]
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (run_dir / "report.md").write_text(markdown(report), encoding="utf-8")
    plot_metrics(report, run_dir / "metrics.png")
    row = history_row(report)
    trend = [r for r in history if r.get("compare_key", r.get("dataset_key")) == row["compare_key"]] + [row]
    plot_history(trend, run_dir / "history.png")
    latest = reports_dir / "latest"
    latest.mkdir(parents=True, exist_ok=True)
    for name in REPORT_FILES:
        shutil.copyfile(run_dir / name, latest / name)
    with (reports_dir / "history.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return run_dir


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.0f}"
    return str(value)


def _fmt_ci(value: Any, ci: dict[str, Any] | None) -> str:
    """``0.712 [0.668, 0.754] (n=200)``; the bare value for latencies and metrics without items."""
    if not ci:
        return _fmt(value)
    if ci.get("low") is None or ci.get("high") is None:
        return f"{_fmt(value)} (n={ci['n']})"
    return f"{fmt_interval(value, ci['low'], ci['high'])} (n={ci['n']})"


def _metric_rows(metrics: dict[str, Any], cis: dict[str, Any]) -> list[str]:
    return [f"| {k} | {_fmt_ci(v, cis.get(k))} |" for k, v in metrics.items()]


def markdown(report: dict[str, Any]) -> str:
    ds, r, g = report["dataset"], report["rag"], report["gate"]
    cis = report.get("metrics_ci", {})
    overrides = ", ".join(f"{k} {'on' if v else 'off'}" for k, v in (report.get("chat_options") or {}).items())
    j = report.get("judge")
    judge = f"{j['model']} at {j['base_url']}" if j else "none (non-LLM metrics only)"
    lines = [
        f"# Evaluation run {report['run_id']}",
        "",
        f"- API: `{report.get('api_url', '')}` ({_config_line(report.get('api_info', {}))})",
        f"- data set: `{ds['key']}`: {ds['retrieval_queries']} retrieval queries, {r['cases']} RAG cases "
        f"({r['answer_cases']} to answer, {r['abstain_cases']} to decline)",
        f"- judge LLM: {judge}",
        f"- chat overrides: {overrides or 'none (the server settings)'}",
        f"- started {report['started_at']}, {report.get('duration_s', 0):.0f} s; {report.get('hardware', '')}",
        f"- request errors: search {report['retrieval']['errors']}, chat {r['errors']}; "
        f"judge errors {r['judge_errors']}",
        "",
        "## Retrieval (`POST /search`, top 10)",
        "",
        "| metric | value [95% CI] (n) |",
        "|---|---|",
        *_metric_rows(report["retrieval"]["metrics"], cis),
        "",
        "## Answers (`POST /chat`, Ragas)",
        "",
        "| metric | value [95% CI] (n) |",
        "|---|---|",
        *_metric_rows(r["metrics"], cis),
        "",
        f"Declined: {_fmt_counts(r.get('decline_reasons'))}.",
        "",
        "## Compared with the previous run",
        "",
    ]
    if g["previous_run"] is None:
        lines.append("No previous run over the same items: this run is the baseline.")
    else:
        confidence = g.get("confidence", CONFIDENCE)
        lines.append(
            f"Previous: `{g['previous_run']}`; a quality metric fails when, paired item by item, it dropped by "
            f"more than {g['threshold']} with {confidence:.0%} confidence (the Δ interval lies below "
            f"-{g['threshold']})."
        )
        if g.get("reason"):
            lines += ["", f"**No comparison item by item:** {g['reason']}."]
        lines += ["", "| metric | previous → current | Δ [95% CI] (paired n) |", "|---|---|---|"]
        regressed = {c["metric"] for c in g["regressions"]}
        for metric, c in g["changes"].items():
            flag = " **REGRESSION**" if metric in regressed else ""
            lines.append(f"| {metric} | {_fmt(c['previous'])} → {_fmt(c['current'])} | {_fmt_delta(c)}{flag} |")
        lines.append("")
        lines.append("**FAILED: regressions beyond the threshold.**" if g["failed"] else "Passed: no regression.")
    return "\n".join(lines) + "\n"


def _fmt_delta(change: dict[str, Any]) -> str:
    text = f"{change['delta']:+.3f}"
    if change.get("delta_ci"):
        low, high = change["delta_ci"]
        text += f" [{low:+.3f}, {high:+.3f}] (n={change['paired']})"
    elif change.get("note"):
        text += f" ({change['note']})"
    elif change.get("gated") is False:
        text += " (not gated)"
    return text


def _fmt_counts(counts: dict[str, int] | None) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) if counts else "none"


def _config_line(info: dict[str, Any]) -> str:
    checks = info.get("checks", {})
    if not checks:
        return "configuration unknown"
    return f"status {info.get('status')}, reranker {checks.get('reranker')}, llm up {checks.get('llm')}"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_metrics(report: dict[str, Any], path: Path) -> None:
    """One horizontal bar per quality metric, with its 95 % interval as an error bar."""
    plt = _pyplot()
    cis = report.get("metrics_ci", {})
    groups = [
        ("retrieval (/search)", {k: v for k, v in report["retrieval"]["metrics"].items() if "latency" not in k}),
        ("answers (/chat, Ragas)", {k: v for k, v in report["rag"]["metrics"].items() if "latency" not in k}),
    ]
    groups = [(title, vals) for title, vals in groups if vals]
    fig, axes = plt.subplots(1, max(1, len(groups)), figsize=(12, 4.2), squeeze=False)
    for ax, (title, values) in zip(axes[0], groups, strict=False):
        names = list(values)[::-1]
        xs = [values[n] for n in names]
        errors = _error_bars(names, xs, cis)
        ax.barh(names, xs, color="tab:blue", xerr=errors, capsize=3, error_kw={"elinewidth": 1, "ecolor": "black"})
        for y, (name, x, above) in enumerate(zip(names, xs, errors[1], strict=True)):
            n = (cis.get(name) or {}).get("n")
            # right of the error bar, so the label never sits on it
            ax.text(x + above + 0.02, y, f"{x:.2f}" + (f" (n={n})" if n else ""), va="center", fontsize=7)
        ax.set_xlim(0, 1.3)
        ax.set_title(f"{title}, 95% CI", fontsize=10)
    fig.suptitle(f"{report['dataset']['key']}  ·  {report['run_id']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _error_bars(names: list[str], values: list[float], cis: dict[str, Any]) -> list[list[float]]:
    """matplotlib's asymmetric ``[[below...], [above...]]``; 0 where a metric has no interval."""
    below, above = [], []
    for name, value in zip(names, values, strict=True):
        ci = cis.get(name) or {}
        low, high = ci.get("low"), ci.get("high")
        below.append(max(0.0, value - low) if low is not None else 0.0)
        above.append(max(0.0, high - value) if high is not None else 0.0)
    return [below, above]


def plot_history(rows: list[dict[str, Any]], path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.8))
    xs = list(range(1, len(rows) + 1))
    for metric in TREND_METRICS:
        ys = [r["metrics"].get(metric) for r in rows]
        if any(y is not None for y in ys):
            line = ax.plot(xs, [float("nan") if y is None else y for y in ys], marker="o", label=metric)[0]
            bands = [(r.get("metrics_ci") or {}).get(metric) or [None, None] for r in rows]
            lows = [float("nan") if b[0] is None else b[0] for b in bands]
            highs = [float("nan") if b[1] is None else b[1] for b in bands]
            ax.fill_between(xs, lows, highs, color=line.get_color(), alpha=0.12, linewidth=0)
    ax.set_ylim(0, 1.05)
    ax.set_xticks(xs, [r["run_id"][:13] for r in rows], rotation=30, ha="right", fontsize=7)
    ax.set_title(f"comparable runs ({len(rows)})", fontsize=10)
    ax.legend(fontsize=7, loc="lower left", ncols=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --- two runs side by side -----------------------------------------------------------------------------


def side_by_side(first: dict[str, Any], second: dict[str, Any], *, confidence: float = CONFIDENCE) -> str:
    """Markdown: each metric of two runs with its interval, and the paired difference over their common items.

    Meant for two runs over the same items that differ in one setting (``--gate-off``); runs over
    different items are still shown, with the difference over whatever items they share.
    """
    a_items, b_items = per_item_values(first), per_item_values(second)
    a_ci, b_ci = first.get("metrics_ci", {}), second.get("metrics_ci", {})

    def label(report: dict[str, Any]) -> str:
        overrides = ", ".join(f"{k} {'on' if v else 'off'}" for k, v in (report.get("chat_options") or {}).items())
        return f"`{report['run_id']}` ({overrides or 'server settings'})"

    lines = [
        f"# {label(first)} vs {label(second)}",
        "",
        f"Data sets: `{first['dataset']['key']}` and `{second['dataset']['key']}`. Δ = second - first, paired "
        f"over the items both scored, with its {confidence:.0%} bootstrap interval.",
        "",
        "| metric | first [95% CI] | second [95% CI] | Δ [95% CI] (paired n) |",
        "|---|---|---|---|",
    ]
    for name in [m for m in first["metrics"] if m in second["metrics"]]:
        a, b = first["metrics"][name], second["metrics"][name]
        delta = f"{b - a:+.3f}"
        if name in a_items and name in b_items:
            n = len(common_ids(a_items[name], b_items[name]))
            drop = paired_drop(a_items[name], b_items[name], confidence=confidence)
            if math.isfinite(drop.low):
                delta = f"{-drop.mean:+.3f} [{-drop.high:+.3f}, {-drop.low:+.3f}] (n={n})"
        lines.append(f"| {name} | {_fmt_ci(a, a_ci.get(name))} | {_fmt_ci(b, b_ci.get(name))} | {delta} |")
    reasons = [(label(r), r.get("rag", {}).get("decline_reasons")) for r in (first, second)]
    lines += ["", *[f"- declined in {who}: {_fmt_counts(counts)}" for who, counts in reasons]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Reports of eval.run: compare two runs side by side.")
    sub = parser.add_subparsers(dest="command", required=True)
    cmp = sub.add_parser("compare", help="two runs side by side (Markdown on stdout)")
    cmp.add_argument("first", help="run id (a folder of <reports-dir>/runs) or a report.json path")
    cmp.add_argument("second")
    cmp.add_argument("--reports-dir", default=None, help="default RAG_EVAL_REPORTS_DIR")
    args = parser.parse_args(argv)
    if args.reports_dir is None:
        from services.core.settings import EvalSettings

        args.reports_dir = str(EvalSettings().eval_reports_dir)
    reports = []
    for ref in (args.first, args.second):
        path = Path(ref) if ref.endswith(".json") else Path(args.reports_dir) / "runs" / ref / "report.json"
        report = load_report(path)
        if report is None:
            print(f"eval.report: cannot read {path}", file=sys.stderr)
            return 2
        reports.append(report)
    sys.stdout.write(side_by_side(*reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
