"""A clearinghouse's answers, read as documents and applied: 271 eligibility, 999 acknowledgment,
277CA claim acknowledgment.

Responses arrive like every other document (the watched folder, ``frontdesk process``, or the
clearinghouse inbox, which hands its files to the same pipeline): the reading process recognises them
(:mod:`extractors.x12`: document types ``x12_271``, ``x12_999``, ``x12_277``), the pipeline files the
original like any document (reserve, store, complete), and :func:`apply` records what the response says
in the same transaction that completes the document. So a response is applied exactly once: a crash
before that commit leaves the document pending and the next run repeats both; the same file dropped
again is a duplicate and changes nothing.

* 271: each answer goes on the patient's record with the date checked, and onto the pre-visit
  worklist; inactive coverage queues the missing-insurance letter (the code in
  :mod:`frontdesk.claims.eligibility` and :mod:`frontdesk.checks.coverage` reads them).
* 999: per functional group, the 837P batch it acknowledges is accepted or rejected; a rejected
  transaction flags the claim its errors point at (by segment position), or every claim of the batch.
* 277CA: per claim, accepted or rejected by the payer, with the STC status codes and their meaning in
  plain words on the claim.

Nothing here logs a value from a response: claim ids are the practice's visit ids, counts are counts.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from extractors import x12 as _x12
from extractors.x12 import Interchange, Segment, loops
from frontdesk import audit
from frontdesk.claims import eligibility
from frontdesk.claims.x12 import X12Error, parse_interchange
from frontdesk.models import ExtractionResult, Flag
from frontdesk.settings import Settings

KINDS = {"x12_271": "271", "x12_999": "999", "x12_277": "277"}


class ClaimStatus(enum.StrEnum):
    """Where a claim stands, as the claims list shows it."""

    written = "written"  # in an 837P batch, in the outbox
    accepted = "accepted"  # the clearinghouse accepted the batch (999)
    rejected = "rejected"  # the clearinghouse rejected it (999): fix and send again
    payer_accepted = "payer_accepted"  # the payer took it into processing (277CA)
    payer_rejected = "payer_rejected"  # the payer rejected it (277CA): fix and send a new claim


# --- 999 -----------------------------------------------------------------------------------------------

#: IK5 / AK9 acknowledgment codes.
ACK_CODES = {"A": "accepted", "E": "accepted with errors noted", "P": "partially accepted",
             "R": "rejected", "M": "rejected (authentication failed)", "W": "rejected (failed validity tests)",
             "X": "rejected (could not be analysed)"}
ACCEPTED_ACK = frozenset({"A", "E"})

#: IK304 segment syntax error codes.
SEGMENT_ERRORS = {
    "1": "unrecognised segment", "2": "unexpected segment", "3": "required segment missing",
    "4": "loop occurs too often", "5": "segment occurs too often", "6": "segment not in this transaction",
    "7": "segment out of order", "8": "segment has data element errors",
    "I4": "segment the guide says is not used", "I6": "segment the guide requires here is missing",
    "I7": "loop occurs fewer times than the guide requires", "I8": "segment occurs fewer times than required",
    "I9": "segment the guide says is not used in this situation",
}
#: IK403 data element error codes.
ELEMENT_ERRORS = {
    "1": "required element missing", "2": "conditionally required element missing", "3": "too many elements",
    "4": "element too short", "5": "element too long", "6": "invalid character", "7": "invalid code value",
    "8": "invalid date", "9": "invalid time", "10": "element not allowed with another one",
    "12": "too many repetitions", "13": "too many components", "I6": "code value not used in this guide",
    "I9": "element the guide requires here is missing", "I10": "element the guide says is not used",
    "I11": "too few repetitions", "I12": "value does not match the guide's pattern",
    "I13": "element the guide says is not used in this situation",
}


@dataclass
class SegmentError:
    segment: str  # IK301 segment id
    position: int  # IK302: within the transaction set, ST = 1
    loop: str
    code: str
    element_notes: list[str] = field(default_factory=list)

    def words(self) -> str:
        what = SEGMENT_ERRORS.get(self.code, f"error code {self.code}")
        notes = "; ".join(self.element_notes)
        return f"999: {self.segment} segment error {self.code} ({what}{'; ' + notes if notes else ''})"


@dataclass
class SetAck:
    set_id: str
    control_number: str
    code: str  # IK501
    errors: list[SegmentError] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.code in ACCEPTED_ACK


@dataclass
class GroupAck:
    functional_id: str  # AK101: HC for an 837
    control_number: int  # AK102: the acknowledged group's GS06 (= our ISA13)
    code: str  # AK901
    sets: list[SetAck] = field(default_factory=list)

    @property
    def status(self) -> str:
        return "accepted" if self.code in ACCEPTED_ACK else "partial" if self.code == "P" else "rejected"


def read_999(ix: Interchange, where: str = "999") -> list[GroupAck]:
    """Every group acknowledged in a 999 interchange."""
    out: list[GroupAck] = []
    for t in ix.transactions("999"):
        ak1 = next((s for s in t.body if s.id == "AK1"), None)
        ak9 = next((s for s in t.body if s.id == "AK9"), None)
        if ak1 is None or ak9 is None:
            raise X12Error(where, "999 without AK1 or AK9")
        try:
            group = GroupAck(ak1[1], int(ak1[2]), ak9[1])
        except ValueError:
            raise X12Error(where, "999 AK1 group control number is not a number") from None
        for ak2 in loops(t.body, "AK2", ("AK9",)):
            ik5 = next((s for s in ak2 if s.id == "IK5"), None)
            st = SetAck(ak2[0][1], ak2[0][2], ik5[1] if ik5 is not None else "R")
            for ik3 in loops(ak2, "IK3", ("IK5",)):
                head = ik3[0]
                try:
                    pos = int(head[2] or 0)
                except ValueError:
                    pos = 0
                err = SegmentError(head[1], pos, head[3], head[4])
                for ik4 in (s for s in ik3 if s.id == "IK4"):
                    err.element_notes.append(f"element {ik4.component(1, 1) or '?'}: "
                                             f"{ELEMENT_ERRORS.get(ik4[3], 'error code ' + ik4[3])}")
                st.errors.append(err)
            group.sets.append(st)
        out.append(group)
    if not out:
        raise X12Error(where, "no 999 transaction in this file")
    return out


# --- 277CA ---------------------------------------------------------------------------------------------

#: STC01-1 claim status category codes (external code list 507).
CATEGORIES = {
    "A0": "forwarded by the clearinghouse", "A1": "received", "A2": "accepted into the payer's system",
    "A3": "returned as unprocessable", "A4": "not found", "A5": "split into several claims",
    "A6": "rejected: information missing", "A7": "rejected: information invalid",
    "A8": "rejected: fields that do not agree with each other", "DR": "rejected by the payer's data reporting",
    "E0": "no answer possible: an error in the claim sent", "E1": "no answer possible: the payer's system is down",
    "E2": "no answer possible: claim or line too old", "E3": "no answer possible: requested information not found",
}
REJECTED_CATEGORIES = frozenset({"A3", "A4", "A6", "A7", "A8", "DR", "E0", "E3"})

#: STC01-2 claim status codes (external code list 508): the ones clearinghouses send most.
STATUS_CODES = {
    "0": "no further status can be given electronically", "16": "the claim has been returned",
    "19": "receipt acknowledged", "20": "accepted for processing", "21": "information missing or invalid",
    "29": "subscriber and policy number not found", "33": "subscriber and subscriber ID not found",
    "35": "claim not found", "65": "claim already sent (duplicate)", "78": "duplicate of a claim already sent",
    "85": "the payer cannot process this claim", "96": "no agreement with the payer",
    "116": "claim sent to the wrong payer", "125": "name", "128": "tax ID", "145": "specialty or taxonomy code",
    "153": "ID number", "158": "date of birth", "164": "member ID", "178": "submitted charges",
    "187": "dates of service", "189": "facility type code", "247": "service line", "254": "principal diagnosis code",
    "255": "diagnosis code", "400": "claim is out of balance", "454": "procedure code",
    "455": "procedure code modifier", "464": "payer-assigned claim control number",
    "496": "submitter not approved for electronic claims", "507": "HCPCS code", "510": "date of service",
    "512": "length of stay", "513": "date of birth", "516": "billing provider's taxonomy code",
    "562": "National Provider Identifier (NPI)", "640": "a subscriber's coverage was not in effect",
    "672": "the claim's NPI is not the one on file", "673": "patient's date of birth",
    "697": "ICD-10 diagnosis code", "709": "subscriber's plan is not in effect",
}
#: STC01-3 entity identifier codes: whose information the status is about.
ENTITIES = {
    "85": "billing provider", "82": "rendering provider", "87": "pay-to provider", "77": "service location",
    "DN": "referring provider", "IL": "subscriber", "QC": "patient", "PR": "payer", "40": "receiver",
    "41": "submitter", "1P": "provider", "03": "dependent", "HK": "subscriber", "PW": "pickup address",
}


@dataclass
class StatusCode:
    category: str
    code: str
    entity: str

    def text(self) -> str:
        return ":".join(x for x in (self.category, self.code, self.entity) if x)

    def words(self) -> str:
        cat = CATEGORIES.get(self.category, f"status category {self.category}")
        what = STATUS_CODES.get(self.code, f"status code {self.code}") if self.code else ""
        whose = ENTITIES.get(self.entity, "")
        return cat + (f": {what}" if what else "") + (f" ({whose})" if whose else "")


@dataclass
class ClaimAck:
    """What a 277CA says about one claim (2200D): CLM01 back as TRN02, the payer's claim number."""

    claim_id: str
    statuses: list[StatusCode] = field(default_factory=list)
    action: str = ""  # STC03: WQ accepted, U rejected
    amount: Decimal | None = None
    payer_claim_number: str = ""
    line_statuses: list[StatusCode] = field(default_factory=list)

    @property
    def rejected(self) -> bool:
        return self.action == "U" or any(s.category in REJECTED_CATEGORIES
                                         for s in (*self.statuses, *self.line_statuses))

    def reasons(self) -> list[str]:
        shown = [s for s in (*self.statuses, *self.line_statuses)
                 if not self.rejected or s.category in REJECTED_CATEGORIES]
        return [f"{s.text()} {s.words()}" for s in shown]

    def as_json(self) -> dict[str, Any]:
        return {"claim_id": self.claim_id, "status": "rejected" if self.rejected else "accepted",
                "codes": [s.text() for s in (*self.statuses, *self.line_statuses)], "reasons": self.reasons(),
                "payer_claim_number": self.payer_claim_number or None,
                "amount": str(self.amount) if self.amount is not None else None}


def _stc(s: Segment) -> list[StatusCode]:
    """STC01, STC10 and STC11: up to three status composites."""
    out = []
    for n in (1, 10, 11):
        cat = s.component(n, 1)
        if cat:
            out.append(StatusCode(cat, s.component(n, 2), s.component(n, 3)))
    return out


def _money(v: str) -> Decimal | None:
    try:
        return Decimal(v).quantize(Decimal("0.01")) if v else None
    except InvalidOperation:
        return None


def read_277ca(ix: Interchange, where: str = "277") -> list[ClaimAck]:
    """Every claim a 277CA answers for (2200D, beneath the patient's HL). Status codes reported above
    the claims (the batch or the billing provider) apply to the claims beneath them that carry none."""
    claims: list[ClaimAck] = []
    found = False
    for t in ix.transactions("277"):
        found = True
        inherited: list[StatusCode] = []
        inherited_action = ""
        for block in loops(t.body, "HL", ()):
            level = block[0][3]
            if level in ("20", "21", "19"):
                if level != "20":
                    stcs = [s for s in block if s.id == "STC"]
                    if level == "21":
                        inherited, inherited_action = [], ""
                    rej = [c for s in stcs for c in _stc(s) if c.category in REJECTED_CATEGORIES]
                    if rej:
                        inherited = [*inherited, *rej]
                        inherited_action = "U"
                continue
            first = len(claims)
            current: ClaimAck | None = None
            in_line = False
            for s in block[1:]:
                if s.id == "TRN" and s[1] == "2":
                    current = ClaimAck(s[2])
                    claims.append(current)
                    in_line = False
                elif current is None:
                    continue
                elif s.id == "SVC":
                    in_line = True
                elif s.id == "STC":
                    if in_line:
                        current.line_statuses += _stc(s)
                    else:
                        current.statuses += _stc(s)
                        current.action = current.action or s[3]
                        current.amount = current.amount if current.amount is not None else _money(s[4])
                elif s.id == "REF" and s[1] == "1K" and not in_line:
                    current.payer_claim_number = s[2]
            for c in claims[first:]:
                if not c.statuses and inherited:
                    c.statuses, c.action = list(inherited), inherited_action
    if not found:
        raise X12Error(where, "no 277 transaction in this file")
    bad = [c for c in claims if not c.claim_id or not (c.statuses or c.line_statuses)]
    if bad:
        raise X12Error(where, f"{len(bad)} claims in this 277CA carry no claim ID or no status (STC)")
    return claims


# --- reading a response document ---------------------------------------------------------------------

def interchange_of(data: bytes, where: str) -> Interchange:
    return parse_interchange(_x12.decode(data), where)


def summary(kind: str, ix: Interchange, where: str) -> tuple[dict[str, Any], list[Flag]]:
    """What a response says, as plain data for ``extract --json`` and the filed reading, and the flags a
    person should see (rejections). Raises :class:`X12Error` when the response does not hold together."""
    base: dict[str, Any] = {"transaction_set": KINDS[kind], "control_number": ix.control_number}
    flags: list[Flag] = []
    if kind == "x12_271":
        results = eligibility.read_271_interchange(ix, where)
        counts: dict[str, int] = {s.value: 0 for s in eligibility.CoverageStatus}
        for r in results:
            counts[r.status.value] += 1
        base |= {"responses": len(results), "coverage": counts,
                 "results": [{k: v for k, v in r.as_json().items() if k != "patient_id"} for r in results]}
        if counts["inactive"] or counts["not_found"]:
            flags.append(Flag(code="eligibility.inactive", severity="info",
                              message=f"{counts['inactive']} inactive, {counts['not_found']} not found: "
                                      "see the pre-visit worklist"))
    elif kind == "x12_999":
        groups = read_999(ix, where)
        base |= {"groups": [{"functional_id": g.functional_id, "control_number": g.control_number,
                             "status": g.status, "code": g.code,
                             "transactions": [{"control_number": st.control_number, "accepted": st.accepted,
                                               "code": st.code, "errors": [e.words() for e in st.errors]}
                                              for st in g.sets]} for g in groups]}
        rejected = sum(1 for g in groups for st in g.sets if not st.accepted)
        if rejected:
            flags.append(Flag(code="claims.rejected", severity="warning",
                              message=f"999: {rejected} transactions rejected: see `frontdesk claims --list`"))
    else:
        acks = read_277ca(ix, where)
        rejected = sum(1 for a in acks if a.rejected)
        base |= {"claims": [a.as_json() for a in acks], "accepted": len(acks) - rejected, "rejected": rejected}
        if rejected:
            flags.append(Flag(code="claims.rejected", severity="warning",
                              message=f"277CA: {rejected} claims rejected by the payer: see `frontdesk claims --list`"))
    return base, flags


def describe(path: Path, result: ExtractionResult) -> None:
    """Fill ``result.x12`` and its flags from the file (called by the reader after the reading process
    recognised it); :class:`X12Error` when what it says does not hold together."""
    where = str(path)  # the caller's one-line error names the file as every reader's does
    kind = result.document_type
    try:
        data = _x12.read_bytes_capped(Path(path))
    except _x12.X12SyntaxError as exc:
        raise X12Error(where, exc.reason) from None
    result.x12, flags = summary(kind, interchange_of(data, where), where)
    result.flags.extend(flags)


# --- applying it to the records ------------------------------------------------------------------------

def prepare(db: Any, storage: Any, kind: str, data: bytes) -> dict[int, tuple[str, str]]:
    """What :func:`apply` needs from storage, fetched before its transaction: for a 999, the filed 837P
    text of each batch it acknowledges ({control number: (batch id, text)})."""
    if kind != "x12_999":
        return {}
    from frontdesk.db.claims_models import X12Batch
    from frontdesk.objects import filed_bytes

    groups = read_999(interchange_of(data, "999"), "999")
    out: dict[int, tuple[str, str]] = {}
    for g in groups:
        with db.begin() as s:
            batch = s.scalars(select(X12Batch).where(X12Batch.direction == "out", X12Batch.kind == "837P",
                                                     X12Batch.control_number == g.control_number)).first()
            found = (batch.id, batch.storage_key) if batch is not None else None
        if found is not None:
            raw = filed_bytes(db, storage, found[1]) if found[1] else None
            out[g.control_number] = (found[0], (raw or b"").decode("ascii", "replace"))
    return out


@dataclass
class Applied:
    batch_id: str
    counts: dict[str, int]


def apply(s: Any, settings: Settings, *, document_id: str, kind: str, data: bytes, sha256: str,
          storage_key: str | None, prepared: Mapping[int, tuple[str, str]], today: date | None = None) -> Applied:
    """Record what a response says, in the caller's transaction (the one completing its document)."""
    from frontdesk.db.claims_models import X12Batch

    ix = interchange_of(data, document_id)
    batch = X12Batch(kind=KINDS[kind], direction="in", control_number=ix.control_number, status="read",
                     storage_key=storage_key, sha256=sha256)
    s.add(batch)
    s.flush()
    if kind == "x12_271":
        results = eligibility.read_271_interchange(ix, document_id)
        unmatched, letters = record_coverage(s, settings, batch.id, results, today or _practice_today(settings))
        counts = {"responses": len(results), "unmatched": unmatched, "letters_queued": letters}
    elif kind == "x12_999":
        counts = _apply_999(s, read_999(ix, document_id), prepared)
    else:
        counts = _apply_277(s, read_277ca(ix, document_id))
    batch.counts = counts
    audit.record(s, "create", "x12_batch", batch.id,
                 detail=f"{KINDS[kind]} read from {document_id}; " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return Applied(batch.id, counts)


def _practice_today(settings: Settings) -> date:
    from frontdesk.checks.schedule import practice_zone, settings_zone, today_in

    return today_in(practice_zone(settings_zone(settings)))


INACTIVE_LETTER = "missing_insurance"


def record_coverage(s: Any, settings: Settings, batch_id: str, results: list[eligibility.CoverageResult],
                    today: date) -> tuple[int, int]:
    """Each 271 answer on its patient's record with the date checked; an inactive coverage queues the
    missing-insurance letter (once per patient while one is pending). Returns (unmatched, letters queued)."""
    from frontdesk.db.claims_models import EligibilityRequest as RequestRow
    from frontdesk.db.claims_models import EligibilityResult
    from frontdesk.db.models import Letter, Patient

    unmatched = letters = 0
    traces = [r.trace for r in results if r.trace]
    reqs = {q.trace: q for q in s.scalars(select(RequestRow).where(RequestRow.trace.in_(traces)))} if traces else {}
    for r in results:
        q = reqs.get(r.trace or "")
        if q is None:
            unmatched += 1
            continue
        r.patient_id = q.patient_id
        row = EligibilityResult(patient_id=q.patient_id, trace=r.trace, batch_id=batch_id, checked_on=today,
                                status=r.status.value, payer_id=r.payer_id or q.payer_id,
                                plan_name=(r.plan_name or None), copay_cents=_cents(r.copay),
                                deductible_remaining_cents=_cents(r.deductible_remaining),
                                reasons=list(r.reasons) or None)
        s.add(row)
        audit.record(s, "update", "patient", q.patient_id, patient_id=q.patient_id,
                     detail=f"eligibility {r.status.value}; {batch_id}")
        if r.status != eligibility.CoverageStatus.inactive:
            continue
        pending = s.scalar(select(Letter.id).where(Letter.patient_id == q.patient_id, Letter.kind == INACTIVE_LETTER,
                                                   Letter.status.in_(("pending", "queued"))))
        patient = s.get(Patient, q.patient_id)
        if pending is not None or patient is None:
            continue
        ctx = _inactive_letter_context(settings, patient, today)
        if ctx is None:
            continue
        letter = Letter(kind=INACTIVE_LETTER, status="pending", patient_id=q.patient_id, context=ctx)
        s.add(letter)
        s.flush()
        row.letter_id = letter.id
        letters += 1
        audit.record(s, "create", "letter", letter.id, patient_id=q.patient_id,
                     detail=f"{INACTIVE_LETTER}; coverage inactive; {batch_id}")
    return unmatched, letters


def _cents(d: Decimal | None) -> int | None:
    return None if d is None else int((d * 100).to_integral_value())


def _inactive_letter_context(settings: Settings, patient: Any, today: date) -> dict[str, Any] | None:
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


def _claims_of_segments(text: str) -> list[tuple[int, str | None]]:
    """(position within the transaction, claim) for each segment of an 837P: the claim a segment
    belongs to; a subscriber's segments before their first CLM belong to that CLM."""
    body = [ln.rstrip("~") for ln in text.splitlines()
            if ln and not ln.startswith(("ISA", "GS", "IEA", "GE"))]
    owners: list[str | None] = []
    current: str | None = None
    for ln in body:
        if ln.startswith("CLM*"):
            current = ln.split("*")[1]
        elif ln.startswith("HL*") and len(ln.split("*")) > 3 and ln.split("*")[3] == "22":
            current = None
        owners.append(current)
    ahead: str | None = None
    for i in range(len(body) - 1, -1, -1):  # look ahead to the next CLM for lines before it
        if body[i].startswith("CLM*"):
            ahead = body[i].split("*")[1]
        if owners[i] is None:
            owners[i] = ahead
    return list(enumerate(owners, 1))


def _add_flags(row: Any, flags: list[str]) -> None:
    row.flags = [*(row.flags or []), *(f for f in flags if f not in (row.flags or []))]


def _apply_999(s: Any, groups: list[GroupAck], prepared: Mapping[int, tuple[str, str]]) -> dict[str, int]:
    from frontdesk.db.claims_models import ClaimRow, X12Batch

    accepted = flagged = unmatched = 0
    for g in groups:
        found = prepared.get(g.control_number)
        if found is None:
            unmatched += 1
            continue
        batch_id, text = found
        batch = s.get(X12Batch, batch_id)
        if batch is not None:
            batch.status = g.status
        rows = {c.id: c for c in s.scalars(select(ClaimRow).where(ClaimRow.batch_id == batch_id))}
        owners = dict(_claims_of_segments(text))
        for st in g.sets:
            if st.accepted:
                for r in rows.values():
                    if r.status == ClaimStatus.written:
                        r.status = ClaimStatus.accepted
                        accepted += 1
                continue
            targets: dict[str, list[str]] = {}
            for e in st.errors:
                targets.setdefault(owners.get(e.position) or "*", []).append(e.words())
            if not targets:
                targets["*"] = [f"999: transaction rejected ({ACK_CODES.get(st.code, st.code)})"]
            for claim_id, words in targets.items():
                for cid, r in rows.items():
                    if claim_id != "*" and cid != claim_id:
                        continue
                    r.status = ClaimStatus.rejected
                    _add_flags(r, words)
                    flagged += 1
                    audit.record(s, "update", "claim", cid, patient_id=r.patient_id, detail="999 rejection")
    return {"accepted": accepted, "flagged": flagged, "unmatched": unmatched}


def _apply_277(s: Any, acks: list[ClaimAck]) -> dict[str, int]:
    from frontdesk.db.claims_models import ClaimRow

    accepted = rejected = unmatched = 0
    for a in acks:
        row = s.get(ClaimRow, a.claim_id)
        if row is None:
            # CLM01 went out upper-cased (X12's basic character set): match the ledger's id in any case
            row = s.scalars(select(ClaimRow).where(func.upper(ClaimRow.id) == a.claim_id.upper())).first()
        if row is None:
            unmatched += 1
            continue
        if a.rejected:
            row.status = ClaimStatus.payer_rejected
            _add_flags(row, [f"277CA: rejected: {w}" for w in a.reasons()])
            rejected += 1
        else:
            row.status = ClaimStatus.payer_accepted
            accepted += 1
        audit.record(s, "update", "claim", row.id, patient_id=row.patient_id,
                     detail=f"277CA {'rejected' if a.rejected else 'accepted'}")
    return {"accepted": accepted, "rejected": rejected, "unmatched": unmatched}


__all__ = ["ClaimAck", "ClaimStatus", "GroupAck", "apply", "describe", "prepare", "read_277ca", "read_999",
           "record_coverage", "summary"]
