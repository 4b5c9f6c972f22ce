"""What a check run reports: one worklist row per appointment, and the run around them.

Apart from :mod:`frontdesk.checks.runner` so that the store (which records a run) and the worklist (which
prints one) use these types without importing the runner that uses both of them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from frontdesk.billable import check_state, check_zip
from frontdesk.checks.appointments import Appointment
from frontdesk.checks.matching import Match
from frontdesk.checks.patients import PatientRecord
from frontdesk.checks.rules import Finding
from frontdesk.settings import Settings


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
