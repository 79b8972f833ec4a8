"""``python -m eval.scheduler``: the compose ``eval`` service, running ``eval.run`` on ``RAG_EVAL_SCHEDULE``.

It sleeps until the next scheduled minute (UTC; see eval/schedule.py), then runs one evaluation as a child
process (``python -m eval.run --sample RAG_EVAL_SAMPLE_SIZE --rag-sample RAG_EVAL_RAG_SAMPLE_SIZE``: by
default 200 retrieval queries and every RAG case of the test split, under 30 minutes on 2 CPU cores, see
eval/run.py) so a crash or a leak in one run never takes the scheduler down, logs the exit status
(non-zero = regression or failure, also visible as ``gate_failed`` in the history), and waits for the
next time. SIGTERM stops it between runs, or ends the running evaluation first.

Each night measures fitz-gov (the shipped models' reference) and then, when the deployment has one, the test
split of its own generated question set (``make generate``; ``RAG_EVAL_GENERATED_SET``, default
``<data dir>/generated/latest/questions.jsonl``), every RAG case of it, into ``<reports>/generated``: a report
and a paired-bootstrap gate of its own, so a drop on the user's documents fails the night as one on fitz-gov
does. The set is looked up at each run, so one generated after the scheduler started is measured too. Last come
the user cases: thumbs-down that a person accepted as regression cases (``python -m eval.feedback``), read from
the application database at each run, into ``<reports>/user-cases``.

    python -m eval.scheduler                # forever
    python -m eval.scheduler --now          # one run at start, then on schedule
"""

from __future__ import annotations

import argparse
import logging
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from eval.schedule import Schedule
from services.core.settings import EvalSettings

logger = logging.getLogger("eval.scheduler")


def eval_command(settings: EvalSettings, extra: list[str] | None = None) -> list[str]:
    return [
        sys.executable, "-m", "eval.run",
        "--api-url", settings.eval_api_url,
        "--sample", str(settings.eval_sample_size),
        "--rag-sample", str(settings.eval_rag_sample_size),
        "--reports-dir", str(settings.eval_reports_dir),
        *(extra or []),
    ]  # fmt: skip


def generated_set(settings: EvalSettings) -> Path | None:
    """The deployment's generated question set the nightly run measures, when there is one."""
    path = settings.eval_generated_set or settings.data_dir / "generated" / "latest" / "questions.jsonl"
    return path if path.exists() else None


def user_cases(settings: EvalSettings) -> Path | None:
    """The accepted thumbs-down cases (eval/feedback.py), exported for tonight's run; None when there are none or
    the application database cannot be read (logged: the other sections still run)."""
    from eval.feedback import export, open_state
    from services.state.db import DatabaseUnavailable, SchemaTooNew

    path = settings.eval_reports_dir / "user-cases" / "cases.jsonl"
    try:
        state = open_state(settings)
    except (DatabaseUnavailable, SchemaTooNew) as exc:
        logger.warning("user cases skipped: %s", exc)
        return None
    try:
        return path if export(state, path) else None
    except DatabaseUnavailable as exc:
        logger.warning("user cases skipped: %s", exc)
        return None
    finally:
        state.db.close()


def evaluations(settings: EvalSettings) -> list[list[str]]:
    """Tonight's runs, a report and a gate each: fitz-gov; the generated set's test split (all its cases); the
    user cases people's thumbs-down became (all of them)."""
    runs = [eval_command(settings)]
    found = generated_set(settings)
    if found is not None:
        own = settings.model_copy(update={"eval_reports_dir": settings.eval_reports_dir / "generated"})
        runs.append(eval_command(own, ["--dataset", str(found), "--split", "test", "--full"]))
    cases = user_cases(settings)
    if cases is not None:
        own = settings.model_copy(update={"eval_reports_dir": settings.eval_reports_dir / "user-cases"})
        runs.append(eval_command(own, ["--dataset", str(cases), "--full"]))
    return runs


class Scheduler:
    """Runs ``commands`` (a fixed command, or a function giving tonight's commands) on the schedule."""

    def __init__(
        self,
        schedule: Schedule,
        commands: list[str] | Callable[[], list[list[str]]],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.schedule = schedule
        self.commands = commands
        self.clock = clock
        self.stopping = threading.Event()
        self.current: subprocess.Popen[bytes] | None = None

    def run_once(self) -> int:
        """Every command in turn (a stop ends the rest); the first non-zero exit status, else 0."""
        worst = 0
        for command in self.commands() if callable(self.commands) else [self.commands]:
            if self.stopping.is_set():
                break
            logger.info("evaluation starting: %s", " ".join(command))
            self.current = subprocess.Popen(command)
            code = self.current.wait()
            self.current = None
            level = logging.INFO if code == 0 else logging.ERROR
            logger.log(level, "evaluation finished with exit status %s%s", code, "" if code == 0 else " (see report)")
            worst = worst or code  # the first failure (a signal-killed run is negative, still a failure)
        return worst

    def loop(self, *, run_now: bool = False, max_runs: int | None = None) -> None:
        runs = 0
        if run_now and not self.stopping.is_set():
            self.run_once()
            runs += 1
        while not self.stopping.is_set() and (max_runs is None or runs < max_runs):
            now = self.clock()
            due = self.schedule.next_after(now)
            logger.info("next evaluation at %s", due.isoformat())
            if self.stopping.wait(max(0.0, (due - now).total_seconds())):
                break
            self.run_once()
            runs += 1

    def stop(self) -> None:
        self.stopping.set()
        if self.current is not None and self.current.poll() is None:
            self.current.terminate()


def main(argv: list[str] | None = None) -> int:
    settings = EvalSettings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--now", action="store_true", help="run one evaluation at start, then follow the schedule")
    args = parser.parse_args(argv)
    schedule = Schedule.parse(settings.eval_schedule)  # a bad schedule fails here, at start
    scheduler = Scheduler(schedule, lambda: evaluations(settings))
    signal.signal(signal.SIGTERM, lambda *_: scheduler.stop())
    signal.signal(signal.SIGINT, lambda *_: scheduler.stop())
    logger.info("schedule %r (UTC), reports in %s", settings.eval_schedule, settings.eval_reports_dir)
    scheduler.loop(run_now=args.now)
    return 0


if __name__ == "__main__":
    sys.exit(main())
