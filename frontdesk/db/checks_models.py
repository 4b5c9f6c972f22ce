"""Tables of the pre-visit checks (issue 7), on the records schema's declarative base.

* :class:`PatientIdentifier`: identifiers other systems give a patient (the scheduling system's MRN).
  Intake forms carry no MRN; the first time an appointment with an MRN is matched to a record by name
  and date of birth, the MRN is remembered, so later matches are by MRN.
* :class:`ReminderGap`: the ledger behind "never twice for the same appointment and gap". Its unique
  key makes a second reminder for the same gap impossible even when two runs overlap.

A check run's findings are stored in ``check_runs.findings`` (see :mod:`frontdesk.checks.store`).
Migration: ``frontdesk/db/migrations/versions/0002_previsit_checks.py``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from frontdesk.db.models import Base, utcnow


class PatientIdentifier(Base):
    __tablename__ = "patient_identifiers"
    __table_args__ = (UniqueConstraint("system", "value"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    system: Mapped[str] = mapped_column(String(40), comment="mrn = the practice's medical record number")
    value: Mapped[str] = mapped_column(String(100), comment="normalised: upper case, no separators or leading zeros")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReminderGap(Base):
    __tablename__ = "reminder_gaps"
    __table_args__ = (UniqueConstraint("appointment_key", "code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    appointment_key: Mapped[str] = mapped_column(String(100), comment="the scheduler's appointment id, or a digest")
    code: Mapped[str] = mapped_column(String(60), comment="finding code from config/checks.yaml")
    letter_id: Mapped[str] = mapped_column(ForeignKey("letters.id"), index=True)
    check_run_id: Mapped[int | None] = mapped_column(ForeignKey("check_runs.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
