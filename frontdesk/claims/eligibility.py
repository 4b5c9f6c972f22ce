"""Eligibility: X12 5010 270 requests from a day's appointments, and 271 responses read back.

What a front desk wants to know before a visit is whether the coverage is *active*, what the copay is
and how much deductible is left. The 270 asks each payer once per patient (service type 30, health
benefit plan coverage); the 271 answers per subscriber. A patient without usable insurance on file
(self-pay, no payer, no member ID, a payer without an electronic payer ID) is not sent and is reported,
so staff know who was not checked and why.

Trace numbers (TRN) are opaque request ids; the patient they belong to is kept in the records database,
never in the file name or the trace itself.
"""

from __future__ import annotations

import contextlib
import enum
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from frontdesk.billable import as_date, check_npi
from frontdesk.checks.patients import PatientRecord
from frontdesk.claims.errors import BillingConfigError
from frontdesk.claims.payers import PayerDirectory
from frontdesk.claims.x12 import (
    FunctionalGroup,
    Interchange,
    Party,
    Segment,
    Transaction,
    X12Error,
    clean,
    loops,
    parse_interchange,
    render_interchange,
    seg,
)
from frontdesk.settings import Settings

VERSION = "005010X279A1"
SERVICE_TYPE = "30"  # health benefit plan coverage


class CoverageStatus(enum.StrEnum):
    active = "active"
    inactive = "inactive"
    not_found = "not_found"  # the payer does not know this subscriber (AAA 75, 67, ...)
    rejected = "rejected"  # the payer could not answer (AAA 42, 43, ...): ask again or fix the request


#: AAA reject reason codes (AAA03) in plain words, as staff need them.
AAA_REASONS: dict[str, str] = {
    "04": "the practice is not authorised to ask this payer",
    "15": "the request lacked required information",
    "41": "the payer restricts access to this information",
    "42": "the payer cannot answer right now; try again later",
    "43": "the payer does not recognise the practice's NPI",
    "44": "the payer does not recognise the practice's name",
    "45": "the provider's specialty is missing or not recognised",
    "47": "the provider's state is missing or not recognised",
    "48": "the referring provider's NPI is missing or not recognised",
    "49": "the provider is not the patient's primary care physician",
    "50": "the provider is not eligible for this inquiry",
    "51": "the provider is not on file with the payer",
    "52": "the service date is outside the provider's enrolment",
    "56": "the date in the request is not acceptable",
    "57": "the date of service is missing or invalid",
    "58": "the date of birth is missing or invalid",
    "60": "the date of birth is after the date of service",
    "61": "the date of death is before the date of service",
    "62": "the date of service is outside the period the payer answers for",
    "63": "the date of service is in the future",
    "64": "the patient's ID is missing or invalid",
    "65": "the patient's name is missing or invalid",
    "66": "the patient's sex is missing or invalid",
    "67": "the payer cannot find the patient",
    "68": "the patient's ID is on file more than once",
    "71": "the date of birth does not match the payer's records",
    "72": "the member ID is missing or invalid",
    "73": "the subscriber's name is missing or invalid",
    "74": "the subscriber's sex is missing or invalid",
    "75": "the payer cannot find the subscriber",
    "76": "the subscriber's ID is on file more than once",
    "78": "the subscriber is not in the group or plan named",
    "79": "the request's identifiers are not valid",
    "80": "no response from the payer; the request was not answered",
    "T4": "the payer's name or ID is missing",
}
NOT_FOUND_CODES = frozenset({"67", "72", "73", "75", "76", "78", "58", "71", "64", "65"})


@dataclass(frozen=True)
class EligibilityRequest:
    """One subscriber (and dependent) asked about, and the opaque trace that ties the answer back."""

    trace: str
    patient_id: str
    appointment_key: str
    payer_name: str
    payer_id: str
    member_id: str
    subscriber_first: str
    subscriber_last: str
    subscriber_dob: date | None
    dependent: bool  # the patient is not the subscriber
    patient_first: str
    patient_last: str
    patient_dob: date | None
    sex: str  # F, M or U
    service_date: date


@dataclass(frozen=True)
class NotSent:
    appointment_key: str
    patient_id: str | None
    reason: str


@dataclass
class EligibilityBatch:
    requests: list[EligibilityRequest]
    not_sent: list[NotSent]
    control_number: int
    text: str = ""


def _name_parts(full: str) -> tuple[str, str]:
    """'Last, First' or 'First Middle Last' to (first, last)."""
    full = " ".join(full.split())
    if "," in full:
        last, first = (p.strip() for p in full.split(",", 1))
        return first, last
    parts = full.split(" ")
    return (" ".join(parts[:-1]), parts[-1]) if len(parts) > 1 else ("", full)


def _member_id(value: object) -> str:
    return "".join(str(value or "").replace("-", " ").split()).upper()


def _sex(value: object) -> str:
    v = str(value or "").strip().upper()[:1]
    return v if v in ("F", "M") else "U"


def request_for(record: PatientRecord, appointment_key: str, service_date: date, payers: PayerDirectory,
                ) -> EligibilityRequest | NotSent:
    """What will be asked for one patient, or why they are not sent."""
    if record.value("insurance.self_pay") is True:
        return NotSent(appointment_key, record.patient_id, "self-pay: no insurance to check")
    payer_name = record.text("insurance.primary.payer_name")
    member_id = _member_id(record.value("insurance.primary.member_id"))
    if not payer_name:
        return NotSent(appointment_key, record.patient_id, "no insurance company on file")
    if not member_id:
        return NotSent(appointment_key, record.patient_id, "no member ID on file")
    payer = payers.find(payer_name)
    payer_id = _member_id(record.value("insurance.primary.payer_id")) or (payer.payer_id if payer else None)
    if not payer_id:
        return NotSent(appointment_key, record.patient_id,
                       "the insurance company has no payer ID in config/payers.yaml")
    rel = record.text("insurance.primary.relationship_to_patient").lower()
    dependent = bool(rel) and rel != "self"
    if dependent:
        sub_first, sub_last = _name_parts(record.text("insurance.primary.subscriber_name"))
        sub_dob = as_date(record.value("insurance.primary.subscriber_date_of_birth"))
        if not sub_last:
            return NotSent(appointment_key, record.patient_id, "the policy holder's name is not on file")
    else:
        sub_first, sub_last, sub_dob = record.first_name, record.last_name, record.date_of_birth
    return EligibilityRequest(
        trace="E" + secrets.token_hex(7).upper(), patient_id=record.patient_id, appointment_key=appointment_key,
        payer_name=payer.name if payer else payer_name, payer_id=payer_id, member_id=member_id,
        subscriber_first=sub_first, subscriber_last=sub_last, subscriber_dob=sub_dob, dependent=dependent,
        patient_first=record.first_name, patient_last=record.last_name, patient_dob=record.date_of_birth,
        sex=_sex(record.value("patient.sex")), service_date=service_date)


def require_receiver(settings: Settings) -> tuple[str, str]:
    """The practice's NPI and name as the information receiver; a clear ConfigError when unset."""
    b = settings.claims.billing
    if not b.npi:
        raise BillingConfigError("claims.billing.npi is not set: eligibility requests and claims name the "
                                 "practice by its NPI (config/frontdesk.yaml)")
    if check_npi(b.npi) is not None:
        raise BillingConfigError("claims.billing.npi is not a valid NPI (10 digits, check digit)")
    return b.npi, b.name or settings.practice.name


def _interchange(settings: Settings, control: int, when: datetime, functional_id: str, version: str,
                 transactions: list[Transaction]) -> Interchange:
    ch = settings.claims.clearinghouse
    sender = ch.submitter_id or (settings.claims.billing.npi or "FRONTDESK")
    receiver = ch.receiver_id or "CLEARINGHOUSE"
    group = FunctionalGroup(functional_id, version, control, sender, receiver, transactions)
    return Interchange(Party(ch.id_qualifier, sender), Party(ch.id_qualifier, receiver), control, when,
                       ch.usage, [group])


def build_270(requests: Sequence[EligibilityRequest], settings: Settings, *, control_number: int,
              when: datetime) -> str:
    """One interchange, one 270 transaction: payers (HL 20), the practice (HL 21), subscribers (HL 22)
    and dependents (HL 23)."""
    npi, name = require_receiver(settings)
    originator = "1" + re.sub(r"\D", "", settings.claims.billing.tax_id or "")[:9].rjust(9, "0")
    body: list[Segment] = [seg("BHT", "0022", "13", f"{control_number:09d}", when.strftime("%Y%m%d"),
                               when.strftime("%H%M"))]
    hl = 0
    by_payer: dict[tuple[str, str], list[EligibilityRequest]] = {}
    for r in requests:
        by_payer.setdefault((r.payer_id, r.payer_name), []).append(r)
    for (payer_id, payer_name), reqs in by_payer.items():
        hl += 1
        payer_hl = hl
        body += [seg("HL", str(hl), "", "20", "1"),
                 seg("NM1", "PR", "2", clean(payer_name, max_len=60), "", "", "", "", "PI", clean(payer_id))]
        hl += 1
        receiver_hl = hl
        body += [seg("HL", str(hl), str(payer_hl), "21", "1"),
                 seg("NM1", "1P", "2", clean(name, max_len=60), "", "", "", "", "XX", npi)]
        for r in reqs:
            hl += 1
            sub_hl = hl
            body += [seg("HL", str(hl), str(receiver_hl), "22", "1" if r.dependent else "0"),
                     seg("TRN", "1", r.trace, originator),
                     seg("NM1", "IL", "1", clean(r.subscriber_last, max_len=60), clean(r.subscriber_first, max_len=35),
                         "", "", "", "MI", clean(r.member_id, max_len=80))]
            if r.subscriber_dob is not None:
                body.append(seg("DMG", "D8", r.subscriber_dob.strftime("%Y%m%d"),
                                "" if r.dependent else (r.sex if r.sex != "U" else "")))
            if not r.dependent:
                body += [seg("DTP", "291", "D8", r.service_date.strftime("%Y%m%d")), seg("EQ", SERVICE_TYPE)]
                continue
            hl += 1
            body += [seg("HL", str(hl), str(sub_hl), "23", "0"),
                     seg("TRN", "1", r.trace, originator),
                     seg("NM1", "03", "1", clean(r.patient_last, max_len=60), clean(r.patient_first, max_len=35))]
            if r.patient_dob is not None:
                body.append(seg("DMG", "D8", r.patient_dob.strftime("%Y%m%d"), r.sex if r.sex != "U" else ""))
            body += [seg("DTP", "291", "D8", r.service_date.strftime("%Y%m%d")), seg("EQ", SERVICE_TYPE)]
    ix = _interchange(settings, control_number, when, "HS", VERSION, [Transaction("270", "0001", body)])
    return render_interchange(ix)


# --- 271 ---------------------------------------------------------------------------------------------

@dataclass
class CoverageResult:
    """What a 271 says about one request, in the words staff use."""

    trace: str | None
    status: CoverageStatus
    payer_name: str = ""
    payer_id: str = ""
    member_id: str = ""
    last_name: str = ""
    first_name: str = ""
    date_of_birth: date | None = None
    plan_name: str = ""
    group_number: str = ""
    copay: Decimal | None = None
    coinsurance_percent: Decimal | None = None
    deductible_remaining: Decimal | None = None
    reasons: list[str] = field(default_factory=list)  # AAA codes in plain words
    reason_codes: list[str] = field(default_factory=list)
    patient_id: str | None = None  # filled in from the request's trace when the records are at hand

    def as_json(self) -> dict[str, Any]:
        return {"trace": self.trace, "patient_id": self.patient_id, "status": self.status.value,
                "payer": self.payer_name, "payer_id": self.payer_id, "plan": self.plan_name or None,
                "copay": str(self.copay) if self.copay is not None else None,
                "coinsurance_percent": str(self.coinsurance_percent) if self.coinsurance_percent is not None else None,
                "deductible_remaining": str(self.deductible_remaining) if self.deductible_remaining is not None else None,
                "reasons": list(self.reasons), "reason_codes": list(self.reason_codes)}


def _money(v: str) -> Decimal | None:
    try:
        return Decimal(v).quantize(Decimal("0.01")) if v else None
    except InvalidOperation:
        return None


def _aaa(s: Segment) -> tuple[str, str]:
    code = s[3]
    return code, AAA_REASONS.get(code, f"the payer rejected the request (reason code {code})")


def _read_subscriber(block: list[Segment], payer: tuple[str, str], source_rejects: list[tuple[str, str]],
                     ) -> CoverageResult:
    r = CoverageResult(trace=None, status=CoverageStatus.not_found, payer_name=payer[0], payer_id=payer[1])
    rejects = list(source_rejects)
    eb_status: CoverageStatus | None = None
    in_dependent = False
    for s in block:
        if s.id == "HL" and s[3] == "23":
            in_dependent = True
        elif s.id == "TRN" and s[1] == "2" and r.trace is None:
            r.trace = s[2]
        elif s.id == "NM1" and s[1] in ("IL", "03"):
            if s[1] == "IL":
                r.member_id = s[9] if s[8] == "MI" else r.member_id
            if s[1] == "IL" and not in_dependent or s[1] == "03":
                r.last_name, r.first_name = s[3], s[4]
        elif s.id == "DMG" and s[1] == "D8":
            with contextlib.suppress(ValueError):
                r.date_of_birth = datetime.strptime(s[2], "%Y%m%d").date()
        elif s.id == "REF" and s[1] in ("6P", "IG") and not r.group_number:
            r.group_number = s[2]
        elif s.id == "AAA":
            rejects.append(_aaa(s))
        elif s.id == "EB":
            code = s[1]
            if code in ("1", "2", "3", "4", "5") and eb_status is None:
                eb_status = CoverageStatus.active
            elif code in ("6", "7", "8") and eb_status is None:
                eb_status = CoverageStatus.inactive
            if s[5] and not r.plan_name and code in ("1", "2", "3", "4", "5", "6", "7", "8"):
                r.plan_name = s[5]
            in_network = s[12] != "N"
            if code == "B" and r.copay is None and in_network and s[7]:
                r.copay = _money(s[7])
            elif code == "A" and r.coinsurance_percent is None and in_network and s[8]:
                pct = _money(s[8])
                r.coinsurance_percent = pct * 100 if pct is not None and pct <= 1 else pct
            elif code == "C" and s[6] == "29" and r.deductible_remaining is None and in_network and s[7]:
                r.deductible_remaining = _money(s[7])
    r.reason_codes = [c for c, _ in rejects]
    r.reasons = [w for _, w in rejects]
    if eb_status is not None and not rejects:
        r.status = eb_status
    elif rejects:
        r.status = (CoverageStatus.not_found if any(c in NOT_FOUND_CODES for c in r.reason_codes)
                    else CoverageStatus.rejected)
    return r


def read_271(text: str, where: str = "271") -> list[CoverageResult]:
    """Every subscriber answered in a 271 interchange. A request rejected as a whole (AAA at the payer
    or receiver level) marks every subscriber beneath it with that reason."""
    return read_271_interchange(parse_interchange(text, where), where)


def read_271_interchange(ix: Interchange, where: str = "271") -> list[CoverageResult]:
    """:func:`read_271` for an interchange already read (the document pipeline's path)."""
    results: list[CoverageResult] = []
    found = False
    for g in ix.groups:
        for t in g.transactions:
            if t.set_id != "271":
                continue
            found = True
            payer = ("", "")
            level_rejects: list[tuple[str, str]] = []
            for block in loops(t.body, "HL", ()):
                level = block[0][3]
                if level == "20":
                    level_rejects = []
                    for s in block:
                        if s.id == "NM1" and s[1] == "PR":
                            payer = (s[3], s[9])
                        elif s.id == "AAA":
                            level_rejects.append(_aaa(s))
                elif level == "21":
                    level_rejects += [_aaa(s) for s in block if s.id == "AAA"]
                elif level == "22":
                    results.append(_read_subscriber(block, payer, level_rejects))
                elif level == "23" and results:
                    # the dependent's own answer: merge into the subscriber's result it belongs to
                    dep = _read_subscriber([*block], payer, level_rejects)
                    sub = results[-1]
                    if dep.status != CoverageStatus.not_found or dep.reason_codes or sub.status == CoverageStatus.not_found:
                        dep.trace = dep.trace or sub.trace
                        dep.member_id = dep.member_id or sub.member_id
                        results[-1] = dep
    if not found:
        raise X12Error(where, "no 271 transaction in this file")
    return results


__all__ = ["AAA_REASONS", "CoverageResult", "CoverageStatus", "EligibilityBatch", "EligibilityRequest",
           "NotSent", "build_270", "read_271", "read_271_interchange", "request_for"]
