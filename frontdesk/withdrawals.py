"""Taking a queued letter or statement out of the mail batch that holds it.

Apart from :mod:`frontdesk.letters.mail` because the records withdraw a piece when a card fills the gap its
letter asked about (:func:`frontdesk.records.void_letters_for_resolved`), and the records sit below the
letters: they must not import the batch machinery (PDF layout) to do it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from frontdesk import audit
from frontdesk.db.letters_models import MailPiece
from frontdesk.db.models import MailBatch, MailItem

log = logging.getLogger("frontdesk.mail")


@dataclass(frozen=True)
class Withdrawn:
    """A piece taken out of a batch after the batch was built: where it sits in the printed stack (the
    manifest's ``item_id`` and ``position``, and its pages of the batch PDF). Ids and numbers only."""

    batch_id: str
    item_id: str
    kind: str
    position: int
    first_page: int
    pages: int
    batch_status: str

    @property
    def last_page(self) -> int:
        return self.first_page + self.pages - 1

    def as_dict(self) -> dict[str, Any]:
        return {"batch_id": self.batch_id, "item_id": self.item_id, "kind": self.kind, "position": self.position,
                "first_page": self.first_page, "last_page": self.last_page, "batch_status": self.batch_status}



def withdraw_piece(s: Session, piece_id: str, *, reason: str) -> Withdrawn | None:
    """Take a queued letter or statement out of the live batch that holds it, in the caller's transaction
    (the caller voids the piece itself). The batch goes on with its other pieces: its PDF and manifest
    are not rebuilt because they may be printed already, so the piece is reported to be pulled from the
    printed stack and its item is void (never recorded as mailed). ``reason``: ids and words only. Returns
    where the piece sits in the batch, or None when no live batch holds it."""
    mp = s.scalars(select(MailPiece).where(MailPiece.live_piece == piece_id).with_for_update()
                   .execution_options(populate_existing=True)).first()
    if mp is None:
        return None
    item = s.get(MailItem, mp.mail_item_id, with_for_update=True, populate_existing=True)
    batch = s.get(MailBatch, mp.batch_id)
    if item is None or batch is None or batch.status not in ("open", "submitted"):
        return None
    item.status = "void"
    mp.live_piece = None
    where = Withdrawn(mp.batch_id, piece_id, mp.kind, mp.position, mp.first_page, mp.pages, batch.status)
    audit.record(s, "update", "mail_batch", mp.batch_id,
                 detail=f"piece {mp.position} ({piece_id}, pages {where.first_page}-{where.last_page}) "
                        f"withdrawn: {reason}; pull it before mailing"[:255])
    log.warning("mail batch %s: piece %d (%s) withdrawn; pull pages %d-%d from the printed stack before mailing",
                mp.batch_id, mp.position, piece_id, where.first_page, where.last_page)
    return where
