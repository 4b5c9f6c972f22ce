"""The audit trail: who created, read, exported or changed a patient's documents or record, and when.

HIPAA asks for audit controls (45 CFR 164.312(b)); a practice must be able to show who looked at a
chart, not only who changed it, so reads and searches are recorded too. An event names an actor, an
action, an object type and opaque ids, and an optional short ``detail`` (states, counts, field keys):
never a name, a date of birth or a member id, since the trail is shown to IT staff and auditors. The
event is written in the caller's transaction, so a change and its audit event commit together.

The actor is ``FRONTDESK_ACTOR`` when set (a front-desk application passes the signed-in user), else the
operating-system user running Frontdesk.
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from frontdesk.db.models import AuditEvent, utcnow

ACTIONS = ("create", "read", "update", "export", "search", "delete", "duplicate", "login", "logout")

# The signed-in person a web request acts for (the staff console serves many people from one process,
# so the environment variable cannot say who it is).
_ACTING_AS: ContextVar[str | None] = ContextVar("frontdesk_actor", default=None)

# A detail is for codes and counts. Refusing digits runs of date length and anything resembling a
# date keeps a careless caller from writing a date of birth or an id number into the trail.
_SUSPICIOUS = re.compile(r"\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4}|\d{6,}")
_OPAQUE_ID = re.compile(r"\b[a-z]{2,4}-[0-9a-f]{12,16}\b")  # our own ids (doc-…, pat-…) may appear


@contextmanager
def acting_as(name: str) -> Iterator[None]:
    """Within the block, every audit event (and every flag resolved) names ``name`` as the actor."""
    token = _ACTING_AS.set(name[:100])
    try:
        yield
    finally:
        _ACTING_AS.reset(token)


def current_actor() -> str:
    acting = _ACTING_AS.get()
    if acting:
        return acting
    actor = os.environ.get("FRONTDESK_ACTOR", "").strip()
    if actor:
        return actor[:100]
    try:
        return getpass.getuser()[:100]
    except (OSError, KeyError):  # no passwd entry (some containers)
        return f"uid:{os.getuid()}"


def record(session: Session, action: str, object_type: str, object_id: str | None, *,
           patient_id: str | None = None, detail: str | None = None, actor: str | None = None,
           at: datetime | None = None) -> AuditEvent:
    """Add one event to ``session`` (committed with the caller's transaction)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    if detail is not None:
        detail = detail[:255]
        if _SUSPICIOUS.search(_OPAQUE_ID.sub("", detail)):
            raise ValueError("audit detail looks like it carries a date or an id number")
    event = AuditEvent(at=at or utcnow(), actor=actor or current_actor(), action=action,
                       object_type=object_type, object_id=object_id, patient_id=patient_id, detail=detail)
    session.add(event)
    return event


def events(session: Session, *, patient_id: str | None = None, since: datetime | None = None,
           object_id: str | None = None, actions: Sequence[str] | None = None,
           limit: int | None = None) -> list[AuditEvent]:
    """Events, oldest first, filtered by patient, time, object or action."""
    q = select(AuditEvent)
    if patient_id is not None:
        q = q.where(AuditEvent.patient_id == patient_id)
    if since is not None:
        q = q.where(AuditEvent.at >= since)
    if object_id is not None:
        q = q.where(AuditEvent.object_id == object_id)
    if actions:
        q = q.where(AuditEvent.action.in_(list(actions)))
    q = q.order_by(AuditEvent.at, AuditEvent.id)
    if limit is not None:
        q = q.limit(limit)
    return list(session.scalars(q))
