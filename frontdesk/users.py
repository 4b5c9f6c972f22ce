"""Who may use the staff console: users with a role, argon2 password hashes, sessions and sign-in limits.

Roles: ``staff`` (the front desk: every patient page and action) and ``admin`` (also manages users and
reads the audit trail). A user is disabled rather than deleted, so names in the audit trail stay tied to
a record of who that was. Sessions are decided on the server: the browser holds a random token, the
database only its SHA-256, and a session ends after ``console.idle_minutes`` without a request or
``console.session_hours`` in all, whatever the cookie says. Failed sign-ins are counted per user name
and per client address, so guessing is slowed for one account and from one machine alike.

Every change here is an audit event naming the person who made it; passwords never leave this module
except as a hash.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from frontdesk import audit
from frontdesk.db.console_models import USER_ROLES, ConsoleSession, ConsoleUser, LoginAttempt
from frontdesk.db.models import utcnow
from frontdesk.exceptions import ExitCode, FrontdeskError

MIN_PASSWORD = 10
TOUCH_EVERY = timedelta(seconds=5)  # the idle clock's resolution
_NAME = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")
_HASHER = PasswordHasher()  # argon2id with the library's current recommended cost
# Verifying against this when the name is unknown takes as long as a real check: timing does not tell
# which user names exist.
_DUMMY_HASH = _HASHER.hash(secrets.token_hex(16))


class UserError(FrontdeskError):
    """A user cannot be added or changed as asked (the message says why)."""

    exit_code = ExitCode.bad_input


class LoginRefused(FrontdeskError):
    """Wrong name or password, a disabled user, or too many attempts: the message never says which
    of the first three, so it does not tell a guesser which names exist."""

    exit_code = ExitCode.bad_input


@dataclass(frozen=True)
class SignedIn:
    """A live session: who, their role, the CSRF token their forms must carry."""

    user_id: int
    name: str
    role: str
    csrf_token: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def check_name(name: str) -> str:
    name = name.strip().lower()
    if not _NAME.match(name):
        raise UserError("user name: 2-64 characters, lower-case letters, digits, '.', '_' or '-', starting with a letter")
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"password: at least {MIN_PASSWORD} characters")
    return password


def add_user(session: Session, name: str, role: str, password: str) -> ConsoleUser:
    """A new user; the audit event names who added them (the signed-in admin or the OS user)."""
    name = check_name(name)
    if role not in USER_ROLES:
        raise UserError(f"role must be one of: {', '.join(USER_ROLES)}")
    check_password(password)
    if session.scalar(select(ConsoleUser).where(ConsoleUser.name == name)) is not None:
        raise UserError(f"user {name} exists already")
    user = ConsoleUser(name=name, role=role, password_hash=hash_password(password), active=True)
    session.add(user)
    session.flush()
    audit.record(session, "create", "user", f"user-{user.id}", detail=f"role {role}")
    return user


def list_users(session: Session) -> list[ConsoleUser]:
    return list(session.scalars(select(ConsoleUser).order_by(ConsoleUser.name)))


def get_user(session: Session, name: str) -> ConsoleUser:
    user = session.scalar(select(ConsoleUser).where(ConsoleUser.name == name.strip().lower()))
    if user is None:
        raise UserError(f"no user {name}")
    return user


def disable_user(session: Session, name: str) -> ConsoleUser:
    """Disable a user and end their sessions at once (someone who left the practice)."""
    user = get_user(session, name)
    if user.active:
        user.active = False
        user.disabled_at = utcnow()
        for s in session.scalars(select(ConsoleSession).where(ConsoleSession.user_id == user.id,
                                                              ConsoleSession.ended_at.is_(None))):
            s.ended_at = user.disabled_at
        audit.record(session, "update", "user", f"user-{user.id}", detail="disabled")
    return user


def enable_user(session: Session, name: str) -> ConsoleUser:
    user = get_user(session, name)
    if not user.active:
        user.active, user.disabled_at = True, None
        audit.record(session, "update", "user", f"user-{user.id}", detail="enabled")
    return user


def set_password(session: Session, name: str, password: str) -> ConsoleUser:
    """A new password; the user's open sessions end (a password is changed when it may be known)."""
    user = get_user(session, name)
    user.password_hash = hash_password(check_password(password))
    now = utcnow()
    for s in session.scalars(select(ConsoleSession).where(ConsoleSession.user_id == user.id,
                                                          ConsoleSession.ended_at.is_(None))):
        s.ended_at = now
    audit.record(session, "update", "user", f"user-{user.id}", detail="password changed")
    return user


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def login(session: Session, name: str, password: str, *, client: str, max_attempts: int = 5,
          window: timedelta = timedelta(minutes=15), now: datetime | None = None) -> tuple[str, SignedIn] | LoginRefused:
    """Check a name and password; on success start a session and return (cookie token, who).

    A refusal is *returned*, not raised, so that the caller's transaction commits the failed attempt
    (and its audit event) before the caller tells the person. Refused after ``max_attempts`` failures for this name or from this client
    within ``window``, even with the right password, until the window has passed."""
    now = now or utcnow()
    name = name.strip().lower()[:100]
    client = client[:64]
    since = now - window
    session.execute(delete(LoginAttempt).where(LoginAttempt.at < now - max(window, timedelta(days=1))))
    failures = session.scalar(select(func.count()).select_from(LoginAttempt).where(
        LoginAttempt.at >= since, (LoginAttempt.name == name) | (LoginAttempt.client == client))) or 0
    if failures >= max_attempts:
        return LoginRefused("too many failed sign-ins: wait a few minutes and try again")
    user = session.scalar(select(ConsoleUser).where(ConsoleUser.name == name))
    ok = False
    try:
        ok = _HASHER.verify(user.password_hash if user is not None else _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False
    if not ok or user is None or not user.active:
        session.add(LoginAttempt(name=name, client=client, at=now))
        audit.record(session, "login", "user", f"user-{user.id}" if user is not None else None,
                     actor=name or "unknown", detail="refused", at=now)
        return LoginRefused("wrong user name or password")
    if _HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    session.add(ConsoleSession(token_sha256=_token_hash(token), user_id=user.id, csrf_token=csrf,
                               created_at=now, last_seen_at=now))
    user.last_login_at = now
    session.execute(delete(LoginAttempt).where(LoginAttempt.name == name))
    audit.record(session, "login", "user", f"user-{user.id}", actor=user.name, at=now)
    return token, SignedIn(user.id, user.name, user.role, csrf)


def session_user(session: Session, token: str | None, *, idle: timedelta, longest: timedelta,
                 now: datetime | None = None, touch: bool = True) -> SignedIn | None:
    """Who a cookie token signs in, or None when it is unknown, ended, idle too long or too old.
    A live session's idle clock restarts (``touch``)."""
    if not token:
        return None
    now = now or utcnow()
    row = session.get(ConsoleSession, _token_hash(token))
    if row is None or row.ended_at is not None:
        return None
    user = session.get(ConsoleUser, row.user_id)
    if user is None or not user.active:
        return None
    if now - row.last_seen_at > idle or now - row.created_at > longest:
        row.ended_at = now
        audit.record(session, "logout", "user", f"user-{user.id}", actor=user.name, detail="session expired", at=now)
        return None
    if touch and now - row.last_seen_at > TOUCH_EVERY:
        row.last_seen_at = now  # not on every request: one write per session every few seconds is enough
    return SignedIn(user.id, user.name, user.role, row.csrf_token)


def fresh_session_user(session: Session, token: str | None, *, idle: timedelta, longest: timedelta,
                       now: datetime | None = None) -> SignedIn | None:
    """Who a cookie token signs in when that needs no write: a live session whose idle clock was restarted
    within ``TOUCH_EVERY``. Reads only (a page's look-only transaction may call it); None means "ask
    :func:`session_user` in a writing transaction", which decides expiry and restarts the clock."""
    if not token:
        return None
    now = now or utcnow()
    row = session.get(ConsoleSession, _token_hash(token))
    if row is None or row.ended_at is not None:
        return None
    if now - row.last_seen_at > TOUCH_EVERY or now - row.last_seen_at > idle or now - row.created_at > longest:
        return None
    user = session.get(ConsoleUser, row.user_id)
    if user is None or not user.active:
        return None
    return SignedIn(user.id, user.name, user.role, row.csrf_token)


def logout(session: Session, token: str | None) -> None:
    if not token:
        return
    row = session.get(ConsoleSession, _token_hash(token))
    if row is None or row.ended_at is not None:
        return
    row.ended_at = utcnow()
    user = session.get(ConsoleUser, row.user_id)
    audit.record(session, "logout", "user", f"user-{row.user_id}", actor=user.name if user else None)


def csrf_matches(expected: str, given: str | None) -> bool:
    return bool(given) and secrets.compare_digest(expected.encode(), (given or "").encode())
