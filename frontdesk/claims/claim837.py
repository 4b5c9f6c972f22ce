"""Claims: a 5010 837P (005010X222A1) batch from a visit ledger, the patient records and the practice's
billing settings, validated by pyx12 before it is written.

What is checked here is structure and code sets: the practice's NPI (check digit), tax ID and ZIP+4;
each claim's payer and payer ID, the member ID against the payer's pattern, names and dates of birth,
ICD-10-CM diagnosis codes (billable codes of the current code set, via ``simple_icd_10_cm``), CPT/HCPCS
shape, charges and units; then the whole batch against the implementation guide's map (pyx12). What is
not checked: a payer's own business rules (coverage, medical necessity, bundling): those come back on
the 277CA or the remittance.

A claim that fails is refused with its claim ID and the field; nothing of a batch with a refused claim
is written, so a clearinghouse never receives half a day's claims.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from frontdesk.billable import as_date, check_npi, check_state
from frontdesk.checks.patients import PatientRecord
from frontdesk.claims.eligibility import _member_id, _name_parts, _sex
from frontdesk.claims.errors import BillingConfigError, ClaimRefused
from frontdesk.claims.ledger import Visit
from frontdesk.claims.payers import PayerDirectory
from frontdesk.claims.x12 import (
    FunctionalGroup,
    Interchange,
    Party,
    Segment,
    Transaction,
    clean,
    render_interchange,
    seg,
)
from frontdesk.settings import BillingProvider, Settings

VERSION = "005010X222A1"
MAX_DIAGNOSES = 12  # HI: one ABK and up to eleven ABF on a professional claim
MAX_LINES = 50  # 2400 repeats at most 50 times per claim
#: The form records the *policy holder's* relationship to the patient ("parent": the holder is the
#: patient's parent); PAT01 and box 6 want the *patient's* relationship to the holder (19: child).
RELATIONSHIP = {"self": "18", "spouse": "01", "parent": "19", "child": "G8", "other": "G8"}
CPT = re.compile(r"^[A-Z0-9]\d{3}[A-Z0-9]$")
MODIFIER = re.compile(r"^[A-Z0-9]{2}$")


def icd10_problem(code: str) -> str | None:
    """Why an ICD-10-CM code cannot go on a claim, or None. Claims need a billable (leaf) code."""
    import simple_icd_10_cm as cm

    dotted = code if "." in code or len(code) <= 3 else code[:3] + "." + code[3:]
    if not cm.is_valid_item(dotted):
        return "is not an ICD-10-CM code"
    if not cm.is_leaf(dotted):
        return "is a category, not a billable code (add the missing characters)"
    return None


def require_billing(settings: Settings) -> BillingProvider:
    """The billing provider, complete, or a ConfigError naming every missing setting."""
    b = settings.claims.billing
    missing = []
    if not b.npi:
        missing.append("npi")
    elif check_npi(b.npi) is not None:
        raise BillingConfigError("claims.billing.npi is not a valid NPI (10 digits, check digit)")
    if not b.tax_id:
        missing.append("tax_id")
    elif not re.fullmatch(r"\d{9}", re.sub(r"-", "", b.tax_id)):
        raise BillingConfigError("claims.billing.tax_id must be a 9-digit EIN")
    for k in ("street", "city", "state", "zip"):
        if not getattr(b, k):
            missing.append(k)
    if missing:
        raise BillingConfigError(f"claims.billing: {', '.join(missing)} not set (config/frontdesk.yaml): "
                                 "a claim names the billing provider by NPI, tax ID and address")
    if check_state(b.state) is not None:
        raise BillingConfigError("claims.billing.state is not a US state code")
    if not re.fullmatch(r"\d{9}", re.sub(r"-", "", b.zip)):
        raise BillingConfigError("claims.billing.zip must be ZIP+4 (nine digits): 5010 claims require it")
    return b


@dataclass
class Claim:
    """A visit made ready for a claim: everything the 837P and the CMS-1500 print."""

    claim_id: str
    patient_id: str
    visit: Visit
    payer_name: str
    payer_id: str
    member_id: str
    group_number: str
    relationship: str  # X12 code: 18 self, 01 spouse, 19 child, G8 other
    subscriber_first: str
    subscriber_last: str
    subscriber_dob: date | None
    subscriber_sex: str
    patient_first: str
    patient_last: str
    patient_dob: date
    patient_sex: str
    address: dict[str, str]
    phone: str = ""
    place_of_service: str = "11"
    diagnoses: list[str] = field(default_factory=list)
    filing_indicator: str = "CI"

    @property
    def patient_is_subscriber(self) -> bool:
        return self.relationship == "18"


def _filing_indicator(payer_name: str) -> str:
    n = payer_name.casefold()
    if "medicare" in n and "advantage" not in n:
        return "MB"
    if "medicaid" in n:
        return "MC"
    if "blue" in n or "bcbs" in n:
        return "BL"
    if "tricare" in n:
        return "CH"
    return "CI"


def prepare_claims(visits: Sequence[Visit], records: Mapping[str, PatientRecord], payers: PayerDirectory,
                   settings: Settings) -> list[Claim]:
    """Check each visit against its record and the code sets; refuse the lot if any claim fails, naming
    every problem (claim and field), so staff fix them in one go."""
    problems: list[str] = []
    claims: list[Claim] = []
    for v in visits:
        p: list[str] = []
        where = f"claim {v.claim_id}"
        rec = records.get(v.patient_id)
        if rec is None:
            problems.append(f"{where}: patient record {v.patient_id} not found")
            continue
        if rec.value("insurance.self_pay") is True:
            problems.append(f"{where}: the patient is self-pay; bill with a statement, not a claim")
            continue
        payer_name = rec.text("insurance.primary.payer_name")
        member_id = _member_id(rec.value("insurance.primary.member_id"))
        payer = payers.find(payer_name)
        payer_id = _member_id(rec.value("insurance.primary.payer_id")) or (payer.payer_id if payer else "") or ""
        if not payer_name:
            p.append(f"{where}: payer name (2010BB NM103) missing in the patient's record")
        elif not payer_id:
            p.append(f"{where}: payer ID (2010BB NM109) unknown: add payer_id for this payer in config/payers.yaml")
        if not member_id:
            p.append(f"{where}: member ID (2010BA NM109) missing in the patient's record")
        elif payer is not None and not payer.member_id_ok(member_id):
            p.append(f"{where}: member ID (2010BA NM109) does not match {payer.name}'s member ID pattern")
        rel_word = rec.text("insurance.primary.relationship_to_patient").lower() or "self"
        rel = RELATIONSHIP.get(rel_word, "G8")
        if rel == "18":
            sub_first, sub_last, sub_dob = rec.first_name, rec.last_name, rec.date_of_birth
        else:
            sub_first, sub_last = _name_parts(rec.text("insurance.primary.subscriber_name"))
            sub_dob = as_date(rec.value("insurance.primary.subscriber_date_of_birth"))
            if not sub_last:
                p.append(f"{where}: subscriber name (2010BA NM103) missing in the patient's record")
        if rec.date_of_birth is None:
            p.append(f"{where}: patient date of birth (DMG02) missing in the patient's record")
        addr = {k: rec.text(f"patient.address.{k}") for k in ("street", "city", "state", "zip")}
        if not addr["street"] or not addr["city"] or check_state(addr["state"]) is not None \
                or not re.fullmatch(r"\d{5}(\d{4})?", addr["zip"].replace("-", "")):
            p.append(f"{where}: patient address (N3/N4) incomplete in the patient's record")
        if not v.lines:
            p.append(f"{where}: no service lines")
        if len(v.lines) > MAX_LINES:
            p.append(f"{where}: {len(v.lines)} service lines; an 837P claim holds at most {MAX_LINES}")
        dx = v.diagnoses
        if not dx:
            p.append(f"{where}: no diagnosis code (HI)")
        if len(dx) > MAX_DIAGNOSES:
            p.append(f"{where}: {len(dx)} diagnosis codes; a professional claim holds {MAX_DIAGNOSES}: split the visit")
        # the code itself is health information: name where it is (row and position), not what it is
        told: set[str] = set()
        for line in v.lines:
            for i, code in enumerate(line.diagnoses, 1):
                why = icd10_problem(code) if code not in told else None
                if why:
                    told.add(code)
                    p.append(f"{where}: ledger row {line.row}: diagnosis code {i} (HI) {why}")
        for line in v.lines:
            if not CPT.fullmatch(line.code):
                p.append(f"{where}: ledger row {line.row}: procedure code (SV101) is not a CPT/HCPCS code")
            for m in line.modifiers:
                if not MODIFIER.fullmatch(m):
                    p.append(f"{where}: ledger row {line.row}: modifier (SV101) is not two letters or digits")
            if len(line.modifiers) > 4:
                p.append(f"{where}: ledger row {line.row}: more than four modifiers")
            if not line.diagnoses:
                p.append(f"{where}: ledger row {line.row}: no diagnosis pointer (SV107)")
        if v.place_of_service and not re.fullmatch(r"\d{2}", v.place_of_service):
            p.append(f"{where}: place of service (CLM05-1) is not a two-digit code")
        if v.rendering_npi and check_npi(v.rendering_npi) is not None:
            p.append(f"{where}: rendering provider NPI (2310B NM109) is not a valid NPI")
        if p:
            problems.extend(p)
            continue
        assert rec.date_of_birth is not None
        claims.append(Claim(
            claim_id=v.claim_id, patient_id=v.patient_id, visit=v, payer_name=payer.name if payer else payer_name,
            payer_id=payer_id, member_id=member_id,
            group_number=rec.text("insurance.primary.group_number"), relationship=rel,
            subscriber_first=sub_first, subscriber_last=sub_last, subscriber_dob=sub_dob,
            subscriber_sex=_sex(rec.value("patient.sex")) if rel == "18" else "U",
            patient_first=rec.first_name, patient_last=rec.last_name, patient_dob=rec.date_of_birth,
            patient_sex=_sex(rec.value("patient.sex")), address=addr, phone=rec.text("patient.phone"),
            place_of_service=v.place_of_service or settings.claims.place_of_service, diagnoses=dx,
            filing_indicator=_filing_indicator(payer.name if payer else payer_name)))
    if problems:
        raise ClaimRefused(problems)
    return claims


def _money(d: Decimal) -> str:
    """X12 amounts: no trailing zeros beyond what is needed ('100', '12.5')."""
    s = f"{d:.2f}".rstrip("0").rstrip(".")
    return s or "0"


def _zip(z: str) -> str:
    return re.sub(r"\D", "", z)


def _claim_segments(c: Claim, hl: int, billing_hl: int) -> tuple[list[Segment], int]:
    body: list[Segment] = []
    sub_hl = hl + 1
    dependent = not c.patient_is_subscriber
    body.append(seg("HL", str(sub_hl), str(billing_hl), "22", "1" if dependent else "0"))
    body.append(seg("SBR", "P", "" if dependent else "18", clean(c.group_number, max_len=50), "", "", "", "", "",
                    c.filing_indicator))
    body.append(seg("NM1", "IL", "1", clean(c.subscriber_last, max_len=60), clean(c.subscriber_first, max_len=35),
                    "", "", "", "MI", clean(c.member_id, max_len=80)))
    if not dependent:
        body.append(seg("N3", clean(c.address["street"], max_len=55)))
        body.append(seg("N4", clean(c.address["city"], max_len=30), c.address["state"].upper(), _zip(c.address["zip"])))
        body.append(seg("DMG", "D8", c.patient_dob.strftime("%Y%m%d"), c.patient_sex))
    body.append(seg("NM1", "PR", "2", clean(c.payer_name, max_len=60), "", "", "", "", "PI", clean(c.payer_id)))
    last_hl = sub_hl
    if dependent:
        last_hl = sub_hl + 1
        body.append(seg("HL", str(last_hl), str(sub_hl), "23", "0"))
        body.append(seg("PAT", c.relationship))
        body.append(seg("NM1", "QC", "1", clean(c.patient_last, max_len=60), clean(c.patient_first, max_len=35)))
        body.append(seg("N3", clean(c.address["street"], max_len=55)))
        body.append(seg("N4", clean(c.address["city"], max_len=30), c.address["state"].upper(), _zip(c.address["zip"])))
        body.append(seg("DMG", "D8", c.patient_dob.strftime("%Y%m%d"), c.patient_sex))
    v = c.visit
    body.append(seg("CLM", clean(c.claim_id, max_len=38), _money(v.total), "", "",
                    (c.place_of_service, "B", "1"), "Y", "A", "Y", "Y"))
    if v.prior_authorization:
        body.append(seg("REF", "G1", clean(v.prior_authorization, max_len=50)))
    hi = [(("ABK" if i == 0 else "ABF"), d) for i, d in enumerate(c.diagnoses)]
    body.append(seg("HI", *hi))
    if v.rendering_npi:
        body.append(seg("NM1", "82", "1", "PROVIDER", "", "", "", "", "XX", v.rendering_npi))
    for n, line in enumerate(v.lines, 1):
        pointers = tuple(str(c.diagnoses.index(d) + 1) for d in line.diagnoses[:4])
        body.append(seg("LX", str(n)))
        body.append(seg("SV1", ("HC", line.code, *line.modifiers), _money(line.charge), "UN", _money(line.units),
                        "", "", pointers))
        body.append(seg("DTP", "472", "D8", line.date_of_service.strftime("%Y%m%d")))
    return body, last_hl


def build_837p(claims: Sequence[Claim], settings: Settings, *, control_number: int, when: datetime) -> str:
    """The 837P text: 1000A submitter, 1000B receiver, one 2000A billing provider with every claim's
    2000B (and 2000C) beneath it."""
    b = require_billing(settings)
    ch = settings.claims.clearinghouse
    name = b.name or settings.practice.name
    submitter = ch.submitter_id or b.npi
    body: list[Segment] = [
        seg("BHT", "0019", "00", f"{control_number:09d}", when.strftime("%Y%m%d"), when.strftime("%H%M"), "CH"),
        seg("NM1", "41", "2", clean(name, max_len=60), "", "", "", "", "46", clean(submitter, max_len=80)),
        seg("PER", "IC", clean(b.contact_name or "BILLING OFFICE", max_len=60), "TE",
            re.sub(r"\D", "", b.phone or settings.practice.phone)[-10:]),
        seg("NM1", "40", "2", clean(ch.name, max_len=60), "", "", "", "", "46", clean(ch.receiver_id or "CLEARINGHOUSE")),
        seg("HL", "1", "", "20", "1"),
    ]
    if b.taxonomy:
        body.append(seg("PRV", "BI", "PXC", clean(b.taxonomy)))
    body += [
        seg("NM1", "85", "2", clean(name, max_len=60), "", "", "", "", "XX", b.npi),
        seg("N3", clean(b.street, max_len=55)),
        seg("N4", clean(b.city, max_len=30), b.state.upper(), _zip(b.zip)),
        seg("REF", "EI", re.sub(r"\D", "", b.tax_id)),
    ]
    hl = 1
    for c in claims:
        segs, hl = _claim_segments(c, hl, 1)
        body += segs
    ix = Interchange(Party(ch.id_qualifier, submitter), Party(ch.id_qualifier, ch.receiver_id or "CLEARINGHOUSE"),
                     control_number, when, ch.usage,
                     [FunctionalGroup("HC", VERSION, control_number, submitter, ch.receiver_id or "CLEARINGHOUSE",
                                      [Transaction("837", "0001", body)])])
    return render_interchange(ix)


# --- pyx12 ---------------------------------------------------------------------------------------------

#: What pyx12's error codes (the 999's IK3/IK4 codes) mean; pyx12's own messages can quote the value,
#: which may be patient data, so the message is rebuilt from the code, the element and its name.
SEGMENT_ERRORS = {"1": "unrecognised segment", "2": "unexpected segment", "3": "required segment missing",
                  "4": "loop occurs too often", "5": "segment repeats too often",
                  "6": "segment not in this transaction", "7": "segment out of order",
                  "8": "segment has element errors"}
ELEMENT_ERRORS = {"1": "required element missing", "2": "conditional element missing",
                  "3": "too many elements", "4": "value too short", "5": "value too long",
                  "6": "invalid character", "7": "invalid code value", "8": "invalid date",
                  "9": "invalid time", "10": "element not allowed here", "12": "too many repetitions",
                  "13": "too many components"}


def _claims_by_line(text: str) -> dict[int, str]:
    """Line number (one segment a line, as written) -> the claim (CLM01) it belongs to."""
    out: dict[int, str] = {}
    current = ""
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("CLM*"):
            current = line.split("*")[1].rstrip("~")
        elif line.startswith(("HL*", "SE*")):
            current = ""  # a new subscriber: the next CLM names it
        out[n] = current
    return out


def validate_837p(text: str) -> list[str]:
    """pyx12's verdict on a batch: [] when it validates, else one line per error naming the claim (CLM01)
    where there is one, the segment and the element. The map is pyx12's own 005010X222A1."""
    import io
    import json
    import logging

    import pyx12.params
    import pyx12.x12n_document

    logging.getLogger("pyx12").setLevel(logging.CRITICAL)
    out = io.StringIO()
    ok = pyx12.x12n_document.x12n_document(pyx12.params.params(), io.StringIO(text), None, None, None, fd_json=out)
    claim_at = _claims_by_line(text)
    # the subscriber HL before a CLM belongs to it too: look ahead to the next CLM for those lines
    lines = text.splitlines()
    errors: list[str] = []

    first_subscriber = next((n for n, x in enumerate(lines, 1) if x.startswith("HL*") and x.split("*")[3] == "22"),
                            len(lines) + 1)

    def where(line: int) -> str:
        c = claim_at.get(line, "")
        if line < first_subscriber:
            return "batch (billing provider or envelope)"
        if not c:
            for n in range(line + 1, len(lines) + 1):
                if lines[n - 1].startswith("CLM*"):
                    c = lines[n - 1].split("*")[1].rstrip("~")
                    break
                if lines[n - 1].startswith("SE*"):
                    break
        return f"claim {c}" if c else "batch"

    try:
        doc = json.loads(out.getvalue() or "{}")
    except ValueError:
        doc = {}
    for isa in doc.get("interchanges", []):
        errors += [f"batch: interchange error {e.get('err_cde')}" for e in isa.get("errors", [])]
        for gs in isa.get("groups", []):
            errors += [f"batch: group error {e.get('err_cde')}" for e in gs.get("errors", [])]
            for st in gs.get("transactions", []):
                errors += [f"batch: transaction error {e.get('err_cde')} (segment count or envelope)"
                           for e in st.get("errors", [])]
                for sg in st.get("segments", []):
                    w = where(int(sg.get("cur_line") or 0))
                    label = f"{sg.get('seg_id')} ({sg.get('name')})"
                    for e in sg.get("errors", []):
                        errors.append(f"{w}: {label}: {SEGMENT_ERRORS.get(str(e.get('err_cde')), 'segment error')}")
                    for el in sg.get("elements", []):
                        pos = f"{sg.get('seg_id')}{int(el.get('ele_pos') or 0):02d}"
                        if el.get("subele_pos"):
                            pos += f"-{el['subele_pos']}"
                        for e in el.get("errors", []):
                            errors.append(f"{w}: {pos} ({el.get('name')}): "
                                          f"{ELEMENT_ERRORS.get(str(e.get('err_cde')), 'element error')}")
    if not ok and not errors:
        errors.append("batch: pyx12 rejected the interchange")
    return errors


def write_checked_837p(claims: Sequence[Claim], settings: Settings, *, control_number: int,
                       when: datetime) -> str:
    """Build and validate; a batch pyx12 does not accept is refused (ClaimRefused) and never returned."""
    text = build_837p(claims, settings, control_number=control_number, when=when)
    errors = validate_837p(text)
    if errors:
        raise ClaimRefused(["837P did not validate (pyx12, 005010X222A1): " + errors[0], *errors[1:]])
    return text
