"""Letters: the envelope spec, addresses, what the windows show, address sheets, the manifest, the five
templates with hostile data, and ``frontdesk letters check``."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import pytest
from docx import Document
from reportlab.pdfgen.canvas import Canvas

from frontdesk.exceptions import TemplateError, TemplateSecurityError
from frontdesk.letters.addresses import MAX_LINE_CHARS, check_address, zip_code
from frontdesk.letters.envelope import ENVELOPE, POINTS_PER_INCH, Rect
from frontdesk.letters.kinds import KINDS, STATEMENT_KIND, render_context, sample_context
from frontdesk.letters.layout import (
    ENVELOPE_10,
    ENVELOPE_FLAT,
    BatchPiece,
    LayoutError,
    address_sheet,
    compose,
    csv_safe,
    inspect_pdf,
    manifest_csv,
    plan_batch,
    plan_piece,
    read_manifest,
)
from frontdesk.rendering import Picture, check_template, render_docx
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent
LETTERS = ROOT / "templates" / "letters"
HOSTILE_NAME = "O'Neil & Sons <Jr> \"the 3rd\""
RETURN = ["Riverside Family Medicine", "120 Main Street", "Springfield, IL 62701"]
RECIPIENT = ["Dana O'Connor", "48 Linden Avenue", "Apt 3B", "Springfield, IL 62702-1234"]


# --- the envelope spec -----------------------------------------------------------------------------------


def test_spec_is_named_and_consistent() -> None:
    assert "PostalMethods" in ENVELOPE.name and "postalmethods.com" in ENVELOPE.source
    ret, rec, clear = ENVELOPE.return_address, ENVELOPE.recipient_address, ENVELOPE.keep_clear
    assert (ret.left, ret.top, ret.width, ret.height) == (0.5, 0.5, 3.5, 0.792)
    assert (rec.left, rec.top, rec.width, rec.height) == (0.5, 2.042, 3.5, 0.875)
    assert ret.bottom < rec.top  # the two windows do not overlap
    for rect in (ret, rec):  # both windows lie inside the area kept clear of anything else
        assert clear.left <= rect.left and rect.right <= clear.right
        assert clear.top <= rect.top and rect.bottom <= clear.bottom
    assert clear.bottom == ENVELOPE.body_top == 3.375
    assert ENVELOPE.body_top < ENVELOPE.page_height / 3  # everything in view sits on the top panel of the fold
    assert Rect(1, 2, 3, 4).points() == (72.0, 144.0, 288.0, 432.0)


# --- addresses -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lines", [
    ["48 Linden Avenue", "Springfield, IL 62702"],
    ["48 Linden Avenue", "Apt <3B>", "Springfield, IL 62702-1234"],
    ["PO Box 4410", "Springfield, IL 62708"],
    ["Rural Route 2 Box 15", "Smalltown, KS 66002"],
    ["1200 Harbor Street, Suite 210", "St. Louis, MO 63101"],
    ["12 Rue  Núñez", "San Juan, PR 00901"],
])
def test_complete_addresses_pass(lines: list[str]) -> None:
    assert check_address("Dana O'Connor", lines) is None


@pytest.mark.parametrize(("name", "lines", "code"), [
    ("Dana", [], "address.missing"),
    ("Dana", None, "address.missing"),
    ("", ["48 Linden Avenue", "Springfield, IL 62702"], "address.no_name"),
    ("Dana", ["48 Linden Avenue"], "address.incomplete"),
    ("Dana", ["Springfield, IL 62702"], "address.incomplete"),
    ("Dana", ["48 Linden Avenue", "Springfield, IL"], "address.incomplete"),
    ("Dana", ["48 Linden Avenue", "Springfield, ZZ 62702"], "address.incomplete"),
    ("Dana", ["48 Linden Avenue", "Springfield, IL 6270"], "address.incomplete"),
    ("Dana", ["48 Linden Avenue", "Springfield, IL 00000"], "address.incomplete"),
    ("Dana", ["=cmd|' /C calc'!A0"], "address.incomplete"),
    ("Dana", ["Dana, 48 Linden", "48 Linden"], "address.unparseable"),
    ("Dana", ["48 Linden Avenue\x1b[2J", "Springfield, IL 62702"], "address.unprintable"),
    ("Dana\u200b", ["48 Linden Avenue", "Springfield, IL 62702"], "address.unprintable"),
    ("Dana", ["1 A St", "2 B St", "3 C St", "4 D St", "Springfield, IL 62702"], "address.too_long"),
    ("D" * (MAX_LINE_CHARS + 1), ["48 Linden Avenue", "Springfield, IL 62702"], "address.too_long"),
    ("Dana", ["Springfield, IL 62702", "48 Linden Avenue"], "address.unparseable"),
])
def test_incomplete_or_unparseable_addresses_are_named_by_code(name: Any, lines: Any, code: str) -> None:
    problem = check_address(name, lines)
    assert problem is not None and problem.code == code
    assert "Linden" not in problem.reason and "Dana" not in problem.reason  # reasons never quote the address


def test_zip_code_for_sorting() -> None:
    assert zip_code(["48 Linden Avenue", "Springfield, IL 62702-1234"]) == "62702"
    assert zip_code([]) == ""


# --- what the windows show ---------------------------------------------------------------------------------


def _pdf(draw: Any, pages: int = 1, size: tuple[float, float] = (612, 792)) -> bytes:
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=size, invariant=1)
    for page in range(pages):
        draw(canvas, page)
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def _block(canvas: Any, rect: Rect, lines: list[str], size: float = 10) -> None:
    text = canvas.beginText()
    text.setFont("Helvetica", size, size + 2)
    text.setTextOrigin(rect.left * 72, 792 - rect.top * 72 - 2 - size)
    for line in lines:
        text.textLine(line)
    canvas.drawText(text)


def window_letter(extra: Any = None, *, recipient: list[str] = RECIPIENT, pages: int = 1) -> bytes:
    """A letter laid out for the windows: the two addresses, then the body below 3.375"."""
    def draw(canvas: Any, page: int) -> None:
        if page == 0:
            _block(canvas, ENVELOPE.return_address, RETURN, 9)
            _block(canvas, ENVELOPE.recipient_address, recipient)
            canvas.drawString(6 * 72, 792 - 1 * 72, "Riverside Family Medicine")  # letterhead right of the windows
            if extra:
                extra(canvas)
        canvas.drawString(72, 792 - 5 * 72, f"Body of page {page + 1}")
    return _pdf(draw, pages)


def test_a_letter_laid_out_for_the_windows_fits() -> None:
    facts = inspect_pdf(window_letter(pages=3), RETURN, RECIPIENT)
    assert facts.pages == 3 and facts.fits_windows, facts.why_not


@pytest.mark.parametrize(("extra", "why"), [
    (lambda c: c.drawString(0.5 * 72, 792 - 1.6 * 72, "Dear Dana,"), "text"),
    (lambda c: c.drawString(4.3 * 72, 792 - 2.5 * 72, "Ref 12"), "text"),  # beside the window, still in view
    (lambda c: c.line(0.2 * 72, 792 - 3.2 * 72, 8 * 72, 792 - 3.2 * 72), "line"),
    (lambda c: c.rect(3 * 72, 792 - 1.5 * 72, 20, 20, fill=1), "rect"),
])
def test_anything_else_where_a_window_could_show_it_fails(extra: Any, why: str) -> None:
    facts = inspect_pdf(window_letter(extra), RETURN, RECIPIENT)
    assert not facts.fits_windows and why in (facts.why_not or "")


def test_the_windows_must_show_exactly_the_expected_addresses() -> None:
    facts = inspect_pdf(window_letter(recipient=RECIPIENT[:-1]), RETURN, RECIPIENT)
    assert not facts.fits_windows and "recipient window" in (facts.why_not or "")
    other = ["Someone Else", *RECIPIENT[1:]]
    assert not inspect_pdf(window_letter(), RETURN, other).fits_windows
    assert not inspect_pdf(window_letter(), ["Other Practice", *RETURN[1:]], RECIPIENT).fits_windows


def test_pages_that_are_not_us_letter_or_not_pdf_are_refused() -> None:
    a4 = _pdf(lambda c, p: c.drawString(72, 72, "x"), size=(595, 842))
    with pytest.raises(LayoutError) as caught:
        inspect_pdf(a4, RETURN, RECIPIENT)
    assert caught.value.code == "pdf.page_size"
    for junk in (b"", b"%PDF-1.4 truncated", b"<html>no</html>"):
        with pytest.raises(LayoutError) as caught:
            inspect_pdf(junk, RETURN, RECIPIENT)
        assert caught.value.code in ("pdf.unreadable", "pdf.empty")


def test_hostile_pdfs_from_the_shared_corpus_are_held_not_crashing() -> None:
    corpus = ROOT.parent / "shared" / "corpora" / "hostile-pdfs"
    files = sorted(corpus.rglob("*.pdf")) if corpus.is_dir() else []
    if not files:
        pytest.skip("no hostile PDF corpus beside the checkout")
    for path in files:
        try:
            facts = inspect_pdf(path.read_bytes(), RETURN, RECIPIENT)
        except LayoutError as exc:
            assert exc.code.startswith("pdf.")
        else:
            assert not facts.fits_windows  # none of them is a letter for these windows


def test_address_sheet_places_addresses_in_the_windows_only_and_is_reproducible() -> None:
    import pdfplumber

    long_name = "Maximiliana Wolfeschlegelsteinhausen-Bergerdorff"[:MAX_LINE_CHARS]
    recipient = [long_name, *RECIPIENT[1:]]
    sheet = address_sheet(RETURN, recipient, "piece 1 of 2 in batch mb-0123456789ab")
    assert sheet == address_sheet(RETURN, recipient, "piece 1 of 2 in batch mb-0123456789ab")
    facts = inspect_pdf(sheet, RETURN, recipient)
    assert facts.fits_windows, facts.why_not  # a name too wide for the window is shrunk to fit it
    with pdfplumber.open(io.BytesIO(sheet)) as pdf:
        text = pdf.pages[0].extract_text()
    assert "mb-0123456789ab" in text and HOSTILE_NAME not in text


# --- planning a batch ----------------------------------------------------------------------------------------


def test_duplex_pieces_start_on_a_new_sheet_with_blank_backs() -> None:
    layouts = plan_batch([(1, False), (2, False), (3, True), (1, True), (13, False)], duplex=True)
    assert [lay.first_page for lay in layouts] == [1, 3, 5, 11, 15]
    assert [lay.pages for lay in layouts] == [2, 2, 6, 4, 14]
    assert [lay.padding for lay in layouts] == [1, 0, 1, 1, 1]
    assert [lay.blank_pages for lay in layouts] == [1, 0, 2, 2, 1]  # an address sheet's back is blank too
    assert [lay.sheets for lay in layouts] == [1, 1, 3, 2, 7]
    assert all(lay.first_page % 2 == 1 for lay in layouts)
    assert [lay.envelope for lay in layouts] == [ENVELOPE_10] * 4 + [ENVELOPE_FLAT]  # over 6 sheets


def test_simplex_has_no_padding() -> None:
    layouts = plan_batch([(1, False), (2, True)], duplex=False)
    assert [(lay.first_page, lay.pages, lay.sheets, lay.blank_pages) for lay in layouts] == [(1, 1, 1, 0),
                                                                                             (2, 3, 3, 0)]
    assert plan_piece(1, 1, 6, False, duplex=True).envelope == ENVELOPE_10


def test_compose_follows_the_plan_and_manifest_guards_against_formulas() -> None:
    from pypdf import PdfReader

    pieces = [
        BatchPiece("let-aaaaaaaaaaaa", "welcome", RECIPIENT[0], RECIPIENT[1:], RETURN, window_letter(pages=1)),
        BatchPiece("let-bbbbbbbbbbbb", "welcome", "=HYPERLINK(\"http://x\")", ["+1 Main St", "Springfield, IL 62701"],
                   RETURN, window_letter(pages=2)),
        BatchPiece("stm-cccccccccccc", STATEMENT_KIND, "@Dana", ["-4 Elm St", "Springfield, IL 62701"], RETURN,
                   window_letter(pages=3)),
    ]
    for piece, layout in zip(pieces, plan_batch([(1, False), (2, True), (3, False)], duplex=True), strict=True):
        piece.layout = layout
    pdf = PdfReader(io.BytesIO(compose(pieces, "mb-0123456789ab", duplex=True)))
    assert len(pdf.pages) == 2 + 4 + 4
    assert "Address sheet" in pdf.pages[2].extract_text() and "mb-0123456789ab" in pdf.pages[2].extract_text()
    assert pdf.pages[3].extract_text().strip() == ""  # the address sheet's back
    assert "Body of page 1" in pdf.pages[4].extract_text()
    data = manifest_csv(pieces)
    assert data.startswith(b"\xef\xbb\xbf")
    raw = data.decode("utf-8-sig")
    for formula in ("=HYPERLINK", "+1 Main", "@Dana", "-4 Elm"):
        assert f",{formula}" not in raw and f",\"{formula}" not in raw  # never a cell starting like a formula
    rows = read_manifest(data)
    assert [r["item_id"] for r in rows] == [p.piece_id for p in pieces]
    assert rows[1]["recipient"] == "=HYPERLINK(\"http://x\")" and rows[2]["address"] == "-4 Elm St / Springfield, IL 62701"
    assert [int(r["first_page"]) for r in rows] == [1, 3, 7]
    assert csv_safe("Dana") == "Dana" and csv_safe(None) == ""


# --- templates ------------------------------------------------------------------------------------------------


def test_every_kind_has_a_template_and_passes_check() -> None:
    assert set(KINDS) == {"missing_insurance", "incomplete_intake", "appointment_reminder", "welcome",
                          STATEMENT_KIND, "self_pay_invoice"}
    for name, kind in KINDS.items():
        template = LETTERS / kind.template_name
        assert template.is_file()
        assert check_template(template, sample_context(name)) == [], name


def _texts(path: Path) -> str:
    from frontdesk.rendering import _document_texts

    return "\n".join(_document_texts(path))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_hostile_values_render_verbatim_in_every_template(kind: str, tmp_path: Path) -> None:
    ctx = sample_context(kind)
    who = ctx[KINDS[kind].recipient]
    who["full_name"] = HOSTILE_NAME
    who["address_lines"] = ["48 Linden Ave & Co", "Apt <3B>\x0c", "Springfield, IL 62702"]
    ctx["practice"]["name"] = "Harbor & Main <Clinic> {{ 7*7 }}"
    out = render_docx(LETTERS / KINDS[kind].template_name, ctx, tmp_path / "out.docx")
    text = _texts(out)
    assert HOSTILE_NAME in text and "Apt <3B>" in text and "\x0c" not in text
    assert "Harbor & Main <Clinic> {{ 7*7 }}" in text and "49" not in text  # data is never template code
    Document(str(out))  # still a valid Word document


def test_statement_rows_follow_the_service_lines(tmp_path: Path) -> None:
    ctx = sample_context(STATEMENT_KIND)
    line = ctx["lines"][0]
    ctx["lines"] = [dict(line, code=f"9921{i % 10}") for i in range(7)]
    out = render_docx(LETTERS / KINDS[STATEMENT_KIND].template_name, ctx, tmp_path / "s.docx")
    tables = Document(str(out)).tables
    service = next(t for t in tables if t.rows[0].cells[0].text == "Date")
    assert len(service.rows) == 1 + 7 + 1  # header, one row per line, totals
    assert [r.cells[2].text for r in service.rows[1:-1]] == [f"9921{i}" for i in range(7)]
    assert service.rows[-1].cells[-1].text == ctx["totals"]["balance"]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_template_needs_its_data(kind: str, tmp_path: Path) -> None:
    ctx = sample_context(kind)
    who = KINDS[kind].recipient
    del ctx[who]["address_lines"]
    with pytest.raises(TemplateError, match=rf"{kind}\.docx.*'{who}\.address_lines'"):
        render_docx(LETTERS / KINDS[kind].template_name, ctx, tmp_path / "out.docx")


def test_the_configured_logo_replaces_the_placeholder(tmp_path: Path, settings: Any) -> None:
    from PIL import Image

    logo = tmp_path / "practice-logo.png"
    Image.new("RGB", (300, 100), "navy").save(logo)
    settings.practice.logo = logo
    stored = sample_context("welcome")
    ctx = render_context(stored, settings)
    assert isinstance(ctx["practice"]["logo"], Picture) and "logo" not in stored["practice"]
    out = render_docx(LETTERS / "welcome.docx", ctx, tmp_path / "with-logo.docx")
    (shape,) = Document(str(out)).inline_shapes
    assert abs(shape.width / shape.height - 3.0) < 0.01
    placeholder = render_docx(LETTERS / "welcome.docx", stored, tmp_path / "placeholder.docx")
    (square,) = Document(str(placeholder)).inline_shapes
    assert abs(square.width / square.height - 1.0) < 0.01


# --- frontdesk letters check --------------------------------------------------------------------------------


def test_letters_check_passes_the_shipped_templates(fd_env: dict[str, str]) -> None:
    proc = run_cli("letters", "check", env=fd_env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("ok ") == 2 * len(KINDS)  # every kind in English and in Spanish (es/)
    assert proc.stdout.count(" (es)") == len(KINDS)


@pytest.mark.parametrize(("tag", "expect"), [
    ("{{ cycler.__init__.__globals__ }}", "refused"),
    ("{{ patient.middle_name }}", "'patient.middle_name'"),
    ("{% if %}", "syntax"),
])
def test_letters_check_fails_on_a_bad_template(tmp_path: Path, fd_env: dict[str, str], tag: str, expect: str) -> None:
    letters = tmp_path / "letters"
    shutil.copytree(LETTERS, letters)
    doc = Document(str(letters / "welcome.docx"))
    doc.add_paragraph(tag)
    doc.save(str(letters / "welcome.docx"))
    proc = run_cli("letters", "check", "--json", env={**fd_env, "FRONTDESK_LETTERS_DIR": str(letters)})
    assert proc.returncode == 4
    import json

    report = json.loads(proc.stdout)
    assert not report["ok"] and report["templates"]["missing_insurance"] == []
    assert any(expect in p and "welcome.docx" in p for p in report["templates"]["welcome"])


def test_a_hostile_template_cannot_reach_python(tmp_path: Path) -> None:
    doc = Document(str(LETTERS / "welcome.docx"))
    doc.add_paragraph("{{ cycler.__init__.__globals__.os.popen('id').read() }}")
    template = tmp_path / "welcome.docx"
    doc.save(str(template))
    with pytest.raises(TemplateSecurityError, match="welcome.docx"):
        render_docx(template, sample_context("welcome"), tmp_path / "out.docx")


@pytest.mark.integration
def test_letters_check_layout_converts_and_checks_the_windows(fd_env: dict[str, str], tmp_path: Path) -> None:
    proc = run_cli("letters", "check", "--layout", env=fd_env, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # A template rearranged in Word (the window block moved below the body) is caught.
    letters = tmp_path / "letters"
    shutil.copytree(LETTERS, letters)
    doc = Document(str(letters / "welcome.docx"))
    body = doc.element.body
    body.insert(0, doc.add_paragraph("Welcome! We moved things around in Word.")._p)
    doc.save(str(letters / "welcome.docx"))
    proc = run_cli("letters", "check", "--layout", "--json", env={**fd_env, "FRONTDESK_LETTERS_DIR": str(letters)},
                   timeout=600)
    assert proc.returncode == 4
    assert "address sheet" in proc.stdout and "welcome.docx" in proc.stdout


def test_points_per_inch() -> None:
    assert POINTS_PER_INCH == 72.0
