"""One check run, end to end, without Prefect: appointments in, worklist and reminders out.

:func:`check_appointments` is the pure core (appointments + records -> rows with findings); it is what the
accuracy tests measure. :func:`run_check` adds everything around it: reading the export, the records
database, the snapshot and what changed since the previous run, the reminder letters, and the worklist
files. ``flows/previsit.py`` calls the same steps as Prefect tasks.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from frontdesk import progress
from frontdesk.checks.appointments import (
    Appointment,
    AppointmentFileError,
    ParsedAppointments,
    load_appointments,
)
from frontdesk.checks.config import LoadedChecks, checks_for
from frontdesk.checks.matching import PatientIndex
from frontdesk.checks.patients import PatientRecord, RecordSource
from frontdesk.checks.report import CheckReport, WorklistRow
from frontdesk.checks.report import Resolved as Resolved
from frontdesk.checks.report import mailing_address as mailing_address
from frontdesk.checks.report import reminder_context as reminder_context
from frontdesk.checks.rules import Finding, evaluate
from frontdesk.checks.schedule import next_business_day, practice_zone, settings_zone, today_in
from frontdesk.settings import Settings

log = logging.getLogger("frontdesk.checks")

APPOINTMENT_SUFFIXES = (".csv", ".txt", ".json")


def check_appointments(appointments: Sequence[Appointment], records: RecordSource, checks: LoadedChecks, *,
                       today: date) -> list[WorklistRow]:
    """Match every appointment to a record and evaluate the rules; rows come back in worklist order
    (provider, then time), which is how the front desk walks through the day."""
    mrns = {a.mrn for a in appointments if a.mrn}
    dobs = {a.date_of_birth for a in appointments if a.date_of_birth}
    index = PatientIndex(records.candidates(mrns, dobs))
    rows = []
    with progress.step("checking appointments", len(appointments)) as checking:
        for appt in sorted(appointments, key=lambda a: (a.provider.casefold(), a.start, a.patient_name.casefold())):
            match = index.match(appt)
            findings = evaluate(appt, match, checks, today=today)
            findings += coverage_findings(match.record, appt.start.date(), today=today)
            rows.append(WorklistRow(appt, match, findings))
            checking.advance()
    return rows


COVERAGE_VALID_DAYS = 30


def coverage_findings(record: PatientRecord | None, visit_date: date, *, today: date) -> list[Finding]:
    """What the payer's latest eligibility answer (X12 271) means for this visit. An answer older than
    COVERAGE_VALID_DAYS before the visit says nothing about it and is not shown."""
    from frontdesk.checks.rules import join_items

    cov = record.coverage if record is not None else None
    if cov is None or (visit_date - cov.checked_on).days > COVERAGE_VALID_DAYS:
        return []
    when = f"{cov.checked_on:%m/%d/%Y}"
    if cov.status == "inactive":
        return [Finding("coverage", "insurance.inactive", "error",
                        f"Your insurance company reports your coverage as not active (checked {when}). "
                        "Please bring your current insurance card.")]
    if cov.status == "not_found":
        why = f": {join_items(list(cov.reasons))}" if cov.reasons else ""
        return [Finding("coverage", "insurance.not_found", "error",
                        f"Your insurance company could not find your coverage (checked {when}){why}. "
                        "Please bring your insurance card.")]
    if cov.status == "rejected":
        why = f": {join_items(list(cov.reasons))}" if cov.reasons else ""
        return [Finding("coverage", "insurance.unverified", "warning",
                        f"Coverage could not be checked{why}. Staff: check it by phone or on the payer's portal.",
                        remind=False)]
    out: list[Finding] = []
    if cov.status == "active" and (cov.copay is not None or cov.deductible_remaining is not None):
        parts = []
        if cov.copay is not None:
            parts.append(f"copay ${cov.copay:.2f}")
        if cov.deductible_remaining is not None:
            parts.append(f"deductible remaining ${cov.deductible_remaining:.2f}")
        plan = f" ({cov.plan_name})" if cov.plan_name else ""
        out.append(Finding("coverage", "insurance.copay", "info",
                           f"Coverage active{plan}, checked {when}: {', '.join(parts)}.", remind=False))
    return out


def newest_export(folder: Path) -> Path | None:
    """The scheduler's latest export in the drop folder (hidden and temporary files ignored)."""
    if not folder.is_dir():
        return None
    files = [p for p in folder.iterdir()
             if p.is_file() and p.suffix.lower() in APPOINTMENT_SUFFIXES and not p.name.startswith((".", "~"))]
    return max(files, key=lambda p: (p.stat().st_mtime, p.name)) if files else None


def read_appointments(settings: Settings, checks: LoadedChecks, appointments_file: Path | None, *,
                      skip_bad_rows: bool, today: date) -> ParsedAppointments:
    path = appointments_file or newest_export(settings.checks.appointments_dir)
    if path is None:
        raise AppointmentFileError(settings.checks.appointments_dir,
                                   "no appointment export here; give --appointments FILE, or have the scheduling "
                                   "system save its export in this folder")
    tz = practice_zone(settings_zone(settings))
    return load_appointments(path, checks.config.appointments, tz, skip_bad_rows=skip_bad_rows, today=today)


def default_visit_date(settings: Settings, *, now: datetime | None = None) -> date:
    """What an unattended run checks: the next business day in the practice's zone (Friday -> Monday)."""
    checks = checks_for(settings.checks.rules_file)
    tz = practice_zone(settings_zone(settings))
    today = now.astimezone(tz).date() if now is not None else today_in(tz)
    return next_business_day(today, checks.config.holidays)


def build_report(settings: Settings, checks: LoadedChecks, parsed: ParsedAppointments, visit_date: date,
                 records: RecordSource, *, today: date) -> CheckReport:
    """The day's rows from parsed appointments (other days are counted, not checked)."""
    todays = [a for a in parsed.appointments if a.start.date() == visit_date]
    rows = check_appointments(todays, records, checks, today=today)
    return CheckReport(visit_date, rows, datetime.now(UTC), parsed.source, parsed.format,
                       [str(p) for p in parsed.problems], parsed.skipped_status,
                       len(parsed.appointments) - len(todays),
                       cancelled_keys=[a.key for a in parsed.cancelled if a.start.date() == visit_date])


def render_outputs(report: CheckReport, settings: Settings, folder: Path | None = None, *,
                   pdf: bool = True) -> dict[str, str]:
    """Write the worklist files. A PDF that cannot be printed is a warning: the HTML prints too."""
    from frontdesk.checks.worklist import write_outputs
    from frontdesk.exceptions import ConversionError

    folder = folder or settings.checks.output_dir
    try:
        report.outputs = write_outputs(report, settings, folder, pdf=pdf)
    except ConversionError as exc:
        report.warnings.append(f"worklist PDF not written: {exc}; print the HTML page instead")
        report.outputs = write_outputs(report, settings, folder, pdf=False)
    return report.outputs


def run_check(settings: Settings, visit_date: date, *, appointments_file: Path | None = None,
              skip_bad_rows: bool = False, records: RecordSource | None = None, db: Any = None,
              today: date | None = None, render: bool = True, pdf: bool = True,
              out_dir: Path | None = None, now: datetime | None = None) -> CheckReport:
    """The whole check for one day. With the records database (the default), the run is stored, changes
    since the previous run of the same day are reported, and reminder letters are queued once per gap.
    ``records`` (e.g. :class:`~frontdesk.checks.patients.InMemoryRecords`) checks without a database:
    nothing is stored and no letters are queued.

    ``now`` is the time of the run (aware): it decides which reminders can still arrive by post. The
    command and the flow pass it; given ``today`` alone, only a past day is refused reminders."""
    from frontdesk.checks.store import CheckStore  # SQLAlchemy only when the records database is used

    checks = checks_for(settings.checks.rules_file)
    tz = practice_zone(settings_zone(settings))
    if now is not None:
        today = today or now.astimezone(tz).date()
    today = today or today_in(tz)
    parsed = read_appointments(settings, checks, appointments_file, skip_bad_rows=skip_bad_rows, today=today)
    store: CheckStore | None = None
    owns_db = False
    if records is None:
        if db is None:
            from frontdesk.db import open_database

            db, owns_db = open_database(settings), True
        store = CheckStore(db)
        records = store
    try:
        report = build_report(settings, checks, parsed, visit_date, records, today=today)
        if store is not None:
            store.record_run(report, settings, today=today, now=now)
        if render:
            render_outputs(report, settings, out_dir, pdf=pdf)
            if store is not None:
                store.audit_export(report)
    finally:
        if owns_db and db is not None:
            db.dispose()
    summary = report.summary()
    log.info("check run %s: %d appointments, %d missing, %d reminders queued", report.run_id,
             summary["appointments"], summary["missing"], summary["reminders_queued"])
    return report
