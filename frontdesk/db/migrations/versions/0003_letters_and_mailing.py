"""Letters, statements and batch mailing: pieces of a batch (with the live-piece uniqueness that makes
mailing exactly-once), batch details, statement cycles and the mail-run lease
(frontdesk/db/letters_models.py).

Revision ID: issue5_letters
Revises: issue7_checks
Create Date: 2026-11-29 14:32:45.827007
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'issue5_letters'
down_revision: str | Sequence[str] | None = 'issue7_checks'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('letter_locks',
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('holder', sa.String(length=64), nullable=False, comment='random token of the run holding it'),
    sa.Column('acquired_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_letter_locks'))
    )
    op.create_table('mail_batch_details',
    sa.Column('batch_id', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False, comment='letters | statements | all | reissue'),
    sa.Column('duplex', sa.Boolean(), nullable=False),
    sa.Column('placement', sa.String(length=120), nullable=False, comment='the window-envelope spec followed'),
    sa.Column('items', sa.Integer(), nullable=False),
    sa.Column('pages', sa.Integer(), nullable=False),
    sa.Column('sheets', sa.Integer(), nullable=False),
    sa.Column('held', sa.Integer(), nullable=False, comment='pieces held back (address, layout)'),
    sa.Column('manifest_key', sa.String(length=512), nullable=True),
    sa.Column('summary_key', sa.String(length=512), nullable=True),
    sa.Column('reissue_of', sa.String(length=32), nullable=True),
    sa.Column('voided_at', sa.DateTime(), nullable=True),
    sa.Column('void_reason', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['batch_id'], ['mail_batches.id'], name=op.f('fk_mail_batch_details_batch_id_mail_batches'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reissue_of'], ['mail_batches.id'], name=op.f('fk_mail_batch_details_reissue_of_mail_batches')),
    sa.PrimaryKeyConstraint('batch_id', name=op.f('pk_mail_batch_details'))
    )
    with op.batch_alter_table('mail_batch_details', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mail_batch_details_reissue_of'), ['reissue_of'], unique=False)

    op.create_table('statement_details',
    sa.Column('statement_id', sa.String(length=32), nullable=False),
    sa.Column('account', sa.String(length=64), nullable=False, comment='the guarantor account number'),
    sa.Column('statement_date', sa.Date(), nullable=False),
    sa.Column('cycle_key', sa.String(length=100), nullable=True, comment='account|YYYY-MM-DD while live, NULL once void'),
    sa.Column('ledger_sha256', sa.String(length=64), nullable=False, comment='of the ledger export it was built from'),
    sa.Column('lines', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['statement_id'], ['statements.id'], name=op.f('fk_statement_details_statement_id_statements'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('statement_id', name=op.f('pk_statement_details')),
    sa.UniqueConstraint('cycle_key', name=op.f('uq_statement_details_cycle_key'))
    )
    with op.batch_alter_table('statement_details', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_statement_details_account'), ['account'], unique=False)

    op.create_table('mail_pieces',
    sa.Column('mail_item_id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.String(length=32), nullable=False),
    sa.Column('piece_id', sa.String(length=32), nullable=False, comment='the letter or statement id'),
    sa.Column('live_piece', sa.String(length=32), nullable=True, comment='piece_id while the batch is live, NULL once void'),
    sa.Column('kind', sa.String(length=60), nullable=False, comment='letter kind, or patient_statement'),
    sa.Column('position', sa.Integer(), nullable=False, comment='1-based order in the batch'),
    sa.Column('first_page', sa.Integer(), nullable=False, comment='1-based page of the batch PDF the piece starts on'),
    sa.Column('content_pages', sa.Integer(), nullable=False),
    sa.Column('address_sheet', sa.Boolean(), nullable=False, comment='an address sheet was added in front of the piece'),
    sa.Column('blank_pages', sa.Integer(), nullable=False, comment='backs left blank for duplex printing'),
    sa.Column('pages', sa.Integer(), nullable=False, comment='all pages of the piece in the batch PDF'),
    sa.Column('sheets', sa.Integer(), nullable=False),
    sa.Column('envelope', sa.String(length=40), nullable=False, comment='#10 double-window | flat'),
    sa.Column('pdf_sha256', sa.String(length=64), nullable=False, comment='of the filed PDF that was batched'),
    sa.ForeignKeyConstraint(['batch_id'], ['mail_batches.id'], name=op.f('fk_mail_pieces_batch_id_mail_batches'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['mail_item_id'], ['mail_items.id'], name=op.f('fk_mail_pieces_mail_item_id_mail_items'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('mail_item_id', name=op.f('pk_mail_pieces')),
    sa.UniqueConstraint('live_piece', name=op.f('uq_mail_pieces_live_piece'))
    )
    with op.batch_alter_table('mail_pieces', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mail_pieces_batch_id'), ['batch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_mail_pieces_piece_id'), ['piece_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('mail_pieces', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mail_pieces_piece_id'))
        batch_op.drop_index(batch_op.f('ix_mail_pieces_batch_id'))

    op.drop_table('mail_pieces')
    with op.batch_alter_table('statement_details', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_statement_details_account'))

    op.drop_table('statement_details')
    with op.batch_alter_table('mail_batch_details', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mail_batch_details_reissue_of'))

    op.drop_table('mail_batch_details')
    op.drop_table('letter_locks')
