"""Tables of the staff console (issue 18): who may sign in, their sessions, failed sign-ins, and patient
merges kept so that a merge can be undone.

* :class:`ConsoleUser`: a person with a role (``staff`` or ``admin``) and an argon2 password hash; a user
  is disabled, never deleted, so the audit trail's names keep meaning something.
* :class:`ConsoleSession`: one signed-in browser. The cookie holds a random token; only its SHA-256 is
  stored, so a copy of the database cannot be used to sign in. Expiry is decided here (idle and absolute),
  not by the cookie.
* :class:`LoginAttempt`: failed sign-ins by user name and client, for rate limiting across processes.
* :class:`PatientMerge`: what a merge moved from one patient record to another, so that it can be
  reversed exactly.

Migration: ``frontdesk/db/migrations/versions/0006_console_users_and_merges.py``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from frontdesk.db.models import Base, utcnow

USER_ROLES = ("staff", "admin")


class ConsoleUser(Base):
    __tablename__ = "console_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True, comment="sign-in name, shown in the audit trail")
    role: Mapped[str] = mapped_column(String(20), default="staff", comment="staff | admin")
    password_hash: Mapped[str] = mapped_column(String(255), comment="argon2id")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_login_at: Mapped[datetime | None] = mapped_column(nullable=True)


class ConsoleSession(Base):
    __tablename__ = "console_sessions"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("console_users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(nullable=True, comment="signed out or expired")


class LoginAttempt(Base):
    __tablename__ = "console_login_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    client: Mapped[str] = mapped_column(String(64), comment="client address the attempt came from")
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class PatientMerge(Base):
    __tablename__ = "patient_merges"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kept_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    merged_id: Mapped[str] = mapped_column(String(32), index=True, comment="the record folded in (kept, emptied)")
    moved: Mapped[dict[str, Any]] = mapped_column(JSON, comment="ids of what moved, and replaced field values")
    actor: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    undone_at: Mapped[datetime | None] = mapped_column(nullable=True)
    undone_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
