"""Tables of eligibility and claims (issue 19), on the records schema's declarative base.

* :class:`X12Batch`: every X12 file Frontdesk wrote or read (270, 271, 837P, 999), its control number,
  where it was filed and its state. Control numbers come from here, so they never repeat.
* :class:`EligibilityRequest`: one subscriber asked about; the trace number ties the 271 back to the
  patient without putting anything about them in the file.
* :class:`EligibilityResult`: what a 271 said, per patient, with the date it was checked: the record
  the pre-visit worklist reads (coverage, plan, copay, deductible remaining).
* :class:`ClaimRow`: one claim sent in an 837P batch, its total and its state; 999 rejections become
  its flags.

Migration: ``frontdesk/db/migrations/versions/0005_eligibility_and_claims.py``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from frontdesk.db.models import Base, new_id, utcnow


class X12Batch(Base):
    __tablename__ = "x12_batches"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("edi"))
    kind: Mapped[str] = mapped_column(String(10), comment="270 | 271 | 837P | 999 | 277")
    direction: Mapped[str] = mapped_column(String(10), default="out", comment="out | in")
    control_number: Mapped[int] = mapped_column(Integer, index=True, comment="ISA13 (outgoing: unique)")
    status: Mapped[str] = mapped_column(String(20), default="written", comment="written | read | accepted | rejected")
    storage_key: Mapped[str | None] = mapped_column(String(512), nullable=True)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    counts: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EligibilityRequest(Base):
    __tablename__ = "eligibility_requests"

    trace: Mapped[str] = mapped_column(String(30), primary_key=True, comment="TRN02: opaque")
    batch_id: Mapped[str] = mapped_column(ForeignKey("x12_batches.id"), index=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    appointment_key: Mapped[str | None] = mapped_column(String(100), nullable=True)
    payer_id: Mapped[str] = mapped_column(String(80))
    service_date: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EligibilityResult(Base):
    __tablename__ = "eligibility_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    trace: Mapped[str | None] = mapped_column(String(30), nullable=True, index=True)
    batch_id: Mapped[str | None] = mapped_column(ForeignKey("x12_batches.id"), nullable=True)
    checked_on: Mapped[date] = mapped_column(Date, comment="the day the payer answered")
    status: Mapped[str] = mapped_column(String(20), comment="active | inactive | not_found | rejected")
    payer_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    plan_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    copay_cents: Mapped[int | None] = mapped_column(Integer, nullable=True)
    deductible_remaining_cents: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reasons: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    letter_id: Mapped[str | None] = mapped_column(ForeignKey("letters.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ClaimRow(Base):
    __tablename__ = "claims"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, comment="CLM01: the ledger's visit id")
    batch_id: Mapped[str] = mapped_column(ForeignKey("x12_batches.id"), index=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    payer_id: Mapped[str] = mapped_column(String(80))
    total_cents: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="written", comment="written | accepted | rejected")
    flags: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
