"""What staff do to records, one function per action, shared by the console and the CLI so that both
write the same audit events: dismiss a flag with a reason, correct a filed value, attach an unmatched
card or letter to a patient, merge two records of one patient (and undo it), dismiss a failed file.

Every function works in the caller's transaction and audits under :func:`frontdesk.audit.current_actor`
(the signed-in person inside :func:`frontdesk.audit.acting_as`). Reasons given by a person are kept on
the flag row (``resolved_by`` names the person) and only their length class reaches the audit trail:
free text may hold patient data, the trail must not.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from frontdesk import audit, records
from frontdesk.db.console_models import PatientMerge
from frontdesk.db.models import Document, FlagRow, Letter, Patient, PatientField, Statement, utcnow
from frontdesk.exceptions import FrontdeskError
from frontdesk.field_flags import normaliser_for
from frontdesk.fields import Vocabulary


class ActionError(FrontdeskError):
    """An action cannot be done as asked; the message says why, naming records by id only."""


WAITING_CODES = {"card.unmatched": "insurance_card", "correspondence.unmatched": "correspondence"}
#: frontdesk.cards.CONFLICT_CODE, named here so that listing conflicts does not import the card reader (spaCy)
CARD_CONFLICT = "card.conflict"


def _doc(session: Session, document_id: str) -> Document:
    doc = session.get(Document, document_id)
    if doc is None:
        raise ActionError(f"no document {document_id}")
    return doc


def _patient(session: Session, patient_id: str) -> Patient:
    p = session.get(Patient, patient_id)
    if p is None:
        raise ActionError(f"no patient {patient_id}")
    return p


def _settle_document(session: Session, doc: Document) -> None:
    """A document with no open error flag left needs nobody any more: it counts as filed."""
    if doc.outcome != "needs_review":
        return
    left = session.scalars(select(FlagRow).where(FlagRow.document_id == doc.id, FlagRow.status == "open",
                                                 FlagRow.severity == "error")).first()
    if left is None:
        doc.outcome = "filed"
        audit.record(session, "update", "document", doc.id, patient_id=doc.patient_id, detail="filed: no open flags")


# --- flags ----------------------------------------------------------------------------------------------

def dismiss_flag(session: Session, flag_id: int, reason: str) -> FlagRow:
    """Close a flag a person judged not to need action, with their reason (required)."""
    reason = " ".join(reason.split())
    if len(reason) < 3:
        raise ActionError("a reason is needed to dismiss a flag")
    flag = session.get(FlagRow, flag_id)
    if flag is None:
        raise ActionError(f"no flag {flag_id}")
    if flag.status != "open":
        raise ActionError(f"flag {flag_id} is {flag.status} already")
    actor = audit.current_actor()
    flag.status, flag.resolved_at = "dismissed", utcnow()
    flag.resolved_by = actor
    flag.message = (flag.message + f" [dismissed: {reason}]")[:2000]
    audit.record(session, "update", "flag", str(flag.id), patient_id=flag.patient_id,
                 detail=f"dismissed {flag.code} on {flag.document_id or '-'}")
    if flag.code in records.LETTER_FOR_FLAG:
        flag.status = "resolved"  # the letter asking for it is void: the person says it is not needed
        records.void_letters_for_resolved(session, [flag.id], reason="flag dismissed by staff")
        flag.status = "dismissed"
    if flag.document_id:
        _settle_document(session, _doc(session, flag.document_id))
    return flag


def open_flags(session: Session, *, document_id: str | None = None, patient_id: str | None = None,
               limit: int = 500) -> list[FlagRow]:
    q = select(FlagRow).where(FlagRow.status == "open")
    if document_id:
        q = q.where(FlagRow.document_id == document_id)
    if patient_id:
        q = q.where(FlagRow.patient_id == patient_id)
    rows = list(session.scalars(q.order_by(FlagRow.created_at, FlagRow.id).limit(limit)))
    audit.record(session, "read", "flag", None, patient_id=patient_id, detail=f"{len(rows)} open flags listed")
    return rows


# --- correcting a filed record -------------------------------------------------------------------------

def correct_value(session: Session, patient_id: str, key: str, value: str | None, vocab: Vocabulary) -> PatientField:
    """Set one current value of a patient's record (normalised as a reading would be), with the person
    as its source; the open ``missing`` flags of that field are resolved."""
    if key not in vocab:
        raise ActionError(f"unknown field {key}")
    patient = _patient(session, patient_id)
    text = (value or "").strip() or None
    normalised: Any = None
    if text is not None:
        normalised, problem = normaliser_for(vocab, vocab.fields[key].type, key)(text)
        if problem:
            raise ActionError(f"{vocab.label(key)}: {problem}")
    row = next((f for f in patient.fields if f.key == key), None)
    if row is None:
        row = PatientField(key=key, value=normalised, source_document_id=None)
        patient.fields.append(row)
    else:
        row.value, row.source_document_id = normalised, None
    patient.updated_at = utcnow()
    if key in records.NAME_KEYS and isinstance(normalised, str):
        if key == "patient.first_name":
            patient.first_name = normalised
        elif key == "patient.last_name":
            patient.last_name = normalised
        else:
            from datetime import date

            patient.date_of_birth = date.fromisoformat(normalised)
        patient.match_key = records.match_key(patient.first_name, patient.last_name, patient.date_of_birth)
    resolved = []
    if normalised is not None:
        for f in session.scalars(select(FlagRow).where(FlagRow.patient_id == patient_id, FlagRow.status == "open",
                                                       FlagRow.field == key)):
            f.status, f.resolved_at, f.resolved_by = "resolved", utcnow(), audit.current_actor()
            resolved.append(f)
    audit.record(session, "update", "patient", patient_id, patient_id=patient_id,
                 detail=f"corrected {key}; {len(resolved)} flags resolved")
    for f in resolved:
        if f.document_id:
            _settle_document(session, _doc(session, f.document_id))
    return row


# --- a card and the patient's record disagree --------------------------------------------------------------

@dataclass
class CardConflict:
    """One ``card.conflict``: the value on the insurance card and the value in the patient's record (read
    from the intake form ``record_source``, or typed by staff when that is None), for a person to choose."""

    flag_id: int
    key: str
    label: str
    card_document_id: str
    card_value: Any
    record_value: Any
    record_source: str | None
    patient_id: str


def card_conflicts(session: Session, document_id: str, vocab: Vocabulary) -> list[CardConflict]:
    """The open conflicts an insurance card raised against its patient's record, in vocabulary order."""
    flags = list(session.scalars(select(FlagRow).where(FlagRow.document_id == document_id, FlagRow.status == "open",
                                                       FlagRow.code == CARD_CONFLICT)))
    if not flags:
        return []
    reading = records.extraction_result(session, document_id)
    out = []
    for f in flags:
        if f.field is None or f.patient_id is None:
            continue
        patient = _patient(session, f.patient_id)
        row = next((r for r in patient.fields if r.key == f.field), None)
        out.append(CardConflict(f.id, f.field, vocab.label(f.field), document_id,
                                reading.value(f.field) if reading is not None else None,
                                row.value if row is not None else None,
                                row.source_document_id if row is not None else None, f.patient_id))
    order = {k: i for i, k in enumerate(vocab.fields)}
    out.sort(key=lambda c: order.get(c.key, len(order)))
    if out:
        audit.record(session, "read", "patient", out[0].patient_id, patient_id=out[0].patient_id,
                     detail=f"card conflicts of {document_id}: {len(out)}")
    return out


def resolve_conflict(session: Session, flag_id: int, keep: str, vocab: Vocabulary) -> FlagRow:
    """A person chose between the insurance card and the patient's record for one field: ``keep="card"``
    writes the card's value into the record (the card becomes its source), ``keep="record"`` leaves the
    record as it is. The conflict is resolved in the person's name and the card's document is filed when
    nothing else is open on it."""
    if keep not in ("card", "record"):
        raise ActionError("choose the card's value or the record's value")
    flag = session.get(FlagRow, flag_id)
    if flag is None or flag.code != CARD_CONFLICT:
        raise ActionError(f"no card conflict {flag_id}")
    if flag.status != "open":
        raise ActionError(f"the conflict {flag_id} is {flag.status} already")
    if flag.field is None or flag.patient_id is None or flag.document_id is None or flag.field not in vocab:
        raise ActionError(f"the conflict {flag_id} names no field of a patient")
    patient = _patient(session, flag.patient_id)
    if keep == "card":
        reading = records.extraction_result(session, flag.document_id)
        # A secondary card's conflict names the secondary coverage's field; the card itself has every
        # value under the reader's names (insurance.primary.*).
        value = None
        if reading is not None:
            value = reading.value(flag.field)
            if value in (None, "") and flag.field.startswith("insurance.secondary."):
                value = reading.value("insurance.primary." + flag.field[len("insurance.secondary."):])
        if value in (None, ""):
            raise ActionError(f"the card {flag.document_id} has no value for {vocab.label(flag.field)}")
        row = next((r for r in patient.fields if r.key == flag.field), None)
        if row is None:
            patient.fields.append(PatientField(key=flag.field, value=value, source_document_id=flag.document_id))
        else:
            row.value, row.source_document_id = value, flag.document_id
        patient.updated_at = utcnow()
    flag.status, flag.resolved_at, flag.resolved_by = "resolved", utcnow(), audit.current_actor()
    flag.message = (flag.message + f" [kept the {'card' if keep == 'card' else 'record'}'s value]")[:2000]
    audit.record(session, "update", "patient", patient.id, patient_id=patient.id,
                 detail=f"card conflict on {flag.field}: kept the {keep} value ({flag.document_id})")
    audit.record(session, "update", "flag", str(flag.id), patient_id=patient.id, detail=f"resolved {flag.code}")
    _settle_document(session, _doc(session, flag.document_id))
    return flag


# --- attaching an unmatched card or letter --------------------------------------------------------------

def unmatched_documents(session: Session, limit: int = 200) -> list[tuple[Document, FlagRow]]:
    rows = session.execute(select(Document, FlagRow).join(FlagRow, FlagRow.document_id == Document.id)
                           .where(FlagRow.status == "open", FlagRow.code.in_(sorted(WAITING_CODES)))
                           .order_by(Document.received_at).limit(limit)).all()
    return [(d, f) for d, f in rows]


def attach_document(session: Session, document_id: str, patient_id: str, vocab: Vocabulary) -> Document:
    """File an unmatched insurance card or letter to the patient a person chose: a card fills the blanks of
    the record and clears what it answers (voiding a missing-insurance letter it made unnecessary)."""
    from frontdesk import cards

    doc = _doc(session, document_id)
    patient = _patient(session, patient_id)
    waiting = list(session.scalars(select(FlagRow).where(FlagRow.document_id == doc.id, FlagRow.status == "open",
                                                         FlagRow.code.in_(sorted(WAITING_CODES)))))
    if not waiting and doc.patient_id is not None:
        raise ActionError(f"document {document_id} is filed to a patient already")
    reading = records.extraction_result(session, doc.id)
    now = utcnow()
    for f in waiting:
        f.status, f.resolved_at, f.resolved_by = "resolved", now, audit.current_actor()
        f.patient_id = patient.id
    match = cards.PatientMatch(patient.id, None, "chosen by staff")
    if doc.document_type == "insurance_card" and reading is not None:
        filing = cards.file_card(session, doc, reading, vocab=vocab, match=match)
        if filing.resolved:
            records.void_letters_for_resolved(session, filing.resolved,
                                              reason=f"insurance card {doc.id} filled the gap")
    doc.patient_id = patient.id
    for f in session.scalars(select(FlagRow).where(FlagRow.document_id == doc.id, FlagRow.patient_id.is_(None))):
        f.patient_id = patient.id
    audit.record(session, "update", "document", doc.id, patient_id=patient.id, detail="attached to patient by staff")
    _settle_document(session, doc)
    return doc


# --- merging two records of one patient -----------------------------------------------------------------

@dataclass
class MergePreview:
    kept: Patient
    merged: Patient
    documents: list[str] = field(default_factory=list)
    flags: list[int] = field(default_factory=list)
    letters: list[str] = field(default_factory=list)
    statements: list[str] = field(default_factory=list)
    fields_filled: list[str] = field(default_factory=list)  # blank on the kept record, given by the other
    fields_differing: list[str] = field(default_factory=list)  # both have a value: the kept one stays


def merge_preview(session: Session, kept_id: str, merged_id: str) -> MergePreview:
    if kept_id == merged_id:
        raise ActionError("a patient cannot be merged into itself")
    kept, merged = _patient(session, kept_id), _patient(session, merged_id)
    if merged.match_key.startswith("merged|"):
        raise ActionError(f"patient {merged_id} is merged into another record already")
    pv = MergePreview(kept, merged)
    pv.documents = list(session.scalars(select(Document.id).where(Document.patient_id == merged_id)))
    pv.flags = list(session.scalars(select(FlagRow.id).where(FlagRow.patient_id == merged_id)))
    pv.letters = list(session.scalars(select(Letter.id).where(Letter.patient_id == merged_id)))
    pv.statements = list(session.scalars(select(Statement.id).where(Statement.patient_id == merged_id)))
    have = {f.key: f.value for f in kept.fields}
    for f in merged.fields:
        if have.get(f.key) in (None, "") and f.value not in (None, ""):
            pv.fields_filled.append(f.key)
        elif f.key in have and have[f.key] != f.value and f.value not in (None, ""):
            pv.fields_differing.append(f.key)
    audit.record(session, "read", "patient", merged_id, patient_id=merged_id, detail=f"merge preview into {kept_id}")
    return pv


def merge_patients(session: Session, kept_id: str, merged_id: str) -> PatientMerge:
    """Fold ``merged_id`` into ``kept_id``: its documents, flags, letters and statements move, blank values
    of the kept record are filled from it, and it stops matching new documents. Reversible with
    :func:`unmerge` (the merge row keeps exactly what moved)."""
    records.one_matcher_at_a_time(session)
    pv = merge_preview(session, kept_id, merged_id)
    kept, merged = pv.kept, pv.merged
    filled_before = {f.key: f.value for f in kept.fields if f.key in pv.fields_filled}
    moving: list[tuple[Any, list[Any]]] = [(Document, pv.documents), (FlagRow, pv.flags), (Letter, pv.letters),
                                           (Statement, pv.statements)]
    for model, ids in moving:
        for obj in session.scalars(select(model).where(model.id.in_(ids))):
            obj.patient_id = kept.id
    rows = {f.key: f for f in kept.fields}
    for f in merged.fields:
        if f.key in pv.fields_filled:
            if f.key in rows:
                rows[f.key].value, rows[f.key].source_document_id = f.value, f.source_document_id
            else:
                kept.fields.append(PatientField(key=f.key, value=f.value, source_document_id=f.source_document_id))
    merge = PatientMerge(id=f"mrg-{secrets.token_hex(6)}", kept_id=kept.id, merged_id=merged.id,
                         moved={"documents": pv.documents, "flags": pv.flags, "letters": pv.letters,
                                "statements": pv.statements, "fields_filled": pv.fields_filled,
                                "filled_before": filled_before, "match_key": merged.match_key},
                         actor=audit.current_actor())
    session.add(merge)
    merged.match_key = f"merged|{merge.id}"
    kept.updated_at = merged.updated_at = utcnow()
    detail = (f"merge {merge.id}: {len(pv.documents)} documents, {len(pv.flags)} flags, {len(pv.letters)} letters, "
              f"{len(pv.fields_filled)} fields")
    audit.record(session, "update", "patient", kept.id, patient_id=kept.id, detail=detail + f" from {merged.id}")
    audit.record(session, "update", "patient", merged.id, patient_id=merged.id, detail=detail + f" into {kept.id}")
    return merge


def unmerge(session: Session, merge_id: str) -> PatientMerge:
    """Undo a merge: what moved goes back, values it filled are restored, the record matches again."""
    merge = session.get(PatientMerge, merge_id)
    if merge is None:
        raise ActionError(f"no merge {merge_id}")
    if merge.undone_at is not None:
        raise ActionError(f"merge {merge_id} was undone already")
    kept, merged = _patient(session, merge.kept_id), _patient(session, merge.merged_id)
    moved = merge.moved
    back: list[tuple[Any, str]] = [(Document, "documents"), (FlagRow, "flags"), (Letter, "letters"),
                                   (Statement, "statements")]
    for model, key in back:
        ids = moved.get(key) or []
        for obj in session.scalars(select(model).where(model.id.in_(ids))):
            if obj.patient_id == kept.id:
                obj.patient_id = merged.id
    before = moved.get("filled_before") or {}
    for f in list(kept.fields):
        if f.key in (moved.get("fields_filled") or []):
            if f.key in before:
                f.value = before[f.key]
            else:
                kept.fields.remove(f)
                session.delete(f)
    merged.match_key = moved.get("match_key") or records.match_key(merged.first_name, merged.last_name,
                                                                    merged.date_of_birth)
    merge.undone_at, merge.undone_by = utcnow(), audit.current_actor()
    for p in (kept, merged):
        audit.record(session, "update", "patient", p.id, patient_id=p.id, detail=f"merge {merge.id} undone")
    return merge


def merges_of(session: Session, patient_id: str) -> list[PatientMerge]:
    return list(session.scalars(select(PatientMerge).where(
        (PatientMerge.kept_id == patient_id) | (PatientMerge.merged_id == patient_id)).order_by(PatientMerge.created_at)))


# --- failed files ---------------------------------------------------------------------------------------

def failed_documents(session: Session, limit: int = 200) -> list[Document]:
    docs = list(session.scalars(select(Document).where(Document.outcome.in_(("failed", RETRYING)))
                                .order_by(Document.received_at.desc()).limit(limit)))
    audit.record(session, "read", "document", None, detail=f"{len(docs)} failed documents listed")
    return docs


def dismiss_failed(session: Session, document_id: str, reason: str) -> Document:
    """A failed file a person has dealt with (re-scanned, not ours): it leaves the failed list; the
    original stays filed under its failed prefix, and the reason is audited by length class only."""
    reason = " ".join(reason.split())
    if len(reason) < 3:
        raise ActionError("a reason is needed to dismiss a failed file")
    doc = _doc(session, document_id)
    if doc.outcome != "failed":
        raise ActionError(f"document {document_id} has not failed")
    doc.outcome = "dismissed"
    doc.error = ((doc.error or "") + f" [dismissed by {audit.current_actor()}: {reason}]")[:4000]
    audit.record(session, "update", "document", doc.id, patient_id=doc.patient_id, detail="failed file dismissed")
    return doc


RETRYING = "retrying"
#: A retry that has not finished after this long was interrupted (a crash, a restart): it may be taken again.
RETRY_STALE_MINUTES = 30.0


@dataclass
class RetryOutcome:
    """What a retry of a failed file did: the document's outcome now (``filed``, ``needs_review``, or
    ``failed`` again with the reason) and the letters it wrote. Ids and reasons only."""

    document_id: str
    status: str
    error: str | None = None
    letters: list[str] = field(default_factory=list)


def _claim_retry(session: Session, document_id: str) -> tuple[str, str, str]:
    """Take a failed document for one retry: ``outcome`` becomes ``retrying`` in the caller's
    transaction, so a second retry (another person, the CLI) is refused until this one ends."""
    from datetime import timedelta

    from frontdesk.db.models import AuditEvent, StoredObjectRow

    doc = session.scalars(select(Document).where(Document.id == document_id).with_for_update()).first()
    if doc is None:
        raise ActionError(f"no document {document_id}")
    if doc.outcome == RETRYING:
        started = session.scalars(select(AuditEvent.at).where(AuditEvent.object_id == document_id,
                                                              AuditEvent.detail == "retry started")
                                  .order_by(AuditEvent.at.desc()).limit(1)).first()
        if started is not None and utcnow() - started < timedelta(minutes=RETRY_STALE_MINUTES):
            raise ActionError(f"document {document_id} is being retried already")
    elif doc.outcome != "failed":
        raise ActionError(f"document {document_id} has not failed")
    if doc.parent_id is not None:
        raise ActionError(f"document {document_id} is part of a scan: retry the whole scan {doc.parent_id}")
    key = session.scalars(select(StoredObjectRow.key).where(StoredObjectRow.document_id == document_id,
                                                            StoredObjectRow.role == "original")
                          .order_by(StoredObjectRow.key).limit(1)).first()
    if key is None:
        raise ActionError(f"document {document_id} has no filed original to read again")
    doc.outcome = RETRYING
    audit.record(session, "update", "document", doc.id, patient_id=doc.patient_id, detail="retry started")
    return key, doc.sha256, doc.storage_prefix


def _retry_ends(pipeline: Any, document_id: str, reason: str) -> RetryOutcome:
    with pipeline.db.begin() as s:
        doc = _doc(s, document_id)
        doc.outcome, doc.error = "failed", reason[:4000]
        audit.record(s, "update", "document", doc.id, patient_id=doc.patient_id, detail="retry failed again")
    return RetryOutcome(document_id, "failed", reason)


def retry_failed(pipeline: Any, document_id: str) -> RetryOutcome:
    """Read a failed file again from its filed original (after the cause was fixed: a limit raised, a
    reader improved) and file what is read, exactly once.

    The document is claimed first (:func:`_claim_retry`), so two retries cannot both file it. The
    original is read back from storage and checked against the document's hash; it is read in a private
    temporary folder (0700) that is removed afterwards. A reading is filed like intake files one: the
    ``extraction.json`` beside the original, the reading in the records (patient matched or created,
    flags raised, cards and letters waiting for the patient filed), then the letters it needs. A file
    that still cannot be read stays failed with the new reason. The same file handed in to the inbox
    again is a duplicate and is not read: this is the one way back in. Call inside
    :func:`frontdesk.audit.acting_as` so that the events name the person."""
    import json
    import shutil
    import tempfile
    from pathlib import Path

    from frontdesk.exceptions import InputFileError
    from frontdesk.pipeline import IntakeWork
    from frontdesk.storage import sha256_bytes

    with pipeline.db.begin() as s:
        key, sha, prefix = _claim_retry(s, document_id)
        received = _doc(s, document_id).received_at
    try:
        original = pipeline.storage.get_bytes(key)
        if sha256_bytes(original) != sha:
            return _retry_ends(pipeline, document_id, "the filed original does not match its record; "
                                                      "hand the paper in again")
        folder = Path(tempfile.mkdtemp(prefix="frontdesk-retry-"))  # 0700
        try:
            path = folder / f"{document_id}{Path(key).suffix}"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(original)
            try:
                results = pipeline.reader.extract_all(path)
            except InputFileError as exc:
                return _retry_ends(pipeline, document_id, exc.reason)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if len(results) != 1:
            return _retry_ends(pipeline, document_id, f"the file holds {len(results)} forms; a scan of several "
                                                      "forms cannot be retried yet: scan the forms one by one")
        result = results[0]
        record = {"document_id": document_id, "sha256": sha,
                  "received_at": received.isoformat(timespec="seconds"),
                  "retried_at": utcnow().isoformat(timespec="seconds"), "retried_by": audit.current_actor(),
                  "extraction": result.model_dump(mode="json")}
        extraction_key = f"{prefix}/extraction.json"
        pipeline.refile_reading(document_id, result, extraction_key,
                                json.dumps(record, indent=2, ensure_ascii=False).encode("utf-8"))
    except BaseException:
        with pipeline.db.begin() as s:  # not interrupted by a crash: give it back as it was
            doc = _doc(s, document_id)
            if doc.outcome == RETRYING:
                doc.outcome = "failed"
        raise
    with pipeline.db.begin() as s:
        doc = _doc(s, document_id)
        doc.error = None
        status = doc.outcome or "filed"
    work = IntakeWork(input=Path(extraction_key), sha256=sha, document_id=document_id, status=status,
                      result=result, prefix=prefix)
    letters: list[str] = []
    if pipeline.needs_missing_insurance_letter(work):
        pipeline.send_letters([work])
        letters = [o.key for o in work.letters]
    return RetryOutcome(document_id, status, None, letters)


# --- the pre-visit worklist ------------------------------------------------------------------------------

def worklist(settings: Any, db: Any, visit_date: Any) -> Any:
    """The pre-visit worklist for ``visit_date`` from the newest appointment export, the same rows as
    ``frontdesk check`` prints, without storing a run or queueing reminders (looking is not acting).
    Raises the check's own errors (no export, a bad file)."""
    from frontdesk.checks.config import checks_for
    from frontdesk.checks.runner import build_report, read_appointments
    from frontdesk.checks.schedule import practice_zone, settings_zone, today_in
    from frontdesk.checks.store import CheckStore

    checks = checks_for(settings.checks.rules_file)
    today = today_in(practice_zone(settings_zone(settings)))
    parsed = read_appointments(settings, checks, None, skip_bad_rows=True, today=today)
    report = build_report(settings, checks, parsed, visit_date, CheckStore(db), today=today)
    with db.begin() as s:
        audit.record(s, "read", "worklist", None, detail=f"{len(report.rows)} appointments shown")
    return report
