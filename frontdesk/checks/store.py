"""The checks' side of the records database: reading patient records, storing each run's findings,
telling what changed since the previous run, and queueing reminder letters exactly once per gap.

A run is written in one transaction (the snapshot, the learned MRNs, the appointments, the letters and
their audit events), so a run that fails half-way leaves nothing behind that the next run would mistake
for "already reminded". Each reminder is inserted in a savepoint: when two runs overlap, the unique key
on (appointment, gap) lets exactly one of them queue the letter.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from frontdesk import audit
from frontdesk.billable import as_date
from frontdesk.checks.matching import mrn_key
from frontdesk.checks.patients import IntakeOnFile, PatientRecord
from frontdesk.checks.schedule import settings_zone
from frontdesk.db import Database
from frontdesk.db.checks_models import PatientIdentifier, ReminderGap
from frontdesk.db.models import Appointment as AppointmentRow
from frontdesk.db.models import CheckRun, Document, ExtractedField, Extraction, Letter, Patient
from frontdesk.settings import Settings
from frontdesk.states import PieceStatus, advance

if TYPE_CHECKING:
    from frontdesk.checks.report import CheckReport

REMINDER_KIND = "appointment_reminder"
MRN = "mrn"
SNAPSHOT_VERSION = 1
CONSENT_KEYS = ("consent.signature", "consent.date", "consent.hipaa_acknowledgment")


class CheckStore:
    """A :class:`~frontdesk.checks.patients.RecordSource` over the records database, plus run storage."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- records -----------------------------------------------------------------------------------

    def candidates(self, mrns: set[str], dates_of_birth: set[date]) -> list[PatientRecord]:
        keys = sorted({mrn_key(m) for m in mrns if mrn_key(m)})
        with self.db.begin() as s:
            by_mrn: dict[str, str] = {}
            if keys:
                for ident in s.scalars(select(PatientIdentifier).where(PatientIdentifier.system == MRN,
                                                                      PatientIdentifier.value.in_(keys))):
                    by_mrn[ident.patient_id] = ident.value
            conditions = []
            if dates_of_birth:
                conditions.append(Patient.date_of_birth.in_(sorted(dates_of_birth)))
            if by_mrn:
                conditions.append(Patient.id.in_(sorted(by_mrn)))
            if not conditions:
                return []
            patients = list(s.scalars(select(Patient).where(or_(*conditions))
                                      .options(selectinload(Patient.fields))))
            ids = [p.id for p in patients]
            known_mrns = dict(by_mrn)
            if ids:
                for ident in s.scalars(select(PatientIdentifier).where(PatientIdentifier.system == MRN,
                                                                      PatientIdentifier.patient_id.in_(ids))):
                    known_mrns.setdefault(ident.patient_id, ident.value)
            intakes = self._latest_intakes(s, ids)
            from frontdesk.checks.coverage import coverage_on_file  # eligibility answers (X12 271)

            coverage = coverage_on_file(s, ids)
            signed = self._signed_forms(s, ids)
            return [PatientRecord(patient_id=p.id, first_name=p.first_name, last_name=p.last_name,
                                  date_of_birth=p.date_of_birth, mrn=known_mrns.get(p.id),
                                  fields={f.key: f.value for f in p.fields}, intake=intakes.get(p.id),
                                  coverage=coverage.get(p.id), signed_forms=signed.get(p.id, {}))
                    for p in patients]

    @staticmethod
    def _signed_forms(s: Any, patient_ids: list[str]) -> dict[str, dict[str, date]]:
        """Issue 16: per patient, form id -> date of the latest signed copy of each form a form rule of
        checks.yaml names (the date beside the signature, else the day it arrived)."""
        from frontdesk.checks.config import checks_for
        from frontdesk.settings import default_settings

        rules = [r for r in checks_for(default_settings().checks.rules_file).config.form_rules.values() if r.enabled]
        if not patient_ids or not rules:
            return {}
        by_form = {r.form: r for r in rules}
        docs = list(s.scalars(select(Document).where(Document.patient_id.in_(patient_ids),
                                                     Document.form.in_(sorted(by_form)),
                                                     Document.outcome.is_distinct_from("failed"))))
        out: dict[str, dict[str, date]] = {}
        for d in docs:
            rule = by_form[d.form]
            ex_id = s.scalars(select(Extraction.id).where(Extraction.document_id == d.id)
                              .order_by(Extraction.id.desc()).limit(1)).first()
            if ex_id is None:
                continue
            values = {f.key: f.value for f in s.scalars(select(ExtractedField).where(
                ExtractedField.extraction_id == ex_id,
                ExtractedField.key.in_([rule.signature_key, rule.date_key])))}
            if values.get(rule.signature_key) is not True:
                continue
            when = as_date(values.get(rule.date_key)) or d.received_at.date()
            forms = out.setdefault(d.patient_id, {})
            if when > forms.get(d.form, date.min):
                forms[d.form] = when
        return out

    @staticmethod
    def _latest_intakes(s: Any, patient_ids: list[str]) -> dict[str, IntakeOnFile]:
        """The newest intake form of each patient and its consent boxes, from its latest reading."""
        if not patient_ids:
            return {}
        from frontdesk.fields import load_vocabulary
        from frontdesk.settings import default_settings

        other = sorted(load_vocabulary(default_settings().fields_file).forms)  # not a new-patient form
        docs = s.scalars(select(Document).where(Document.patient_id.in_(patient_ids),
                                                Document.document_type == "intake_form",
                                                Document.form.is_(None) | Document.form.not_in(other),
                                                Document.outcome.is_distinct_from("failed"))
                         .order_by(Document.received_at.desc(), Document.id.desc()))
        latest: dict[str, Document] = {}
        for d in docs:
            latest.setdefault(d.patient_id, d)
        if not latest:
            return {}
        doc_ids = [d.id for d in latest.values()]
        newest_extraction: dict[str, int] = {}
        for ex_id, doc_id in s.execute(select(Extraction.id, Extraction.document_id)
                                       .where(Extraction.document_id.in_(doc_ids)).order_by(Extraction.id)):
            newest_extraction[doc_id] = ex_id  # ascending ids: the last one wins
        consent: dict[str, dict[str, Any]] = {d: {} for d in doc_ids}
        if newest_extraction:
            for f in s.scalars(select(ExtractedField).where(
                    ExtractedField.extraction_id.in_(list(newest_extraction.values())),
                    ExtractedField.key.in_(CONSENT_KEYS))):
                consent[f.document_id][f.key] = f.value
        out = {}
        for pid, d in latest.items():
            c = consent[d.id]
            out[pid] = IntakeOnFile(document_id=d.id, received_on=d.received_at.date(),
                                    signed=c.get("consent.signature") is True,
                                    hipaa_acknowledged=c.get("consent.hipaa_acknowledgment") is True,
                                    signed_on=as_date(c.get("consent.date")),
                                    in_review=d.outcome == "needs_review")
        return out

    # --- runs ----------------------------------------------------------------------------------------

    def record_run(self, report: CheckReport, settings: Settings, *, today: date, now: datetime | None = None) -> None:
        """Store the run, fill each row's new/resolved, learn MRNs, and queue reminder letters.

        No reminder is queued for a visit today or past. With ``now`` (the time of the run), none is
        queued either when the next mail batch is too late for it to arrive (checks/reminders.py); the
        row says so. Without ``now`` (a run for a given day, e.g. back-filling) only the day is judged."""
        from frontdesk.checks.report import Resolved, mailing_address, reminder_context

        run_time = now
        tz = ZoneInfo(settings_zone(settings))
        started = report.generated_at
        with self.db.begin() as s:
            prev = s.scalars(select(CheckRun).where(CheckRun.run_date == report.visit_date,
                                                    CheckRun.status == "done")
                             .order_by(CheckRun.id.desc()).limit(1)).first()
            before: dict[str, dict[str, str]] = {}
            if prev is not None and isinstance(prev.findings, dict):
                report.previous_run_id = prev.id
                for key, entry in (prev.findings.get("appointments") or {}).items():
                    before[key] = dict(entry.get("findings") or {})
            keys_now = set()
            for row in report.rows:
                key = row.appointment.key
                keys_now.add(key)
                if prev is None:
                    continue
                old = before.get(key, {})
                row.new = [c for c in row.codes if c not in old]
                codes_now = set(row.codes)
                row.resolved = [Resolved(c, m) for c, m in old.items() if c not in codes_now]
            report.gone_since_previous = len(set(before) - keys_now)

            run = CheckRun(run_date=report.visit_date, status="done", started_at=started,
                           findings=self._snapshot(report), finished_at=datetime.now(UTC))
            s.add(run)
            s.flush()
            report.run_id = run.id
            audit.record(s, "create", "check_run", str(run.id), detail=f"{len(report.rows)} appointments")

            keys = sorted({row.appointment.key for row in report.rows})
            stored = {a.external_id: a for a in self._in_chunks(
                s, lambda chunk: select(AppointmentRow).where(AppointmentRow.external_id.in_(chunk)), keys)}
            reminded: dict[str, set[str]] = {}
            for gap in self._in_chunks(
                    s, lambda chunk: select(ReminderGap).where(ReminderGap.appointment_key.in_(chunk)), keys):
                reminded.setdefault(gap.appointment_key, set()).add(gap.code)

            for row in report.rows:
                if row.record is not None:
                    audit.record(s, "read", "patient", row.record.patient_id, patient_id=row.record.patient_id,
                                 detail=f"pre-visit check run {run.id}")
                    self._learn_mrn(s, row)
                self._upsert_appointment(s, row, tz, stored)

            timing_note = self._reminder_timing_note(report, settings, today=today, now=run_time)
            from frontdesk.letter_events import letter_enabled

            if not letter_enabled(REMINDER_KIND):
                timing_note = "reminder letters are switched off (config/letters.yaml)"
            for row in report.rows:
                codes = [f.code for f in row.findings if f.remind]
                if not codes:
                    continue
                key = row.appointment.key
                done = reminded.get(key, set())
                fresh = [c for c in codes if c not in done]
                if not fresh:
                    continue
                if timing_note is not None:
                    row.reminder_note = timing_note
                    report.reminders_too_late += 0 if timing_note.startswith("reminder letters are switched") else 1
                    continue
                if mailing_address(row) is None:
                    row.reminder_note = "no complete mailing address on file: ask at the desk"
                    continue
                patient_id = row.record.patient_id if row.record else None
                try:
                    with s.begin_nested():
                        letter = Letter(kind=REMINDER_KIND, status="pending", patient_id=patient_id,
                                        context=reminder_context(row, fresh, settings, today))
                        s.add(letter)
                        s.flush()
                        for c in fresh:
                            s.add(ReminderGap(appointment_key=key, code=c, letter_id=letter.id,
                                              check_run_id=run.id))
                        s.flush()
                        audit.record(s, "create", "letter", letter.id, patient_id=patient_id,
                                     detail=f"{REMINDER_KIND}; {len(fresh)} items; check run {run.id}")
                except IntegrityError:  # another run queued this gap a moment ago
                    row.reminder_note = "reminder already queued by another run"
                    continue
                row.reminder_letter = letter.id
                report.reminders_queued += 1
            self._void_cancelled(s, report)
            run.findings = self._snapshot(report)

    @staticmethod
    def _reminder_timing_note(report: CheckReport, settings: Settings, *, today: date,
                              now: datetime | None) -> str | None:
        """Why no reminder can reach this day's patients in time, or None when it can."""
        from frontdesk.checks.config import checks_for
        from frontdesk.checks.reminders import ReminderTiming, ReminderWhen, last_mail_day, reminder_timing

        config = checks_for(settings.checks.rules_file).config
        lead = config.reminder_lead_business_days
        if now is None:
            if report.visit_date <= today:
                return ReminderTiming(ReminderWhen.day_past,
                                      last_mail_day(report.visit_date, lead, config.holidays), None).note
            return None
        timing = reminder_timing(report.visit_date, now, cron=settings.prefect.mail_cron,
                                 tz=ZoneInfo(settings_zone(settings)), lead_business_days=lead,
                                 holidays=config.holidays)
        return timing.note

    @staticmethod
    def _snapshot(report: CheckReport) -> dict[str, Any]:
        """What the next run compares against. Keys and codes only, plus record ids: no names."""
        return {
            "version": SNAPSHOT_VERSION,
            "format": report.format,
            "summary": report.summary(),
            "appointments": {
                r.appointment.key: {
                    "patient_id": r.record.patient_id if r.record else None,
                    "status": r.status,
                    "findings": {f.code: f.message for f in r.findings},
                    "reminder_letter": r.reminder_letter,
                } for r in report.rows
            },
        }

    @staticmethod
    def _learn_mrn(s: Any, row: Any) -> None:
        """Remember the scheduler's MRN for a record matched by name and date of birth."""
        mrn = mrn_key(row.appointment.mrn)
        if not mrn or row.match.matched_by != "name_dob" or row.record.mrn:
            return
        try:
            with s.begin_nested():
                s.add(PatientIdentifier(patient_id=row.record.patient_id, system=MRN, value=mrn))
                s.flush()
        except IntegrityError:  # the MRN already names another record: leave both alone for staff
            return
        row.record.mrn = mrn

    def _void_cancelled(self, s: Any, report: CheckReport) -> None:
        """A reminder for a visit that was cancelled must not go out: void it while it is still pending
        (one already in a mail batch is the mail run's to hold back). Only an explicit cancellation in the
        export counts; an appointment merely missing from it may be a bad row that was skipped. The voided
        letter's gaps leave the ledger, so a visit booked again under the same ID is reminded again."""
        keys = sorted(set(report.cancelled_keys))
        if not keys:
            return
        for a in self._in_chunks(s, lambda chunk: select(AppointmentRow).where(
                AppointmentRow.external_id.in_(chunk)), keys):
            a.status = "cancelled"
        gaps = self._in_chunks(s, lambda chunk: select(ReminderGap).where(ReminderGap.appointment_key.in_(chunk)),
                               keys)
        letter_ids = {g.letter_id for g in gaps}
        if not letter_ids:
            return
        for letter in s.scalars(select(Letter).where(Letter.id.in_(sorted(letter_ids)), Letter.status == "pending")):
            advance(letter, PieceStatus.VOID)
            for g in gaps:
                if g.letter_id == letter.id:
                    s.delete(g)
            report.reminders_voided += 1
            audit.record(s, "update", "letter", letter.id, patient_id=letter.patient_id,
                         detail=f"void: appointment cancelled; check run {report.run_id}")

    @staticmethod
    def _in_chunks(s: Any, query: Any, keys: list[str], size: int = 500) -> list[Any]:
        """One query per few hundred keys instead of one per appointment (bind-parameter limits apply)."""
        out: list[Any] = []
        for i in range(0, len(keys), size):
            out.extend(s.scalars(query(keys[i:i + size])))
        return out

    @staticmethod
    def _upsert_appointment(s: Any, row: Any, tz: ZoneInfo, stored: dict[str, AppointmentRow]) -> None:
        a = row.appointment
        start = a.start.replace(tzinfo=tz).astimezone(UTC)
        existing = stored.get(a.key)
        if existing is None:
            existing = stored[a.key] = AppointmentRow(external_id=a.key)
            s.add(existing)
        existing.start_at = start
        existing.provider = a.provider
        existing.patient_id = row.record.patient_id if row.record else None
        existing.status = "scheduled"

    def audit_export(self, report: CheckReport) -> None:
        """The worklist files hold patient data: writing them is an export."""
        if report.run_id is None or not report.outputs:
            return
        with self.db.begin() as s:
            audit.record(s, "export", "worklist", f"check_run:{report.run_id}",
                         detail=",".join(sorted(report.outputs)))
