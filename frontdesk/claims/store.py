"""Eligibility and claims with the records database and storage: what the commands and the flow run.

Every X12 file is filed to storage like every other output (``x12/YYYY/MM/<batch id>/<kind>.x12``,
recorded before it is written and confirmed after) with an audit event, and outgoing files are also
put in the clearinghouse outbox under opaque names (``<batch id>.<kind>.x12``, mode 0600) for the
clearinghouse's own client to send. Responses (271, 999, 277CA) are documents: the pipeline files
and applies them (:mod:`frontdesk.claims.responses`, :mod:`frontdesk.clearinghouse`).

The clearinghouse itself cannot run here: nothing in Frontdesk talks to one. Tests stand in for it by
answering the 270 in the outbox with a generated 271 (tests/claims_fixtures.py).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from frontdesk import audit
from frontdesk.checks.patients import PatientRecord
from frontdesk.claims import claim837, cms1500, eligibility
from frontdesk.claims.ledger import read_claim_ledger
from frontdesk.claims.payers import payers_for
from frontdesk.db import Database
from frontdesk.db.claims_models import ClaimRow, X12Batch
from frontdesk.db.claims_models import EligibilityRequest as RequestRow
from frontdesk.db.models import Patient
from frontdesk.settings import Settings
from frontdesk.storage import Storage

log = logging.getLogger("frontdesk.claims")
INACTIVE_LETTER = "missing_insurance"  # the letter a 271 saying "inactive" queues (responses.py)


def _cents(d: Decimal | None) -> int | None:
    return None if d is None else int((d * 100).to_integral_value())


def next_control_number(s: Any) -> int:
    """ISA13/GS06 for the next outgoing file: one more than any written before (never reused)."""
    current = s.scalar(select(func.max(X12Batch.control_number)).where(X12Batch.direction == "out"))
    return int(current or 0) + 1


def write_private(path: Path, data: bytes) -> None:
    """Write a file readable only by Frontdesk's user (0600) in a 0700 folder, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _file_batch(db: Database, storage: Storage, batch: X12Batch, data: bytes, kind: str) -> str:
    from frontdesk.letters.filing import file_object, month_key

    key = month_key("x12", batch.id, batch.created_at, f"{kind}.x12")
    obj = file_object(db, storage, data, key, role="batch", content_type="application/edi-x12")
    with db.begin() as s:
        row = s.get(X12Batch, batch.id)
        assert row is not None
        row.storage_key, row.sha256 = key, obj.sha256
    return key


def records_by_id(db: Database, patient_ids: Sequence[str]) -> dict[str, PatientRecord]:
    """Patient records for the given ids (the claims ledger names records by Frontdesk id)."""
    ids = sorted(set(patient_ids))
    with db.begin() as s:
        patients = list(s.scalars(select(Patient).where(Patient.id.in_(ids)).options(selectinload(Patient.fields))))
        for p in patients:
            audit.record(s, "read", "patient", p.id, patient_id=p.id, detail="claims")
        return {p.id: PatientRecord(p.id, p.first_name, p.last_name, p.date_of_birth,
                                    fields={f.key: f.value for f in p.fields}) for p in patients}


# --- eligibility -----------------------------------------------------------------------------------------

@dataclass
class EligibilityRun:
    visit_date: date
    batch_id: str | None = None
    outbox_file: str | None = None
    storage_key: str | None = None
    requests: int = 0
    not_sent: list[eligibility.NotSent] = field(default_factory=list)
    no_record: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"date": self.visit_date.isoformat(), "batch_id": self.batch_id, "outbox_file": self.outbox_file,
                "storage_key": self.storage_key, "requests": self.requests, "no_record": self.no_record,
                "not_sent": [{"appointment_id": n.appointment_key, "patient_id": n.patient_id, "reason": n.reason}
                             for n in self.not_sent]}


def send_eligibility(settings: Settings, visit_date: date, db: Database, storage: Storage, *,
                     appointments_file: Path | None = None, skip_bad_rows: bool = False,
                     today: date | None = None, when: datetime | None = None) -> EligibilityRun:
    """Build the 270 for a day's appointments (the same export ``frontdesk check`` reads), file it and
    put it in the outbox. Patients without usable insurance are reported, not sent."""
    from frontdesk.checks.config import checks_for
    from frontdesk.checks.matching import PatientIndex
    from frontdesk.checks.runner import read_appointments
    from frontdesk.checks.schedule import practice_zone, settings_zone, today_in
    from frontdesk.checks.store import CheckStore

    eligibility.require_receiver(settings)
    checks = checks_for(settings.checks.rules_file)
    today = today or today_in(practice_zone(settings_zone(settings)))
    parsed = read_appointments(settings, checks, appointments_file, skip_bad_rows=skip_bad_rows, today=today)
    todays = [a for a in parsed.appointments if a.start.date() == visit_date]
    store = CheckStore(db)
    index = PatientIndex(store.candidates({a.mrn for a in todays if a.mrn},
                                          {a.date_of_birth for a in todays if a.date_of_birth}))
    payers = payers_for(settings.claims.payers_file)
    run = EligibilityRun(visit_date)
    requests: list[eligibility.EligibilityRequest] = []
    seen: set[str] = set()
    for appt in todays:
        match = index.match(appt)
        if match.record is None:
            run.no_record += 1
            run.not_sent.append(eligibility.NotSent(appt.key, None, "no patient record matched (see the worklist)"))
            continue
        if match.record.patient_id in seen:
            continue  # two visits the same day: one question
        seen.add(match.record.patient_id)
        r = eligibility.request_for(match.record, appt.key, visit_date, payers)
        if isinstance(r, eligibility.NotSent):
            run.not_sent.append(r)
        else:
            requests.append(r)
    run.requests = len(requests)
    if not requests:
        return run
    when = when or datetime.now(UTC)
    with db.begin() as s:
        control = next_control_number(s)
        batch = X12Batch(kind="270", direction="out", control_number=control, status="written",
                         counts={"requests": len(requests), "not_sent": len(run.not_sent)}, created_at=when)
        s.add(batch)
        s.flush()
        for r in requests:
            s.add(RequestRow(trace=r.trace, batch_id=batch.id, patient_id=r.patient_id,
                             appointment_key=r.appointment_key, payer_id=r.payer_id, service_date=r.service_date))
            audit.record(s, "export", "patient", r.patient_id, patient_id=r.patient_id,
                         detail=f"eligibility request in {batch.id}")
        audit.record(s, "create", "x12_batch", batch.id, detail=f"270; {len(requests)} requests")
    text = eligibility.build_270(requests, settings, control_number=control, when=when)
    data = text.encode("ascii", "replace")
    run.batch_id = batch.id
    run.storage_key = _file_batch(db, storage, batch, data, "270")
    out = settings.claims.clearinghouse.outbox / f"{batch.id}.270.x12"
    write_private(out, data)
    run.outbox_file = str(out)
    log.info("eligibility batch %s: %d requests, %d not sent", batch.id, len(requests), len(run.not_sent))
    return run


# --- claims ------------------------------------------------------------------------------------------------

@dataclass
class ClaimsRun:
    batch_id: str | None = None
    claims: int = 0
    total: Decimal = Decimal("0.00")
    outbox_file: str | None = None
    storage_key: str | None = None
    forms_pdf: str | None = None
    preview_pdf: str | None = None
    forms: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"batch_id": self.batch_id, "claims": self.claims, "total": f"{self.total:.2f}",
                "outbox_file": self.outbox_file, "storage_key": self.storage_key, "forms": self.forms,
                "forms_pdf": self.forms_pdf, "preview_pdf": self.preview_pdf}


def send_claims(settings: Settings, ledger: Path, db: Database, storage: Storage, *,
                service_date: date | None = None, printer: str = "default", paper: bool = True,
                when: datetime | None = None) -> ClaimsRun:
    """Ledger -> checked claims -> 837P validated by pyx12 -> filed, outbox; and the CMS-1500 PDFs.
    A batch with any refused claim writes nothing (ClaimRefused lists every problem)."""
    claim837.require_billing(settings)
    visits = read_claim_ledger(ledger)
    if service_date is not None:
        visits = [v for v in visits if v.first_date == service_date]
    run = ClaimsRun()
    if not visits:
        return run
    records = records_by_id(db, [v.patient_id for v in visits])
    payers = payers_for(settings.claims.payers_file)
    claims = claim837.prepare_claims(visits, records, payers, settings)
    with db.begin() as s:
        known = set(s.scalars(select(ClaimRow.id).where(ClaimRow.id.in_([c.claim_id for c in claims]))))
    if known:
        from frontdesk.claims.errors import ClaimRefused

        raise ClaimRefused([f"claim {c}: already sent in an earlier batch (a corrected claim needs a new visit id)"
                            for c in sorted(known)])
    when = when or datetime.now(UTC)
    # paper first: a claim the form cannot hold (an identifier too long for its box) refuses the batch
    # before anything is recorded or written
    forms = cms1500.render_pdf(claims, settings, printer=printer) if paper else b""
    preview = cms1500.render_pdf(claims, settings, preview=True) if paper else b""
    with db.begin() as s:
        control = next_control_number(s)
        text = claim837.write_checked_837p(claims, settings, control_number=control, when=when)
        batch = X12Batch(kind="837P", direction="out", control_number=control, status="written",
                         counts={"claims": len(claims)}, created_at=when)
        s.add(batch)
        s.flush()
        for c in claims:
            s.add(ClaimRow(id=c.claim_id, batch_id=batch.id, patient_id=c.patient_id, payer_id=c.payer_id,
                           total_cents=int(c.visit.total * 100), status="written"))
            audit.record(s, "export", "patient", c.patient_id, patient_id=c.patient_id,
                         detail=f"claim in {batch.id}")
        audit.record(s, "create", "x12_batch", batch.id, detail=f"837P; {len(claims)} claims")
    data = text.encode("ascii", "replace")
    run.batch_id, run.claims = batch.id, len(claims)
    run.total = sum((c.visit.total for c in claims), Decimal("0.00"))
    run.storage_key = _file_batch(db, storage, batch, data, "837p")
    out = settings.claims.clearinghouse.outbox / f"{batch.id}.837p.x12"
    write_private(out, data)
    run.outbox_file = str(out)
    if paper:
        folder = settings.claims.output_dir / batch.id
        write_private(folder / "cms1500-data.pdf", forms)
        write_private(folder / "cms1500-preview.pdf", preview)
        run.forms_pdf, run.preview_pdf = str(folder / "cms1500-data.pdf"), str(folder / "cms1500-preview.pdf")
        run.forms = sum(len(cms1500.split_forms(c.visit.lines)) for c in claims)
        with db.begin() as s:
            audit.record(s, "export", "x12_batch", batch.id, detail=f"CMS-1500; {run.forms} forms")
    return run


def list_claims(db: Database) -> list[dict[str, Any]]:
    """Every claim sent, newest first: its state and flags (999 and 277CA reasons in plain words). Claim
    ids are the practice's visit ids; patients appear by Frontdesk id only. The listing is audited."""
    with db.begin() as s:
        rows = list(s.scalars(select(ClaimRow).order_by(ClaimRow.created_at.desc(), ClaimRow.id)))
        out = [{"claim_id": r.id, "status": r.status, "patient_id": r.patient_id, "payer_id": r.payer_id,
                "batch_id": r.batch_id, "total": f"{r.total_cents / 100:.2f}", "flags": list(r.flags or [])}
               for r in rows]
        if out:
            audit.record(s, "read", "claim", "*", detail=f"claims listed; {len(out)} claims")
    return out
