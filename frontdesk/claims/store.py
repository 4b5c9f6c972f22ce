"""Eligibility and claims with the records database and storage: what the commands and the flow run.

Every X12 file is filed to storage like every other output (``x12/YYYY/MM/<batch id>/<kind>.x12``,
recorded before it is written and confirmed after) with an audit event, and outgoing files are also
put in the clearinghouse outbox under opaque names (``<batch id>.<kind>.x12``, mode 0600) for the
clearinghouse's own client to send. Responses are read from a file (or the inbox) and filed too.

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
from frontdesk.db.claims_models import ClaimRow, EligibilityResult, X12Batch
from frontdesk.db.claims_models import EligibilityRequest as RequestRow
from frontdesk.db.models import Letter, Patient
from frontdesk.settings import Settings
from frontdesk.storage import Storage

log = logging.getLogger("frontdesk.claims")
INACTIVE_LETTER = "missing_insurance"


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


@dataclass
class ResponsesRun:
    batch_id: str | None
    results: list[eligibility.CoverageResult]
    unmatched: int = 0
    letters_queued: int = 0
    already_read: bool = False  # the same file was read before: nothing recorded twice

    def summary(self) -> dict[str, int]:
        out: dict[str, int] = {s.value: 0 for s in eligibility.CoverageStatus}
        for r in self.results:
            out[r.status.value] += 1
        return out

    def as_json(self) -> dict[str, Any]:
        return {"batch_id": self.batch_id, "summary": self.summary(), "unmatched": self.unmatched,
                "letters_queued": self.letters_queued, "already_read": self.already_read,
                "results": [r.as_json() for r in self.results]}


def _read_before(db: Database, kind: str, data: bytes) -> str | None:
    """The batch id of the same response file read earlier (by content), or None."""
    from frontdesk.storage import sha256_bytes

    with db.begin() as s:
        return s.scalar(select(X12Batch.id).where(X12Batch.direction == "in", X12Batch.kind == kind,
                                                  X12Batch.sha256 == sha256_bytes(data)))


def _inactive_letter_context(settings: Settings, patient: Patient, today: date) -> dict[str, Any] | None:
    from frontdesk.letters.kinds import letter_date, practice_block

    v = {f.key: f.value for f in patient.fields}
    street, city, state, zip_code = (str(v.get(f"patient.address.{k}") or "").strip()
                                     for k in ("street", "city", "state", "zip"))
    if not (street and city and state and zip_code):
        return None
    return {"practice": practice_block(settings), "letter_date": letter_date(today),
            "patient": {"full_name": f"{patient.first_name} {patient.last_name}".strip(),
                        "first_name": patient.first_name or "Patient",
                        "address_lines": [street, f"{city}, {state} {zip_code}"]},
            "reference": patient.id.upper(),
            "missing_items": ["Current insurance: your insurance company tells us the coverage we have on "
                              "file is not active. Please send us your current insurance card."]}


def read_responses(settings: Settings, path: Path, db: Database, storage: Storage, *,
                   today: date | None = None, label: str | None = None) -> ResponsesRun:
    """Read a 271 file: each answer goes on the patient's record with the date checked; an inactive
    coverage queues the missing-insurance letter (once per patient while one is pending)."""
    from frontdesk.claims.x12 import read_interchange_file

    today = today or date.today()
    label = label or Path(path).name
    ix_text = Path(path).read_bytes()
    ix = read_interchange_file(path, label)
    results = eligibility.read_271(ix_text.decode("latin-1"), label)
    run = ResponsesRun(None, results)
    before = _read_before(db, "271", ix_text)
    if before is not None:
        run.batch_id, run.already_read = before, True
        return run
    with db.begin() as s:
        batch = X12Batch(kind="271", direction="in", control_number=ix.control_number, status="read",
                         counts={"responses": len(results)})
        s.add(batch)
        s.flush()
        run.batch_id = batch.id
        traces = [r.trace for r in results if r.trace]
        reqs = {q.trace: q for q in s.scalars(select(RequestRow).where(RequestRow.trace.in_(traces)))} if traces else {}
        for r in results:
            q = reqs.get(r.trace or "")
            if q is None:
                run.unmatched += 1
                continue
            r.patient_id = q.patient_id
            row = EligibilityResult(patient_id=q.patient_id, trace=r.trace, batch_id=batch.id, checked_on=today,
                                    status=r.status.value, payer_id=r.payer_id or q.payer_id,
                                    plan_name=(r.plan_name or None), copay_cents=_cents(r.copay),
                                    deductible_remaining_cents=_cents(r.deductible_remaining),
                                    reasons=list(r.reasons) or None)
            s.add(row)
            audit.record(s, "update", "patient", q.patient_id, patient_id=q.patient_id,
                         detail=f"eligibility {r.status.value}; {batch.id}")
            if r.status == eligibility.CoverageStatus.inactive:
                pending = s.scalar(select(Letter.id).where(Letter.patient_id == q.patient_id,
                                                           Letter.kind == INACTIVE_LETTER,
                                                           Letter.status.in_(("pending", "queued"))))
                patient = s.get(Patient, q.patient_id)
                if pending is None and patient is not None:
                    ctx = _inactive_letter_context(settings, patient, today)
                    if ctx is not None:
                        letter = Letter(kind=INACTIVE_LETTER, status="pending", patient_id=q.patient_id, context=ctx)
                        s.add(letter)
                        s.flush()
                        row.letter_id = letter.id
                        run.letters_queued += 1
                        audit.record(s, "create", "letter", letter.id, patient_id=q.patient_id,
                                     detail=f"{INACTIVE_LETTER}; coverage inactive; {batch.id}")
        audit.record(s, "create", "x12_batch", batch.id, detail=f"271 read; {len(results)} responses")
    with db.begin() as s:
        b = s.get(X12Batch, run.batch_id)
    assert b is not None
    _file_batch(db, storage, b, ix_text, "271")
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


def read_999(settings: Settings, path: Path, db: Database, storage: Storage) -> dict[str, Any]:
    """A 999 acknowledgment: accepted batches are marked accepted; rejected transactions put a flag on
    each claim the error points at (by segment position), or on every claim of the batch."""
    from frontdesk.claims.x12 import X12Error, loops, parse_interchange
    from frontdesk.letters.filing import filed_bytes

    raw = Path(path).read_bytes()
    ix = parse_interchange(raw.decode("latin-1"), Path(path).name)
    flagged = 0
    accepted = 0
    if _read_before(db, "999", raw) is not None:
        return {"accepted": 0, "flagged": 0, "already_read": True}
    with db.begin() as s:
        ack = X12Batch(kind="999", direction="in", control_number=ix.control_number, status="read")
        s.add(ack)
        s.flush()
        audit.record(s, "create", "x12_batch", ack.id, detail="999 read")
    _file_batch(db, storage, ack, raw, "999")
    for g in ix.groups:
        for t in g.transactions:
            if t.set_id != "999":
                continue
            ak1 = next((x for x in t.body if x.id == "AK1"), None)
            if ak1 is None:
                raise X12Error(Path(path).name, "999 without AK1")
            control = int(ak1[2] or 0)
            with db.begin() as s:
                batch = s.scalars(select(X12Batch).where(X12Batch.direction == "out", X12Batch.kind == "837P",
                                                         X12Batch.control_number == control)).first()
                if batch is None:
                    continue
                claims = list(s.scalars(select(ClaimRow).where(ClaimRow.batch_id == batch.id)))
                key = batch.storage_key
            text = (filed_bytes(db, storage, key) or b"").decode("ascii", "replace") if key else ""
            body = [ln for ln in text.splitlines() if ln and not ln.startswith(("ISA", "GS", "IEA", "GE"))]
            for ak2 in loops(t.body, "AK2", ("AK9",)):
                ik5 = next((x for x in ak2 if x.id == "IK5"), None)
                ok = ik5 is not None and ik5[1] in ("A", "E")
                with db.begin() as s:
                    rows = {c.id: s.get(ClaimRow, c.id) for c in claims}
                    if ok:
                        for r in rows.values():
                            if r is not None and r.status == "written":
                                r.status = "accepted"
                                accepted += 1
                        continue
                    targets: dict[str, list[str]] = {}
                    for ik3 in (x for x in ak2 if x.id == "IK3"):
                        pos = int(ik3[2] or 0)  # position within the transaction set, ST = 1
                        claim = None
                        for ln in body[:pos]:
                            if ln.startswith("CLM*"):
                                claim = ln.split("*")[1].rstrip("~")
                            elif ln.startswith("HL*") and ln.split("*")[3] in ("22",):
                                claim = None
                        if claim is None:  # an error in a subscriber loop: the claim after it
                            for ln in body[pos:]:
                                if ln.startswith("CLM*"):
                                    claim = ln.split("*")[1].rstrip("~")
                                    break
                        targets.setdefault(claim or "*", []).append(f"999: {ik3[1]} segment error {ik3[4]}")
                    if not targets:
                        targets["*"] = [f"999: transaction rejected ({ik5[1] if ik5 else 'no IK5'})"]
                    for claim_id, flags in targets.items():
                        for cid, r in rows.items():
                            if r is None or (claim_id != "*" and cid != claim_id):
                                continue
                            r.status = "rejected"
                            r.flags = [*(r.flags or []), *flags]
                            flagged += 1
                            audit.record(s, "update", "claim", cid, patient_id=r.patient_id, detail="999 rejection")
    return {"accepted": accepted, "flagged": flagged, "already_read": False}


# --- the clearinghouse inbox ---------------------------------------------------------------------------------

RESPONSE_SUFFIXES = (".x12", ".edi", ".txt", ".271", ".999", ".277")


@dataclass
class InboxRun:
    read: dict[str, int] = field(default_factory=dict)  # x12_271 / x12_999 / x12_277: files read
    failed: list[str] = field(default_factory=list)  # "<file>: reason" (file names are the clearinghouse's)
    letters_queued: int = 0
    claims_flagged: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"read": dict(self.read), "failed": list(self.failed), "letters_queued": self.letters_queued,
                "claims_flagged": self.claims_flagged}


def document_type(path: Path) -> str | None:
    """x12_271, x12_999 or x12_277 from the file's first ST segment; None when it is not X12."""
    from frontdesk.claims.x12 import X12Error, split_segments

    try:
        head = path.read_bytes()[:4096].decode("latin-1")
        segments, _ = split_segments(head, path.name)
    except (X12Error, OSError):
        return None
    st = next((s for s in segments if s.id == "ST"), None)
    return {"271": "x12_271", "999": "x12_999", "277": "x12_277"}.get(st[1]) if st is not None else None


def read_inbox(settings: Settings, db: Database, storage: Storage, *, today: date | None = None) -> InboxRun:
    """Every response file in the clearinghouse inbox: 271s update coverage, 999s flag claims, 277CAs are
    filed for staff. A file read is moved to ``done/``; one that cannot be read goes to ``failed/`` with a
    ``.reason.txt``, and never stops the others."""
    from frontdesk.exceptions import FrontdeskError

    inbox = settings.claims.clearinghouse.inbox
    run = InboxRun()
    if not inbox.is_dir():
        return run
    for path in sorted(p for p in inbox.iterdir() if p.is_file() and not p.name.startswith(".")
                       and p.suffix.lower() in RESPONSE_SUFFIXES):
        kind = document_type(path)
        try:
            if kind == "x12_271":
                res = read_responses(settings, path, db, storage, today=today)
                run.letters_queued += res.letters_queued
            elif kind == "x12_999":
                run.claims_flagged += read_999(settings, path, db, storage)["flagged"]
            elif kind == "x12_277":
                if _read_before(db, "277", path.read_bytes()) is not None:
                    raise ValueError("this 277CA was read before")
                with db.begin() as s:
                    batch = X12Batch(kind="277", direction="in", control_number=0, status="read")
                    s.add(batch)
                    s.flush()
                    audit.record(s, "create", "x12_batch", batch.id, detail="277CA filed for review")
                _file_batch(db, storage, batch, path.read_bytes(), "277")
            else:
                raise ValueError("not a 271, 999 or 277 X12 file")
        except (FrontdeskError, ValueError) as exc:
            reason = str(exc).split("\n")[0]
            run.failed.append(f"{path.name}: {reason}")
            dest = inbox / "failed" / path.name
            dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.replace(path, dest)
            write_private(dest.with_name(dest.name + ".reason.txt"), (reason + "\n").encode())
            continue
        run.read[kind] = run.read.get(kind, 0) + 1
        dest = inbox / "done" / path.name
        dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.replace(path, dest)
    return run
