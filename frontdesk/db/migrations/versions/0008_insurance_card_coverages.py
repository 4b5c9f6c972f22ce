"""Insurance cards filed to a coverage: which patient coverage (primary or secondary) each card document
belongs to, which side of the card it shows, and for a back the front it was matched with
(frontdesk/db/models.py ``InsuranceCard``). The coverage's values stay in ``patient_fields``.

Cards filed before this revision have no row: they were all filed to the primary coverage, and the first
card filed after it compares itself with the values on file as any card does.

Revision ID: insurance_card_coverages
Revises: patient_keys_fold_letters
Create Date: 2026-12-05 14:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "insurance_card_coverages"
down_revision: str | Sequence[str] | None = "patient_keys_fold_letters"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "insurance_cards",
        sa.Column("document_id", sa.String(length=32), nullable=False),
        sa.Column("patient_id", sa.String(length=32), nullable=False),
        sa.Column("rank", sa.String(length=20), nullable=False, comment="primary | secondary"),
        sa.Column("side", sa.String(length=10), nullable=False, comment="front | back | both"),
        sa.Column("front_document_id", sa.String(length=32), nullable=True,
                  comment="for a back: the card's front it was matched with"),
        sa.Column("filed_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["document_id"], ["documents.id"], name=op.f("fk_insurance_cards_document_id_documents")),
        sa.ForeignKeyConstraint(["front_document_id"], ["documents.id"],
                                name=op.f("fk_insurance_cards_front_document_id_documents")),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], name=op.f("fk_insurance_cards_patient_id_patients")),
        sa.PrimaryKeyConstraint("document_id", name=op.f("pk_insurance_cards")),
    )
    op.create_index(op.f("ix_insurance_cards_patient_id"), "insurance_cards", ["patient_id"], unique=False)
    op.create_index(op.f("ix_insurance_cards_front_document_id"), "insurance_cards", ["front_document_id"],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_insurance_cards_front_document_id"), table_name="insurance_cards")
    op.drop_index(op.f("ix_insurance_cards_patient_id"), table_name="insurance_cards")
    op.drop_table("insurance_cards")
