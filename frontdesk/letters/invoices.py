"""Itemised invoices for self-pay visits: one per visit of a patient who pays for their own care, from the
visit ledger the claims are built from (one row per service line, the patient's Frontdesk record id).

Why from the visit ledger and not the statement ledger: a self-pay visit is never sent to a payer, so no
claim and no insurance payment will ever follow; the patient should get the bill for that visit, itemised
(date, CPT/HCPCS code in plain words, units, amount), soon after it, with a payment stub. An insured
patient's visit is billed by claim (``frontdesk claims``) and, for what is left, by statement.

The invoice is a letter (kind ``self_pay_invoice``) queued pending for the next mail batch, like every
other piece; ``config/letters.yaml`` can switch it off; one invoice per visit (the ledger's visit id),
however often the ledger is read. Problems name ledger rows and record ids, never a patient's name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from sqlalchemy import select

from frontdesk import audit
from frontdesk.db import Database
from frontdesk.db.models import Letter, Patient
from frontdesk.letters.kinds import INVOICE_KIND, practice_block
from frontdesk.settings import Settings
from frontdesk.states import PieceStatus

if TYPE_CHECKING:  # the command reads the ledger (frontdesk.claims imports letters: no circle here)
    from frontdesk.claims.ledger import Visit


@dataclass
class InvoiceRun:
    """What one reading of the visit ledger did (JSON: ``as_dict``; ids and row numbers only)."""

    visits: int = 0
    queued: list[str] = field(default_factory=list)  # letter ids
    already_invoiced: int = 0
    insured: int = 0  # visits of patients with insurance: billed by claim, not here
    not_invoiced: list[dict[str, str]] = field(default_factory=list)  # {"visit", "patient_id", "reason"}
    dry_run: bool = False
    would_queue: int = 0
    disabled: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"visits": self.visits, "queued": list(self.queued), "already_invoiced": self.already_invoiced,
                "insured": self.insured, "not_invoiced": list(self.not_invoiced), "dry_run": self.dry_run,
                "would_queue": self.would_queue, "disabled": self.disabled}


def is_self_pay(patient: Patient) -> bool:
    """The form said "I will pay for my care myself", or there is no insurance on file at all."""
    if patient.value("insurance.self_pay") is True:
        return True
    return not any(str(patient.value(f"insurance.primary.{k}") or "").strip() for k in ("payer_name", "member_id"))


@lru_cache(maxsize=4)
def _services(path: Path, mtime: float) -> dict[str, str]:
    if not mtime:
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {str(k).upper(): str(v) for k, v in (data.get("services") or {}).items()}


def service_words(code: str) -> str:
    """The plain words for a service code from ``config/services.yaml``, else a neutral line with the code."""
    from frontdesk.settings import home

    path = home() / "config" / "services.yaml"
    try:
        mtime = path.stat().st_mtime
    except OSError:
        mtime = 0.0
    return _services(path, mtime).get(code.upper(), f"Medical service (code {code})")


def _address(patient: Patient) -> list[str]:
    parts = {k: str(patient.value(f"patient.address.{k}") or "").strip() for k in ("street", "city", "state", "zip")}
    if not all(parts.values()):
        return []
    return [parts["street"], f"{parts['city']}, {parts['state']} {parts['zip']}"]


def invoice_context(visit: Visit, patient: Patient, settings: Settings, *, invoice_date: date,
                    reference: str) -> dict[str, Any]:
    """What ``self_pay_invoice.docx`` is rendered with (kept on the letter row), in the patient's language."""
    from frontdesk.language import PREFERRED_LANGUAGE_KEY, language_of, letter_date, money

    language = language_of(patient.value(PREFERRED_LANGUAGE_KEY))
    stm = settings.statements
    remit = ({"name": stm.remit_to.name, "address_lines": list(stm.remit_to.address_lines)} if stm.remit_to
             else {"name": settings.practice.name, "address_lines": list(settings.practice.address_lines)})
    total = sum((line.charge for line in visit.lines), Decimal("0.00"))
    return {
        "language": language,
        "practice": practice_block(settings),
        "remit_to": remit,
        "patient": {"full_name": f"{patient.first_name} {patient.last_name}".strip(),
                    "first_name": patient.first_name or "Patient", "address_lines": _address(patient)},
        "letter_date": letter_date(invoice_date, language),
        "invoice_date": letter_date(invoice_date, language),
        "due_date": letter_date(invoice_date + timedelta(days=stm.due_days), language),
        "visit_date": letter_date(visit.first_date, language),
        "visit": visit.claim_id,
        "reference": reference,
        "lines": [{"date": f"{line.date_of_service:%m/%d/%Y}", "code": line.code,
                   "description": line.description or service_words(line.code),
                   "units": f"{line.units.normalize():f}", "amount": money(line.charge, language)}
                  for line in visit.lines],
        "total": money(total, language),
        "amount_due": money(total, language),
        "payment_methods": list(stm.payment_methods),
    }


def _invoiced(session: Any, patient_id: str, visit_id: str) -> bool:
    rows = session.scalars(select(Letter).where(Letter.kind == INVOICE_KIND, Letter.patient_id == patient_id,
                                                Letter.status != PieceStatus.VOID))
    return any((row.context or {}).get("visit") == visit_id for row in rows)


def issue_invoices(db: Database, settings: Settings, visits: list[Visit], *, invoice_date: date,
                   dry_run: bool = False) -> InvoiceRun:
    """Queue one invoice per self-pay visit not invoiced yet (pending, for the next mail batch). Call it
    under ``letters_lock`` so two runs never queue the same visit twice."""
    from frontdesk.letter_events import letter_enabled

    run = InvoiceRun(visits=len(visits), dry_run=dry_run)
    if not letter_enabled(INVOICE_KIND):
        run.disabled = True
        return run
    for visit in visits:
        with db.begin() as s:
            patient = s.get(Patient, visit.patient_id)
            if patient is None:
                run.not_invoiced.append({"visit": visit.claim_id, "patient_id": visit.patient_id,
                                         "reason": "no patient record with this id"})
                continue
            audit.record(s, "read", "patient", patient.id, patient_id=patient.id, detail="invoice")
            if not is_self_pay(patient):
                run.insured += 1
                continue
            if _invoiced(s, patient.id, visit.claim_id):
                run.already_invoiced += 1
                continue
            if not _address(patient):
                run.not_invoiced.append({"visit": visit.claim_id, "patient_id": patient.id,
                                         "reason": "the patient's record has no complete mailing address"})
                continue
            if dry_run:
                run.would_queue += 1
                continue
            letter = Letter(kind=INVOICE_KIND, status=PieceStatus.PENDING, patient_id=patient.id, context={})
            s.add(letter)
            s.flush()
            letter.context = invoice_context(visit, patient, settings, invoice_date=invoice_date,
                                             reference=letter.id.upper())
            audit.record(s, "create", "letter", letter.id, patient_id=patient.id,
                         detail=f"{INVOICE_KIND}; visit {visit.claim_id}")
            run.queued.append(letter.id)
    return run
