"""Writing a run: ``<reports>/runs/<run id>/`` (JSON, Markdown, PNG charts), a ``latest/`` copy, and one line
appended to ``<reports>/history.jsonl``.

The JSON is the record (every metric, the per-query and per-case details, the gate's verdict); the
Markdown is what a person reads; the charts are the metrics of this run and the trend over the comparable
runs in the history. ``SCHEMA_VERSION`` changes when a field changes meaning.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
REPORT_FILES = ("report.json", "report.md", "metrics.png", "history.png")
REQUIRED_KEYS = ("schema_version", "run_id", "started_at", "dataset", "metrics", "retrieval", "rag", "gate")
TREND_METRICS = ("ndcg@10", "mrr@10", "recall@10", "abstention_accuracy", "answer_rate", "rouge_l",
                 "non_llm_context_recall", "faithfulness")  # fmt: skip


def validate(report: dict[str, Any]) -> None:
    """The minimal contract readers of report.json and history.jsonl rely on."""
    missing = [k for k in REQUIRED_KEYS if k not in report]
    if missing:
        raise ValueError(f"report lacks {missing}")
    if not all(isinstance(v, int | float) for v in report["metrics"].values()):
        raise ValueError("report metrics must all be numbers")


def history_row(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": report["run_id"],
        "started_at": report["started_at"],
        "dataset_key": report["dataset"]["key"],
        "complete": report.get("complete", True),
        "gate_failed": report["gate"]["failed"],
        "metrics": report["metrics"],
    }


def write_run(report: dict[str, Any], reports_dir: Path, history: list[dict[str, Any]]) -> Path:
    """Write every file of one run; ``history`` is the history *before* this run (for the trend chart)."""
    validate(report)
    run_dir = reports_dir / "runs" / report["run_id"]
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (run_dir / "report.md").write_text(markdown(report), encoding="utf-8")
    plot_metrics(report, run_dir / "metrics.png")
    trend = [r for r in history if r.get("dataset_key") == report["dataset"]["key"]] + [history_row(report)]
    plot_history(trend, run_dir / "history.png")
    latest = reports_dir / "latest"
    latest.mkdir(parents=True, exist_ok=True)
    for name in REPORT_FILES:
        shutil.copyfile(run_dir / name, latest / name)
    with (reports_dir / "history.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(history_row(report), ensure_ascii=False) + "\n")
    return run_dir


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.0f}"
    return str(value)


def markdown(report: dict[str, Any]) -> str:
    ds, r, g = report["dataset"], report["rag"], report["gate"]
    j = report.get("judge")
    judge = f"{j['model']} at {j['base_url']}" if j else "none (non-LLM metrics only)"
    lines = [
        f"# Evaluation run {report['run_id']}",
        "",
        f"- API: `{report.get('api_url', '')}` ({_config_line(report.get('api_info', {}))})",
        f"- data set: `{ds['key']}`: {ds['retrieval_queries']} retrieval queries, {r['cases']} RAG cases "
        f"({r['answer_cases']} to answer, {r['abstain_cases']} to decline)",
        f"- judge LLM: {judge}",
        f"- started {report['started_at']}, {report.get('duration_s', 0):.0f} s; {report.get('hardware', '')}",
        f"- request errors: search {report['retrieval']['errors']}, chat {r['errors']}; "
        f"judge errors {r['judge_errors']}",
        "",
        "## Retrieval (`POST /search`, top 10)",
        "",
        "| metric | value |",
        "|---|---|",
        *[f"| {k} | {_fmt(v)} |" for k, v in report["retrieval"]["metrics"].items()],
        "",
        "## Answers (`POST /chat`, Ragas)",
        "",
        "| metric | value |",
        "|---|---|",
        *[f"| {k} | {_fmt(v)} |" for k, v in r["metrics"].items()],
        "",
        "## Compared with the previous run",
        "",
    ]
    if g["previous_run"] is None:
        lines.append("No previous run over the same items: this run is the baseline.")
    else:
        lines.append(f"Previous: `{g['previous_run']}`; threshold {g['threshold']} (quality metrics only).")
        lines.append("")
        lines.append("| metric | previous → current | Δ |")
        lines.append("|---|---|---|")
        regressed = {c["metric"] for c in g["regressions"]}
        for metric, c in g["changes"].items():
            flag = " **REGRESSION**" if metric in regressed else ""
            lines.append(f"| {metric} | {_fmt(c['previous'])} → {_fmt(c['current'])} | {c['delta']:+.3f}{flag} |")
        lines.append("")
        lines.append("**FAILED: regressions beyond the threshold.**" if g["failed"] else "Passed: no regression.")
    return "\n".join(lines) + "\n"


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
    plt = _pyplot()
    groups = [
        ("retrieval (/search)", {k: v for k, v in report["retrieval"]["metrics"].items() if "latency" not in k}),
        ("answers (/chat, Ragas)", {k: v for k, v in report["rag"]["metrics"].items() if "latency" not in k}),
    ]
    groups = [(title, vals) for title, vals in groups if vals]
    fig, axes = plt.subplots(1, max(1, len(groups)), figsize=(12, 4.2), squeeze=False)
    for ax, (title, values) in zip(axes[0], groups, strict=False):
        names = list(values)[::-1]
        bars = ax.barh(names, [values[n] for n in names], color="tab:blue")
        ax.bar_label(bars, fmt="%.2f", fontsize=8, padding=2)
        ax.set_xlim(0, 1.1)
        ax.set_title(title, fontsize=10)
    fig.suptitle(f"{report['dataset']['key']}  ·  {report['run_id']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_history(rows: list[dict[str, Any]], path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.8))
    xs = list(range(1, len(rows) + 1))
    for metric in TREND_METRICS:
        ys = [r["metrics"].get(metric) for r in rows]
        if any(y is not None for y in ys):
            ax.plot(xs, [float("nan") if y is None else y for y in ys], marker="o", label=metric)
    ax.set_ylim(0, 1.05)
    ax.set_xticks(xs, [r["run_id"][:13] for r in rows], rotation=30, ha="right", fontsize=7)
    ax.set_title(f"comparable runs ({len(rows)})", fontsize=10)
    ax.legend(fontsize=7, loc="lower left", ncols=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
