"""What a document that matches no template is: a card, a letter or unknown, and the reason recorded."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from extractors import classify
from extractors import nlp as N
from tests.fixtures import cards as card_gen
from tests.fixtures import generator as gen
from tests.fixtures import letters as letter_gen

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def words(*rows: tuple[float, float, str], h: float = 30.0) -> list[N.WordBox]:
    out = []
    for x, y, text in rows:
        cx = x * h
        for w in text.split():
            out.append(N.WordBox(w, cx, y * h, cx + len(w) * 0.6 * h, y * h + h))
            cx += (len(w) + 1) * 0.6 * h
    return out


CARD_WORDS = words((1, 0, "Aetna"), (1, 2, "Member: JANE DOE"), (1, 3.5, "ID# W123456789"), (1, 5, "GRP: 0887234"),
                   (20, 2, "RxBIN: 610502"), (20, 3.5, "RxPCN: ADV"))


def test_card_words_in_a_card_outline_make_an_insurance_card_and_the_reason_says_why() -> None:
    look = classify.PageLook(1, CARD_WORDS, "a card outline (1.59:1) fills 45% of the image")
    dtype, reason, evidence = classify.decide([look])
    assert dtype == "insurance_card"
    assert "card outline" in reason and "member_id" in reason and "payer" in reason
    assert "JANE" not in reason and "W123456789" not in reason  # reasons hold no patient data
    assert evidence["card_shape"]


def test_a_card_shape_without_insurance_words_is_unknown() -> None:
    library = words((1, 0, "SPRINGFIELD PUBLIC LIBRARY"), (1, 2, "Patron: JANE DOE"), (1, 4, "Expires 12/2027"))
    dtype, reason, _ = classify.decide([classify.PageLook(1, library, "the image has a card's proportions (1.58:1)")])
    assert dtype == "unknown"
    assert "too few card words" in reason


def test_a_form_page_with_insurance_labels_is_not_a_card() -> None:
    """An intake form that matched no template has 'Member ID' and 'Group number' too, but it is a
    page of labels, not a card and not a letter."""
    rows = [(1, i * 1.5, label) for i, label in enumerate(
        ["New Patient Intake Form", "First name", "Last name", "Date of birth", "Phone", "Street address", "City",
         "State", "ZIP code", "Insurance company (payer)", "Member ID", "Group number", "Subscriber name",
         "Relationship to patient", "Emergency contact name", "Emergency contact phone", "Patient signature",
         "Date signed", "I acknowledge receipt of the Notice of Privacy Practices"])]
    form = words(*rows, *[(30, i * 1.5, "_______________") for i in range(len(rows))])
    dtype, reason, _ = classify.decide([classify.PageLook(1, form, None, units_per_inch=72.0)])
    assert dtype == "unknown"
    assert "no card outline" in reason and "no letter layout" in reason


def test_nothing_to_read_is_unknown() -> None:
    assert classify.decide([classify.PageLook(1, [], None)])[:2] == ("unknown", "no readable text on the page(s)")


def test_card_outline_found_on_a_white_page_and_on_a_dark_table() -> None:
    page = np.full((3300, 2550), 250, np.uint8)
    cv2.rectangle(page, (300, 400), (1312, 1038), 150, 3)  # 1012 x 638: a card at 300 dpi
    found = classify.find_cards(page)
    assert len(found) == 1 and 1.5 < found[0].aspect < 1.7
    photo = np.full((1200, 1600), 40, np.uint8)
    cv2.rectangle(photo, (300, 350), (1300, 780), 235, -1)  # the light part of a card, its dark band lost
    region = classify.find_cards(photo)
    assert len(region) == 1
    quad = region[0].quad
    height = float(np.linalg.norm(quad[3] - quad[0]))
    assert height > 430 * 1.3  # widened towards a card's proportions to take in the band


def test_light_print_on_a_dark_band_becomes_dark_print_on_light() -> None:
    img = Image.new("L", (1400, 880), 245)
    d = ImageDraw.Draw(img)
    d.rectangle((0, 0, 1400, 180), fill=50)
    d.text((200, 50), "Ambetter Health", font=ImageFont.truetype(FONT, 80), fill=255)
    d.text((60, 400), "Member ID: U1320050531", font=ImageFont.truetype(FONT, 40), fill=20)
    out = classify.even_polarity(np.asarray(img))
    assert out[20, 20] > 180  # the band is light now
    band_text = out[60:160, 200:900]
    assert band_text.min() < 60  # and its letters dark
    assert out[400:450, 60:600].min() < 60 and out[600, 700] > 200  # ordinary print untouched


# -- whole files ----------------------------------------------------------------------------------


@pytest.mark.integration
def test_files_are_classified_with_their_reasons(tmp_path: Path) -> None:
    cards = card_gen.generate_cards(tmp_path / "cards", 3, seed=12)
    letters, _ = letter_gen.generate_letters(tmp_path / "letters", 2, seed=12, kinds=("typed",))
    form, = gen.generate(tmp_path / "forms", 1, seed=12, kinds=("flattened",), scenarios=("complete",))
    blank = tmp_path / "blank.png"
    Image.new("L", (2550, 3300), 255).save(blank, dpi=(300, 300))
    for c in cards:
        rec = classify.read_file(c.path)
        assert rec.document_type == "insurance_card", (c.capture, rec.reason)
        assert rec.document is not None and rec.document.flags[0].code == "document.classified"
        assert rec.document.source_pages == list(range(1, c.sides + 1)) or c.capture == "scan"
    for lt in letters:
        rec = classify.read_file(lt.path)
        assert rec.document_type == "correspondence", rec.reason
        assert "letter" in rec.reason
    rec = classify.read_file(form.path)  # a form read as if no template knew it
    assert (rec.document_type, rec.document) == ("unknown", None)
    assert "no letter layout" in rec.reason
    rec = classify.read_file(blank)
    assert rec.document_type == "unknown" and rec.reason == "no readable text on the page(s)"
    assert classify.read_unrecognised(list(classify.iter_inputs(blank))) is None


@pytest.mark.integration
def test_frontdesk_extract_reads_a_card_photo_as_an_insurance_card(tmp_path: Path) -> None:
    """Through the real dispatcher: a card photo matches no form template and comes back as a card."""
    from tests.conftest import run_cli

    case, = card_gen.generate_cards(tmp_path, 1, seed=3, captures=("photo",), payers=("Aetna",))
    out = run_cli("extract", str(case.path), "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["document_type"] == "insurance_card"
    assert data["fields"]["insurance.primary.payer_name"]["value"] == "Aetna"
    assert data["fields"]["insurance.primary.member_id"]["value"] == case.truth["insurance.primary.member_id"]


# -- PDFs with a text layer that match no form template ---------------------------------------------


def _registry():  # type: ignore[no-untyped-def]
    from extractors import TemplateRegistry

    return TemplateRegistry([Path(__file__).resolve().parents[1] / "templates" / "forms"])


def test_a_typed_letter_pdf_is_correspondence_not_an_unrecognised_form(tmp_path: Path) -> None:
    """A referral typed and sent as a PDF (text layer, no template): the dispatcher classifies and reads
    it from its words instead of calling it an unrecognised form."""
    from extractors import read_document

    cases, _ = letter_gen.generate_letters(tmp_path, 6, seed=8, kinds=("typed",), n_patients=10)
    for case in cases:
        doc = read_document(case.path, _registry())
        assert (doc.document_type, doc.method) == ("correspondence", "text"), [f.message for f in doc.flags]
        assert doc.fields["correspondence.type"].raw == case.letter_type
        codes = [f.code for f in doc.flags]
        assert "form.unrecognised" not in codes and codes[0] == "document.classified"
        assert doc.source_pages == list(range(1, doc.pages + 1))


def test_a_text_pdf_that_is_neither_form_card_nor_letter_stays_unrecognised_with_the_reason(tmp_path: Path) -> None:
    from reportlab.pdfgen import canvas

    from extractors import read_document

    path = tmp_path / "note.pdf"
    c = canvas.Canvas(str(path), pagesize=(612, 792))
    for i, line in enumerate(("Staff parking", "Level 2 is closed on Friday.", "Use the east gate.")):
        c.drawString(72, 700 - 20 * i, line)
    c.save()
    doc = read_document(path, _registry())
    assert (doc.document_type, doc.method, doc.form) == ("unknown", "text", None)
    flag, = doc.flags
    assert flag.code == "form.unrecognised" and flag.severity == "error"
    assert "matches no known form template" in flag.message and "neither a card nor a letter" in flag.message


@pytest.mark.integration
def test_frontdesk_extract_reads_a_typed_referral_pdf(tmp_path: Path) -> None:
    from tests.conftest import run_cli

    cases, _ = letter_gen.generate_letters(tmp_path, 1, seed=3, kinds=("typed",), types=("referral",))
    out = run_cli("extract", str(cases[0].path), "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["document_type"] == "correspondence"
    assert data["fields"]["correspondence.type"]["value"] == "referral"
    assert "form.unrecognised" not in {f["code"] for f in data["flags"]}
