"""When the next evaluation runs: a pure function of the schedule text and "now", all in UTC.

UTC on purpose: a local-time nightly job runs twice or not at all on DST change nights; UTC has no such
nights. Accepted schedules (``RAG_EVAL_SCHEDULE``):

- ``"02:00"``: daily at 02:00 UTC; ``"02:00,14:30"``: twice a day;
- five-field cron ``"minute hour day-of-month month day-of-week"`` with ``*``, numbers, ``a-b`` ranges,
  ``*/n`` or ``a-b/n`` steps and comma lists; day of week 0-6 with 0 (or 7) = Sunday. As in cron, when both
  day-of-month and day-of-week are restricted, a day matching either runs.

Usage::

    schedule = Schedule.parse("30 2 * * 1-5")
    schedule.next_after(datetime(2026, 11, 22, 12, 0, tzinfo=UTC))   # Monday 2026-11-23 02:30 UTC
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))


@dataclass(frozen=True, slots=True)
class Schedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday .. 6 = Saturday
    days_restricted: bool = False
    weekdays_restricted: bool = False
    exact_times: frozenset[tuple[int, int]] | None = None  # "02:00,14:30": those two, not 02:30 and 14:00

    @classmethod
    def parse(cls, text: str) -> Schedule:
        text = text.strip()
        if not text:
            raise ValueError("empty schedule")
        times = [t.strip() for t in text.split(",")]
        if all(_HHMM.match(t) for t in times):
            pairs = frozenset((int(t.split(":")[0]), int(t.split(":")[1])) for t in times)
            return cls(
                frozenset(m for _, m in pairs), frozenset(h for h, _ in pairs),
                frozenset(range(1, 32)), frozenset(range(1, 13)), frozenset(range(7)), exact_times=pairs,
            )  # fmt: skip
        parts = text.split()
        if len(parts) != 5:
            raise ValueError(f"schedule {text!r}: use 'HH:MM', 'HH:MM,HH:MM' or five cron fields")
        sets = [_field(p, name, lo, hi) for p, (name, lo, hi) in zip(parts, _FIELDS, strict=True)]
        weekdays = frozenset(d % 7 for d in sets[4])
        return cls(sets[0], sets[1], sets[2], sets[3], weekdays, parts[2] != "*", parts[4] != "*")

    def _day_matches(self, day: datetime) -> bool:
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return dom or dow
        return dom and dow

    def _times(self) -> list[tuple[int, int]]:
        if self.exact_times is not None:
            return sorted(self.exact_times)
        return sorted((h, m) for h in self.hours for m in self.minutes)

    def next_after(self, now: datetime) -> datetime:
        """The first scheduled minute strictly after ``now`` (naive datetimes are taken as UTC)."""
        now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        for offset in range(0, 366 * 5):  # 29 February on a Sunday can be years away
            day = start + timedelta(days=offset)
            if not self._day_matches(day):
                continue
            for hour, minute in self._times():
                candidate = day.replace(hour=hour, minute=minute)
                if candidate > now:
                    return candidate
        raise ValueError("schedule never fires (e.g. 31 February)")


def _field(text: str, name: str, lo: int, hi: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"{name}: step must be >= 1 in {part!r}")
        if base == "*":
            first, last = lo, hi
        elif "-" in base:
            first, last = (int(x) for x in base.split("-", 1))
        else:
            first = int(base)
            last = hi if step_text else first
        if not (lo <= first <= hi and lo <= last <= hi and first <= last):
            raise ValueError(f"{name}: {part!r} outside {lo}-{hi}")
        values.update(range(first, last + 1, step))
    return frozenset(values)


def seconds_until(schedule: Schedule, now: datetime) -> float:
    return (schedule.next_after(now) - (now if now.tzinfo else now.replace(tzinfo=UTC))).total_seconds()
