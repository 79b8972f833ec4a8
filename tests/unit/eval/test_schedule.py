"""The scheduler's timing: next run from "now", daily times, cron fields, all in UTC."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from eval.schedule import Schedule, seconds_until
from eval.scheduler import Scheduler, eval_command
from services.core.settings import EvalSettings

pytestmark = pytest.mark.unit


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_daily_time_later_today_or_tomorrow() -> None:
    s = Schedule.parse("02:00")
    assert s.next_after(at(2026, 11, 22, 1, 30)) == at(2026, 11, 22, 2, 0)
    assert s.next_after(at(2026, 11, 22, 12, 0)) == at(2026, 11, 23, 2, 0)
    # strictly after: a run finishing within its own minute does not fire again
    assert s.next_after(at(2026, 11, 22, 2, 0)) == at(2026, 11, 23, 2, 0)


def test_month_and_year_boundaries() -> None:
    s = Schedule.parse("02:00")
    assert s.next_after(at(2026, 12, 31, 3, 0)) == at(2027, 1, 1, 2, 0)
    assert s.next_after(at(2028, 2, 28, 3, 0)) == at(2028, 2, 29, 2, 0)


def test_utc_has_no_dst_gap_or_repeat() -> None:
    # 29 March 2026 and 25 October 2026 are EU DST change nights: a UTC schedule is 24 h apart regardless
    s = Schedule.parse("02:30")
    for night in (at(2026, 3, 28, 3, 0), at(2026, 10, 24, 3, 0)):
        first = s.next_after(night)
        assert s.next_after(first) - first == timedelta(hours=24)


def test_other_timezones_and_naive_times_are_read_as_the_same_instant() -> None:
    s = Schedule.parse("02:00")
    plus_two = timezone(timedelta(hours=2))
    # 03:30 at UTC+2 is 01:30 UTC: today's 02:00 UTC is still ahead
    assert s.next_after(datetime(2026, 11, 22, 3, 30, tzinfo=plus_two)) == at(2026, 11, 22, 2, 0)
    assert s.next_after(datetime(2026, 11, 22, 1, 30)) == at(2026, 11, 22, 2, 0)
    assert seconds_until(s, at(2026, 11, 22, 1, 30)) == 1800.0


def test_a_list_of_times_means_exactly_those_times() -> None:
    s = Schedule.parse("02:00, 14:30")
    assert s.next_after(at(2026, 11, 22, 3, 0)) == at(2026, 11, 22, 14, 30)
    assert s.next_after(at(2026, 11, 22, 14, 30)) == at(2026, 11, 23, 2, 0)  # never 02:30 or 14:00


def test_cron_weekdays_steps_and_lists() -> None:
    weekdays = Schedule.parse("30 2 * * 1-5")
    # 2026-11-21 is a Saturday: next is Monday the 23rd
    assert weekdays.next_after(at(2026, 11, 21, 12, 0)) == at(2026, 11, 23, 2, 30)
    every_15 = Schedule.parse("*/15 * * * *")
    assert every_15.next_after(at(2026, 11, 22, 12, 7)) == at(2026, 11, 22, 12, 15)
    assert Schedule.parse("0 3,15 * * *").next_after(at(2026, 11, 22, 4, 0)) == at(2026, 11, 22, 15, 0)
    assert Schedule.parse("0 0 * * 7").next_after(at(2026, 11, 21, 12, 0)) == at(2026, 11, 22, 0, 0)  # 7 = Sunday


def test_cron_day_of_month_or_day_of_week_when_both_are_restricted() -> None:
    s = Schedule.parse("0 3 1 * 0")  # the 1st, or any Sunday (cron semantics)
    assert s.next_after(at(2026, 11, 23, 12, 0)) == at(2026, 11, 29, 3, 0)  # Sunday before the 1st
    assert s.next_after(at(2026, 11, 29, 4, 0)) == at(2026, 12, 1, 3, 0)


def test_rare_dates_are_found() -> None:
    assert Schedule.parse("0 0 29 2 *").next_after(at(2026, 11, 22)) == at(2028, 2, 29, 0, 0)


@pytest.mark.parametrize(
    "text", ["", "25:00", "2:61", "* * * *", "60 * * * *", "0 0 0 * *", "*/0 * * * *", "5-1 * * * *"]
)
def test_nonsense_schedules_are_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        Schedule.parse(text)


def test_a_schedule_that_never_fires_says_so() -> None:
    with pytest.raises(ValueError, match="never"):
        Schedule.parse("0 0 31 2 *").next_after(at(2026, 1, 1))


class RecordingScheduler(Scheduler):
    """The real scheduler, remembering each run's exit status."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.codes: list[int] = []

    def run_once(self) -> int:
        code = super().run_once()
        self.codes.append(code)
        return code


def test_scheduler_runs_the_command_when_due_and_reports_its_status() -> None:
    # the clock says one twentieth of a second before 02:00, so the wait is short and real
    clock = lambda: at(2026, 11, 22, 1, 59, 59) + timedelta(milliseconds=950)  # noqa: E731
    scheduler = RecordingScheduler(Schedule.parse("02:00"), [sys.executable, "-c", "raise SystemExit(3)"], clock=clock)
    scheduler.loop(run_now=True, max_runs=2)
    assert scheduler.codes == [3, 3]


def test_a_stopped_scheduler_does_not_run() -> None:
    scheduler = RecordingScheduler(Schedule.parse("02:00"), [sys.executable, "-c", "raise SystemExit(9)"])
    scheduler.stop()
    scheduler.loop(run_now=True)
    assert scheduler.codes == []


def test_scheduled_command_uses_the_settings() -> None:
    settings = EvalSettings(
        _env_file=None,
        eval_api_url="http://api:8000",
        eval_sample_size=7,
        eval_rag_sample_size=0,
        eval_reports_dir="/r",
    )
    cmd = eval_command(settings)
    assert cmd[1:3] == ["-m", "eval.run"]
    assert cmd[cmd.index("--api-url") + 1] == "http://api:8000" and cmd[cmd.index("--sample") + 1] == "7"
    assert cmd[cmd.index("--rag-sample") + 1] == "0"  # every RAG case
    assert cmd[cmd.index("--reports-dir") + 1] == "/r"


def test_a_night_measures_the_generated_set_too_once_there_is_one(tmp_path: Path) -> None:
    from eval.scheduler import evaluations

    settings = EvalSettings(
        _env_file=None,
        data_dir=tmp_path,
        eval_reports_dir=tmp_path / "reports",
        database_url=f"sqlite:///{tmp_path}/a.db",
    )
    assert len(evaluations(settings)) == 1  # fitz-gov only: nothing generated yet
    generated = tmp_path / "generated" / "latest" / "questions.jsonl"
    generated.parent.mkdir(parents=True)
    generated.write_text('{"id": "a", "question": "Q?", "expect": "answer", "split": "test"}\n')
    fitz, own = evaluations(settings)
    assert "--dataset" not in fitz and own[own.index("--dataset") + 1] == str(generated)
    assert own[own.index("--split") + 1] == "test" and own[own.index("--reports-dir") + 1] == str(
        tmp_path / "reports" / "generated"
    )


def test_a_night_measures_the_thumbs_down_a_person_accepted_as_its_user_cases(tmp_path: Path) -> None:
    from eval.feedback import open_state
    from eval.scheduler import evaluations
    from services.state.store import TurnRecord

    settings = EvalSettings(
        _env_file=None,
        data_dir=tmp_path,
        eval_reports_dir=tmp_path / "reports",
        database_url=f"sqlite:///{tmp_path}/a.db",
    )
    state = open_state(settings)
    for i in (1, 2):
        state.record_turn(TurnRecord(id=f"{i:032x}", question=f"Q{i}?", answer="I don't know.", declined=True))
    accepted = state.give_feedback(f"{1:032x}", "down", "missed_answer")
    state.give_feedback(f"{2:032x}", "down")  # pending: not a case until someone reads it
    assert len(evaluations(settings)) == 1
    state.review(accepted.id, accept=True, expect="answer", docs=["doc-7"])
    state.db.close()

    fitz, users = evaluations(settings)
    cases = Path(users[users.index("--dataset") + 1])
    assert users[users.index("--reports-dir") + 1] == str(tmp_path / "reports" / "user-cases")
    [item] = [json.loads(line) for line in cases.read_text().splitlines()]
    assert item == {
        "id": f"user-{accepted.id}", "question": "Q1?", "expect": "answer", "category": "user:missed_answer",
        "relevant_docs": ["doc-7"],
    }  # fmt: skip


def test_user_cases_are_skipped_not_fatal_when_the_database_is_down(tmp_path: Path) -> None:
    from eval.scheduler import evaluations

    settings = EvalSettings(
        _env_file=None,
        eval_reports_dir=tmp_path / "reports",
        database_url="postgresql+psycopg://nobody@127.0.0.1:1/x",
        database_timeout_s=1,
    )
    assert len(evaluations(settings)) == 1


def test_the_nights_worst_status_is_its_status() -> None:
    runs = [[sys.executable, "-c", "raise SystemExit(0)"], [sys.executable, "-c", "raise SystemExit(1)"]]
    scheduler = RecordingScheduler(Schedule.parse("02:00"), lambda: runs)
    scheduler.loop(run_now=True, max_runs=0)
    assert scheduler.codes == [1]
