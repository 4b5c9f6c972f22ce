"""The latest reading of a document as the records hold it.

Apart from :mod:`frontdesk.records` because filing a card or letter (:mod:`frontdesk.cards`) reads it
too, and the records call the cards: neither imports the other for it."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from frontdesk.db.models import Extraction, FlagRow
from frontdesk.models import ExtractionResult, FieldResult, Flag


def extraction_result(session: Session, document_id: str) -> ExtractionResult | None:
    """The latest reading of a document, as the pipeline produced it (to finish work after a crash)."""
    ex = session.scalars(select(Extraction).where(Extraction.document_id == document_id)
                         .order_by(Extraction.id.desc()).limit(1)).first()
    if ex is None:
        return None
    flags = session.scalars(select(FlagRow).where(FlagRow.extraction_id == ex.id).order_by(FlagRow.id))
    return ExtractionResult(
        document_type=ex.document_type,  # type: ignore[arg-type]
        form=ex.form, method=ex.method, pages=ex.pages,  # type: ignore[arg-type]
        fields={f.key: FieldResult(value=f.value, raw=f.raw, confidence=f.confidence, page=f.page)
                for f in ex.fields},
        flags=[Flag(code=f.code, severity=f.severity, field=f.field, message=f.message)  # type: ignore[arg-type]
               for f in flags],
    )
