"""Tables of letters, statements and batch mailing (issue 5), on the records schema's declarative base.

The shared tables say what was sent (``letters``, ``statements``, ``mail_batches``, ``mail_items``);
these add what mailing needs to be exactly-once and reproducible:

* :class:`MailPiece`: one row per mail item with its place in the batch's PDF (first page, pages,
  address sheet, padding). ``live_piece`` holds the letter or statement id while the batch is live and
  is unique, so the database itself refuses to put a piece into a second live batch; voiding a batch
  sets it to NULL (NULLs never collide), which frees the piece for re-issue.
* :class:`MailBatchDetail`: what a batch was built from and where its manifest and summary are filed,
  the batch it re-issues, and when and why it was voided.
* :class:`StatementDetail`: the guarantor account a statement bills and its cycle. ``cycle_key``
  (account and statement date) is unique while the statement is live, so running the same ledger
  twice on a day never bills anyone twice.
* :class:`LetterLock`: a lease that keeps two mail runs (a scheduled one and a person at the CLI) from
  rendering and batching the same pieces at once.

Migration: ``frontdesk/db/migrations/versions/0003_letters_and_mailing.py``.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from frontdesk.db.models import Base, utcnow


class MailPiece(Base):
    __tablename__ = "mail_pieces"

    mail_item_id: Mapped[int] = mapped_column(ForeignKey("mail_items.id", ondelete="CASCADE"), primary_key=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("mail_batches.id", ondelete="CASCADE"), index=True)
    piece_id: Mapped[str] = mapped_column(String(32), index=True, comment="the letter or statement id")
    live_piece: Mapped[str | None] = mapped_column(String(32), unique=True, nullable=True,
                                                   comment="piece_id while the batch is live, NULL once void")
    kind: Mapped[str] = mapped_column(String(60), comment="letter kind, or patient_statement")
    position: Mapped[int] = mapped_column(Integer, comment="1-based order in the batch")
    first_page: Mapped[int] = mapped_column(Integer, comment="1-based page of the batch PDF the piece starts on")
    content_pages: Mapped[int] = mapped_column(Integer)
    address_sheet: Mapped[bool] = mapped_column(Boolean, default=False,
                                                comment="an address sheet was added in front of the piece")
    blank_pages: Mapped[int] = mapped_column(Integer, default=0, comment="backs left blank for duplex printing")
    pages: Mapped[int] = mapped_column(Integer, comment="all pages of the piece in the batch PDF")
    sheets: Mapped[int] = mapped_column(Integer)
    envelope: Mapped[str] = mapped_column(String(40), comment="#10 double-window | flat")
    pdf_sha256: Mapped[str] = mapped_column(String(64), comment="of the filed PDF that was batched")


class MailBatchDetail(Base):
    __tablename__ = "mail_batch_details"

    batch_id: Mapped[str] = mapped_column(ForeignKey("mail_batches.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), comment="letters | statements | all | reissue")
    duplex: Mapped[bool] = mapped_column(Boolean, default=True)
    placement: Mapped[str] = mapped_column(String(120), comment="the window-envelope spec followed")
    items: Mapped[int] = mapped_column(Integer, default=0)
    pages: Mapped[int] = mapped_column(Integer, default=0)
    sheets: Mapped[int] = mapped_column(Integer, default=0)
    held: Mapped[int] = mapped_column(Integer, default=0, comment="pieces held back (address, layout)")
    manifest_key: Mapped[str | None] = mapped_column(String(512), nullable=True)
    summary_key: Mapped[str | None] = mapped_column(String(512), nullable=True)
    reissue_of: Mapped[str | None] = mapped_column(ForeignKey("mail_batches.id"), nullable=True, index=True)
    voided_at: Mapped[datetime | None] = mapped_column(nullable=True)
    void_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)


class StatementDetail(Base):
    __tablename__ = "statement_details"

    statement_id: Mapped[str] = mapped_column(ForeignKey("statements.id", ondelete="CASCADE"), primary_key=True)
    account: Mapped[str] = mapped_column(String(64), index=True, comment="the guarantor account number")
    statement_date: Mapped[date] = mapped_column(Date)
    cycle_key: Mapped[str | None] = mapped_column(String(100), unique=True, nullable=True,
                                                  comment="account|YYYY-MM-DD while live, NULL once void")
    ledger_sha256: Mapped[str] = mapped_column(String(64), comment="of the ledger export it was built from")
    lines: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LetterLock(Base):
    __tablename__ = "letter_locks"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64), comment="random token of the run holding it")
    acquired_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()


__all__ = ["LetterLock", "MailBatchDetail", "MailPiece", "StatementDetail"]
