"""When a reminder letter can still arrive before the visit.

A reminder is paper the post office must deliver. It leaves the practice in a mail batch (``frontdesk
mail``, run on ``prefect.mail_cron``) and needs ``reminder_lead_business_days`` business days (default 3,
checks.yaml) between that batch and the visit: a Monday visit's reminder must be in the previous
Wednesday's batch (Thursday, Friday, Monday). Practice holidays (checks.yaml ``holidays``) are not
business days, and no batch is printed on one.

Every function takes ``now`` rather than reading the clock, so the scheduled run, ``frontdesk check``
and the tests (with a fixed clock) share one answer.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from frontdesk.checks.schedule import is_business_day

#: How far ahead a mail batch is looked for: a cron that never fires in a year is not a mail schedule.
_HORIZON = timedelta(days=366)


class ReminderWhen(enum.StrEnum):
    in_time = "in_time"  # the next mail batch is on or before the last day that arrives in time
    too_late = "too_late"  # the last batch that would arrive in time has gone
    day_past = "day_past"  # the visit is today or already over: nothing to remind of


@dataclass(frozen=True)
class ReminderTiming:
    when: ReminderWhen
    mail_by: date  # the last batch day that still arrives in time
    next_batch: datetime | None  # the next mail batch, in the practice's zone

    @property
    def in_time(self) -> bool:
        return self.when is ReminderWhen.in_time

    @property
    def note(self) -> str | None:
        """What the worklist says when no reminder is mailed for this reason."""
        if self.when is ReminderWhen.day_past:
            return "visit day is today or past: no reminder"
        if self.when is ReminderWhen.too_late:
            return (f"too late to mail a reminder (it had to go out by {self.mail_by:%a %b} {self.mail_by.day}): "
                    "call the patient")
        return None


def last_mail_day(visit: date, lead_business_days: int, holidays: Iterable[date] = ()) -> date:
    """The last business day whose mail batch still leaves ``lead_business_days`` business days before
    the visit: Monday with 3 -> the Wednesday before."""
    closed = set(holidays)
    d = visit
    for _ in range(lead_business_days):
        d -= timedelta(days=1)
        while not is_business_day(d, closed):
            d -= timedelta(days=1)
    if lead_business_days == 0:
        while not is_business_day(d, closed):
            d -= timedelta(days=1)
    return d


def next_mail_batch(now: datetime, cron: str, tz: tzinfo, holidays: Iterable[date] = ()) -> datetime | None:
    """The next run of the mail batch at or after ``now`` that is not on a practice holiday."""
    from cronsim import CronSim  # ships with Prefect 3; imported late to keep the CLI fast

    closed = set(holidays)
    local = now.astimezone(tz).replace(tzinfo=None, second=0, microsecond=0)
    # CronSim yields times strictly after its start: start a minute early so a batch due now counts.
    for run in CronSim(cron, local - timedelta(minutes=1)):
        if run - local > _HORIZON:
            return None
        if run.date() not in closed:
            return run.replace(tzinfo=tz)
    return None  # pragma: no cover - CronSim is endless


def reminder_timing(visit: date, now: datetime, *, cron: str, tz: tzinfo, lead_business_days: int,
                    holidays: Iterable[date] = ()) -> ReminderTiming:
    """Whether a reminder queued ``now`` for a visit on ``visit`` can arrive in time."""
    closed = set(holidays)
    mail_by = last_mail_day(visit, lead_business_days, closed)
    today = now.astimezone(tz).date()
    batch = next_mail_batch(now, cron, tz, closed)
    if visit <= today:
        return ReminderTiming(ReminderWhen.day_past, mail_by, batch)
    if batch is None or batch.date() > mail_by:
        return ReminderTiming(ReminderWhen.too_late, mail_by, batch)
    return ReminderTiming(ReminderWhen.in_time, mail_by, batch)


def reminder_days(now: datetime, *, cron: str, tz: tzinfo, lead_business_days: int,
                  holidays: Iterable[date] = ()) -> list[date]:
    """The visit days whose last batch in time is the next one: what a scheduled run queues reminders
    for now (Tuesday evening, batch Wednesday 16:00 -> Saturday, Sunday and Monday's visits). Earlier
    runs would miss visits booked later; later runs are too late."""
    closed = set(holidays)
    batch = next_mail_batch(now, cron, tz, closed)
    if batch is None:
        return []
    days: list[date] = []
    d = batch.date() + timedelta(days=1)
    limit = batch.date() + timedelta(days=7 + 2 * lead_business_days + len(closed))
    while d <= limit:
        if last_mail_day(d, lead_business_days, closed) == batch.date():
            days.append(d)
        d += timedelta(days=1)
    return days
