"""The latest reading of a document as the records hold it.

Apart from :mod:`frontdesk.records` because filing a card or letter (:mod:`frontdesk.cards`) reads it
too, and the records call the cards: neither imports the other for it."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from frontdesk.db.models import ExtractedField, Extraction, FlagRow
from frontdesk.fields import split_row_key
from frontdesk.models import ExtractionResult, FieldResult, Flag, RowResult


def extraction_result(session: Session, document_id: str) -> ExtractionResult | None:
    """The latest reading of a document, as the pipeline produced it (to finish work after a crash)."""
    ex = session.scalars(select(Extraction).where(Extraction.document_id == document_id)
                         .order_by(Extraction.id.desc()).limit(1)).first()
    if ex is None:
        return None
    flags = session.scalars(select(FlagRow).where(FlagRow.extraction_id == ex.id).order_by(FlagRow.id))
    plain, rows, checklists = _split(ex.fields)
    return ExtractionResult(
        document_type=ex.document_type,  # type: ignore[arg-type]
        form=ex.form, method=ex.method, pages=ex.pages,  # type: ignore[arg-type]
        fields={f.key: FieldResult(value=f.value, raw=f.raw, confidence=f.confidence, page=f.page)
                for f in plain},
        rows=rows, checklists=checklists,
        flags=[Flag(code=f.code, severity=f.severity, field=f.field, message=f.message)  # type: ignore[arg-type]
               for f in flags],
    )


def _split(stored: list[ExtractedField]) -> tuple[list[ExtractedField], dict[str, list[RowResult]],
                                                  dict[str, list[str]]]:
    """Plain fields, rows of repeating groups (boxes kept under ``<group>.<row>.<field>``) and check lists
    (a list value under the list's name), as :func:`frontdesk.records` stored them."""
    plain: list[ExtractedField] = []
    rows: dict[str, dict[int, RowResult]] = {}
    checklists: dict[str, list[str]] = {}
    for f in stored:
        value: object = f.value
        found = split_row_key(f.key)
        if isinstance(value, list):
            checklists[f.key] = [str(v) for v in value]
        elif found is not None:
            group, n, name = found
            row = rows.setdefault(group, {}).setdefault(n, RowResult(row=n))
            row.fields[name] = FieldResult(value=f.value, raw=f.raw, confidence=f.confidence, page=f.page)
        else:
            plain.append(f)
    return plain, {g: [by_n[n] for n in sorted(by_n)] for g, by_n in rows.items()}, checklists
