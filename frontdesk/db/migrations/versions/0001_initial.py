"""Initial schema: patients, documents and their objects, extractions, flags, letters, statements, mail,
appointments, check runs and the audit trail (see frontdesk/db/models.py for what each table is for).

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-29 14:14:26.130714
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0001_initial'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('audit_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('action', sa.String(length=60), nullable=False, comment='create | read | export | update | delete | search'),
    sa.Column('object_type', sa.String(length=30), nullable=False, comment='patient | document | letter | object | ...'),
    sa.Column('object_id', sa.String(length=512), nullable=True),
    sa.Column('patient_id', sa.String(length=32), nullable=True, comment='no foreign key: the trail outlives what it names'),
    sa.Column('detail', sa.String(length=255), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events'))
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_events_at'), ['at'], unique=False)
        batch_op.create_index('ix_audit_events_patient_id_at', ['patient_id', 'at'], unique=False)

    op.create_table('check_runs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('run_date', sa.Date(), nullable=False, comment='the day whose appointments were checked'),
    sa.Column('status', sa.String(length=20), nullable=False, comment='running | done | failed'),
    sa.Column('findings', sa.JSON(none_as_null=True), nullable=True),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_check_runs'))
    )
    with op.batch_alter_table('check_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_check_runs_run_date'), ['run_date'], unique=False)

    op.create_table('mail_batches',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False, comment='open | submitted | mailed | void'),
    sa.Column('provider', sa.String(length=60), nullable=True),
    sa.Column('reference', sa.String(length=200), nullable=True, comment="the provider's batch id"),
    sa.Column('storage_key', sa.String(length=512), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('submitted_at', sa.DateTime(), nullable=True),
    sa.Column('mailed_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mail_batches'))
    )
    op.create_table('patients',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('match_key', sa.String(length=400), nullable=False, comment="normalised 'last|first|YYYY-MM-DD' used to match intakes"),
    sa.Column('first_name', sa.String(length=200), nullable=False),
    sa.Column('last_name', sa.String(length=200), nullable=False),
    sa.Column('date_of_birth', sa.Date(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patients'))
    )
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patients_match_key'), ['match_key'], unique=False)

    op.create_table('appointments',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('external_id', sa.String(length=100), nullable=False),
    sa.Column('patient_id', sa.String(length=32), nullable=True),
    sa.Column('start_at', sa.DateTime(), nullable=False),
    sa.Column('provider', sa.String(length=200), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False, comment='scheduled | cancelled | done'),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_appointments_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_appointments')),
    sa.UniqueConstraint('external_id', name=op.f('uq_appointments_external_id'))
    )
    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_appointments_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_appointments_start_at'), ['start_at'], unique=False)

    op.create_table('documents',
    sa.Column('id', sa.String(length=32), nullable=False, comment='doc-<first 16 hex of sha256>'),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False, comment='pending | awaiting_letters | complete'),
    sa.Column('outcome', sa.String(length=20), nullable=True, comment='filed | needs_review | failed'),
    sa.Column('document_type', sa.String(length=30), nullable=True),
    sa.Column('form', sa.String(length=100), nullable=True),
    sa.Column('method', sa.String(length=20), nullable=True),
    sa.Column('pages', sa.Integer(), nullable=True),
    sa.Column('storage_prefix', sa.String(length=255), nullable=False, comment='documents/YYYY/MM/<id> or failed/...'),
    sa.Column('error', sa.Text(), nullable=True, comment='why a failed document cannot be read'),
    sa.Column('patient_id', sa.String(length=32), nullable=True),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.Column('completed_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_documents_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_documents')),
    sa.UniqueConstraint('sha256', name=op.f('uq_documents_sha256'))
    )
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_documents_patient_id'), ['patient_id'], unique=False)

    op.create_table('statements',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False, comment='pending | queued | mailed | void'),
    sa.Column('patient_id', sa.String(length=32), nullable=True),
    sa.Column('statement_date', sa.Date(), nullable=False),
    sa.Column('amount_due_cents', sa.Integer(), nullable=False),
    sa.Column('storage_key', sa.String(length=512), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('context', sa.JSON(none_as_null=True), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('mailed_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_statements_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_statements'))
    )
    with op.batch_alter_table('statements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_statements_patient_id'), ['patient_id'], unique=False)

    op.create_table('arrivals',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('document_id', sa.String(length=32), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('outcome', sa.String(length=20), nullable=False, comment='new | duplicate | resumed'),
    sa.Column('source_path', sa.Text(), nullable=True, comment='where the file was read from (may be gone)'),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['document_id'], ['documents.id'], name=op.f('fk_arrivals_document_id_documents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_arrivals'))
    )
    with op.batch_alter_table('arrivals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_arrivals_document_id'), ['document_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_arrivals_sha256'), ['sha256'], unique=False)

    op.create_table('extractions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('document_id', sa.String(length=32), nullable=False),
    sa.Column('document_type', sa.String(length=30), nullable=False),
    sa.Column('form', sa.String(length=100), nullable=True),
    sa.Column('method', sa.String(length=20), nullable=False),
    sa.Column('pages', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['document_id'], ['documents.id'], name=op.f('fk_extractions_document_id_documents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_extractions'))
    )
    with op.batch_alter_table('extractions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_extractions_document_id'), ['document_id'], unique=False)

    op.create_table('letters',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=60), nullable=False, comment='template name, e.g. missing_insurance'),
    sa.Column('status', sa.String(length=20), nullable=False, comment='pending | queued | mailed | void'),
    sa.Column('patient_id', sa.String(length=32), nullable=True),
    sa.Column('document_id', sa.String(length=32), nullable=True),
    sa.Column('storage_key', sa.String(length=512), nullable=True, comment='the filed PDF'),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('context', sa.JSON(none_as_null=True), nullable=True, comment='what the template was rendered with'),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('mailed_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['document_id'], ['documents.id'], name=op.f('fk_letters_document_id_documents')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_letters_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_letters')),
    sa.UniqueConstraint('document_id', 'kind', name=op.f('uq_letters_document_id_kind'))
    )
    with op.batch_alter_table('letters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_letters_document_id'), ['document_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_letters_patient_id'), ['patient_id'], unique=False)

    op.create_table('patient_fields',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('patient_id', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=100), nullable=False, comment='field key from config/fields.yaml'),
    sa.Column('value', sa.JSON(none_as_null=True), nullable=True),
    sa.Column('source_document_id', sa.String(length=32), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_patient_fields_patient_id_patients'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['source_document_id'], ['documents.id'], name=op.f('fk_patient_fields_source_document_id_documents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patient_fields')),
    sa.UniqueConstraint('patient_id', 'key', name=op.f('uq_patient_fields_patient_id_key'))
    )
    with op.batch_alter_table('patient_fields', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patient_fields_patient_id'), ['patient_id'], unique=False)

    op.create_table('extracted_fields',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('extraction_id', sa.Integer(), nullable=False),
    sa.Column('document_id', sa.String(length=32), nullable=False, comment="the source document (same as the extraction's)"),
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('value', sa.JSON(none_as_null=True), nullable=True),
    sa.Column('raw', sa.Text(), nullable=True),
    sa.Column('confidence', sa.Float(), nullable=False),
    sa.Column('page', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['document_id'], ['documents.id'], name=op.f('fk_extracted_fields_document_id_documents')),
    sa.ForeignKeyConstraint(['extraction_id'], ['extractions.id'], name=op.f('fk_extracted_fields_extraction_id_extractions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_extracted_fields')),
    sa.UniqueConstraint('extraction_id', 'key', name=op.f('uq_extracted_fields_extraction_id_key'))
    )
    with op.batch_alter_table('extracted_fields', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_extracted_fields_document_id'), ['document_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_extracted_fields_extraction_id'), ['extraction_id'], unique=False)

    op.create_table('flags',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('document_id', sa.String(length=32), nullable=True),
    sa.Column('extraction_id', sa.Integer(), nullable=True),
    sa.Column('patient_id', sa.String(length=32), nullable=True),
    sa.Column('code', sa.String(length=60), nullable=False),
    sa.Column('severity', sa.String(length=10), nullable=False, comment='error | warning | info'),
    sa.Column('field', sa.String(length=100), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False, comment='open | resolved | dismissed'),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('resolved_at', sa.DateTime(), nullable=True),
    sa.Column('resolved_by', sa.String(length=100), nullable=True),
    sa.ForeignKeyConstraint(['document_id'], ['documents.id'], name=op.f('fk_flags_document_id_documents')),
    sa.ForeignKeyConstraint(['extraction_id'], ['extractions.id'], name=op.f('fk_flags_extraction_id_extractions')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_flags_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_flags'))
    )
    with op.batch_alter_table('flags', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_flags_document_id'), ['document_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_flags_patient_id'), ['patient_id'], unique=False)

    op.create_table('mail_items',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('batch_id', sa.String(length=32), nullable=False),
    sa.Column('letter_id', sa.String(length=32), nullable=True),
    sa.Column('statement_id', sa.String(length=32), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False, comment='pending | mailed | returned | void'),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('mailed_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint('letter_id IS NOT NULL OR statement_id IS NOT NULL', name=op.f('ck_mail_items_has_piece')),
    sa.ForeignKeyConstraint(['batch_id'], ['mail_batches.id'], name=op.f('fk_mail_items_batch_id_mail_batches'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['letter_id'], ['letters.id'], name=op.f('fk_mail_items_letter_id_letters')),
    sa.ForeignKeyConstraint(['statement_id'], ['statements.id'], name=op.f('fk_mail_items_statement_id_statements')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mail_items'))
    )
    with op.batch_alter_table('mail_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mail_items_batch_id'), ['batch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_mail_items_letter_id'), ['letter_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_mail_items_statement_id'), ['statement_id'], unique=False)

    op.create_table('stored_objects',
    sa.Column('key', sa.String(length=512), nullable=False),
    sa.Column('role', sa.String(length=30), nullable=False, comment='original | extraction | reason | letter | statement | batch'),
    sa.Column('sha256', sa.String(length=64), nullable=True, comment='of the bytes written (known before the write)'),
    sa.Column('size', sa.Integer(), nullable=True),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False, comment='pending | stored | spooled'),
    sa.Column('document_id', sa.String(length=32), nullable=True),
    sa.Column('letter_id', sa.String(length=32), nullable=True),
    sa.Column('statement_id', sa.String(length=32), nullable=True),
    sa.Column('mail_batch_id', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('stored_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['document_id'], ['documents.id'], name=op.f('fk_stored_objects_document_id_documents')),
    sa.ForeignKeyConstraint(['letter_id'], ['letters.id'], name=op.f('fk_stored_objects_letter_id_letters')),
    sa.ForeignKeyConstraint(['mail_batch_id'], ['mail_batches.id'], name=op.f('fk_stored_objects_mail_batch_id_mail_batches')),
    sa.ForeignKeyConstraint(['statement_id'], ['statements.id'], name=op.f('fk_stored_objects_statement_id_statements')),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_stored_objects'))
    )
    with op.batch_alter_table('stored_objects', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stored_objects_document_id'), ['document_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_stored_objects_letter_id'), ['letter_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_stored_objects_mail_batch_id'), ['mail_batch_id'], unique=False)
        batch_op.create_index('ix_stored_objects_state', ['state'], unique=False)
        batch_op.create_index(batch_op.f('ix_stored_objects_statement_id'), ['statement_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('stored_objects', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stored_objects_statement_id'))
        batch_op.drop_index('ix_stored_objects_state')
        batch_op.drop_index(batch_op.f('ix_stored_objects_mail_batch_id'))
        batch_op.drop_index(batch_op.f('ix_stored_objects_letter_id'))
        batch_op.drop_index(batch_op.f('ix_stored_objects_document_id'))

    op.drop_table('stored_objects')
    with op.batch_alter_table('mail_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mail_items_statement_id'))
        batch_op.drop_index(batch_op.f('ix_mail_items_letter_id'))
        batch_op.drop_index(batch_op.f('ix_mail_items_batch_id'))

    op.drop_table('mail_items')
    with op.batch_alter_table('flags', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_flags_patient_id'))
        batch_op.drop_index(batch_op.f('ix_flags_document_id'))

    op.drop_table('flags')
    with op.batch_alter_table('extracted_fields', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_extracted_fields_extraction_id'))
        batch_op.drop_index(batch_op.f('ix_extracted_fields_document_id'))

    op.drop_table('extracted_fields')
    with op.batch_alter_table('patient_fields', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patient_fields_patient_id'))

    op.drop_table('patient_fields')
    with op.batch_alter_table('letters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_letters_patient_id'))
        batch_op.drop_index(batch_op.f('ix_letters_document_id'))

    op.drop_table('letters')
    with op.batch_alter_table('extractions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_extractions_document_id'))

    op.drop_table('extractions')
    with op.batch_alter_table('arrivals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_arrivals_sha256'))
        batch_op.drop_index(batch_op.f('ix_arrivals_document_id'))

    op.drop_table('arrivals')
    with op.batch_alter_table('statements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_statements_patient_id'))

    op.drop_table('statements')
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_documents_patient_id'))

    op.drop_table('documents')
    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_appointments_start_at'))
        batch_op.drop_index(batch_op.f('ix_appointments_patient_id'))

    op.drop_table('appointments')
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patients_match_key'))

    op.drop_table('patients')
    op.drop_table('mail_batches')
    with op.batch_alter_table('check_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_check_runs_run_date'))

    op.drop_table('check_runs')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_patient_id_at')
        batch_op.drop_index(batch_op.f('ix_audit_events_at'))

    op.drop_table('audit_events')
