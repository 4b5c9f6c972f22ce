"""Reminders arrive before the visit: a reminder goes out in a mail batch at least
``reminder_lead_business_days`` business days ahead (a Monday visit's reminder is in the previous
Wednesday's batch with the shipped schedules), practice holidays count as closed, a reminder that can no
longer arrive is not queued and the worklist says so, and no reminder is queued for a day already past.
Fixed clocks throughout: every function takes ``now``."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from cronsim import CronSim
from sqlalchemy import select

from frontdesk.checks.reminders import (
    ReminderWhen,
    last_mail_day,
    next_mail_batch,
    reminder_days,
    reminder_timing,
)
from frontdesk.checks.runner import run_check
from frontdesk.db import open_database
from frontdesk.db.models import Letter
from frontdesk.settings import load_settings
from tests.conftest import ROOT
from tests.fixtures.appointments import TIMEZONE, generate

CHICAGO = ZoneInfo("America/Chicago")
MONDAY = date(2026, 3, 9)
WEDNESDAY_BEFORE = date(2026, 3, 4)

pytest_plugins = ["tests.conftest_s3"]


def test_last_mail_day_counts_business_days_back() -> None:
    assert last_mail_day(MONDAY, 3) == WEDNESDAY_BEFORE
    assert last_mail_day(MONDAY, 1) == date(2026, 3, 6)  # Friday
    assert last_mail_day(date(2026, 3, 12), 3) == date(2026, 3, 9)  # Thursday -> Monday
    # The practice closed on Friday: one more day back.
    assert last_mail_day(MONDAY, 3, [date(2026, 3, 6)]) == date(2026, 3, 3)


def test_no_batch_is_counted_on_a_practice_holiday() -> None:
    tuesday_evening = datetime(2026, 3, 3, 17, 0, tzinfo=CHICAGO)
    assert next_mail_batch(tuesday_evening, "0 16 * * 1-5", CHICAGO) == datetime(2026, 3, 4, 16, 0, tzinfo=CHICAGO)
    closed_wednesday = next_mail_batch(tuesday_evening, "0 16 * * 1-5", CHICAGO, [WEDNESDAY_BEFORE])
    assert closed_wednesday == datetime(2026, 3, 5, 16, 0, tzinfo=CHICAGO)
    # a batch due this very minute still counts
    assert next_mail_batch(datetime(2026, 3, 4, 16, 0, tzinfo=CHICAGO), "0 16 * * 1-5", CHICAGO) == \
        datetime(2026, 3, 4, 16, 0, tzinfo=CHICAGO)


def test_shipped_schedules_put_a_monday_reminder_in_the_previous_wednesdays_batch() -> None:
    """Walk the shipped check schedule through the week before the visit: the run that queues Monday's
    reminders does so before Wednesday's batch, and no run after it could."""
    settings = load_settings()
    rules = yaml.safe_load((ROOT / "config" / "checks.yaml").read_text())
    lead = rules["reminder_lead_business_days"]
    tz = ZoneInfo(settings.checks.timezone or settings.prefect.timezone)
    mail_cron = settings.prefect.mail_cron
    runs = CronSim(settings.checks.schedule, datetime(2026, 2, 27, 0, 0))  # the Friday 10 days before
    queued_by: list[datetime] = []
    for run in runs:
        if run.date() >= MONDAY:
            break
        now = run.replace(tzinfo=tz)
        if MONDAY in reminder_days(now, cron=mail_cron, tz=tz, lead_business_days=lead):
            queued_by.append(now)
    assert len(queued_by) == 1, queued_by  # one scheduled run is responsible for Monday's reminders
    now = queued_by[0]
    assert now.date() == date(2026, 3, 3)  # Tuesday 17:00 ...
    timing = reminder_timing(MONDAY, now, cron=mail_cron, tz=tz, lead_business_days=lead)
    assert timing.when is ReminderWhen.in_time
    assert timing.next_batch is not None and timing.next_batch.date() == WEDNESDAY_BEFORE  # ... Wednesday's batch
    # From Wednesday's batch on, it is too late.
    after = datetime(2026, 3, 4, 16, 1, tzinfo=tz)
    late = reminder_timing(MONDAY, after, cron=mail_cron, tz=tz, lead_business_days=lead)
    assert late.when is ReminderWhen.too_late and late.note and "call the patient" in late.note


def test_a_past_or_todays_visit_gets_no_reminder() -> None:
    now = datetime(2026, 3, 10, 8, 0, tzinfo=CHICAGO)
    assert reminder_timing(MONDAY, now, cron="0 16 * * 1-5", tz=CHICAGO,
                           lead_business_days=3).when is ReminderWhen.day_past
    assert reminder_timing(date(2026, 3, 10), now, cron="0 16 * * 1-5", tz=CHICAGO,
                           lead_business_days=3).when is ReminderWhen.day_past


# --- the check run against the records database ----------------------------------------------------------


@pytest.fixture
def practice(tmp_path: Path, db_url: str) -> Any:
    settings = load_settings(database_url=db_url,
                             storage={"root": tmp_path / "storage", "spool": tmp_path / "spool"},
                             checks={"timezone": TIMEZONE, "output_dir": tmp_path / "out",
                                     "appointments_dir": tmp_path / "in"})
    db = open_database(settings)
    sc = generate(30, seed=16, visit_date=MONDAY, today=date(2026, 3, 2), extra_days=2, cancelled=1,
                  distractors=4)
    sc.load_into_db(db)
    export = sc.write_appointment_report(tmp_path / "appointments.csv")
    yield settings, db, export
    db.dispose()


def reminders(db: Any) -> list[Letter]:
    with db.begin() as s:
        return list(s.scalars(select(Letter).where(Letter.kind == "appointment_reminder")))


def test_reminders_queued_in_time_and_refused_when_too_late(practice: Any) -> None:
    settings, db, export = practice
    tz = ZoneInfo(TIMEZONE)
    thursday = datetime(2026, 3, 5, 17, 0, tzinfo=tz)  # Wednesday's batch has gone
    late = run_check(settings, MONDAY, appointments_file=export, db=db, render=False, now=thursday)
    assert reminders(db) == [] and late.reminders_queued == 0
    gaps = [r for r in late.rows if any(f.remind for f in r.findings)]
    assert gaps, "the generated day has patients with paperwork missing"
    notes = {r.reminder_note for r in gaps}
    assert all(n and n.startswith("too late to mail") for n in notes), notes
    summary = late.as_json()["summary"]
    assert summary["reminders_too_late"] == len(gaps) and summary["reminders_not_sent"] >= len(gaps)
    assert sum(1 for row in late.as_json()["appointments"] if (row["reminder_note"] or "").startswith("too late")) == len(gaps)

    tuesday = datetime(2026, 3, 3, 17, 0, tzinfo=tz)  # the shipped schedule's run for Monday's reminders
    in_time = run_check(settings, MONDAY, appointments_file=export, db=db, render=False, now=tuesday)
    assert in_time.reminders_queued > 0 and in_time.reminders_too_late == 0
    assert len(reminders(db)) == in_time.reminders_queued


def test_no_reminder_for_a_day_already_past(practice: Any) -> None:
    settings, db, export = practice
    after = datetime(2026, 3, 9, 18, 0, tzinfo=ZoneInfo(TIMEZONE))
    report = run_check(settings, MONDAY, appointments_file=export, db=db, render=False, now=after)
    assert report.reminders_queued == 0 and reminders(db) == []
    assert report.reminders_too_late > 0
    assert {r.reminder_note for r in report.rows if r.reminder_note} == {"visit day is today or past: no reminder"}
    # A run given only the day (no time) refuses a past day too.
    again = run_check(settings, MONDAY, appointments_file=export, db=db, render=False,
                      today=MONDAY + timedelta(days=1))
    assert again.reminders_queued == 0 and reminders(db) == []


def test_the_worklist_page_says_reminders_could_not_be_mailed(practice: Any, tmp_path: Path) -> None:
    settings, db, export = practice
    thursday = datetime(2026, 3, 5, 17, 0, tzinfo=ZoneInfo(TIMEZONE))
    report = run_check(settings, MONDAY, appointments_file=export, db=db, now=thursday, pdf=False,
                       out_dir=tmp_path / "worklist")
    html = next((tmp_path / "worklist").glob("*.html")).read_text()
    assert f"{report.reminders_too_late} reminders too late to mail: call" in html
    assert "No letter: too late to mail a reminder" in html
