"""The ``previsit_check`` flow: Prefect orchestration over :mod:`frontdesk.checks.runner`, nothing more.

Scheduled by ``frontdesk serve`` with :func:`deployment_schedule` (``checks.schedule`` in the settings,
default 17:00 on weekdays in the practice's zone); a run without a date checks the next business day, so
Friday evening's run prepares Monday. Tasks pass worklist rows (patient data) in memory only:
``persist_result=False`` and ``NO_CACHE``. The table artifact shown in the Prefect UI carries times,
providers, opaque ids, status and the rule messages, never a patient's name or date of birth: the UI
is not where patient data should be read.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows.errors import phi_free
from frontdesk.checks.appointments import ParsedAppointments
from frontdesk.checks.runner import (
    CheckReport,
    build_report,
    default_visit_date,
    read_appointments,
    render_outputs,
)
from frontdesk.checks.schedule import parse_visit_date, practice_zone, settings_zone, validate_cron
from frontdesk.settings import Settings, load_settings


def deployment_schedule(settings: Settings) -> Any:
    """The schedule ``frontdesk serve`` deploys this flow with: ``checks.schedule`` (cron) in the
    practice's zone (``checks.timezone``, else ``prefect.timezone``)."""
    from prefect.schedules import Cron

    return Cron(validate_cron(settings.checks.schedule), timezone=settings_zone(settings))


@task(name="read-appointments", cache_policy=NO_CACHE, persist_result=False)
@phi_free("read-appointments")
def read_appointments_task(settings: Settings, appointments: str | None, skip_bad_rows: bool,
                           today: date) -> ParsedAppointments:
    from frontdesk.checks.config import checks_for

    checks = checks_for(settings.checks.rules_file)
    return read_appointments(settings, checks, Path(appointments) if appointments else None,
                             skip_bad_rows=skip_bad_rows, today=today)


@task(name="check-appointments", cache_policy=NO_CACHE, persist_result=False, retries=2,
      retry_delay_seconds=[2, 10])
@phi_free("check-appointments")
def check_task(settings: Settings, parsed: ParsedAppointments, visit_date: date, today: date,
               now: datetime | None = None) -> CheckReport:
    """Match, evaluate, store the run and queue reminders: one transaction, safe to retry (a retried
    run stores a second snapshot, and the reminder ledger keeps letters to one per gap)."""
    from frontdesk.checks.config import checks_for
    from frontdesk.checks.store import CheckStore
    from frontdesk.db import open_database

    checks = checks_for(settings.checks.rules_file)
    db = open_database(settings)
    try:
        store = CheckStore(db)
        report = build_report(settings, checks, parsed, visit_date, store, today=today)
        store.record_run(report, settings, today=today, now=now)
        return report
    finally:
        db.dispose()


@task(name="write-worklist", cache_policy=NO_CACHE, persist_result=False, retries=1, retry_delay_seconds=5)
@phi_free("write-worklist")
def write_worklist_task(settings: Settings, report: CheckReport) -> dict[str, str]:
    from frontdesk.checks.store import CheckStore
    from frontdesk.db import open_database

    outputs = render_outputs(report, settings)
    db = open_database(settings)
    try:
        CheckStore(db).audit_export(report)
    finally:
        db.dispose()
    return outputs


def artifact_table(report: CheckReport) -> list[dict[str, str]]:
    """One line per appointment for the Prefect UI: ids, status and what to ask, no names or dates of birth."""
    return [{
        "time": r.appointment.start.strftime("%H:%M"),
        "provider": r.appointment.provider,
        "appointment": r.appointment.key,
        "record": r.record.patient_id if r.record else "none",
        "status": r.status.upper(),
        "ask": " | ".join(f.message for f in r.findings) or "nothing",
        "changes": " ".join([f"+{c}" for c in r.new] + [f"-{x.code}" for x in r.resolved]),
        "reminder": r.reminder_letter or "",
    } for r in report.rows]


@flow(name="previsit_check", persist_result=False, log_prints=False)
@phi_free("previsit_check")
def previsit_check_flow(visit_date: str | None = None, appointments: str | None = None,
                        skip_bad_rows: bool = False, now: str | None = None) -> dict[str, Any]:
    """Check a day's appointments; returns the run id, counts and file paths (no patient data).
    ``appointments`` is a file name in the worker's ``checks.appointments_dir`` (default: the newest
    export there); the configuration is the worker's own (see :mod:`flows.params`).

    ``now`` is the time the run counts as (an ISO date and time such as ``2026-02-25T17:00``, the
    practice's zone when it names none), for a run replayed after an outage; by default the clock, read
    once. It is parsed as a date and time and nothing else: it names no file and no configuration, it
    only decides which reminders can still arrive by post."""
    from flows.params import file_in

    settings = load_settings(None)
    if appointments is not None:
        appointments = str(file_in(settings.checks.appointments_dir, appointments, "appointments"))
    tz = practice_zone(settings_zone(settings))
    at = datetime.now(tz) if now is None else _run_time(now, tz)
    now_at = at  # every step below judges "too late to mail" by the same time
    today = now_at.astimezone(tz).date()
    day = parse_visit_date(visit_date, today=today) if visit_date else default_visit_date(settings, now=now_at)
    parsed = read_appointments_task(settings, appointments, skip_bad_rows, today)
    report = check_task(settings, parsed, day, today, now_at)
    reminder_runs: dict[str, Any] = {}
    if not visit_date:  # the scheduled run: also the days whose reminders must be in the next mail batch
        for later in scheduled_reminder_days(settings, now_at):
            if later != day:
                extra = check_task(settings, parsed, later, today, now_at)
                reminder_runs[later.isoformat()] = {"run_id": extra.run_id,
                                                    "reminders_queued": extra.reminders_queued}
    outputs = write_worklist_task(settings, report)
    summary = report.summary()
    create_table_artifact(
        table=artifact_table(report), key="previsit-worklist",
        description=(f"Pre-visit worklist for {day.isoformat()}: {summary['appointments']} appointments, "
                     f"{summary['missing']} missing paperwork, {summary['reminders_queued']} reminders queued "
                     f"(run {report.run_id}). Names are on the printed worklist only."))
    return {"date": day.isoformat(), "run_id": report.run_id, "previous_run_id": report.previous_run_id,
            "summary": summary, "outputs": outputs, "warnings": report.warnings, "reminder_runs": reminder_runs}


def _run_time(now: str, tz: Any) -> datetime:
    """``now`` as an aware date and time; ParameterRefused for anything else."""
    from flows.params import ParameterRefused

    try:
        given = datetime.fromisoformat(now) if isinstance(now, str) and len(now) <= 40 else None
    except ValueError:
        given = None
    if given is None:
        raise ParameterRefused("now: an ISO date and time, e.g. 2026-02-25T17:00")
    return given if given.tzinfo else given.replace(tzinfo=tz)


def scheduled_reminder_days(settings: Settings, now: datetime) -> list[date]:
    """The visit days whose reminders must be queued now to be in the next mail batch in time."""
    from frontdesk.checks.config import checks_for
    from frontdesk.checks.reminders import reminder_days

    config = checks_for(settings.checks.rules_file).config
    return reminder_days(now, cron=settings.prefect.mail_cron, tz=practice_zone(settings_zone(settings)),
                         lead_business_days=config.reminder_lead_business_days, holidays=config.holidays)
