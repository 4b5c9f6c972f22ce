"""Staff console: users, sessions, failed sign-ins, reversible patient merges (frontdesk/db/console_models.py).

Revision ID: issue18_console
Revises: issue19_claims
Create Date: 2026-12-05 05:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "issue18_console"
down_revision: str | Sequence[str] | None = "issue19_claims"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "console_users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False, comment="sign-in name, shown in the audit trail"),
        sa.Column("role", sa.String(length=20), nullable=False, comment="staff | admin"),
        sa.Column("password_hash", sa.String(length=255), nullable=False, comment="argon2id"),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("disabled_at", sa.DateTime(), nullable=True),
        sa.Column("last_login_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_users")),
        sa.UniqueConstraint("name", name=op.f("uq_console_users_name")),
    )
    op.create_table(
        "console_sessions",
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True, comment="signed out or expired"),
        sa.ForeignKeyConstraint(["user_id"], ["console_users.id"], name=op.f("fk_console_sessions_user_id_console_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_sha256", name=op.f("pk_console_sessions")),
    )
    op.create_index(op.f("ix_console_sessions_user_id"), "console_sessions", ["user_id"], unique=False)
    op.create_table(
        "console_login_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False, comment="client address the attempt came from"),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_login_attempts")),
    )
    op.create_index(op.f("ix_console_login_attempts_name"), "console_login_attempts", ["name"], unique=False)
    op.create_index(op.f("ix_console_login_attempts_at"), "console_login_attempts", ["at"], unique=False)
    op.create_table(
        "patient_merges",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("kept_id", sa.String(length=32), nullable=False),
        sa.Column("merged_id", sa.String(length=32), nullable=False, comment="the record folded in (kept, emptied)"),
        sa.Column("moved", sa.JSON(), nullable=False, comment="ids of what moved, and replaced field values"),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("undone_at", sa.DateTime(), nullable=True),
        sa.Column("undone_by", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(["kept_id"], ["patients.id"], name=op.f("fk_patient_merges_kept_id_patients")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_merges")),
    )
    op.create_index(op.f("ix_patient_merges_kept_id"), "patient_merges", ["kept_id"], unique=False)
    op.create_index(op.f("ix_patient_merges_merged_id"), "patient_merges", ["merged_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_patient_merges_merged_id"), table_name="patient_merges")
    op.drop_index(op.f("ix_patient_merges_kept_id"), table_name="patient_merges")
    op.drop_table("patient_merges")
    op.drop_index(op.f("ix_console_login_attempts_at"), table_name="console_login_attempts")
    op.drop_index(op.f("ix_console_login_attempts_name"), table_name="console_login_attempts")
    op.drop_table("console_login_attempts")
    op.drop_index(op.f("ix_console_sessions_user_id"), table_name="console_sessions")
    op.drop_table("console_sessions")
    op.drop_table("console_users")
