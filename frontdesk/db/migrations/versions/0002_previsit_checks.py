"""Pre-visit checks: patient identifiers (MRN) and the reminder ledger (frontdesk/db/checks_models.py).

Revision ID: issue7_checks
Revises: 0001_initial
Create Date: 2026-11-29 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "issue7_checks"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "patient_identifiers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("patient_id", sa.String(length=32), nullable=False),
        sa.Column("system", sa.String(length=40), nullable=False,
                  comment="mrn = the practice's medical record number"),
        sa.Column("value", sa.String(length=100), nullable=False,
                  comment="normalised: upper case, no separators or leading zeros"),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"],
                                name=op.f("fk_patient_identifiers_patient_id_patients"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_identifiers")),
        sa.UniqueConstraint("system", "value", name=op.f("uq_patient_identifiers_system_value")),
    )
    with op.batch_alter_table("patient_identifiers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_patient_identifiers_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "reminder_gaps",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("appointment_key", sa.String(length=100), nullable=False,
                  comment="the scheduler's appointment id, or a digest"),
        sa.Column("code", sa.String(length=60), nullable=False, comment="finding code from config/checks.yaml"),
        sa.Column("letter_id", sa.String(length=32), nullable=False),
        sa.Column("check_run_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["check_run_id"], ["check_runs.id"],
                                name=op.f("fk_reminder_gaps_check_run_id_check_runs")),
        sa.ForeignKeyConstraint(["letter_id"], ["letters.id"], name=op.f("fk_reminder_gaps_letter_id_letters")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reminder_gaps")),
        sa.UniqueConstraint("appointment_key", "code", name=op.f("uq_reminder_gaps_appointment_key_code")),
    )
    with op.batch_alter_table("reminder_gaps", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reminder_gaps_letter_id"), ["letter_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("reminder_gaps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reminder_gaps_letter_id"))
    op.drop_table("reminder_gaps")
    with op.batch_alter_table("patient_identifiers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_patient_identifiers_patient_id"))
    op.drop_table("patient_identifiers")
