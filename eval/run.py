"""``python -m eval.run``: one evaluation of a running API, written to the reports folder and gated.

    python -m eval.run                           # 200 retrieval queries + every RAG case of the fitz-gov test split
    python -m eval.run --sample 20               # a quick look: 20 queries and 20 cases (half to decline)
    python -m eval.run --full                    # the whole test split (every query and every RAG case)
    python -m eval.run --gate-off                # the same items, with the answerability gate off in every /chat
    python -m eval.run --dataset mine.jsonl      # your own set (format: eval/evalset.py)
    python -m eval.run --boot-local              # make eval: start a local stack when nothing answers
    python -m eval.report compare RUN_A RUN_B    # two runs (e.g. gate on / off) side by side, paired

Default size: ``RAG_EVAL_SAMPLE_SIZE=200`` retrieval queries and ``RAG_EVAL_RAG_SAMPLE_SIZE=0``, every RAG
case of the test split (165 when written: 71 to answer, 94 to decline). Enough items for a 95 % interval
to separate a real drop from noise, and small enough that the nightly run fits in 30 minutes on a 2-core
CPU with the 0.5B model:

- ``/search``: 200 queries x ~0.3 s = ~1 min;
- ``/chat``: 3-15 s per case (p50 ~10 s measured when every case generated). The 71 answerable cases
  generate and are verified: ~12 min. Of the 94 to decline, those the answerability gate declines return
  before generation (<1 s), the rest generate: ~3-8 min. Together ~15-20 min;
- Ragas without a judge, the bootstraps and the charts: under a minute.

So ~17-22 min typical. ``--gate-off`` makes every case generate (165 x ~10 s = ~28 min): run it on
demand, not on top of the nightly run. A judge LLM adds several calls per answered case.

Exit status: 0 passed; 1 a quality metric dropped by more than the threshold with 95 % confidence against
the previous comparable run (paired over the same items, see eval/gate.py), or some requests failed; 2 the
API could not be reached. The whole run is one ``eval.run`` span (OpenInference kind EVALUATOR) with every
metric as an attribute, and each request's trace context is sent to the API, so in Phoenix the API's
retrieval and LLM spans hang under the evaluation.
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
from eval.evalset import EvalSet, fitz_gov_set, read_jsonl
from eval.gate import compare, comparison_key, previous_comparable, previous_items, read_history
from eval.report import SCHEMA_VERSION, metrics_ci, per_item_values, write_run
from services.contract.client import ApiClient, ApiClientError
from services.contract.schemas import ChatOptions
from services.core.observability import tracing
from services.core.processes import interrupt_on_sigterm
from services.core.settings import EvalSettings

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
    settings: EvalSettings,
    *,
    reports_dir: Path,
    threshold: float,
    api_url: str = "",
    judge: dict[str, Any] | None = None,
    judge_info: dict[str, str] | None = None,
    chat_options: ChatOptions | None = None,
) -> tuple[dict[str, Any], Path]:
    """Ask every item, score, compare with the previous comparable run, write the report. Returns it and its dir.

    ``chat_options`` (e.g. the answerability gate off) go with every ``/chat`` request, are recorded in the
    report, and make the run comparable only with runs that sent the same ones.
    """
    overrides = chat_options.chosen() if chat_options else {}
    started = datetime.now(UTC)
    t0 = time.monotonic()
    with tracing.tracer().start_as_current_span("eval.run", openinference_span_kind="evaluator") as span:
        span.set_attribute("eval.dataset", evalset.key)
        queries = ir.run_search(api, evalset.retrieval)
        retrieval = ir.summarize(queries)
        cases = rag_eval.ask_all(api, evalset.rag, chat_options)
        rag_eval.score_all(evalset.rag, cases, judge)
        rag = rag_eval.summarize(cases, judged=judge is not None)
        metrics = {**retrieval["metrics"], **rag["metrics"]}
        key = comparison_key(evalset.key, overrides)
        report: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "run_id": run_id(started, reports_dir),
            "started_at": started.isoformat(timespec="seconds"),
            "duration_s": round(time.monotonic() - t0, 1),
            "api_url": api_url,
            "api_info": api_info(api),
            "git_commit": git_commit(),
            "hardware": hardware(),
            "dataset": {
                "name": evalset.name,
                "key": evalset.key,
                "retrieval_queries": len(evalset.retrieval),
                "rag_cases": len(evalset.rag),
                **{k: v for k, v in evalset.notes.items() if isinstance(v, str | int | float)},
                **({"gate": "off"} if overrides.get("answerability_gate") is False else {}),
                **({"verify": "off"} if overrides.get("verify") is False else {}),
            },
            "chat_options": overrides,
            "compare_key": key,
            "judge": judge_info,
            "metrics": metrics,
            "metrics_ci": {},
            "retrieval": retrieval,
            "rag": rag,
            "complete": retrieval["errors"] == 0 and rag["errors"] == 0,
            "gate": {},
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
                    "decline_reason": c.decline_reason,
                    "answerability": c.answerability,
                    "latency_ms": round(c.latency_ms, 1),
                    "error": c.error,
                    "judge_errors": c.judge_errors,
                    "scores": {k: round(v, 4) for k, v in c.scores.items()},
                    "sentences": [s.model_dump(mode="json") for s in c.sentences],
                    "sources": c.sources,
                }
                for c in cases
            ],  # fmt: skip
        }
        # intervals and the gate read the per-item values as saved, so a later run pairs with exactly these
        items = per_item_values(report)
        report["metrics_ci"] = metrics_ci(items)
        history = read_history(reports_dir / "history.jsonl")
        previous = previous_comparable(history, key)
        before, reason = previous_items(reports_dir, previous["run_id"]) if previous else (None, "")
        verdict = compare(
            metrics,
            previous["metrics"] if previous else None,
            threshold,
            previous["run_id"] if previous else None,
            current_items=items,
            previous_items=before,
            reason=reason,
        )
        report["gate"] = verdict.as_dict()
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
    from services.core.measure import cpu_name

    return f"{cpu_name()}, {os.cpu_count()} cores, {platform.system()}"


def load_set(args: argparse.Namespace, settings: EvalSettings) -> EvalSet:
    """The items of this run: ``--full``; else N retrieval queries and M RAG cases (0 = all of them).

    N is ``--sample`` or ``RAG_EVAL_SAMPLE_SIZE``; M is ``--rag-sample``, else ``--sample`` when given (a quick
    run shrinks both), else ``RAG_EVAL_RAG_SAMPLE_SIZE``. Both are seeded samples (``EvalSet.sample``).
    """
    evalset = read_jsonl(Path(args.dataset), args.split) if args.dataset else fitz_gov_set(args.split)
    if args.full:
        return evalset
    n_retrieval = args.sample or settings.eval_sample_size
    n_rag = args.rag_sample if args.rag_sample is not None else (args.sample or settings.eval_rag_sample_size)
    return sample_set(evalset, n_retrieval, n_rag)


def sample_set(evalset: EvalSet, n_retrieval: int, n_rag: int) -> EvalSet:
    """``n_retrieval`` queries and ``n_rag`` RAG cases (0: every one) of ``evalset``, each as ``EvalSet.sample``."""
    retrieval = evalset.sample(n_retrieval).retrieval if n_retrieval else evalset.retrieval
    rag = evalset.sample(n_rag).rag if n_rag else evalset.rag
    notes = {**evalset.notes, "sample": n_retrieval or "all", "rag_sample": n_rag or "all"}
    return EvalSet(evalset.name, retrieval, rag, notes)


def api_info(api: ApiClient) -> dict[str, Any]:
    """The readiness checks (reranker, LLM up), recorded in the report as the measured configuration."""
    try:
        return api.readiness().model_dump(mode="json", exclude_none=True)
    except ApiClientError:
        return {}


def chat_options(args: argparse.Namespace) -> ChatOptions:
    return ChatOptions(answerability_gate=False if args.gate_off else None, verify=False if args.verify_off else None)


def parse_args(argv: list[str] | None, settings: EvalSettings) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--api-url", default=settings.eval_api_url)
    parser.add_argument(
        "--sample",
        type=int,
        default=None,
        help="retrieval queries (default RAG_EVAL_SAMPLE_SIZE); also RAG cases unless --rag-sample",
    )
    parser.add_argument(
        "--rag-sample",
        type=int,
        default=None,
        help="RAG cases, 0 = all (default RAG_EVAL_RAG_SAMPLE_SIZE, or --sample when given)",
    )
    parser.add_argument("--full", action="store_true", help="every item of the set (the whole test split)")
    parser.add_argument(
        "--gate-off",
        action="store_true",
        help="send answerability_gate=false with every /chat (compared only with such runs)",
    )
    parser.add_argument(
        "--verify-off", action="store_true", help="send verify=false with every /chat (compared only with such runs)"
    )
    parser.add_argument("--dataset", default=None, help="a JSONL evaluation set (default: fitz-gov test split)")
    parser.add_argument(
        "--split",
        choices=("test", "dev"),
        default="test",
        help="split: test reports, dev tunes (make answerability --verify-from a dev report); with --dataset, "
        "the items of that split of a generated set (items without a split always count)",
    )
    parser.add_argument("--threshold", type=float, default=settings.eval_regression_threshold)
    parser.add_argument("--reports-dir", default=str(settings.eval_reports_dir))
    parser.add_argument("--boot-local", action="store_true", help="start a local stack if the API does not answer")
    parser.add_argument("--local-data-dir", default=".data/eval", help="store of the local stack (--boot-local)")
    parser.add_argument(
        "--local-corpus",
        action="append",
        default=None,
        help="a folder the local stack serves instead of the whole fitz-gov corpus, beside the 400-document "
        "sample a first make run loads (repeatable; --boot-local; e.g. eval/ood/corpus)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    interrupt_on_sigterm()  # a stopped run still stops the local stack it booted
    settings = EvalSettings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "absl"):  # a line per request / per ROUGE call would drown the progress bars
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args = parse_args(argv, settings)
    evalset = load_set(args, settings)
    api_key = settings.api_key.get_secret_value() if settings.api_key else None
    stack = None
    api = ApiClient(args.api_url, api_key=api_key, timeout_s=settings.eval_request_timeout_s)
    try:
        if not api.ready():
            if not args.boot_local:
                print(f"eval: the API at {args.api_url} is not ready (GET /readyz)", file=sys.stderr)
                return EXIT_UNREACHABLE
            from eval.local_stack import LocalStack

            corpus = [Path(p) for p in args.local_corpus] if args.local_corpus else None
            stack = LocalStack(args.api_url, Path(args.local_data_dir), corpus=corpus)
            stack.start()
            if settings.eval_judge_base_url == "local":  # the booted stack's own LLM judges (a weak judge)
                settings = settings.model_copy(update={"eval_judge_base_url": stack.llm_url})
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
                chat_options=chat_options(args),
            )
        finally:
            if setup is not None:
                tracing.shutdown()
        from eval.phoenix_experiment import upload_quietly
        from services.core.observability.phoenix_rest import phoenix_base_url

        upload_quietly(phoenix_base_url(settings.tracing_endpoint, settings.phoenix_api_url), report, run_dir)
    finally:
        api.close()
        if stack is not None:
            stack.stop()
    print((run_dir / "report.md").read_text(encoding="utf-8"))
    print(f"eval: wrote {run_dir} (and {Path(args.reports_dir) / 'latest'})")
    return exit_code(report)


if __name__ == "__main__":
    sys.exit(main())
