"""One check run, end to end, without Prefect: appointments in, worklist and reminders out.

:func:`check_appointments` is the pure core (appointments + records -> rows with findings); it is what the
accuracy tests measure. :func:`run_check` adds everything around it: reading the export, the records
database, the snapshot and what changed since the previous run, the reminder letters, and the worklist
files. ``flows/previsit.py`` calls the same steps as Prefect tasks.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from frontdesk.checks.appointments import (
    Appointment,
    AppointmentFileError,
    ParsedAppointments,
    load_appointments,
)
from frontdesk.checks.config import LoadedChecks, checks_for
from frontdesk.checks.matching import Match, PatientIndex
from frontdesk.checks.patients import PatientRecord, RecordSource
from frontdesk.checks.rules import Finding, evaluate
from frontdesk.checks.schedule import next_business_day, practice_zone, settings_zone, today_in
from frontdesk.settings import Settings
from frontdesk.validators import check_state, check_zip

log = logging.getLogger("frontdesk.checks")

APPOINTMENT_SUFFIXES = (".csv", ".txt", ".json")


@dataclass
class Resolved:
    code: str
    message: str


@dataclass
class WorklistRow:
    """One appointment on the worklist."""

    appointment: Appointment
    match: Match
    findings: list[Finding]
    new: list[str] = field(default_factory=list)  # codes that were not there at the previous run
    resolved: list[Resolved] = field(default_factory=list)
    reminder_letter: str | None = None  # letter queued by this run
    reminder_note: str | None = None  # why no letter was queued although there are gaps

    @property
    def status(self) -> str:
        return "missing" if any(f.severity == "error" for f in self.findings) else "ready"

    @property
    def record(self) -> PatientRecord | None:
        return self.match.record

    @property
    def patient_name(self) -> str:
        r = self.record
        if r is not None and (r.first_name or r.last_name):
            return f"{r.first_name} {r.last_name}".strip()
        return self.appointment.patient_name or "(name not in export)"

    @property
    def date_of_birth(self) -> date | None:
        r = self.record
        return r.date_of_birth if r is not None and r.date_of_birth else self.appointment.date_of_birth

    @property
    def codes(self) -> list[str]:
        return [f.code for f in self.findings]

    def as_json(self) -> dict[str, Any]:
        a, r = self.appointment, self.record
        dob = self.date_of_birth
        return {
            "appointment_id": a.key,
            "source": a.where,
            "start": a.start.isoformat(timespec="minutes"),
            "time": a.start.strftime("%H:%M"),
            "provider": a.provider,
            "visit_type": a.visit_type,
            "patient": {"name": self.patient_name, "date_of_birth": dob.isoformat() if dob else None,
                        "mrn": a.mrn, "record_id": r.patient_id if r else None,
                        "matched_by": self.match.matched_by},
            "status": self.status,
            "findings": [f.as_dict() for f in self.findings],
            "new": list(self.new),
            "resolved": [{"code": x.code, "message": x.message} for x in self.resolved],
            "reminder_letter": self.reminder_letter,
            "reminder_note": self.reminder_note,
        }


@dataclass
class CheckReport:
    visit_date: date
    rows: list[WorklistRow]
    generated_at: datetime
    source: Path | None = None
    format: str | None = None
    bad_rows: list[str] = field(default_factory=list)
    skipped_status: int = 0
    other_dates: int = 0
    run_id: int | None = None
    previous_run_id: int | None = None
    gone_since_previous: int = 0  # appointments in the previous run, not in this one (cancelled, moved)
    reminders_queued: int = 0
    cancelled_keys: list[str] = field(default_factory=list)  # of the checked day, as the export says
    reminders_voided: int = 0  # pending reminders of visits cancelled since they were queued
    reminders_too_late: int = 0  # gaps whose reminder could not arrive before the visit (or the day is past)
    outputs: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "appointments": len(self.rows),
            "ready": sum(r.status == "ready" for r in self.rows),
            "missing": sum(r.status == "missing" for r in self.rows),
            "findings": dict(sorted(Counter(c for r in self.rows for c in r.codes).items())),
            "new": sum(len(r.new) for r in self.rows),
            "resolved": sum(len(r.resolved) for r in self.rows),
            "gone_since_previous": self.gone_since_previous,
            "reminders_queued": self.reminders_queued,
            "reminders_not_sent": sum(1 for r in self.rows if r.reminder_note),
            "reminders_voided": self.reminders_voided,
            "reminders_too_late": self.reminders_too_late,
            "bad_rows_skipped": len(self.bad_rows),
            "cancelled_skipped": self.skipped_status,
            "other_dates": self.other_dates,
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "date": self.visit_date.isoformat(),
            "generated_at": self.generated_at.isoformat(timespec="seconds"),
            "run_id": self.run_id,
            "previous_run_id": self.previous_run_id,
            "source": str(self.source) if self.source else None,
            "format": self.format,
            "summary": self.summary(),
            "appointments": [r.as_json() for r in self.rows],
            "bad_rows": list(self.bad_rows),
            "warnings": list(self.warnings),
            "outputs": dict(self.outputs),
        }


def check_appointments(appointments: Sequence[Appointment], records: RecordSource, checks: LoadedChecks, *,
                       today: date) -> list[WorklistRow]:
    """Match every appointment to a record and evaluate the rules; rows come back in worklist order
    (provider, then time), which is how the front desk walks through the day."""
    mrns = {a.mrn for a in appointments if a.mrn}
    dobs = {a.date_of_birth for a in appointments if a.date_of_birth}
    index = PatientIndex(records.candidates(mrns, dobs))
    rows = []
    for appt in sorted(appointments, key=lambda a: (a.provider.casefold(), a.start, a.patient_name.casefold())):
        match = index.match(appt)
        rows.append(WorklistRow(appt, match, evaluate(appt, match, checks, today=today)))
    return rows


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


def mailing_address(row: WorklistRow) -> list[str] | None:
    """Address lines a letter can be mailed to, or None: a reminder that cannot arrive is not queued."""
    r = row.record
    if r is not None:
        parts = {k: r.text(f"patient.address.{k}") for k in ("street", "city", "state", "zip")}
    else:
        parts = dict(row.appointment.address)
    street, city, state, zip_code = (parts.get(k, "") for k in ("street", "city", "state", "zip"))
    if not street or not city or check_state(state) or check_zip(zip_code):
        return None
    return [street, f"{city}, {state} {zip_code}"]


def reminder_context(row: WorklistRow, codes: Iterable[str], settings: Settings, today: date) -> dict[str, Any]:
    """What ``templates/letters/appointment_reminder.docx`` is rendered with (kept on the letter row)."""
    wanted = set(codes)
    items = [f.message for f in row.findings if f.code in wanted]
    a = row.appointment
    from frontdesk.language import PREFERRED_LANGUAGE_KEY, clock_time, language_of, letter_date, weekday_date

    first = row.record.first_name if row.record else (a.first_name or "")
    language = language_of(row.record.value(PREFERRED_LANGUAGE_KEY) if row.record else None)
    practice = settings.practice
    return {
        "language": language,
        "practice": {"name": practice.name, "address_lines": list(practice.address_lines), "phone": practice.phone},
        "letter_date": letter_date(today, language),
        "patient": {"full_name": row.patient_name, "first_name": first or "Patient",
                    "address_lines": mailing_address(row) or []},
        "appointment": {"date": weekday_date(a.start.date(), language),
                        "time": clock_time(a.start.time(), language),
                        "provider": a.provider, "start": a.start.isoformat(timespec="minutes")},
        "missing_items": items,
        "gaps": sorted(wanted),
        "reference": a.key,
    }


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
