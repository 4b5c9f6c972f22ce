"""Scanned letters (page images, OCR): classified, read and filed to the right patient or to a person."""

from __future__ import annotations

from pathlib import Path

import pytest

from extractors import classify
from frontdesk.cards import Candidate, link_letter
from frontdesk.extraction import to_result
from frontdesk.fields import load_vocabulary
from tests.fixtures import letters as letter_gen

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
VOCAB = load_vocabulary(ROOT / "config" / "fields.yaml")
C = "correspondence."


def test_scanned_letters_are_read_and_never_filed_to_the_wrong_patient(tmp_path: Path) -> None:
    cases, patients = letter_gen.generate_letters(
        tmp_path, 3, seed=21, kinds=("scanned",), n_patients=30,
        types=("insurance_denial", "explanation_of_benefits", "referral"))
    cands = [Candidate(p.patient_id, p.first, p.last, p.dob.isoformat(), (p.member_id,) if p.member_id else ())
             for p in patients]
    for case in cases:
        assert case.path.suffix in (".pdf", ".tif")
        rec = classify.read_file(case.path)
        assert rec.document_type == "correspondence", rec.reason
        assert rec.document is not None and rec.document.method == "ocr"
        result = to_result(rec.document, VOCAB, 0.8)
        assert result.value(C + "type") == case.letter_type, rec.reason
        for key in ("patient_date_of_birth", "claim_number", "dates_of_service", "letter_date"):
            assert result.value(C + key) == case.truth[C + key], key
        match, flags = link_letter(result, cands)
        assert match.patient_id in (None, case.patient_id)
        if case.patient_id and not case.ambiguous:
            assert match.patient_id == case.patient_id, match.reason
        else:
            assert flags and flags[0].code == "correspondence.unmatched"
