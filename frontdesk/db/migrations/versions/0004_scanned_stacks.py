"""Scanned stacks: a document cut from a multi-form scan records its parent scan and its pages there.

Revision ID: issue3_stacks
Revises: issue5_letters
Create Date: 2026-11-29 17:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'issue3_stacks'
down_revision: str | Sequence[str] | None = 'issue5_letters'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            'parent_id', sa.String(length=32), nullable=True,
            comment='the scanned stack this document was cut from (its original holds only its own pages)'))
        batch_op.add_column(sa.Column(
            'source_pages', sa.String(length=255), nullable=True,
            comment="1-based pages of the parent scan, e.g. '3,5'"))
        batch_op.create_index(batch_op.f('ix_documents_parent_id'), ['parent_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_documents_parent_id_documents'), 'documents',
                                    ['parent_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_documents_parent_id_documents'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_documents_parent_id'))
        batch_op.drop_column('source_pages')
        batch_op.drop_column('parent_id')
