"""Objects Frontdesk files to storage, as the records plan them before a byte is written.

The records reserve a row per planned object (key, role, hash, size) before storage is touched, mark it
stored once storage confirms it, and a crash in between is repaired from those rows. Intake, cards,
letters and statements all plan their objects with :class:`PlannedObject`; an object filed on its own
(a letter, a statement, a batch, a reviewed reading) goes through :func:`file_object`."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from frontdesk import audit
from frontdesk.db import Database
from frontdesk.db.models import StoredObjectRow, utcnow
from frontdesk.models import StoredObject
from frontdesk.storage import SpooledObject, Storage, sha256_bytes


@dataclass
class PlannedObject:
    """An object about to be written: its key and the hash of exactly the bytes that will be written."""

    key: str
    role: str
    sha256: str
    size: int
    content_type: str


def plan_object(session: Session, planned: PlannedObject, **owner: str | None) -> StoredObjectRow:
    row = session.get(StoredObjectRow, planned.key)
    if row is None:
        row = StoredObjectRow(key=planned.key, **owner)
        session.add(row)
    row.role, row.sha256, row.size = planned.role, planned.sha256, planned.size
    row.content_type, row.state, row.stored_at = planned.content_type, "pending", None
    return row


def object_row(session: Session, key: str) -> StoredObjectRow | None:
    return session.get(StoredObjectRow, key)


def mark_stored(session: Session, obj: StoredObject) -> StoredObjectRow | None:
    """Record where an object now is: in the store, or in the spool waiting for it."""
    row = session.get(StoredObjectRow, obj.key)
    if row is None:
        return None
    if row.sha256 is not None and row.sha256 != obj.sha256:
        # The store holds other bytes than were planned (a newer attempt overwrote the key); the store
        # is the truth for verify, and it is what the document now points at.
        row.sha256 = obj.sha256
    row.size = obj.size
    spooled = isinstance(obj, SpooledObject)
    row.state = "spooled" if spooled else "stored"
    row.stored_at = None if spooled else utcnow()
    return row


def file_object(db: Database, storage: Storage, data: bytes, key: str, *, role: str,
                content_type: str = "application/pdf", patient_id: str | None = None,
                **owner: str | None) -> StoredObject:
    """Record, write, confirm: the object has a row before it exists, and the row says stored only once
    the store confirmed the bytes."""
    planned = PlannedObject(key, role, sha256_bytes(data), len(data), content_type)
    with db.begin() as s:
        existed = object_row(s, key) is not None
        plan_object(s, planned, **{k: v for k, v in owner.items() if v})
        audit.record(s, "update" if existed else "create", "object", key, patient_id=patient_id, detail=role)
    obj = storage.put_bytes(data, key, content_type=content_type)
    with db.begin() as s:
        mark_stored(s, obj)
    return obj


def filed_bytes(db: Database, storage: Storage, key: str) -> bytes | None:
    """The bytes of a recorded object, only if they are what was recorded (else None)."""
    with db.begin() as s:
        row = object_row(s, key)
        expected = row.sha256 if row is not None and row.state != "pending" else None
    if expected is None:
        return None
    data = storage.get_bytes(key)
    return data if sha256_bytes(data) == expected else None
