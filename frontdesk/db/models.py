"""The records schema: what a practice must be able to find again years later.

Conventions, so that every engineer's tables read the same way:

* Business objects a person may refer to (patients, documents, letters, statements, mail batches,
  appointments) have short opaque string ids with a type prefix (``pat-…``, ``doc-…``, ``let-…``), made
  by :func:`new_id` (documents: ``doc-`` + the first 16 hex digits of the SHA-256, so the id is stable).
  Ids never carry patient data: they appear in storage keys, logs and audit events.
  Rows nobody names (extracted fields, flags, audit events, mail items) have integer ids.
* Times are timezone-aware UTC (:class:`UTCDateTime`; SQLite has no time zones, so they are stored naive
  UTC and handed back aware). Calendar dates (birth, statement, run date) are :class:`~datetime.date`.
* Field values are JSON (``str | bool | None``, as in ``ExtractionResult``): ``None`` is SQL NULL.
* Status columns are short lower-case strings; the allowed values are listed in the column's comment
  and in the ``*_STATES`` constants below, not enforced by CHECK constraints, so a later migration can
  add a value without rebuilding a SQLite table.
* Patient data lives in this database (and in stored objects) only: never in ids, storage keys, object
  metadata, audit text or logs.

Every change to this module needs an Alembic migration in ``frontdesk/db/migrations/versions``;
``tests/test_records_db.py`` fails when models and migrations disagree.
"""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from frontdesk.states import BatchStatus, DocumentState, FlagStatus, PieceStatus

# Named constraints: Alembic can then drop or alter them on every backend (SQLite batch mode included).
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

DOCUMENT_STATES = tuple(s.value for s in DocumentState)  # frontdesk.states: the transitions too
DOCUMENT_OUTCOMES = ("filed", "needs_review", "failed")
ARRIVAL_OUTCOMES = ("new", "duplicate", "resumed")
OBJECT_STATES = ("pending", "stored", "spooled")
OBJECT_ROLES = ("original", "extraction", "reason", "letter", "statement", "batch")
FLAG_STATES = tuple(s.value for s in FlagStatus)  # frontdesk.states: the transitions too
LETTER_STATES = tuple(s.value for s in PieceStatus)  # frontdesk.states: the transitions too
MAIL_BATCH_STATES = tuple(s.value for s in BatchStatus)  # frontdesk.states: the transitions too

FieldValue = str | bool | None


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    """A random opaque id; random rather than derived so it reveals nothing about whom it names."""
    return f"{prefix}-{secrets.token_hex(6)}"


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend; naive values are refused so local times cannot slip in."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: use an aware UTC time")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON}


def _json() -> JSON:
    return JSON(none_as_null=True)


class Patient(Base):
    """A person the practice has records for. Name and date of birth are what intakes are matched on;
    every other current value (address, phone, insurance) is a :class:`PatientField` with its source."""

    __tablename__ = "patients"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("pat"))
    match_key: Mapped[str] = mapped_column(String(400), index=True,
                                           comment="normalised 'last|first|YYYY-MM-DD' used to match intakes")
    first_name: Mapped[str] = mapped_column(String(200))
    last_name: Mapped[str] = mapped_column(String(200))
    date_of_birth: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    fields: Mapped[list[PatientField]] = relationship(back_populates="patient", cascade="all, delete-orphan",
                                                       order_by="PatientField.key")
    documents: Mapped[list[Document]] = relationship(back_populates="patient", order_by="Document.received_at")

    def value(self, key: str) -> FieldValue:
        """The current value of a vocabulary field (``config/fields.yaml`` key), or None."""
        for f in self.fields:
            if f.key == key:
                return f.value
        return None


class PatientField(Base):
    """The current value of one field of a patient's demographics or insurance, and the document it came
    from. The history is in :class:`ExtractedField` (one row per document read)."""

    __tablename__ = "patient_fields"
    __table_args__ = (UniqueConstraint("patient_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(100), comment="field key from config/fields.yaml")
    value: Mapped[FieldValue] = mapped_column(_json(), nullable=True)
    source_document_id: Mapped[str | None] = mapped_column(ForeignKey("documents.id"), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    patient: Mapped[Patient] = relationship(back_populates="fields")


class Document(Base):
    """One received file, unique by content. Created ``pending`` (its storage keys reserved) before any
    object is written, so a crash leaves a row the next run completes rather than an orphan object."""

    __tablename__ = "documents"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, comment="doc-<first 16 hex of sha256>")
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    size: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(20), default="pending",
                                       comment="pending | awaiting_letters | complete")
    outcome: Mapped[str | None] = mapped_column(String(20), nullable=True,
                                                comment="filed | needs_review | failed")
    document_type: Mapped[str | None] = mapped_column(String(30), nullable=True)
    form: Mapped[str | None] = mapped_column(String(100), nullable=True)
    method: Mapped[str | None] = mapped_column(String(20), nullable=True)
    pages: Mapped[int | None] = mapped_column(Integer, nullable=True)
    storage_prefix: Mapped[str] = mapped_column(String(255), comment="documents/YYYY/MM/<id> or failed/...")
    error: Mapped[str | None] = mapped_column(Text, nullable=True, comment="why a failed document cannot be read")
    patient_id: Mapped[str | None] = mapped_column(ForeignKey("patients.id"), nullable=True, index=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    parent_id: Mapped[str | None] = mapped_column(
        ForeignKey("documents.id"), nullable=True, index=True,
        comment="the scanned stack this document was cut from (its original holds only its own pages)")
    source_pages: Mapped[str | None] = mapped_column(
        String(255), nullable=True, comment="1-based pages of the parent scan, e.g. '3,5'")

    patient: Mapped[Patient | None] = relationship(back_populates="documents")
    objects: Mapped[list[StoredObjectRow]] = relationship(back_populates="document",
                                                           order_by="StoredObjectRow.key")
    extractions: Mapped[list[Extraction]] = relationship(back_populates="document",
                                                         order_by="Extraction.id")
    flags: Mapped[list[FlagRow]] = relationship(back_populates="document", order_by="FlagRow.id")


class InsuranceCard(Base):
    """An insurance card document filed to a patient's coverage: which coverage (``rank``: the patient's
    ``insurance.primary.*`` or ``insurance.secondary.*`` fields, where the values live), which side(s) of
    the card the document shows, and for a back the front it was matched with. A card filed again (a
    second photo of it, a person's review) keeps its one row."""

    __tablename__ = "insurance_cards"

    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    rank: Mapped[str] = mapped_column(String(20), comment="primary | secondary")
    side: Mapped[str] = mapped_column(String(10), default="front", comment="front | back | both")
    front_document_id: Mapped[str | None] = mapped_column(
        ForeignKey("documents.id"), nullable=True, index=True,
        comment="for a back: the card's front it was matched with")
    filed_at: Mapped[datetime] = mapped_column(default=utcnow)


class Arrival(Base):
    """Every time a file was handed to Frontdesk, including the duplicates: the durable intake ledger."""

    __tablename__ = "arrivals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    outcome: Mapped[str] = mapped_column(String(20), comment="new | duplicate | resumed")
    source_path: Mapped[str | None] = mapped_column(Text, nullable=True,
                                                    comment="where the file was read from (may be gone)")
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class StoredObjectRow(Base):
    """Every object Frontdesk writes to document storage. ``storage verify`` compares these rows with
    the store: a row without an object is lost data, an object without a row is an orphan."""

    __tablename__ = "stored_objects"
    __table_args__ = (Index("ix_stored_objects_state", "state"),)

    key: Mapped[str] = mapped_column(String(512), primary_key=True)
    role: Mapped[str] = mapped_column(String(30), comment="original | extraction | reason | letter | statement | batch")
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True,
                                               comment="of the bytes written (known before the write)")
    size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    content_type: Mapped[str] = mapped_column(String(100), default="application/octet-stream")
    state: Mapped[str] = mapped_column(String(20), default="pending", comment="pending | stored | spooled")
    document_id: Mapped[str | None] = mapped_column(ForeignKey("documents.id"), nullable=True, index=True)
    letter_id: Mapped[str | None] = mapped_column(ForeignKey("letters.id"), nullable=True, index=True)
    statement_id: Mapped[str | None] = mapped_column(ForeignKey("statements.id"), nullable=True, index=True)
    mail_batch_id: Mapped[str | None] = mapped_column(ForeignKey("mail_batches.id"), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    stored_at: Mapped[datetime | None] = mapped_column(nullable=True)

    document: Mapped[Document | None] = relationship(back_populates="objects")


class Extraction(Base):
    """One reading of a document (a better reader may read the same document again later)."""

    __tablename__ = "extractions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), index=True)
    document_type: Mapped[str] = mapped_column(String(30))
    form: Mapped[str | None] = mapped_column(String(100), nullable=True)
    method: Mapped[str] = mapped_column(String(20))
    pages: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    document: Mapped[Document] = relationship(back_populates="extractions")
    fields: Mapped[list[ExtractedField]] = relationship(back_populates="extraction",
                                                        cascade="all, delete-orphan",
                                                        order_by="ExtractedField.id")


class ExtractedField(Base):
    """One field as read from one document: normalised value, the raw text, and how sure the reader was."""

    __tablename__ = "extracted_fields"
    __table_args__ = (UniqueConstraint("extraction_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    extraction_id: Mapped[int] = mapped_column(ForeignKey("extractions.id", ondelete="CASCADE"), index=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), index=True,
                                             comment="the source document (same as the extraction's)")
    key: Mapped[str] = mapped_column(String(100))
    value: Mapped[FieldValue] = mapped_column(_json(), nullable=True)
    raw: Mapped[str | None] = mapped_column(Text, nullable=True)
    confidence: Mapped[float] = mapped_column(Float, default=1.0)
    page: Mapped[int | None] = mapped_column(Integer, nullable=True)

    extraction: Mapped[Extraction] = relationship(back_populates="fields")


class FlagRow(Base):
    """A problem found in a document (``missing``, ``invalid``, ``insurance.missing_info``…), open until
    staff resolve it. Messages name field labels, never values."""

    __tablename__ = "flags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[str | None] = mapped_column(ForeignKey("documents.id"), nullable=True, index=True)
    extraction_id: Mapped[int | None] = mapped_column(ForeignKey("extractions.id"), nullable=True)
    patient_id: Mapped[str | None] = mapped_column(ForeignKey("patients.id"), nullable=True, index=True)
    code: Mapped[str] = mapped_column(String(60))
    severity: Mapped[str] = mapped_column(String(10), comment="error | warning | info")
    field: Mapped[str | None] = mapped_column(String(100), nullable=True)
    message: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="open", comment="open | resolved | dismissed")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(100), nullable=True)

    document: Mapped[Document | None] = relationship(back_populates="flags")


class Letter(Base):
    """A letter to a patient. At most one letter of a kind per source document, so re-running a batch
    never writes a second missing-insurance letter for the same form."""

    __tablename__ = "letters"
    __table_args__ = (UniqueConstraint("document_id", "kind"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("let"))
    kind: Mapped[str] = mapped_column(String(60), comment="template name, e.g. missing_insurance")
    status: Mapped[str] = mapped_column(String(20), default="pending", comment="pending | queued | mailed | void")
    patient_id: Mapped[str | None] = mapped_column(ForeignKey("patients.id"), nullable=True, index=True)
    document_id: Mapped[str | None] = mapped_column(ForeignKey("documents.id"), nullable=True, index=True)
    storage_key: Mapped[str | None] = mapped_column(String(512), nullable=True, comment="the filed PDF")
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    context: Mapped[dict[str, Any] | None] = mapped_column(_json(), nullable=True,
                                                           comment="what the template was rendered with")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    mailed_at: Mapped[datetime | None] = mapped_column(nullable=True)


class Statement(Base):
    """A patient statement (bill); amounts in cents."""

    __tablename__ = "statements"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("stm"))
    status: Mapped[str] = mapped_column(String(20), default="pending", comment="pending | queued | mailed | void")
    patient_id: Mapped[str | None] = mapped_column(ForeignKey("patients.id"), nullable=True, index=True)
    statement_date: Mapped[date] = mapped_column(Date)
    amount_due_cents: Mapped[int] = mapped_column(Integer, default=0)
    storage_key: Mapped[str | None] = mapped_column(String(512), nullable=True)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    context: Mapped[dict[str, Any] | None] = mapped_column(_json(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    mailed_at: Mapped[datetime | None] = mapped_column(nullable=True)


class MailBatch(Base):
    """Letters and statements sent to print-and-mail together."""

    __tablename__ = "mail_batches"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("mb"))
    status: Mapped[str] = mapped_column(String(20), default="open", comment="open | submitted | mailed | void")
    provider: Mapped[str | None] = mapped_column(String(60), nullable=True)
    reference: Mapped[str | None] = mapped_column(String(200), nullable=True, comment="the provider's batch id")
    storage_key: Mapped[str | None] = mapped_column(String(512), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(nullable=True)
    mailed_at: Mapped[datetime | None] = mapped_column(nullable=True)

    items: Mapped[list[MailItem]] = relationship(back_populates="batch", cascade="all, delete-orphan",
                                                 order_by="MailItem.id")


class MailItem(Base):
    """One letter or one statement in a mail batch."""

    __tablename__ = "mail_items"
    __table_args__ = (CheckConstraint("letter_id IS NOT NULL OR statement_id IS NOT NULL", name="has_piece"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("mail_batches.id", ondelete="CASCADE"), index=True)
    letter_id: Mapped[str | None] = mapped_column(ForeignKey("letters.id"), nullable=True, index=True)
    statement_id: Mapped[str | None] = mapped_column(ForeignKey("statements.id"), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(20), default="pending", comment="pending | mailed | returned | void")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    mailed_at: Mapped[datetime | None] = mapped_column(nullable=True)

    batch: Mapped[MailBatch] = relationship(back_populates="items")


class Appointment(Base):
    """A visit imported from the scheduling system; ``external_id`` is that system's id."""

    __tablename__ = "appointments"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("apt"))
    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    patient_id: Mapped[str | None] = mapped_column(ForeignKey("patients.id"), nullable=True, index=True)
    start_at: Mapped[datetime] = mapped_column(index=True)
    provider: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="scheduled", comment="scheduled | cancelled | done")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CheckRun(Base):
    """One run of the pre-visit completeness checks for a day's appointments."""

    __tablename__ = "check_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_date: Mapped[date] = mapped_column(Date, index=True, comment="the day whose appointments were checked")
    status: Mapped[str] = mapped_column(String(20), default="running", comment="running | done | failed")
    findings: Mapped[dict[str, Any] | None] = mapped_column(_json(), nullable=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)


class AuditEvent(Base):
    """Who created, read, exported or changed what, and when. ``detail`` is a short code-like note
    (counts, states, ids), never patient data: the audit trail is shown to IT and auditors."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_patient_id_at", "patient_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(60), comment="create | read | export | update | delete | search")
    object_type: Mapped[str] = mapped_column(String(30), comment="patient | document | letter | object | ...")
    object_id: Mapped[str | None] = mapped_column(String(512), nullable=True)
    patient_id: Mapped[str | None] = mapped_column(String(32), nullable=True,
                                                   comment="no foreign key: the trail outlives what it names")
    detail: Mapped[str | None] = mapped_column(String(255), nullable=True)
