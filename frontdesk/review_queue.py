"""The review queue: documents a person must look at, one at a time, oldest first, and the decisions
taken on them field by field.

One path for every review: a decision made here (console or ``frontdesk review``) re-validates the
reading with the person's values taken at full confidence, files it as a new reading (the document's open
flags are resolved and replaced, the patient record updated), voids a missing-insurance letter the
review made unnecessary (withdrawn from its mail batch when it was queued), writes the letters the new
reading needs, and audits it all under the person's name (:func:`frontdesk.audit.acting_as`).

A document waiting longer than ``console.review_deadline_hours`` stays in the queue and is marked
overdue: nothing is ever accepted because nobody answered.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from extractors.base import RawField
from frontdesk import audit, records
from frontdesk.db.models import Document, FlagRow, Letter, Patient, StoredObjectRow, utcnow
from frontdesk.exceptions import FrontdeskError
from frontdesk.field_flags import validate
from frontdesk.fields import Vocabulary
from frontdesk.models import ExtractionResult

if TYPE_CHECKING:
    from frontdesk.pipeline import Pipeline

#: Flags that validation recomputes from the fields; every other flag (page.missing, ...) is kept.
RECOMPUTED = {"invalid", "missing", "low_confidence"}
BOOL_TYPES = {"checkbox", "signature"}
Choice = Literal["accept", "correct", "absent"]


class ReviewError(FrontdeskError):
    """A review cannot be saved as asked (unknown document, not waiting for review, unknown field)."""


@dataclass(frozen=True)
class QueueEntry:
    document_id: str
    received_at: datetime
    document_type: str | None
    patient_id: str | None
    patient_name: str | None
    open_flags: int
    overdue: bool


@dataclass
class FieldView:
    key: str
    label: str
    type: str
    value: object
    raw: str | None
    confidence: float
    page: int | None
    reasons: list[str] = field(default_factory=list)

    @property
    def uncertain(self) -> bool:
        return bool(self.reasons)

    @property
    def shown(self) -> str:
        if self.value is None:
            return ""
        if self.value is True:
            return "Yes"
        if self.value is False:
            return "No"
        return str(self.value)


@dataclass
class ReviewItem:
    document_id: str
    document_type: str | None
    form: str | None
    method: str | None
    patient_id: str | None
    patient_name: str | None
    received_at: datetime
    overdue: bool
    uncertain: list[FieldView]
    fine: list[FieldView]
    other_reasons: list[str]
    original_key: str | None


@dataclass
class Decision:
    choice: Choice
    value: str | None = None


@dataclass
class ReviewOutcome:
    document_id: str
    status: str
    changed: list[str]
    letters_voided: list[str]
    letters_written: list[str]


def _name(p: Patient | None) -> str | None:
    return f"{p.last_name}, {p.first_name}" if p is not None else None


def queue(session: Session, *, deadline: timedelta, now: datetime | None = None, limit: int = 500) -> list[QueueEntry]:
    """Documents waiting for a person, oldest first; listing is audited once (it shows names)."""
    now = now or utcnow()
    rows = session.execute(
        select(Document, Patient).outerjoin(Patient, Document.patient_id == Patient.id)
        .where(Document.outcome == "needs_review", Document.state != "pending")
        .order_by(Document.received_at, Document.id).limit(limit)).all()
    ids = [d.id for d, _ in rows]
    counts: dict[str, int] = {}
    if ids:
        for doc_id in session.scalars(select(FlagRow.document_id).where(FlagRow.document_id.in_(ids),
                                                                        FlagRow.status == "open")):
            if doc_id is not None:
                counts[doc_id] = counts.get(doc_id, 0) + 1
    audit.record(session, "read", "review_queue", None, detail=f"{len(rows)} documents listed")
    return [QueueEntry(d.id, d.received_at, d.document_type, d.patient_id, _name(p), counts.get(d.id, 0),
                       now - d.received_at > deadline) for d, p in rows]


def waiting_counts(session: Session, *, deadline: timedelta, now: datetime | None = None) -> tuple[int, int]:
    """(documents waiting for review, of which overdue), counted in the database."""
    from sqlalchemy import func

    now = now or utcnow()
    base = select(func.count()).select_from(Document).where(Document.outcome == "needs_review",
                                                            Document.state != "pending")
    total = session.scalar(base) or 0
    overdue = session.scalar(base.where(Document.received_at < now - deadline)) or 0
    return total, overdue


def next_document(session: Session, *, after: str | None = None) -> str | None:
    """The oldest document waiting for review, other than ``after`` (the one just saved)."""
    q = (select(Document.id).where(Document.outcome == "needs_review", Document.state != "pending")
         .order_by(Document.received_at, Document.id))
    if after:
        q = q.where(Document.id != after)
    return session.scalars(q.limit(1)).first()


def _object_key(session: Session, document_id: str, role: str) -> str | None:
    return session.scalars(select(StoredObjectRow.key).where(StoredObjectRow.document_id == document_id,
                                                             StoredObjectRow.role == role)
                           .order_by(StoredObjectRow.key).limit(1)).first()


def load_item(session: Session, document_id: str, vocab: Vocabulary, *, deadline: timedelta,
              now: datetime | None = None) -> ReviewItem:
    """Everything the review page shows for one document; the view is audited."""
    doc = session.get(Document, document_id)
    if doc is None:
        raise ReviewError(f"no document {document_id}")
    result = records.extraction_result(session, document_id)
    if result is None:
        raise ReviewError(f"document {document_id} has no reading to review")
    open_codes = {(f.code, f.field, f.message) for f in session.scalars(
        select(FlagRow).where(FlagRow.document_id == document_id, FlagRow.status == "open"))}
    live = [f for f in result.flags if (f.code, f.field, f.message) in open_codes] if open_codes else []
    reasons: dict[str, list[str]] = {}
    other: list[str] = []
    for f in live:
        if f.code == "card.conflict":
            continue  # a choice between card and record, not a value to correct: actions.card_conflicts
        if f.field and f.field in vocab:
            reasons.setdefault(f.field, []).append(f.message)
        elif f.code == vocab.missing_insurance.code:
            other.append(f.message)
            for k in vocab.missing_insurance.fields:
                if k in vocab and vocab.fields[k].type not in BOOL_TYPES:
                    reasons.setdefault(k, []).append("asked for by the missing-insurance letter: check it on the form")
        else:
            other.append(f.message)
    views: list[FieldView] = []
    keys = [k for k in vocab.fields if k in result.fields or k in reasons]
    for key in keys:
        fr = result.fields.get(key)
        views.append(FieldView(key, vocab.label(key), vocab.fields[key].type, fr.value if fr else None,
                               fr.raw if fr else None, fr.confidence if fr else 0.0, fr.page if fr else None,
                               reasons.get(key, [])))
    patient = session.get(Patient, doc.patient_id) if doc.patient_id else None
    audit.record(session, "read", "document", doc.id, patient_id=doc.patient_id, detail="review page")
    return ReviewItem(doc.id, doc.document_type, doc.form, doc.method, doc.patient_id, _name(patient),
                      doc.received_at, (now or utcnow()) - doc.received_at > deadline,
                      [v for v in views if v.uncertain], [v for v in views if not v.uncertain], other,
                      _object_key(session, doc.id, "original"))


def apply_decisions(result: ExtractionResult, decisions: Mapping[str, Decision], vocab: Vocabulary,
                    low_confidence: float) -> tuple[ExtractionResult, list[str]]:
    """Re-validate with the person's answers at full confidence: ``accept`` keeps what was read,
    ``correct`` replaces it, ``absent`` confirms the form has no value there. Fields nobody decided keep
    their reading and confidence. Returns the new result and the keys whose value changed."""
    raw: dict[str, RawField] = {k: RawField(raw=fr.raw, confidence=fr.confidence, page=fr.page)
                                for k, fr in result.fields.items()}
    for key, d in decisions.items():
        if key not in vocab:
            raise ReviewError(f"unknown field {key}")
        page = result.fields[key].page if key in result.fields else None
        if d.choice == "accept":
            before = result.fields.get(key)
            current = result.value(key)
            text: str | None = before.raw if before is not None and before.raw else (
                current if isinstance(current, str) else None)
            if vocab.fields[key].type in BOOL_TYPES:
                text = "Yes" if result.value(key) else None
        elif d.choice == "correct":
            text = (d.value or "").strip() or None
            if vocab.fields[key].type in BOOL_TYPES:
                text = "Yes" if text and text.lower() in ("yes", "y", "true", "1", "on", "x") else None
        elif d.choice == "absent":
            text = None
        else:
            raise ReviewError(f"unknown choice {d.choice!r}")
        raw[key] = RawField(raw=text, confidence=1.0, page=page)
    kept = [f for f in result.flags if f.code not in RECOMPUTED and f.code != vocab.missing_insurance.code]
    fresh = ExtractionResult(document_type=result.document_type, form=result.form, method=result.method,
                             pages=result.pages, flags=kept, source_pages=result.source_pages)
    fresh = validate(fresh, raw, vocab, present=set(raw), low_confidence=low_confidence)
    changed = [k for k in raw if fresh.value(k) != result.value(k)]
    return fresh, changed


def decide(pipeline: Pipeline, document_id: str, decisions: Mapping[str, Decision]) -> ReviewOutcome:
    """Save a person's review of one document (see the module docstring). Call inside
    :func:`frontdesk.audit.acting_as` so that every event names the person."""
    from frontdesk.pipeline import IntakeWork

    vocab = pipeline.reader.vocabulary
    with pipeline.db.begin() as s:
        doc = s.get(Document, document_id)
        if doc is None:
            raise ReviewError(f"no document {document_id}")
        if doc.outcome != "needs_review":
            raise ReviewError(f"document {document_id} is not waiting for review")
        result = records.extraction_result(s, document_id)
        key = _object_key(s, document_id, "extraction")
        asked = [f.id for f in s.scalars(select(FlagRow).where(FlagRow.document_id == document_id,
                                                               FlagRow.status == "open"))]
    if result is None or key is None:
        raise ReviewError(f"document {document_id} has no filed reading")
    corrected, changed = apply_decisions(result, decisions, vocab,
                                         pipeline.settings.extraction.low_confidence_threshold)
    record = json.loads(pipeline.storage.get_bytes(key))
    status = "needs_review" if corrected.needs_review() else "filed"
    record["extraction_before_review"] = record.get("extraction_before_review") or record.get("extraction")
    record["extraction"] = corrected.model_dump(mode="json")
    record["review"] = {"reviewed_at": utcnow().isoformat(timespec="seconds"), "reviewed_by": audit.current_actor(),
                        "fields_reviewed": sorted(decisions), "fields_changed": changed, "status": status}
    pipeline.refile_reading(document_id, corrected, key, json.dumps(record, indent=2, ensure_ascii=False).encode())
    with pipeline.db.begin() as s:
        doc = s.get(Document, document_id)
        assert doc is not None
        status = doc.outcome or status
        still = {f.code for f in s.scalars(select(FlagRow).where(FlagRow.document_id == document_id,
                                                                 FlagRow.status == "open"))}
        voided: list[str] = []
        if vocab.missing_insurance.code not in still:
            voided = records.void_letters_for_resolved(s, asked, reason="review found the insurance complete")
        audit.record(s, "update", "document", document_id, patient_id=doc.patient_id,
                     detail=f"review: {len(decisions)} fields decided, {len(changed)} changed; {status}")
    work = IntakeWork(input=Path(key), document_id=document_id, status=status,
                      result=corrected, prefix=key.rsplit("/", 1)[0])
    written: list[str] = []
    if status != "failed" and pipeline.needs_missing_insurance_letter(work):
        pipeline.send_letters([work])
        written = [o.key for o in work.letters]
    return ReviewOutcome(document_id, status, changed, voided, written)


def letters_for(session: Session, document_id: str) -> list[Letter]:
    return list(session.scalars(select(Letter).where(Letter.document_id == document_id).order_by(Letter.created_at)))
