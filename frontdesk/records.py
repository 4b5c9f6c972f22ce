"""Records: the database side of filing a document, and patient lookup.

The pipeline writes in three short transactions per document, so a crash at any point is repaired by
the next run without a duplicate object or an orphan record:

1. :func:`reserve_document` inserts the document ``pending`` with its storage keys and the SHA-256 of
   every object about to be written (nothing is stored yet);
2. the pipeline stores the objects under exactly those keys (a retry overwrites the same objects);
3. :func:`complete_document` records the extraction, fields, flags and patient, and marks the objects
   stored (or spooled) and the document ``complete`` (``awaiting_letters`` when a letter is still due).

A ``pending`` row is what the next run completes; every stored object has a row from step 1 on.
Every create, read, search, export and change of a patient's record or documents adds an audit event in
the same transaction (:mod:`frontdesk.audit`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, or_, select, text
from sqlalchemy.orm import Session

from frontdesk import audit, letter_events
from frontdesk.db.models import (
    Arrival,
    Document,
    ExtractedField,
    Extraction,
    FlagRow,
    Letter,
    Patient,
    PatientField,
    StoredObjectRow,
    utcnow,
)
from frontdesk.field_flags import blank, rule_flags
from frontdesk.identity import fold
from frontdesk.identity import match_key as match_key  # the patient key, kept where callers look for it
from frontdesk.models import ExtractionResult, FieldResult, StoredObject
from frontdesk.objects import PlannedObject as PlannedObject
from frontdesk.objects import mark_stored as mark_stored
from frontdesk.objects import object_row as object_row
from frontdesk.objects import plan_object
from frontdesk.readings import extraction_result as extraction_result
from frontdesk.states import DocumentState, FlagStatus, PieceStatus, advance

if TYPE_CHECKING:
    from frontdesk.cards import Filing
    from frontdesk.fields import Vocabulary

# Sections of the vocabulary that describe the patient (kept current on the patient record);
# consent fields belong to the document that was signed, not to the person.
PATIENT_SECTIONS = ("patient.", "insurance.", "emergency_contact.")
NAME_KEYS = ("patient.first_name", "patient.last_name", "patient.date_of_birth")


# --- patients -------------------------------------------------------------------------------------------

def _identity(result: ExtractionResult) -> tuple[str, str, date] | None:
    first, last, dob = (result.value(k) for k in NAME_KEYS)
    if not (isinstance(first, str) and isinstance(last, str) and isinstance(dob, str)):
        return None
    if not fold(first) or not fold(last):
        return None
    try:
        return first, last, date.fromisoformat(dob)
    except ValueError:  # an invalid date was kept and flagged; it cannot identify anyone
        return None


def match_patient(session: Session, result: ExtractionResult) -> Patient | None:
    """The patient this reading is about (same normalised name and date of birth), if known."""
    ident = _identity(result)
    if ident is None:
        return None
    key = match_key(*ident)
    return session.scalars(select(Patient).where(Patient.match_key == key)
                           .order_by(Patient.created_at, Patient.id).limit(1)).first()


def _attach_patient(session: Session, doc: Document, result: ExtractionResult, *,
                    earlier: dict[str, Any] | None = None) -> tuple[Patient | None, dict[str, str]]:
    """Find or create the patient and make this document's values the current ones.

    A field the document has a box for is the patient's current statement, blank included (a new intake
    without secondary insurance means there is none now); a field the document does not carry leaves
    the current value alone (an insurance card says nothing about the address).

    ``earlier`` (key -> value) is the document's previous reading when this one reads it again (a person's
    review). A document read again is no newer than it was, so a value another document supplied since
    (the card that filled the member ID the form left blank, a later intake) stays unless the new reading
    corrects the document: a value that differs from how the document was read before. A blank never
    erases another document's value: the person confirmed that the box is empty, not that the patient has
    no member ID. A correction replaces it and is audited with both document ids.

    Returns the patient and the fields kept from other documents (key -> that document's id)."""
    ident = _identity(result)
    if ident is None:
        return None, {}
    patient = match_patient(session, result)
    if patient is None:
        first, last, dob = ident
        patient = Patient(match_key=match_key(first, last, dob), first_name=first, last_name=last,
                          date_of_birth=dob)
        session.add(patient)
        session.flush()
        audit.record(session, "create", "patient", patient.id, patient_id=patient.id,
                     detail=f"from {doc.id}")
    current = {f.key: f for f in patient.fields}
    changed = []
    kept: dict[str, str] = {}
    for key, fr in result.fields.items():
        if not key.startswith(PATIENT_SECTIONS):
            continue
        row = current.get(key)
        if row is None:
            patient.fields.append(PatientField(key=key, value=fr.value, source_document_id=doc.id))
            changed.append(key)
            continue
        other = row.source_document_id
        if earlier is not None and other is not None and other != doc.id:
            if row.value == fr.value:
                continue  # the other document said it too, and said it later: it stays the source
            if blank(fr.value) or (key in earlier and earlier[key] == fr.value):
                if not blank(row.value):
                    kept[key] = other
                continue
            audit.record(session, "update", "patient", patient.id, patient_id=patient.id,
                         detail=f"{key} corrected in a new reading of {doc.id}; replaces the value from {other}")
        if row.value != fr.value or row.source_document_id != doc.id:
            if row.value != fr.value:
                changed.append(key)
            row.value, row.source_document_id = fr.value, doc.id
    if changed:
        patient.updated_at = utcnow()
        audit.record(session, "update", "patient", patient.id, patient_id=patient.id,
                     detail=f"{len(changed)} fields from {doc.id}")
    if kept:
        audit.record(session, "update", "patient", patient.id, patient_id=patient.id,
                     detail=f"new reading of {doc.id} left {len(kept)} fields other documents supplied: "
                            + ", ".join(f"{k} from {v}" for k, v in sorted(kept.items())))
    doc.patient_id = patient.id
    return patient, kept


def find_patients(session: Session, name: str, dob: date | None = None) -> list[Patient]:
    """Patients whose name contains every word of ``name`` (any order, accents and case ignored).
    Each hit is audited as a search of that patient's record; the query text is not recorded."""
    words = [w for w in (fold(p) for p in name.replace(",", " ").split()) if w]
    if not words:  # no letters at all: never list every patient
        audit.record(session, "search", "patient", None, detail="no name given")
        return []
    q = select(Patient)
    for w in words:
        q = q.where(Patient.match_key.like(f"%{w}%"))
    if dob is not None:
        q = q.where(Patient.date_of_birth == dob)
    hits = list(session.scalars(q.order_by(Patient.last_name, Patient.first_name, Patient.id).limit(200)))
    # The LIKE ran over "last|first|dob": keep only hits whose words are in the name parts themselves.
    hits = [p for p in hits if all(w in fold(p.last_name) + "|" + fold(p.first_name)
                                   for w in words)]
    for p in hits:
        audit.record(session, "search", "patient", p.id, patient_id=p.id)
    if not hits:
        audit.record(session, "search", "patient", None, detail="no match")
    return hits


@dataclass
class PatientView:
    """What ``patients show`` prints: the record, its documents, open flags and letters."""

    patient: Patient
    fields: dict[str, Any]
    documents: list[Document]
    open_flags: list[FlagRow]
    letters: list[Letter]


def show_patient(session: Session, patient_id: str) -> PatientView | None:
    """The patient's record for a person to read; the read is audited."""
    patient = session.get(Patient, patient_id)
    if patient is None:
        return None
    docs = list(session.scalars(select(Document).where(Document.patient_id == patient_id)
                                .order_by(Document.received_at, Document.id)))
    flags = list(session.scalars(select(FlagRow).where(FlagRow.patient_id == patient_id, FlagRow.status == "open")
                                 .order_by(FlagRow.id)))
    letters = list(session.scalars(select(Letter).where(Letter.patient_id == patient_id)
                                   .order_by(Letter.created_at, Letter.id)))
    audit.record(session, "read", "patient", patient_id, patient_id=patient_id)
    fields = {f.key: {"value": f.value, "source_document": f.source_document_id} for f in patient.fields}
    return PatientView(patient, fields, docs, flags, letters)


# --- documents ------------------------------------------------------------------------------------------

def document_by_sha(session: Session, sha256: str, *, for_update: bool = False) -> Document | None:
    q = select(Document).where(Document.sha256 == sha256)
    if for_update:
        q = q.with_for_update()
    return session.scalars(q).first()


def reserve_document(session: Session, *, document_id: str, sha256: str, size: int, prefix: str,
                     objects: Sequence[PlannedObject], source_path: str | None,
                     received_at: datetime | None = None) -> Document:
    """Step 1: the pending document and its objects, before anything is stored. Called again for a
    pending document (a retry after a crash) it re-plans the same keys with the new hashes."""
    doc = session.get(Document, document_id)
    outcome = "resumed"
    if doc is None:
        doc = Document(id=document_id, sha256=sha256, size=size, state="pending", storage_prefix=prefix,
                       received_at=received_at or utcnow())
        session.add(doc)
        session.flush()
        outcome = "new"
        # The "create" event is written when the document is complete and its patient is known, so that
        # `audit --patient` shows it; a pending row is internal bookkeeping until then.
    elif doc.state != "pending":
        raise ValueError(f"document {document_id} is already {doc.state}")
    for planned in objects:
        plan_object(session, planned, document_id=document_id)
    session.add(Arrival(document_id=document_id, sha256=sha256, outcome=outcome, source_path=source_path))
    return doc


def record_duplicate(session: Session, doc: Document, source_path: str | None) -> None:
    session.add(Arrival(document_id=doc.id, sha256=doc.sha256, outcome="duplicate", source_path=source_path))
    audit.record(session, "duplicate", "document", doc.id, patient_id=doc.patient_id, detail="same sha256")


def complete_document(session: Session, document_id: str, *, result: ExtractionResult | None, outcome: str,
                      stored: Sequence[StoredObject], error: str | None = None,
                      letter_due: bool = False, vocab: Vocabulary | None = None) -> Document | None:
    """Step 3: everything learned about the document, in one transaction. Returns None when another
    process completed it first (its records stand; nothing is recorded twice).

    An insurance card is filed into its patient's record and a letter attached to its patient (see
    :func:`file_reading`; ``vocab`` is the field vocabulary the reading was checked with). What filing
    adds (a conflict between card and record, no patient found) is appended to ``result.flags`` and an
    error among it makes the document's ``outcome`` ``needs_review``: the caller reports
    ``doc.outcome`` and ``result.flags`` as the records have them. An intake form also files the cards
    and letters that came before it and waited for its patient (:func:`file_waiting`); the flags of the
    form a waiting card answers are resolved and leave ``result.flags``, and a ``letter_due`` for them is
    no longer due (the document is ``complete``, no letter is written)."""
    if result is not None and result.document_type in MATCHED_TYPES:
        one_matcher_at_a_time(session)
    doc = session.scalars(select(Document).where(Document.id == document_id).with_for_update()).first()
    if doc is None or doc.state != "pending":
        return None
    for obj in stored:
        mark_stored(session, obj)
    # Objects planned by an earlier attempt but not written by this one (the reading changed between
    # attempts) were never confirmed: forget them, or verify would look for them forever.
    written = {o.key for o in stored}
    for row in list(doc.objects):
        if row.key not in written and row.state == "pending":
            session.delete(row)
    doc.outcome, doc.error = outcome, error
    if result is not None:
        _record_reading(session, doc, result, vocab=vocab)
        if doc.outcome in ("filed", "needs_review"):
            # Filing may add an error (a conflict) or, for a form, a waiting card may answer one.
            doc.outcome = "needs_review" if result.needs_review() else "filed"
        if letter_due and not any(f.code in LETTER_FOR_FLAG for f in result.flags):
            letter_due = False  # what the letter would ask for is on file already
    advance(doc, DocumentState.AWAITING_LETTERS if letter_due else DocumentState.COMPLETE, attr="state")
    doc.completed_at = None if letter_due else utcnow()
    audit.record(session, "create", "document", doc.id, patient_id=doc.patient_id,
                 detail=f"{outcome}; {len(stored)} objects")
    if result is not None:  # welcome and incomplete-intake letters, as config/letters.yaml says
        letter_events.on_intake_filed(session, doc, result, reviewed=False, labels=_labels(vocab))
    return doc


def _labels(vocab: Vocabulary | None) -> dict[str, str]:
    vocab = vocab or _default_vocabulary()
    return {key: spec.label for key, spec in vocab.fields.items()}


# The documents that are matched to each other through the patient's record: a form creates or updates the
# record, a card or letter looks for it, and a form looks for the cards and letters waiting for it.
MATCHED_TYPES = frozenset({"intake_form", "insurance_card", "correspondence"})
_PG_MATCH_LOCK = 0x46524F4E5444  # any constant shared by all Frontdesk processes ("FRONTD")


def one_matcher_at_a_time(session: Session) -> None:
    """Hold, until the transaction ends, the lock that lets one filing at a time match documents to
    patients. Why: a card and its form filed at the same moment by two workers would each look for the
    other before either had committed; the card would stay unmatched for a person although its form is
    on file. With the lock the second one sees the first. SQLite needs nothing: every transaction there
    starts with ``BEGIN IMMEDIATE`` and holds the database's write lock already. Taken before any row
    lock, so it cannot deadlock with one; held for a filing's few milliseconds."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MATCH_LOCK})


def _record_reading(session: Session, doc: Document, result: ExtractionResult, *,
                    vocab: Vocabulary | None = None, earlier: dict[str, Any] | None = None) -> Extraction:
    # Flags that filing raises (a card conflict, an unmatched letter) are the records' to decide: a
    # reading handed in again (a review) carries the old ones, and filing below raises them afresh.
    result.flags = [f for f in result.flags if f.code not in FILING_CODES]
    doc.document_type, doc.form, doc.method, doc.pages = (result.document_type, result.form,
                                                          result.method, result.pages)
    extraction = Extraction(document_id=doc.id, document_type=result.document_type, form=result.form,
                            method=result.method, pages=result.pages)
    extraction.fields = [ExtractedField(document_id=doc.id, key=k, value=fr.value, raw=fr.raw,
                                        confidence=fr.confidence, page=fr.page)
                         for k, fr in result.fields.items()]
    # Rows of repeating groups: each box under its row key (medications.2.dose); check lists: the ticked
    # options as one value (a JSON list) under the list's name. frontdesk.readings puts them back.
    extraction.fields += [ExtractedField(document_id=doc.id, key=f"{group}.{row.row}.{name}", value=fr.value,
                                         raw=fr.raw, confidence=fr.confidence, page=fr.page)
                          for group, rows in result.rows.items() for row in rows for name, fr in row.fields.items()]
    extraction.fields += [ExtractedField(document_id=doc.id, key=name, value=list(ticked))
                          for name, ticked in result.checklists.items()]
    session.add(extraction)
    session.flush()
    patient, kept = _attach_patient(session, doc, result, earlier=earlier)
    rows = [FlagRow(document_id=doc.id, extraction_id=extraction.id, patient_id=patient.id if patient else None,
                    code=f.code, severity=f.severity, field=f.field, message=f.message) for f in result.flags]
    session.add_all(rows)
    filing = file_reading(session, doc, result, extraction_id=extraction.id, vocab=vocab)
    if filing is not None:
        result.flags.extend(f for f in filing.flags if f not in result.flags)
        if doc.patient_id is not None:
            # The card's notes on what it gave (an ID of unusual format, a doubtful reading) concern the
            # patient; what the card itself lacks does not (the record may have it from the form).
            for row in rows:
                if row.code not in ("missing", "insurance.missing_info"):
                    row.patient_id = doc.patient_id
    if patient is not None:
        file_waiting(session, doc, patient, vocab=vocab)
        if kept:
            _resolve_on_file(session, doc, patient, result, rows, kept, vocab=vocab)
        # A waiting card (or, for a reading read again, a value another document supplied) may have answered
        # this reading's own flags: they are resolved in the records, and the reading reports what is still
        # open (so no letter asks for what the card gave).
        done = {(r.code, r.field) for r in rows if r.status == "resolved"}
        result.flags = [f for f in result.flags if (f.code, f.field) not in done]
    return extraction


def _resolve_on_file(session: Session, doc: Document, patient: Patient, result: ExtractionResult,
                     rows: Sequence[FlagRow], kept: dict[str, str], *, vocab: Vocabulary | None = None) -> None:
    """Resolve the rule flags of a reading read again (``missing``, the missing-insurance rule) that the
    patient's record answers with values other documents supplied (``kept``, see :func:`_attach_patient`):
    the form's member ID box is still empty, but the record has the card's, so nobody is asked for it.
    The rules are checked over the document's fields with the record's values for the kept ones."""
    vocab = vocab or _default_vocabulary()
    codes = {"missing", vocab.missing_insurance.code}
    values = dict(result.fields)
    for key in kept:
        values[key] = FieldResult(value=patient.value(key), confidence=1.0)
    still = {(f.code, f.field) for f in rule_flags(values, vocab, present=set(result.fields))}
    answered = [r for r in rows if r.code in codes and r.status not in ("resolved", "dismissed")
                and (r.code, r.field) not in still]
    if not answered:
        return
    sources = ", ".join(sorted(set(kept.values())))
    now = utcnow()
    for r in answered:
        advance(r, FlagStatus.RESOLVED)
        r.resolved_at, r.resolved_by = now, f"on file from {sources}"[:100]
    audit.record(session, "update", "document", doc.id, patient_id=patient.id,
                 detail=f"new reading: {len(answered)} flags resolved, the record has the values from {sources} ("
                        + ", ".join(sorted({r.code for r in answered})) + ")")


# Codes only filing raises (frontdesk.cards), never a reader.
FILING_CODES = frozenset({"card.conflict", "card.unmatched", "correspondence.unmatched"})


def file_reading(session: Session, doc: Document, result: ExtractionResult, *, extraction_id: int | None = None,
                 vocab: Vocabulary | None = None) -> Filing | None:
    """Tie a card or a letter to its patient, in the caller's transaction; None for other documents.

    A card fills the gaps of its patient's record (:func:`frontdesk.cards.file_card`): a
    ``insurance.missing_info`` flag it resolves closes, and a missing-insurance letter for that gap that
    has not gone out yet is voided (:func:`void_letters_for_resolved`). A letter is attached to its
    patient (:func:`frontdesk.cards.file_letter`). Either one that finds no patient, or a card that
    disagrees with the record, adds an error flag for a person."""
    if result.document_type not in ("insurance_card", "correspondence"):
        return None
    from frontdesk import cards  # spaCy and the payer list load only when a card or letter is filed

    if result.document_type == "correspondence":
        return cards.file_letter(session, doc, result, extraction_id=extraction_id)
    filing = cards.file_card(session, doc, result, vocab=vocab or _default_vocabulary(),
                             extraction_id=extraction_id)
    if filing.resolved:
        void_letters_for_resolved(session, filing.resolved, reason=f"insurance card {doc.id} filled the gap")
    return filing


def file_waiting(session: Session, doc: Document, patient: Patient, *, vocab: Vocabulary | None = None) -> int:
    """File the insurance cards and letters that came before this patient's intake form ``doc`` and were
    left for a person (:func:`frontdesk.cards.file_waiting`); a pending missing-insurance letter for a gap a
    card fills is voided, as when the card comes after the form. Returns how many were filed."""
    waiting = session.scalar(select(func.count()).select_from(FlagRow).where(
        FlagRow.status == "open", FlagRow.code.in_(sorted(WAITING_CODES)), FlagRow.patient_id.is_(None)))
    if not waiting:  # the common case: nothing waits, and spaCy and the payer list are not loaded
        return 0
    from frontdesk import cards

    filed = cards.file_waiting(session, patient, vocab=vocab or _default_vocabulary(), by=f"intake form {doc.id}")
    for w in filed:
        if w.filing.resolved:
            void_letters_for_resolved(session, w.filing.resolved, reason=f"insurance card {w.document_id} filled the gap")
    return len(filed)


# The flags a card or letter waits with until its patient's record exists (frontdesk.cards.WAITING).
WAITING_CODES = frozenset({"card.unmatched", "correspondence.unmatched"})


def _default_vocabulary() -> Vocabulary:
    from frontdesk.fields import load_vocabulary

    return load_vocabulary(Path(__file__).resolve().parents[1] / "config" / "fields.yaml")


# Letters that exist only because of a flag: when the flag is resolved before the letter goes out, the
# letter is void. One kind today: the missing-insurance letter asks for what insurance.missing_info names.
LETTER_FOR_FLAG = {"insurance.missing_info": "missing_insurance"}


def void_letters_for_resolved(session: Session, flag_ids: Sequence[int], *, reason: str) -> list[str]:
    """Void the letters that asked for what the resolved flags ``flag_ids`` were about, on their
    documents, as long as they have not gone out: a ``pending`` letter becomes ``void`` (the mail batch
    takes only pending letters), and so does one already in a batch that is not marked mailed yet
    (``queued``): the patient must not be asked for what the practice has. That batch goes on with its
    other pieces; the letter is withdrawn from it and named to be pulled from the printed stack
    (:func:`frontdesk.withdrawals.withdraw_piece`). A ``mailed`` letter stays as it is: it went out.
    Each voided letter is an audit event. Returns the ids of the letters voided."""
    flags = list(session.scalars(select(FlagRow).where(FlagRow.id.in_(list(flag_ids)),
                                                       FlagRow.status == "resolved")))
    wanted = {(f.document_id, LETTER_FOR_FLAG[f.code]) for f in flags
              if f.code in LETTER_FOR_FLAG and f.document_id is not None}
    if not wanted:
        return []
    # Locked in id order and read afresh, as the mail batch locks them (frontdesk.letters.mail._lock): a
    # mail run may be queueing these letters, or a person marking their batch mailed, at this moment.
    letters = list(session.scalars(
        select(Letter).where(or_(*(and_(Letter.document_id == d, Letter.kind == k) for d, k in sorted(wanted))),
                             Letter.status.in_(("pending", "queued")))
        .order_by(Letter.id).with_for_update().execution_options(populate_existing=True)))
    voided = []
    for letter in letters:
        detail = f"void: {reason}"
        if letter.status == "queued":
            from frontdesk.withdrawals import withdraw_piece

            where = withdraw_piece(session, letter.id, reason=reason)
            if where is not None:
                detail += (f"; withdrawn from mail batch {where.batch_id} (piece {where.position}, pages "
                           f"{where.first_page}-{where.last_page}): pull it before mailing")
        advance(letter, PieceStatus.VOID)
        voided.append(letter.id)
        audit.record(session, "update", "letter", letter.id, patient_id=letter.patient_id, detail=detail[:255])
    return voided


def record_new_reading(session: Session, document_id: str, result: ExtractionResult, *,
                       outcome: str, resolved_by: str | None = None,
                       vocab: Vocabulary | None = None) -> Extraction:
    """A corrected reading of a filed document (a person's review, a better reader): a new extraction
    whose flags replace the open ones, and the patient's values updated from it (a card or letter is
    filed again, as :func:`complete_document` does). The earlier reading stays as history.

    Values other documents supplied since the document was filed stay unless the new reading corrects
    them (see :func:`_attach_patient`), and the reading's flags the record answers that way are resolved
    at once and leave ``result.flags``, as when a waiting card answers a new form: a review that confirms
    a blank member ID the card has since given writes no letter. ``doc.outcome`` is what the records say
    after that (``filed`` when nothing is left for a person)."""
    if result.document_type in MATCHED_TYPES:
        one_matcher_at_a_time(session)
    doc = session.get(Document, document_id)
    if doc is None:
        raise ValueError(f"no document {document_id}")
    before = session.scalars(select(Extraction).where(Extraction.document_id == document_id)
                             .order_by(Extraction.id.desc()).limit(1)).first()
    earlier = {f.key: f.value for f in before.fields} if before is not None else {}
    now = utcnow()
    for flag in session.scalars(select(FlagRow).where(FlagRow.document_id == document_id,
                                                      FlagRow.status == "open")):
        advance(flag, FlagStatus.RESOLVED)
        flag.resolved_at, flag.resolved_by = now, resolved_by or audit.current_actor()
    extraction = _record_reading(session, doc, result, vocab=vocab, earlier=earlier)
    if outcome in ("filed", "needs_review"):
        outcome = "needs_review" if result.needs_review() else "filed"
    doc.outcome = outcome
    audit.record(session, "update", "document", doc.id, patient_id=doc.patient_id,
                 detail=f"new reading; {outcome}; {len(result.flags)} flags")
    letter_events.on_intake_filed(session, doc, result, reviewed=True, labels=_labels(vocab))
    return extraction


def document_objects(session: Session, document_id: str) -> tuple[list[StoredObjectRow], list[StoredObjectRow]]:
    """(filed objects, letter objects) of a document."""
    rows = list(session.scalars(select(StoredObjectRow).where(StoredObjectRow.document_id == document_id)
                                .order_by(StoredObjectRow.created_at, StoredObjectRow.key)))
    letters = list(session.scalars(select(StoredObjectRow).join(Letter, StoredObjectRow.letter_id == Letter.id)
                                   .where(Letter.document_id == document_id)
                                   .order_by(StoredObjectRow.key)))
    return rows, letters


def pending_documents(session: Session) -> list[Document]:
    return list(session.scalars(select(Document).where(Document.state == "pending").order_by(Document.received_at)))


def documents_awaiting_letters(session: Session) -> list[Document]:
    return list(session.scalars(select(Document).where(Document.state == "awaiting_letters")
                                .order_by(Document.received_at)))


def last_source_path(session: Session, document_id: str) -> str | None:
    return session.scalars(select(Arrival.source_path).where(Arrival.document_id == document_id,
                                                              Arrival.source_path.is_not(None))
                           .order_by(Arrival.id.desc()).limit(1)).first()


# --- letters --------------------------------------------------------------------------------------------

def reserve_letter(session: Session, *, document_id: str, kind: str, planned: PlannedObject,
                   context: dict[str, Any]) -> Letter:
    """A pending letter and its object, before the PDF is stored. One letter per (document, kind): a
    retry after a crash reuses the row and overwrites the same object."""
    doc = session.get(Document, document_id)
    assert doc is not None
    letter = session.scalars(select(Letter).where(Letter.document_id == document_id, Letter.kind == kind)).first()
    if letter is None:
        letter = Letter(kind=kind, status="pending", patient_id=doc.patient_id, document_id=document_id)
        session.add(letter)
        session.flush()
        audit.record(session, "create", "letter", letter.id, patient_id=doc.patient_id, detail=kind)
        if _gap_filled(session, document_id, kind):
            # The flag this letter asks about was resolved before it was written (the patient's card came
            # in the same run): it is filed for the record but never mailed.
            advance(letter, PieceStatus.VOID)
            audit.record(session, "update", "letter", letter.id, patient_id=doc.patient_id,
                         detail="void: the gap was filled before the letter was written")
    letter.storage_key, letter.sha256, letter.context = planned.key, planned.sha256, context
    plan_object(session, planned, letter_id=letter.id)
    return letter


def _gap_filled(session: Session, document_id: str, kind: str) -> bool:
    """The document had the flag a letter of ``kind`` is for, and none of it is open any more."""
    codes = [c for c, k in LETTER_FOR_FLAG.items() if k == kind]
    if not codes:
        return False
    statuses = set(session.scalars(select(FlagRow.status).where(FlagRow.document_id == document_id,
                                                                FlagRow.code.in_(codes))))
    return bool(statuses) and "open" not in statuses


def complete_letter(session: Session, letter_id: str, obj: StoredObject) -> None:
    letter = session.get(Letter, letter_id)
    assert letter is not None
    mark_stored(session, obj)
    letter.sha256 = obj.sha256
    if letter.document_id:
        doc = session.get(Document, letter.document_id)
        if doc is not None and doc.state == "awaiting_letters":
            advance(doc, DocumentState.COMPLETE, attr="state")
            doc.completed_at = utcnow()
    audit.record(session, "update", "letter", letter.id, patient_id=letter.patient_id, detail="filed")


def letter_for(session: Session, document_id: str, kind: str) -> Letter | None:
    return session.scalars(select(Letter).where(Letter.document_id == document_id, Letter.kind == kind)).first()


def finish_without_letters(session: Session, document_id: str) -> None:
    doc = session.get(Document, document_id)
    if doc is not None and doc.state == DocumentState.AWAITING_LETTERS:
        advance(doc, DocumentState.COMPLETE, attr="state")
        doc.completed_at = utcnow()


# --- counts for reports and tests -----------------------------------------------------------------------

def counts(session: Session) -> dict[str, int]:
    def n(model: Any, *where: Any) -> int:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    return {
        "documents": n(Document),
        "documents_pending": n(Document, Document.state != "complete"),
        "objects": n(StoredObjectRow),
        "objects_not_stored": n(StoredObjectRow, StoredObjectRow.state != "stored"),
        "patients": n(Patient),
        "letters": n(Letter),
        "arrivals": n(Arrival),
    }


def since_date(text: str) -> datetime:
    """``--since`` values: a date (midnight UTC) or an ISO date-time."""
    from datetime import UTC

    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a date: {text!r} (use YYYY-MM-DD)") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


# --- consistency of records and storage -----------------------------------------------------------------

@dataclass
class VerifyReport:
    """What ``storage verify`` found. Everything but ``checked`` is a problem."""

    checked: int = 0
    missing: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    unencrypted: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    pending_objects: list[str] = field(default_factory=list)
    spooled: list[str] = field(default_factory=list)
    spool_lost: list[str] = field(default_factory=list)
    pending_documents: list[str] = field(default_factory=list)
    letters_due: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any((self.missing, self.mismatched, self.unencrypted, self.orphans, self.pending_objects,
                        self.spooled, self.spool_lost, self.pending_documents, self.letters_due))

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checked": self.checked, "missing": self.missing, "mismatched": self.mismatched,
                "unencrypted": self.unencrypted, "orphans": self.orphans,
                "pending_objects": self.pending_objects, "spooled": self.spooled, "spool_lost": self.spool_lost,
                "pending_documents": self.pending_documents, "letters_due": self.letters_due}


def verify_storage(db: Any, storage: Any, *, deep: bool = False) -> VerifyReport:
    """Every recorded object exists with its recorded SHA-256; every stored object has a record.

    Local storage re-hashes each file; S3 compares the checksum S3 computed on receipt (or the
    ``sha256`` metadata for multipart objects) and the encryption header; ``deep`` downloads and hashes
    every S3 object as well.
    """
    from frontdesk.storage import S3Storage, SpoolingStorage, sha256_bytes

    backend = storage.backend if isinstance(storage, SpoolingStorage) else storage
    report = VerifyReport()
    with db.begin() as s:
        rows = [(r.key, r.state, r.sha256) for r in s.scalars(select(StoredObjectRow).order_by(StoredObjectRow.key))]
        report.pending_documents = [d.id for d in s.scalars(select(Document).where(Document.state == "pending")
                                                             .order_by(Document.id))]
        report.letters_due = [d.id for d in documents_awaiting_letters(s)]
    recorded = set()
    for key, state, sha in rows:
        recorded.add(key)
        if state == "pending":
            report.pending_objects.append(key)
            continue
        if state == "spooled":
            entry = storage.spooled_entry(key) if isinstance(storage, SpoolingStorage) else None
            (report.spooled if entry is not None and entry.sha256 == sha else report.spool_lost).append(key)
            continue
        report.checked += 1
        if isinstance(backend, S3Storage):
            head = backend.head_metadata(key)
            if head is None:
                report.missing.append(key)
                continue
            actual = sha256_bytes(backend.get_bytes(key)) if deep else S3Storage.sha_of(head)
            if head.get("ServerSideEncryption") not in ("AES256", "aws:kms"):
                report.unencrypted.append(key)
        else:
            obj = backend.head(key)
            if obj is None:
                report.missing.append(key)
                continue
            actual = obj.sha256
        if actual != sha:
            report.mismatched.append(key)
    report.orphans = [k for k in backend.keys("") if k not in recorded]
    return report


def flush_spool(db: Any, storage: Any) -> tuple[int, int, str | None]:
    """Send spooled objects to storage, marking each stored as it is confirmed.
    Returns (sent, still waiting, why not all were sent)."""
    from frontdesk.storage import SpoolingStorage

    if not isinstance(storage, SpoolingStorage) or not storage.spooled():
        return 0, 0, None

    def on_sent(obj: StoredObject) -> None:
        with db.begin() as s:
            mark_stored(s, obj)

    report = storage.flush(on_sent)
    return len(report.sent), report.waiting, report.error


def export_patient(db: Any, storage: Any, patient_id: str, dest: Path) -> list[Path] | None:
    """Copy every filed object of a patient's documents and letters to ``dest/<document id>/``, each
    checked against its recorded SHA-256 and audited as an export. None when there is no such patient."""
    from frontdesk.exceptions import StorageError
    from frontdesk.storage import sha256_bytes

    with db.begin() as s:
        if s.get(Patient, patient_id) is None:
            return None
        rows = list(s.scalars(select(StoredObjectRow).outerjoin(Letter, StoredObjectRow.letter_id == Letter.id)
                              .outerjoin(Document, StoredObjectRow.document_id == Document.id)
                              .where((Document.patient_id == patient_id) | (Letter.patient_id == patient_id))
                              .order_by(StoredObjectRow.key)))
        wanted = [(r.key, r.sha256) for r in rows if r.state != "pending"]
    written = []
    for key, sha in wanted:
        data = storage.get_bytes(key)
        if sha is not None and sha256_bytes(data) != sha:
            raise StorageError(f"stored copy of {key} does not match its record; not exported")
        parts = key.split("/")
        # documents/YYYY/MM/<doc-id>/... -> <doc-id>/...: the export keeps the opaque layout.
        out = Path(dest).joinpath(*parts[3:]) if len(parts) > 4 else Path(dest).joinpath(*parts)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
        with db.begin() as s:
            audit.record(s, "export", "object", key, patient_id=patient_id)
        written.append(out)
    return written
