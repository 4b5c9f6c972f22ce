"""Tie cards and letters to patients: whose card or letter is this, and what does a card add to the
patient's record.

Matching (:func:`match_patient`): by name and date of birth, or by member ID; never by name alone, and
never a guess between look-alikes. Two records that fit equally well (twins with one initial, the same name
and birthday) mean *no* match: the document is flagged for a person, because filing a letter or a card to
the wrong patient is the one error nobody would notice.

Merging (:func:`merge_card`): a card fills the blanks of the patient's record, each filled value noting
the card's document id as its source; where the record and the card disagree, the record keeps its value
and a ``card.conflict`` flag asks a person (a silent overwrite would hide a typo on either side). The
record's rules are then checked again, so an ``insurance.missing_info`` flag that was raised only because
the form's member ID was blank clears.

Records are plain mappings here (``key -> value`` and ``key -> source document id``), which is what the
records database stores per patient (``PatientField.value`` / ``source_document_id``); the pipeline loads
them, calls these functions and writes back what changed. Flag messages name fields, never values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

from extractors.cards import CARD_KEYS, RANK_KEY, SIDE_KEY
from extractors.names import payer_key
from extractors.nlp import DEFAULT_PAYERS, load_gazetteer
from frontdesk.field_flags import blank, rule_flags
from frontdesk.fields import Vocabulary
from frontdesk.identity import fold
from frontdesk.models import ExtractionResult, FieldResult, FieldValue, Flag
from frontdesk.normalisers import parse_date
from frontdesk.states import FlagStatus, advance

CONFLICT_CODE = "card.conflict"
UNMATCHED_CODE = "correspondence.unmatched"
CARD_UNMATCHED_CODE = "card.unmatched"
RULE_CODES = frozenset({"missing", "insurance.missing_info"})  # flags the record's rules raise (and clear)

MatchedBy = Literal["name_dob", "member_id", "subscriber_name_dob", "card_front"]
Rank = Literal["primary", "secondary"]
RANKS: tuple[Rank, ...] = ("primary", "secondary")
P = "insurance.primary."
# A back filed on its own is matched with the front of a card read shortly before it (the same scanned
# stack, or the most recent front without a back received at most this long before it).
BACK_WINDOW = timedelta(minutes=30)

# --------------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------------

def _words(full_name: str) -> list[str]:
    return [w for w in (fold(p) for p in full_name.replace(",", " ").split()) if w]


def name_fits(full_name: str | None, first: str | None, last: str | None) -> bool:
    """Does a printed full name ('JANE Q DOE', 'Jean-Luc Gonzalez', 'Ana de la Cruz') name this first
    and last name? The last name must be the name's last word(s) and the first name its first word;
    middle names and initials in between do not matter. 'Last, First' order is accepted too."""
    if not full_name or not first or not last:
        return False
    fk, lk = fold(first), fold(last)
    first_word = _words(first)[0] if _words(first) else ""
    if "," in full_name:
        before, after = full_name.split(",", 1)
        full_name = f"{after} {before}"
    words = _words(full_name)
    if len(words) < 2:
        return False
    for cut in range(1, len(words)):
        if "".join(words[cut:]) == lk and words[0] in (fk, first_word):
            return True
        if "".join(words[:cut]) == fk and "".join(words[cut:]) == lk:
            return True
    return False


def _iso(value: object) -> str | None:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and value.strip():
        d = parse_date(value.strip())
        return d.isoformat() if d else None
    return None


def _id_key(value: object) -> str:
    return "".join(c for c in str(value).upper() if c.isalnum()) if value else ""


# --------------------------------------------------------------------------------------------------
# Matching
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A patient record as the matcher needs it. Subscriber fields come from the patient's intake form
    (the policy holder may be a parent or spouse, whose name is the one on the card)."""

    patient_id: str
    first_name: str
    last_name: str
    date_of_birth: str | date | None
    member_ids: tuple[str, ...] = ()
    subscriber_name: str | None = None
    subscriber_date_of_birth: str | date | None = None


@dataclass
class PatientMatch:
    patient_id: str | None
    matched_by: MatchedBy | None
    reason: str  # plain words, no patient data: safe for flags and logs
    candidates: tuple[str, ...] = ()  # the records that fitted when there were several

    @property
    def matched(self) -> bool:
        return self.patient_id is not None


def match_patient(*, name: str | None, date_of_birth: str | date | None, member_id: str | None = None,
                  candidates: Iterable[Candidate], use_subscriber: bool = False) -> PatientMatch:
    """The one record this document is about, or none with the reason.

    1. Name and date of birth: every record whose date of birth equals the document's and whose first
       and last name the document's name fits.
    2. Member ID: every record carrying the document's member ID; if several (a family shares one ID)
       the name decides, and a printed name that fits none of them means no match.
    3. With ``use_subscriber`` (cards): the record whose policy holder's name and date of birth the card
       shows, when it is the only one.

    One record: matched. Several: not matched ("ambiguous"), never the first of them."""
    pool = list(candidates)
    dob = _iso(date_of_birth)
    if name and dob:
        hits = [c for c in pool if _iso(c.date_of_birth) == dob and name_fits(name, c.first_name, c.last_name)]
        if len(hits) == 1:
            return PatientMatch(hits[0].patient_id, "name_dob", "name and date of birth")
        if len(hits) > 1:
            return PatientMatch(None, None, f"{len(hits)} patient records have this name and date of birth",
                                tuple(c.patient_id for c in hits))
    mid = _id_key(member_id)
    if mid:
        hits = [c for c in pool if mid in {_id_key(m) for m in c.member_ids}]
        if name and len(hits) > 1:
            hits = [c for c in hits if name_fits(name, c.first_name, c.last_name)
                    or (c.subscriber_name and fold(c.subscriber_name) == fold(name))]
        if len(hits) == 1:
            c = hits[0]
            # A family shares a subscriber's ID: the same surname is not enough, the name must fit.
            if name and not (name_fits(name, c.first_name, c.last_name)
                             or (c.subscriber_name and same_value("insurance.primary.subscriber_name",
                                                                  c.subscriber_name, name))):
                return PatientMatch(None, None, "the member ID is on file but for a patient of another name")
            return PatientMatch(c.patient_id, "member_id", "member ID")
        if len(hits) > 1:
            return PatientMatch(None, None, f"{len(hits)} patient records share this member ID",
                                tuple(c.patient_id for c in hits))
    if use_subscriber and name and dob:
        hits = [c for c in pool if c.subscriber_name and _iso(c.subscriber_date_of_birth) == dob
                and fold(c.subscriber_name) == fold(name)]
        if len(hits) == 1:
            return PatientMatch(hits[0].patient_id, "subscriber_name_dob", "policy holder's name and date of birth")
        if len(hits) > 1:
            return PatientMatch(None, None, f"{len(hits)} patients have this policy holder",
                                tuple(c.patient_id for c in hits))
    if not name:
        return PatientMatch(None, None, "the document names no patient")
    if not dob and not mid:
        return PatientMatch(None, None, "the document has a name but no date of birth or member ID to confirm it")
    return PatientMatch(None, None, "no patient record has this name and date of birth"
                        + (" or this member ID" if mid else ""))


def match_card(card: ExtractionResult, candidates: Iterable[Candidate]) -> PatientMatch:
    """Whose card is this: the card's name (the cardholder) with the date of birth printed on it, or its
    member ID; or the patient whose policy holder the cardholder is."""
    name = card.value("insurance.primary.subscriber_name")
    dob = card.value("insurance.primary.subscriber_date_of_birth")
    mid = card.value("insurance.primary.member_id")
    return match_patient(name=name if isinstance(name, str) else None, date_of_birth=dob if isinstance(dob, str) else None,
                         member_id=mid if isinstance(mid, str) else None, candidates=candidates, use_subscriber=True)


def link_letter(letter: ExtractionResult, candidates: Iterable[Candidate]) -> tuple[PatientMatch, list[Flag]]:
    """Whom a letter is about; an unmatched letter gets a ``correspondence.unmatched`` error so a person
    files it."""
    name = letter.value("correspondence.patient_name")
    dob = letter.value("correspondence.patient_date_of_birth")
    mid = letter.value("correspondence.member_id")
    m = match_patient(name=name if isinstance(name, str) else None, date_of_birth=dob if isinstance(dob, str) else None,
                      member_id=mid if isinstance(mid, str) else None, candidates=candidates)
    flags = [] if m.matched else [Flag(code=UNMATCHED_CODE, severity="error", field=None,
                                       message=f"Letter not matched to a patient ({m.reason}); please file it by hand")]
    return m, flags


# --------------------------------------------------------------------------------------------------
# Merging a card into a record
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Conflict:
    key: str
    record_value: FieldValue
    card_value: FieldValue
    record_source: str | None


@dataclass
class MergeResult:
    """The record after the card was filed. ``fields``/``sources`` are the whole record; ``filled`` the
    keys the card supplied; ``flags`` the record's flags now (rules re-checked, conflicts, warnings the
    card's values carry); ``cleared`` the earlier rule flags that no longer hold."""

    fields: dict[str, FieldValue]
    sources: dict[str, str | None]
    filled: list[str] = field(default_factory=list)
    confirmed: list[str] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)
    cleared: list[Flag] = field(default_factory=list)


def same_value(key: str, a: FieldValue, b: FieldValue, payers: Path = DEFAULT_PAYERS) -> bool:
    """Equal as the front desk means it: payer names through the gazetteer ('BCBS' is Blue Cross Blue
    Shield of Illinois), names without case and accents, IDs without separators, dates as dates."""
    if a == b:
        return True
    if not isinstance(a, str) or not isinstance(b, str):
        return False
    if key.endswith("payer_name"):
        gaz = load_gazetteer(payers)
        ea, eb = gaz.lookup(a), gaz.lookup(b)
        return (ea is not None and ea is eb) or payer_key(a) == payer_key(b)
    if key.endswith(("_name", ".name")):
        # 'JANE Q DOE' on the card is the 'Jane Doe' of the form: first and last words decide.
        wa, wb = _words(a), _words(b)
        return fold(a) == fold(b) or (len(wa) >= 2 and len(wb) >= 2 and wa[0] == wb[0] and wa[-1] == wb[-1])
    if key.endswith(("date_of_birth", "_date", ".date")):
        return _iso(a) is not None and _iso(a) == _iso(b)
    return _id_key(a) == _id_key(b)


def coverage_key(key: str, rank: str) -> str:
    """A card's key (the reader names every card's values ``insurance.primary.*``) as the same field of the
    patient's coverage of ``rank``: ``insurance.primary.member_id`` -> ``insurance.secondary.member_id``."""
    return f"insurance.{rank}.{key[len(P):]}" if key.startswith(P) else key


def card_side(card: ExtractionResult) -> str:
    """front | back | both, as the reader told it (a reading from before sides were told: front)."""
    side = card.value(SIDE_KEY)
    return side if side in ("front", "back", "both") else "front"


@dataclass(frozen=True)
class RankChoice:
    rank: Rank
    reason: str  # plain words, no patient data


def choose_rank(record: Mapping[str, FieldValue], card: ExtractionResult,
                payers: Path = DEFAULT_PAYERS) -> RankChoice:
    """Which of the patient's coverages a card is, from what is on file.

    1. The card prints that it is a secondary coverage: the secondary.
    2. No primary on file (no payer, no member ID): the primary, as every card was before.
    3. The card's member ID is the primary's, or the secondary's: that coverage (the same card again).
    4. The card's payer and member ID both differ from the primary's: a second card, the secondary.
    5. Otherwise the primary: a card that disagrees with it in one value is a conflict for a person, never
       a second coverage made up from a typo."""
    payer, mid = card.value(P + "payer_name"), card.value(P + "member_id")

    def on_file(rank: str) -> tuple[FieldValue, FieldValue]:
        return record.get(f"insurance.{rank}.payer_name"), record.get(f"insurance.{rank}.member_id")

    def same_id(rank: str) -> bool:
        _p, m = on_file(rank)
        return not blank(m) and not blank(mid) and same_value(P + "member_id", m, mid, payers)

    if card.value(RANK_KEY) == "secondary":
        return RankChoice("secondary", "the card says it is a secondary coverage")
    primary_payer, primary_id = on_file("primary")
    if blank(primary_payer) and blank(primary_id):
        return RankChoice("primary", "no primary coverage on file")
    if same_id("primary"):
        return RankChoice("primary", "the primary coverage's member ID")
    if same_id("secondary"):
        return RankChoice("secondary", "the secondary coverage's member ID")
    if not (blank(payer) or blank(mid) or blank(primary_payer) or blank(primary_id)) \
            and not same_value(P + "payer_name", primary_payer, payer, payers) \
            and not same_value(P + "member_id", primary_id, mid, payers):
        return RankChoice("secondary", "payer and member ID differ from the primary coverage's")
    return RankChoice("primary", "the primary coverage on file")


def merge_card(record: Mapping[str, FieldValue], sources: Mapping[str, str | None] | None, card: ExtractionResult,
               *, card_document_id: str, vocab: Vocabulary, previous_flags: Sequence[Flag] = (),
               present: set[str] | None = None, payers: Path = DEFAULT_PAYERS, rank: Rank = "primary",
               implied: Mapping[str, FieldValue] | None = None) -> MergeResult:
    """File a card's values into a patient's record.

    ``record``: the patient's current values (vocabulary keys, normalised as extraction returns them);
    ``sources``: the document id each value came from; ``card``: the card's extraction; ``present``: the
    keys the record's intake form asks for (requiredness is judged on those; default: the record's keys).
    ``previous_flags``: the record's open flags, so the ones the card resolves can be reported as cleared.
    ``rank``: the coverage the card is (:func:`choose_rank`): its values go to that coverage's fields and
    only those, so a secondary card never touches the primary. ``implied``: values the filing knows beyond
    what the card prints (the policy holder is the patient: relationship ``self``), filled only into blanks.

    A card value is used only if the card carries no error for that field; warnings it carries (a member
    ID of an unusual format, low confidence) come along, so filling a gap never hides a doubt."""
    fields: dict[str, FieldValue] = dict(record)
    src: dict[str, str | None] = dict(sources or {})
    out = MergeResult(fields, src)
    card_errors = {f.field for f in card.flags if f.severity == "error" and f.field}
    card_warnings = [f for f in card.flags if f.severity == "warning" and f.field in CARD_KEYS]
    for key in CARD_KEYS:
        value = card.value(key)
        target = coverage_key(key, rank)
        if blank(value) or key in card_errors or target not in vocab.fields:
            continue
        current = fields.get(target)
        if blank(current):
            fields[target] = value
            src[target] = card_document_id
            out.filled.append(target)
            out.flags.extend(f for f in card_warnings if f.field == key)
        elif same_value(target, current, value, payers):
            out.confirmed.append(target)
        else:
            out.conflicts.append(Conflict(target, current, value, src.get(target)))
            out.flags.append(Flag(code=CONFLICT_CODE, severity="error", field=target,
                                  message=f"{vocab.label(target)} on the insurance card differs from the patient's "
                                          "record; the record was not changed: please check which is right"))
    for key, value in (implied or {}).items():
        if key in vocab.fields and not blank(value) and blank(fields.get(key)):
            fields[key] = value
            src[key] = card_document_id
            out.filled.append(key)
    asked = set(present) if present is not None else {k for k in record if k in vocab.fields}
    results = {k: FieldResult(value=v) for k, v in fields.items() if k in vocab.fields}
    now = rule_flags(results, vocab, present=asked)
    out.flags = [*now, *out.flags]
    still = {(f.code, f.field) for f in now}
    out.cleared = [f for f in previous_flags if f.code in RULE_CODES and (f.code, f.field) not in still]
    return out


# --------------------------------------------------------------------------------------------------
# Filing against the records database
# --------------------------------------------------------------------------------------------------


@dataclass
class Filing:
    """What filing a card or letter did to the records: the patient (if matched), the flags it added
    (attached to the document and the patient), the earlier flags it resolved, and the fields it filled.
    ``needs_review`` is true when it added an error flag (a conflict, or no patient found)."""

    match: PatientMatch
    flags: list[Flag] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)  # FlagRow ids
    filled: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    rank: Rank | None = None  # a card: the coverage it was filed to
    side: str | None = None  # a card: front | back | both
    front_document_id: str | None = None  # a back: the front it was matched with

    @property
    def needs_review(self) -> bool:
        return any(f.severity == "error" for f in self.flags)


def _candidates(session: Any, *, dobs: set[date], member_id: str | None) -> list[Candidate]:
    """Patients who could be meant: born on one of ``dobs``, carrying the member ID, or whose policy
    holder was born on one of ``dobs``. Field values are JSON, which databases compare differently, so
    they are compared here rather than in SQL (one indexed key at a time)."""
    from sqlalchemy import select

    from frontdesk.db.models import Patient, PatientField

    ids: set[str] = set()
    if dobs:
        ids |= set(session.scalars(select(Patient.id).where(Patient.date_of_birth.in_(dobs))))
    keys = []
    if dobs:
        keys.append("insurance.primary.subscriber_date_of_birth")
    if member_id:
        keys += ["insurance.primary.member_id", "insurance.secondary.member_id"]
    if keys:
        isos = {d.isoformat() for d in dobs}
        mid = _id_key(member_id)
        for pid, key, value in session.execute(select(PatientField.patient_id, PatientField.key, PatientField.value)
                                               .where(PatientField.key.in_(keys))):
            if (key.endswith("date_of_birth") and _iso(value) in isos) or (
                    key.endswith("member_id") and mid and _id_key(value) == mid):
                ids.add(pid)
    if not ids:
        return []
    return [candidate_of(p) for p in session.scalars(select(Patient).where(Patient.id.in_(sorted(ids)))
                                                     .order_by(Patient.id))]


def candidate_of(patient: Any) -> Candidate:
    """A :class:`frontdesk.db.models.Patient` as the matcher sees it."""
    values = {f.key: f.value for f in patient.fields}
    mids_of = tuple(str(values[k]) for k in ("insurance.primary.member_id", "insurance.secondary.member_id")
                    if values.get(k))
    sub_name = values.get("insurance.primary.subscriber_name")
    sub_dob = values.get("insurance.primary.subscriber_date_of_birth")
    return Candidate(patient.id, patient.first_name, patient.last_name, patient.date_of_birth, mids_of,
                     sub_name if isinstance(sub_name, str) else None,
                     sub_dob if isinstance(sub_dob, str) else None)


def _dob_set(*values: object) -> set[date]:
    out = set()
    for v in values:
        iso = _iso(v)
        if iso:
            out.add(date.fromisoformat(iso))
    return out


def _flag_row(session: Any, doc: Any, patient_id: str | None, extraction_id: int | None, f: Flag) -> None:
    from frontdesk.db.models import FlagRow

    session.add(FlagRow(document_id=doc.id, extraction_id=extraction_id, patient_id=patient_id, code=f.code,
                        severity=f.severity, field=f.field, message=f.message))


def find_card_patient(session: Any, card: ExtractionResult) -> PatientMatch:
    """:func:`match_card` among the records that share the card's date of birth or member ID."""
    dob = card.value("insurance.primary.subscriber_date_of_birth")
    mid = card.value("insurance.primary.member_id")
    cands = _candidates(session, dobs=_dob_set(dob), member_id=mid if isinstance(mid, str) else None)
    return match_card(card, cands)


def find_letter_patient(session: Any, letter: ExtractionResult) -> tuple[PatientMatch, list[Flag]]:
    """:func:`link_letter` among the records born on the letter's date of birth or carrying its member ID."""
    dob = letter.value("correspondence.patient_date_of_birth")
    mid = letter.value("correspondence.member_id")
    cands = _candidates(session, dobs=_dob_set(dob), member_id=mid if isinstance(mid, str) else None)
    return link_letter(letter, cands)


def file_card(session: Any, doc: Any, card: ExtractionResult, *, vocab: Vocabulary,
              extraction_id: int | None = None, payers: Path = DEFAULT_PAYERS,
              match: PatientMatch | None = None) -> Filing:
    """File an insurance card (``doc``: its :class:`frontdesk.db.models.Document`) into its patient's
    record, in the caller's transaction.

    The patient is found with :func:`match_card` among the records that share the card's date of birth
    or member ID; the back of a card alone (it names nobody) is matched with its front instead
    (:func:`find_front`) and goes to the front's patient and coverage. Matched: the card is one of the
    patient's coverages (:func:`choose_rank`; the same document filed again keeps its coverage); its
    values fill the blanks of that coverage's fields (each with the card's document id as its source),
    conflicts become ``card.conflict`` flags, the record's rules are checked again and the patient's open
    ``missing``/``insurance.missing_info`` flags that no longer hold are resolved. The card's coverage,
    side and front are kept in ``insurance_cards``. Not matched: a ``card.unmatched`` error on the
    document, for a person. ``match``: the match already made (:func:`find_card_patient`, or a person's
    choice), so it is not made twice."""
    from sqlalchemy import select

    from frontdesk import audit
    from frontdesk.db.models import FlagRow, InsuranceCard, Patient, PatientField, utcnow

    side = card_side(card)
    front: Any = None
    front_reason = ""
    if side == "back":
        front, front_reason = find_front(session, doc, card, patient_id=match.patient_id if match else None,
                                         payers=payers)
        if front is not None and match is None:
            match = PatientMatch(front.patient_id, "card_front", "the front of the same card")
    m = match or find_card_patient(session, card)
    filing = Filing(m, side=side)
    if not m.matched:
        reason = front_reason if side == "back" else m.reason
        f = Flag(code=CARD_UNMATCHED_CODE, severity="error", field=None,
                 message=f"Insurance card not matched to a patient ({reason}); please file it by hand")
        _flag_row(session, doc, None, extraction_id, f)
        filing.flags.append(f)
        return filing
    patient = session.get(Patient, m.patient_id)
    rows = {f.key: f for f in patient.fields}
    record = {k: r.value for k, r in rows.items()}
    sources = {k: r.source_document_id for k, r in rows.items()}
    known = session.get(InsuranceCard, doc.id)
    if front is not None:
        rank: Rank = "secondary" if front.rank == "secondary" else "primary"
        why = "the front of the same card"
    elif known is not None and known.patient_id == patient.id and known.rank in RANKS:
        rank, why = ("secondary" if known.rank == "secondary" else "primary"), "filed to this coverage before"
    else:
        choice = choose_rank(record, card, payers)
        rank, why = choice.rank, choice.reason
    implied: dict[str, FieldValue] = {}
    if rank == "secondary" and side != "back" and holder_is_patient(card, patient):
        # Coordination of benefits: the card is in the patient's own name, so the patient holds the policy.
        implied = {"insurance.secondary.relationship_to_patient": "self",
                   "insurance.secondary.subscriber_date_of_birth": patient.date_of_birth.isoformat()}
    open_rows = list(session.scalars(select(FlagRow).where(FlagRow.patient_id == patient.id,
                                                           FlagRow.status == "open",
                                                           FlagRow.code.in_(sorted(RULE_CODES)))))
    previous = [Flag(code=r.code, severity=r.severity, field=r.field, message=r.message) for r in open_rows]
    merged = merge_card(record, sources, card, card_document_id=doc.id, vocab=vocab, previous_flags=previous,
                        payers=payers, rank=rank, implied=implied)
    for key in merged.filled:
        row = rows.get(key)
        if row is None:
            patient.fields.append(PatientField(key=key, value=merged.fields[key], source_document_id=doc.id))
        else:
            row.value, row.source_document_id = merged.fields[key], doc.id
    cleared = {(f.code, f.field) for f in merged.cleared}
    now = utcnow()
    for r in open_rows:
        if (r.code, r.field) in cleared:
            advance(r, FlagStatus.RESOLVED)
            r.resolved_at, r.resolved_by = now, f"insurance card {doc.id}"
            filing.resolved.append(r.id)
    # The card's own flags (an ID of unusual format) are recorded with its reading, not twice.
    new = [f for f in merged.flags if (f.code == CONFLICT_CODE or f.code not in RULE_CODES) and f not in card.flags]
    for f in new:
        _flag_row(session, doc, patient.id, extraction_id, f)
    filing.flags.extend(new)
    filing.filled = list(merged.filled)
    filing.conflicts = [c.key for c in merged.conflicts]
    filing.rank = rank
    filing.front_document_id = front.document_id if front is not None else None
    if known is None:
        session.add(InsuranceCard(document_id=doc.id, patient_id=patient.id, rank=rank, side=side,
                                  front_document_id=filing.front_document_id))
    else:
        known.patient_id, known.rank, known.side, known.filed_at = patient.id, rank, side, now
        known.front_document_id = filing.front_document_id
    doc.patient_id = patient.id
    if merged.filled:
        patient.updated_at = now
    audit.record(session, "update", "patient", patient.id, patient_id=patient.id,
                 detail=f"insurance card {doc.id} ({side}) to the {rank} coverage ({why}): "
                        f"{len(merged.filled)} fields filled, {len(merged.conflicts)} conflicts, "
                        f"{len(filing.resolved)} flags resolved")
    return filing


def holder_is_patient(card: ExtractionResult, patient: Any) -> bool:
    """Is the card in the patient's own name: the cardholder's name fits the patient's and the birth date
    printed on the card, if any, is the patient's."""
    name, dob = card.value(P + "subscriber_name"), card.value(P + "subscriber_date_of_birth")
    if not isinstance(name, str) or not name_fits(name, patient.first_name, patient.last_name):
        return False
    return blank(dob) or _iso(dob) == _iso(patient.date_of_birth)


def find_front(session: Any, doc: Any, back: ExtractionResult, *, patient_id: str | None = None,
               payers: Path = DEFAULT_PAYERS, window: timedelta = BACK_WINDOW) -> tuple[Any, str]:
    """The front of the card whose back ``back`` (document ``doc``) is: an
    :class:`frontdesk.db.models.InsuranceCard` row, or None with the reason in plain words.

    Candidates are card fronts that have no back yet: those cut from the same scanned stack first, then
    those received at most ``window`` before the back (or, when a person chose the patient
    (``patient_id``), that patient's), the most recent first. A front whose reading names another payer or
    payer ID than the back does is never taken; the back and its front must be one card."""
    from sqlalchemy import select

    from frontdesk.db.models import Document, InsuranceCard
    from frontdesk.readings import extraction_result

    paired = select(InsuranceCard.front_document_id).where(InsuranceCard.front_document_id.is_not(None),
                                                           InsuranceCard.document_id != doc.id)
    q = (select(InsuranceCard, Document).join(Document, Document.id == InsuranceCard.document_id)
         .where(InsuranceCard.side == "front", InsuranceCard.document_id != doc.id,
                InsuranceCard.document_id.not_in(paired)))
    if patient_id is not None:
        q = q.where(InsuranceCard.patient_id == patient_id)
    else:
        near = (Document.received_at <= doc.received_at) & (Document.received_at >= doc.received_at - window)
        q = q.where(near | (Document.parent_id == doc.parent_id) if doc.parent_id else near)
    found = list(session.execute(q.order_by(Document.received_at.desc(), Document.id.desc())).all())
    found.sort(key=lambda r: 0 if doc.parent_id and r[1].parent_id == doc.parent_id else 1)  # stable
    if not found:
        return None, "the back of a card, and no front without its back was read shortly before it"
    for row, front_doc in found:
        front = extraction_result(session, front_doc.id)
        if front is not None and _one_card(front, back, payers):
            return row, "the front of the same card"
    return None, "the back of a card whose payer differs from the fronts read shortly before it"


def _one_card(front: ExtractionResult, back: ExtractionResult, payers: Path) -> bool:
    """Nothing the back prints contradicts the front: payer, payer ID, and a member ID if the back has one."""
    for key in (P + "payer_name", P + "payer_id", P + "member_id"):
        a, b = front.value(key), back.value(key)
        if not blank(a) and not blank(b) and not same_value(key, a, b, payers):
            return False
    return True


def file_letter(session: Any, doc: Any, letter: ExtractionResult, *, extraction_id: int | None = None,
                match: tuple[PatientMatch, list[Flag]] | None = None) -> Filing:
    """Attach a letter to its patient (``doc.patient_id``), or flag it ``correspondence.unmatched`` for a
    person. Candidates are the records born on the letter's date of birth or carrying its member ID
    (:func:`find_letter_patient`; ``match``: its answer when already known)."""
    from frontdesk import audit

    m, flags = match or find_letter_patient(session, letter)
    filing = Filing(m, flags=list(flags))
    for f in flags:
        _flag_row(session, doc, None, extraction_id, f)
    if m.matched:
        doc.patient_id = m.patient_id
        audit.record(session, "update", "document", doc.id, patient_id=m.patient_id,
                     detail=f"letter filed to patient by {m.reason}")
    return filing


# --------------------------------------------------------------------------------------------------
# Cards and letters that came before their patient's intake form
# --------------------------------------------------------------------------------------------------

# The flag a document waits with for its patient, and the kind of document that waits with it.
WAITING = {CARD_UNMATCHED_CODE: "insurance_card", UNMATCHED_CODE: "correspondence"}
# The (name, date of birth, member ID) a reading of each kind says whom it is about.
_WHO = {
    "insurance_card": ("insurance.primary.subscriber_name", "insurance.primary.subscriber_date_of_birth",
                       "insurance.primary.member_id"),
    "correspondence": ("correspondence.patient_name", "correspondence.patient_date_of_birth",
                       "correspondence.member_id"),
}


@dataclass
class Waited:
    """A card or letter that waited for its patient and is now filed (see :func:`file_waiting`)."""

    document_id: str
    document_type: str
    filing: Filing


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def file_waiting(session: Any, patient: Any, *, vocab: Vocabulary, by: str,
                 payers: Path = DEFAULT_PAYERS) -> list[Waited]:
    """File the cards and letters that no patient fitted when they arrived (an open ``card.unmatched`` or
    ``correspondence.unmatched`` flag, no patient) and that ``patient`` (a
    :class:`frontdesk.db.models.Patient` an intake form has just created or updated) now fits, in the
    caller's transaction: as if each had arrived after the form.

    The card is scanned at check-in, the form comes later: the same rules as on arrival decide
    (:func:`find_card_patient`, :func:`find_letter_patient`, over every record), so a card that two
    records fit still waits for a person. A card is filed with :func:`file_card` (it fills the record's
    gaps and resolves the rule flags it answers, conflicts are flagged); a letter is attached. The
    document's unmatched flag is resolved by ``by`` (e.g. ``"intake form doc-…"``) with an audit event,
    its flags move to the patient, and its outcome becomes ``filed`` unless an error is still open on it."""
    from sqlalchemy import func, select

    from frontdesk import audit
    from frontdesk.db.models import Document, ExtractedField, Extraction, FlagRow, utcnow
    from frontdesk.readings import extraction_result

    waiting: dict[str, list[Any]] = {}
    for row in session.scalars(select(FlagRow).join(Document, FlagRow.document_id == Document.id)
                               .where(FlagRow.status == "open", FlagRow.code.in_(sorted(WAITING)),
                                      Document.patient_id.is_(None))
                               .order_by(FlagRow.id).with_for_update(of=FlagRow)):
        waiting.setdefault(row.document_id, []).append(row)
    if not waiting:
        return []
    latest: dict[str, int] = dict(session.execute(
        select(Extraction.document_id, func.max(Extraction.id))
        .where(Extraction.document_id.in_(sorted(waiting))).group_by(Extraction.document_id)).all())
    who: dict[int, dict[str, object]] = {}
    for ex_id, key, value in session.execute(
            select(ExtractedField.extraction_id, ExtractedField.key, ExtractedField.value)
            .where(ExtractedField.extraction_id.in_(sorted(latest.values())),
                   ExtractedField.key.in_(sorted({k for keys in _WHO.values() for k in keys})))):
        who.setdefault(ex_id, {})[key] = value
    me = [candidate_of(patient)]
    out: list[Waited] = []
    now = utcnow()
    for doc_id, flag_rows in waiting.items():
        doc = session.get(Document, doc_id)
        kind = doc.document_type
        if kind not in _WHO or doc_id not in latest or any(WAITING[r.code] != kind for r in flag_rows):
            continue
        name, dob, mid = (who.get(latest[doc_id], {}).get(k) for k in _WHO[kind])
        # This patient alone first (cheap, from the stored fields); only a document that fits is read in
        # full and matched against every record.
        if match_patient(name=_text(name), date_of_birth=_text(dob), member_id=_text(mid), candidates=me,
                         use_subscriber=kind == "insurance_card").patient_id != patient.id:
            continue
        reading = extraction_result(session, doc_id)
        if reading is None:
            continue
        reading.flags = [f for f in reading.flags if f.code not in WAITING]
        if kind == "insurance_card":
            m = find_card_patient(session, reading)
            if m.patient_id != patient.id:
                continue
            filing = file_card(session, doc, reading, vocab=vocab, extraction_id=latest[doc_id], payers=payers,
                               match=m)
        else:
            found = find_letter_patient(session, reading)
            if found[0].patient_id != patient.id:
                continue
            filing = file_letter(session, doc, reading, extraction_id=latest[doc_id], match=found)
        for r in flag_rows:
            advance(r, FlagStatus.RESOLVED)
            r.resolved_at, r.resolved_by = now, by
            r.patient_id = patient.id
            audit.record(session, "update", "flag", str(r.id), patient_id=patient.id,
                         detail=f"resolved {r.code}: {kind} {doc_id} filed to its patient by "
                                f"{filing.match.reason} ({by})")
        # What the reading noted (an ID of unusual format) now concerns the patient, as on arrival; what
        # the card itself lacks does not.
        for r in session.scalars(select(FlagRow).where(FlagRow.document_id == doc_id,
                                                       FlagRow.extraction_id == latest[doc_id],
                                                       FlagRow.patient_id.is_(None))):
            if r.code not in RULE_CODES:
                r.patient_id = patient.id
        errors = session.scalar(select(func.count()).select_from(FlagRow).where(
            FlagRow.document_id == doc_id, FlagRow.status == "open",
            (FlagRow.severity == "error") | (FlagRow.code == "low_confidence")))
        if doc.outcome == "needs_review" and not errors:
            doc.outcome = "filed"
        out.append(Waited(doc_id, kind, filing))
    return out
