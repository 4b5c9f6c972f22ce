"""Handwritten intake forms: the generator's handwriting tiers, field-type decoding, and the reading of a
handwritten form with two engines, where a doubtful value goes to a person instead of into the record."""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path

import pytest

from extractors import decode
from tests.fixtures import handwriting as hw
from tests.fixtures import scans

TODAY = date(2026, 11, 15)


def test_generator_writes_by_hand_with_the_five_handwriting_fonts(tmp_path: Path) -> None:
    assert hw.available_fonts(), "./run setup installs the handwriting fonts"
    cases = [*scans.generate_scans(tmp_path / "a", 1, seed=3, tiers=("hand300",)),
             *scans.generate_scans(tmp_path / "b", 1, seed=3, tiers=("handfax",))]
    assert [c.kind for c in cases] == ["hand300", "handfax"]
    assert cases[0].path.suffix == ".pdf" and cases[1].path.suffix == ".tif"
    # Dates are written as people write them, the truth stays an ISO date.
    rnd = random.Random(1)
    written = {hw.hand_date(rnd, "1984-03-07", two_digit_ok=True) for _ in range(60)}
    assert {"3/7/84", "03-07-1984"} & written and all("1984" in w or w.endswith("84") for w in written)


def test_block_capitals_are_the_truth_of_a_name_written_in_capitals() -> None:
    rnd = random.Random(5)
    writer = hw.Writer(hw.HAND_FONTS[2], capitals=True, ink=30, size=0.6, slant=0.0)
    printed, truth = hw.rewrite({"patient.last_name": "Nichols", "patient.date_of_birth": "03/07/1984"},
                                {"patient.last_name": "Nichols", "patient.date_of_birth": "1984-03-07"},
                                {"patient.last_name": "name", "patient.date_of_birth": "date"}, writer, rnd, TODAY)
    assert printed["patient.last_name"] == truth["patient.last_name"] == "NICHOLS"
    assert truth["patient.date_of_birth"] == "1984-03-07"


@pytest.mark.parametrize(("written", "iso"), [("3/7/84", "1984-03-07"), ("03-07-1984", "1984-03-07"),
                                              ("O3.O7.I984", "1984-03-07"), ("030784", "1984-03-07")])
def test_dates_of_birth_decode_from_the_ways_people_write_them(written: str, iso: str) -> None:
    d = decode.decode("date", written, key="patient.date_of_birth", today=TODAY)
    assert d.key == iso and d.doubt is None


def test_a_two_digit_birth_year_that_fits_two_centuries_is_a_doubt() -> None:
    d = decode.decode("date", "11/14/25", key="patient.date_of_birth", today=TODAY)
    assert d.doubt is not None  # a baby or a 101-year-old: a person must look


def test_field_types_catch_what_engines_confuse() -> None:
    assert decode.decode("zip", "5845G").text == "58456"
    assert decode.decode("phone", "(4I4) 495-3479").key == "4144953479"
    assert decode.decode("state", "N0").doubt is not None  # no state NO
    assert decode.decode("state", "0H").text == "OH"
    assert decode.decode("email", "s perkins@gmail.com").text == "sperkins@gmail.com"
    assert decode.decode("email", "sperkins@gmail.con").doubt is not None
    assert decode.decode("id", "1Q41-D93-YX29").doubt is None
    assert decode.decode("id", "1Q41-D93-YX2S").doubt is not None  # not an MBI: its last two are digits


def test_engines_that_disagree_send_the_field_to_review() -> None:
    c = decode.decide("name", [decode.Candidate("Sulie Smith", 0.98, "rapidocr", 0.8),
                               decode.Candidate("Ddlie Smitia", 0.23, "tesseract")])
    assert c.reason is not None and c.conf < 0.8
    agreed = decode.decide("zip", [decode.Candidate("82857", 1.0, "rapidocr", 0.99),
                                   decode.Candidate("82857", 0.91, "tesseract")])
    assert agreed.reason is None and agreed.text == "82857"
    # Same reading, but one engine was unsure of a letter (Í read as T by both): review.
    shared = decode.decide("name", [decode.Candidate("ANA-MARTA", 0.95, "rapidocr", 0.51),
                                    decode.Candidate("ANA-MARTA", 0.9, "tesseract")])
    assert shared.reason is not None
    # Accents the other engine saw are not dropped silently.
    accent = decode.decide("name", [decode.Candidate("Sean Nguyen", 1.0, "rapidocr", 1.0),
                                    decode.Candidate("Seán Njguyen", 0.2, "tesseract")])
    assert accent.reason is not None


def test_a_handwritten_form_is_read_with_doubts_flagged(tmp_path: Path) -> None:
    """End to end on generated handwritten forms (seed not used for tuning): most filled fields right,
    and nearly every wrong one carries a flag."""
    from frontdesk.extraction import Reader
    from frontdesk.settings import load_settings

    cases = scans.generate_scans(tmp_path, 2, seed=909, tiers=("hand300",))
    reader = Reader(load_settings())
    filled = right = silent = 0
    for case in cases:
        result = reader.extract(case.path)
        assert result.document_type != "unknown"
        flagged = {f.field for f in result.flags if f.field and f.severity in ("warning", "error")}
        for key, want in case.truth.items():
            if want is None or isinstance(want, bool) or key.endswith("signature"):
                continue
            filled += 1
            got = result.value(key)
            right += got == want
            silent += got != want and key not in flagged
    assert right / filled >= 0.45  # these two forms read 20/38 when written; the bench has the full numbers
    assert silent <= 2


@pytest.mark.integration
def test_handwriting_on_a_fax_is_never_passed_on_unchecked(tmp_path: Path) -> None:
    """A fax keeps black and white only: a handwritten J and S, U and K come out the same few dots, and
    both engines can agree on the wrong letter. Every value read from a faxed handwritten form goes to a
    person (none wrong and unflagged); a faxed printed form is not sent to review any more than before."""
    from bench.accuracy import run_tier
    from frontdesk.extraction import Reader
    from frontdesk.settings import load_settings

    reader = Reader(load_settings())
    hand = run_tier(reader, "handfax", 4, seed=8484, out=tmp_path / "hand")
    assert hand.silent == 0, [e for e in hand.errors if e.endswith("SILENT")]
    assert hand.reviewed >= 0.8 * hand.filled
    printed = run_tier(reader, "fax", 4, seed=8484, out=tmp_path / "printed")
    assert printed.review_share <= 0.15, printed.errors
