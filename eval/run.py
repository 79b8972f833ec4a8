"""``python -m eval.run``: one evaluation of a running API, written to the reports folder and gated.

    python -m eval.run                           # RAG_EVAL_SAMPLE_SIZE queries + cases of the fitz-gov test split
    python -m eval.run --full                    # the whole test split (594 queries, 153 RAG cases)
    python -m eval.run --dataset mine.jsonl      # your own set (format: eval/evalset.py)
    python -m eval.run --boot-local              # make eval: start a local stack when nothing answers

Exit status: 0 passed; 1 a quality metric dropped more than the threshold against the previous run over the
same items, or some requests failed; 2 the API could not be reached. The whole run is one ``eval.run``
span (OpenInference kind EVALUATOR) with every metric as an attribute, and each request's trace context
is sent to the API, so in Phoenix the API's retrieval and LLM spans hang under the evaluation.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eval import ir, rag_eval
from eval.client import ApiClient
from eval.evalset import EvalSet, fitz_gov_set, read_jsonl
from eval.gate import compare, previous_comparable, read_history
from eval.report import write_run
from services.core import tracing
from services.core.settings import Settings

os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
logger = logging.getLogger("eval.run")

EXIT_OK, EXIT_REGRESSION, EXIT_UNREACHABLE = 0, 1, 2


def run_id(now: datetime, reports_dir: Path) -> str:
    """UTC time of the start, made unique if a run already started within the same second."""
    base = now.strftime("%Y%m%dT%H%M%SZ")
    candidate, n = base, 1
    while (reports_dir / "runs" / candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def evaluate(
    api: ApiClient,
    evalset: EvalSet,
    settings: Settings,
    *,
    reports_dir: Path,
    threshold: float,
    api_url: str = "",
    judge: dict[str, Any] | None = None,
    judge_info: dict[str, str] | None = None,
) -> tuple[dict[str, Any], Path]:
    """Ask every item, score, compare with the previous comparable run, write the report. Returns it and its dir."""
    started = datetime.now(UTC)
    t0 = time.monotonic()
    with tracing.tracer().start_as_current_span("eval.run", openinference_span_kind="evaluator") as span:
        span.set_attribute("eval.dataset", evalset.key)
        queries = ir.run_search(api, evalset.retrieval)
        retrieval = ir.summarize(queries)
        cases = rag_eval.ask_all(api, evalset.rag)
        rag_eval.score_all(evalset.rag, cases, judge)
        rag = rag_eval.summarize(cases, judged=judge is not None)
        metrics = {**retrieval["metrics"], **rag["metrics"]}
        history_path = reports_dir / "history.jsonl"
        history = read_history(history_path)
        previous = previous_comparable(history, evalset.key)
        verdict = compare(
            metrics, previous["metrics"] if previous else None, threshold, previous["run_id"] if previous else None
        )
        report: dict[str, Any] = {
            "schema_version": 1,
            "run_id": run_id(started, reports_dir),
            "started_at": started.isoformat(timespec="seconds"),
            "duration_s": round(time.monotonic() - t0, 1),
            "api_url": api_url,
            "api_info": api.info(),
            "git_commit": git_commit(),
            "hardware": hardware(),
            "dataset": {
                "name": evalset.name,
                "key": evalset.key,
                "retrieval_queries": len(evalset.retrieval),
                "rag_cases": len(evalset.rag),
                **{k: v for k, v in evalset.notes.items() if isinstance(v, str | int | float)},
            },
            "judge": judge_info,
            "metrics": metrics,
            "retrieval": retrieval,
            "rag": rag,
            "complete": retrieval["errors"] == 0 and rag["errors"] == 0,
            "gate": verdict.as_dict(),
            "per_query": [
                {
                    "id": q.id,
                    "ranked": q.ranked,
                    "relevant": q.relevant,
                    "latency_ms": round(q.latency_ms, 1),
                    "error": q.error,
                    **({} if q.error else {k: round(v, 4) for k, v in q.scores().items()}),
                }
                for q in queries
            ],  # fmt: skip
            "per_case": [
                {
                    "id": c.id,
                    "expect": c.expect,
                    "question": c.question,
                    "answer": c.answer,
                    "declined": c.declined,
                    "latency_ms": round(c.latency_ms, 1),
                    "error": c.error,
                    "judge_errors": c.judge_errors,
                    "scores": {k: round(v, 4) for k, v in c.scores.items()},
                }
                for c in cases
            ],  # fmt: skip
        }
        if span.is_recording():
            for name, value in metrics.items():
                span.set_attribute(f"eval.metric.{name}", value)
            span.set_attribute("eval.gate_failed", verdict.failed)
            span.set_attribute("output.value", tracing.as_json(metrics))
        run_dir = write_run(report, reports_dir, history)
    return report, run_dir


def exit_code(report: dict[str, Any]) -> int:
    return EXIT_REGRESSION if report["gate"]["failed"] or not report["complete"] else EXIT_OK


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def hardware() -> str:
    from eval.retrieval_eval import cpu_name

    return f"{cpu_name()}, {os.cpu_count()} cores, {platform.system()}"


def load_set(args: argparse.Namespace, settings: Settings) -> EvalSet:
    evalset = read_jsonl(Path(args.dataset)) if args.dataset else fitz_gov_set("test")
    return evalset if args.full else evalset.sample(args.sample or settings.eval_sample_size)


def parse_args(argv: list[str] | None, settings: Settings) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--api-url", default=settings.eval_api_url)
    parser.add_argument("--sample", type=int, default=None, help="items of each kind (default RAG_EVAL_SAMPLE_SIZE)")
    parser.add_argument("--full", action="store_true", help="every item of the set (the whole test split)")
    parser.add_argument("--dataset", default=None, help="a JSONL evaluation set (default: fitz-gov test split)")
    parser.add_argument("--threshold", type=float, default=settings.eval_regression_threshold)
    parser.add_argument("--reports-dir", default=str(settings.eval_reports_dir))
    parser.add_argument("--boot-local", action="store_true", help="start a local stack if the API does not answer")
    parser.add_argument("--local-data-dir", default=".data/eval", help="store of the local stack (--boot-local)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "absl"):  # a line per request / per ROUGE call would drown the progress bars
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args = parse_args(argv, settings)
    evalset = load_set(args, settings)
    api_key = settings.api_key.get_secret_value() if settings.api_key else None
    stack = None
    api = ApiClient.connect(args.api_url, api_key=api_key, timeout_s=settings.eval_request_timeout_s)
    try:
        if not api.ready():
            if not args.boot_local:
                print(f"eval: the API at {args.api_url} is not ready (GET /readyz)", file=sys.stderr)
                return EXIT_UNREACHABLE
            from eval.local_stack import LocalStack

            stack = LocalStack(args.api_url, Path(args.local_data_dir))
            stack.start()
        from eval.judge import build_judge, judge_model

        judge = build_judge(settings)
        judge_info = {"base_url": str(settings.eval_judge_base_url), "model": judge_model(settings)} if judge else None
        setup = tracing.setup_tracing(settings, "eval")
        try:
            report, run_dir = evaluate(
                api,
                evalset,
                settings,
                reports_dir=Path(args.reports_dir),
                threshold=args.threshold,
                api_url=args.api_url,
                judge=judge,
                judge_info=judge_info,
            )
        finally:
            if setup is not None:
                tracing.shutdown()
    finally:
        api.close()
        if stack is not None:
            stack.stop()
    print((run_dir / "report.md").read_text(encoding="utf-8"))
    print(f"eval: wrote {run_dir} (and {Path(args.reports_dir) / 'latest'})")
    return exit_code(report)


if __name__ == "__main__":
    sys.exit(main())
