"""Objects Frontdesk files to storage, as the records plan them before a byte is written.

The records reserve a row per planned object (key, role, hash, size) before storage is touched, mark it
stored once storage confirms it, and a crash in between is repaired from those rows. Intake, cards,
letters and statements all plan their objects with :class:`PlannedObject`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PlannedObject:
    """An object about to be written: its key and the hash of exactly the bytes that will be written."""

    key: str
    role: str
    sha256: str
    size: int
    content_type: str
