"""Letters in the patient's language: every template exists in English and Spanish, the preferred
language on the record chooses, and dates are written by Babel for that language."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from docx import Document as Docx

from frontdesk.language import language_of, letter_date, template_for, weekday_date
from frontdesk.letters.kinds import KINDS, sample_context
from frontdesk.rendering import check_template, render_docx
from tests.conftest import ROOT

LETTERS = ROOT / "templates" / "letters"


def text_of(path: Path) -> str:
    doc = Docx(str(path))
    parts = [p.text for p in doc.paragraphs]
    for table in doc.tables:
        for row in table.rows:
            parts.extend(cell.text for cell in row.cells)
    return "\n".join(parts)


@pytest.mark.parametrize(("answer", "code"), [
    ("Spanish", "es"), ("Español", "es"), ("espanol", "es"), (" es ", "es"), ("SPA", "es"),
    ("English", "en"), ("Vietnamese", "en"), ("", "en"), (None, "en"),
])
def test_the_preferred_language_chooses(answer: Any, code: str) -> None:
    assert language_of(answer) == code


def test_dates_in_each_language() -> None:
    assert letter_date(date(2026, 11, 29)) == "November 29, 2026"
    assert letter_date(date(2026, 11, 29), "es") == "29 de noviembre de 2026"
    assert weekday_date(date(2026, 12, 8), "es") == "martes, 8 de diciembre de 2026"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_template_renders_in_english_and_spanish(kind: str, tmp_path: Path) -> None:
    english, spanish = template_for(LETTERS, kind, "en"), template_for(LETTERS, kind, "es")
    assert english.parent == LETTERS and spanish.parent == LETTERS / "es"
    sample = sample_context(kind)
    assert check_template(spanish, sample) == []  # every variable the English one takes, and no other
    en_text = text_of(render_docx(english, sample, tmp_path / "en.docx"))
    es_text = text_of(render_docx(spanish, sample, tmp_path / "es.docx"))
    assert sample["practice"]["name"] in es_text and sample["reference"] in es_text
    en_phrase, es_phrase = ("Amount due", "Monto a pagar") if kind in ("patient_statement", "self_pay_invoice") else \
        ("Kind regards,", "Atentamente,")
    assert en_phrase in en_text and es_phrase in es_text and en_phrase not in es_text


def test_a_spanish_speaking_patients_statement_is_in_spanish(tmp_path: Path, settings: Any) -> None:
    """End to end: the record says Español, the statement is rendered from the Spanish template with a
    Spanish date, filed and left for the mail batch."""
    import pdfplumber

    from frontdesk.db import open_database
    from frontdesk.db.models import Patient, PatientField, Statement
    from frontdesk.letters.filing import issue_statements
    from frontdesk.letters.statements import read_ledger
    from frontdesk.records import match_key
    from frontdesk.storage import open_storage
    from tests.fixtures.ledger import make_ledger

    truth = make_ledger(tmp_path / "ledger.csv", accounts=6, seed=61, with_addresses=False, bad_accounts=0)
    ledger = read_ledger(tmp_path / "ledger.csv", today=date(2026, 11, 30))
    billed = [t for t in truth.values() if t.billed(500)]
    line = next(ln for ln in ledger.lines if ln.account == billed[0].account)
    last, first = (x.strip() for x in line.patient.split(",", 1))
    db, storage = open_database(settings), open_storage(settings)
    with db.begin() as s:
        p = Patient(match_key=match_key(first, last, line.patient_dob), first_name=first, last_name=last,  # type: ignore[arg-type]
                    date_of_birth=line.patient_dob)
        p.fields = [PatientField(key=k, value=v) for k, v in {
            "patient.address.street": "9 Elm Street", "patient.address.city": "Peoria",
            "patient.address.state": "IL", "patient.address.zip": "61602",
            "patient.preferred_language": "Español"}.items()]
        s.add(p)
    run = issue_statements(db, storage, settings, ledger, statement_date=date(2026, 11, 30))
    assert len(run.issued) == 1 and not run.render_failed
    with db.begin() as s:
        stm = s.get(Statement, run.issued[0])
        assert stm is not None and stm.context is not None and stm.storage_key is not None
        assert stm.context["language"] == "es" and stm.context["statement_date"] == "30 de noviembre de 2026"
        key = stm.storage_key
    pdf = tmp_path / "statement.pdf"
    pdf.write_bytes(storage.get_bytes(key))
    with pdfplumber.open(pdf) as doc:
        text = "\n".join(page.extract_text() or "" for page in doc.pages)
    assert "ESTADO DE CUENTA" in text and "30 de noviembre de 2026" in text and "STATEMENT" not in text
    db.dispose()
