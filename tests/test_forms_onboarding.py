"""Bring your own form: a practice's own forms (not Frontdesk's layout, fields not named by its keys)
become templates with ``frontdesk forms add``, and filled copies are then read through them.

Forms are generated into tmp_path (tests/fixtures/byof.py); the same functions back bench/forms_onboarding.py.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from faker import Faker
from pypdf import PdfReader, PdfWriter
from reportlab.lib.pagesizes import letter
from reportlab.pdfgen.canvas import Canvas

from bench.accuracy import Tally
from bench.forms_onboarding import onboard, original_form, read_filled
from frontdesk import onboarding
from frontdesk.extraction import Reader
from frontdesk.settings import Settings, load_settings
from tests.conftest import run_cli
from tests.fixtures import byof


@pytest.fixture(scope="module")
def settings_() -> Settings:
    return load_settings()


def _fields(path: Path) -> dict[str, str]:
    return {name: str(f.get("/FT")) for name, f in (PdfReader(str(path)).get_fields() or {}).items()}


@pytest.mark.parametrize("kind", ["textn", "human", "tooltip", "f2-textn"])
def test_fillable_form_with_any_field_names_becomes_a_template(tmp_path: Path, settings_: Settings, kind: str) -> None:
    ob = onboard(kind, tmp_path, Reader(settings_))
    keying, proposal, forms = ob.keying, ob.proposal, ob.forms
    report = "\n".join(keying.problems)
    assert keying.right / keying.boxes >= 0.95, report
    assert keying.wrong == 0 and keying.extra_written == 0, report  # nothing silently wrong
    assert keying.right + keying.unkeyed == keying.boxes, report  # every other box is listed for a person
    # The template: canonical names only, the original's page content untouched.
    template = forms / f"byof_{kind}.pdf"
    names = _fields(template)
    assert set(names) == {r.key for r in proposal.rows if r.written}
    for before, after in zip(PdfReader(str(proposal.source)).pages, PdfReader(str(template)).pages, strict=True):
        assert after.get_contents().get_data() == before.get_contents().get_data()  # type: ignore[union-attr]
    # Filled copies of the practice's ORIGINAL form (old field names) are read through it.
    tally = Tally(kind)
    ids = read_filled(kind, 3, 21, tmp_path / "filled", Reader(settings_, [forms]), ob, tally)
    assert ids == [f"byof_{kind}"] * 3
    assert tally.field_accuracy == 1.0 and tally.blank_accuracy == 1.0, "\n".join(tally.errors)
    assert tally.mark_accuracy == 1.0, "\n".join(tally.errors)


@pytest.mark.parametrize("kind", ["blank", "f2-blank"])
def test_flattened_blank_form_gets_widgets_where_people_write(tmp_path: Path, settings_: Settings, kind: str) -> None:
    ob = onboard(kind, tmp_path, Reader(settings_))
    keying, proposal, forms = ob.keying, ob.proposal, ob.forms
    report = "\n".join(keying.problems)
    assert proposal.kind == onboarding.FormKind.flattened
    assert keying.right / keying.boxes >= 0.9, report
    assert keying.wrong == 0 and keying.extra_written == 0, report
    assert keying.right + keying.unkeyed == keying.boxes, report  # missed or unsure: listed
    kinds = {r.key: r.box.kind for r in proposal.rows if r.written}
    assert kinds["insurance.self_pay"] == "checkbox" and kinds["consent.hipaa_acknowledgment"] == "checkbox"
    assert _fields(forms / f"byof_{kind}.pdf")["insurance.self_pay"] == "/Btn"


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["scan", "f2-scan"])
def test_scanned_blank_form_onboarded_and_handfilled_scans_read(tmp_path: Path, settings_: Settings, kind: str) -> None:
    ob = onboard(kind, tmp_path, Reader(settings_), seed=3, review=True)  # listed boxes settled by a person
    keying, proposal, forms = ob.keying, ob.proposal, ob.forms
    report = "\n".join(keying.problems)
    assert proposal.kind == onboarding.FormKind.scanned
    assert keying.right / keying.boxes >= 0.9, report  # underlines, boxes, check boxes, a signature line
    assert keying.wrong == 0 and keying.extra_written == 0, report
    assert keying.right + keying.unkeyed == keying.boxes, report
    tally = Tally(kind)
    ids = read_filled(kind, 3, 8, tmp_path / "filled", Reader(settings_, [forms]), ob, tally)
    assert ids == [f"byof_{kind}"] * 3  # recognised as the new form, by its own id
    assert tally.field_accuracy >= 0.9 and tally.silent == 0, "\n".join(tally.errors)  # every misread is flagged
    assert tally.mark_accuracy == 1.0, "\n".join(tally.errors)


def test_two_practices_forms_with_the_same_generic_names_stay_apart(tmp_path: Path, settings_: Settings) -> None:
    """Both forms call their fields Text1, Text2...: a filled copy is read through its own template."""
    vocab, fields_file = Reader(settings_).vocabulary, settings_.fields_file
    forms = tmp_path / "forms"
    originals = {}
    for layout in ("westlake", "lakeside"):
        original = byof.build(layout, "textn", tmp_path / f"{layout}.pdf")
        originals[layout] = original
        proposal = onboarding.propose(original, vocab, fields_file, layout)
        onboarding.write_template(proposal, forms / f"{layout}.pdf")
    reader = Reader(settings_, [forms])
    rnd, fake = random.Random(2), Faker("en_US")
    fake.seed_instance(2)
    for layout, original in originals.items():
        printed, truth = byof.record(layout, rnd, fake, "complete")
        filled = byof.fill(original, layout, "textn", printed, tmp_path / f"filled-{layout}.pdf")
        result = reader.extract(filled)
        assert result.form == layout
        assert result.value("patient.last_name") == truth["patient.last_name"]
        assert result.value("insurance.primary.member_id") == truth["insurance.primary.member_id"]


def _odd_form(path: Path) -> Path:
    """Two boxes both labelled "Member ID" with no section to tell them apart, and a box nobody can key."""
    c = Canvas(str(path), pagesize=letter)
    c.setFont("Helvetica", 9)
    for i, (label, y) in enumerate((("Last name:", 700), ("Member ID:", 660), ("Member ID:", 620),
                                    ("Favourite colour:", 580))):
        c.drawString(48, y + 4, label)
        c.rect(140, y - 3, 200, 18)
        c.acroForm.textfield(name=f"Text{i + 1}", x=140, y=y - 3, width=200, height=18, borderWidth=0)
    c.showPage()
    c.save()
    return path


def test_conflicts_and_unknown_boxes_are_listed_not_guessed(tmp_path: Path, settings_: Settings) -> None:
    vocab, fields_file = Reader(settings_).vocabulary, settings_.fields_file
    src = _odd_form(tmp_path / "odd.pdf")
    proposal = onboarding.propose(src, vocab, fields_file, "odd")
    status = {r.box.ident: r.status for r in proposal.rows}
    assert status["Text1"] == onboarding.RowStatus.proposed
    assert status["Text2"] == status["Text3"] == onboarding.RowStatus.conflict
    assert status["Text4"] == onboarding.RowStatus.unknown
    onboarding.write_template(proposal, tmp_path / "forms" / "odd.pdf")
    assert set(_fields(tmp_path / "forms" / "odd.pdf")) == {"patient.last_name"}  # only what is sure
    # A person settles the conflict; a key outside the vocabulary is refused, not invented.
    with pytest.raises(onboarding.OnboardingError, match="not a key of the vocabulary"):
        onboarding.apply_choices(proposal, {"Text4": "patient.favourite_colour"}, vocab)
    onboarding.apply_choices(proposal, {"Text2": "insurance.primary.member_id",
                                        "Text3": "insurance.secondary.member_id"}, vocab)
    onboarding.write_template(proposal, tmp_path / "forms2" / "odd.pdf")
    assert set(_fields(tmp_path / "forms2" / "odd.pdf")) == {
        "patient.last_name", "insurance.primary.member_id", "insurance.secondary.member_id"}


def test_cli_add_and_check(tmp_path: Path, fd_env: dict[str, str]) -> None:
    forms = tmp_path / "forms"
    env = {**fd_env, "FRONTDESK_FORMS_DIRS": json.dumps([str(forms)])}
    src = _odd_form(tmp_path / "odd.pdf")
    dry = run_cli("forms", "add", str(src), "--id", "odd", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "conflict" in dry.stdout and "Text4" in dry.stdout and not forms.exists()  # nothing written
    out = run_cli("forms", "add", str(src), "--id", "odd", "--map", "Text2=insurance.primary.member_id",
                  "--map", "Text3=-", "--json", env=env)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["template"] == str(forms / "odd.pdf")
    assert {r["id"]: r["status"] for r in data["rows"]} == {
        "Text1": "proposed", "Text2": "confirmed", "Text3": "unknown", "Text4": "unknown"}
    check = run_cli("forms", "check", "odd", "--out", str(tmp_path / "sheet.pdf"), "--json", env=env)
    assert check.returncode == 0, check.stderr
    report = json.loads(check.stdout)
    assert report["keys"] == ["insurance.primary.member_id", "patient.last_name"]
    assert "consent.signature" in report["missing_required"]  # the pre-visit check needs a signature
    assert "insurance.primary.member_id" not in report["missing_required"]
    sheet = PdfReader(str(tmp_path / "sheet.pdf"))
    assert "insurance.primary.member_id" in (sheet.pages[0].extract_text() or "")
    # A copy of the practice's original form, filled in a PDF viewer, is read through the new template.
    writer = PdfWriter(clone_from=src)
    writer.update_page_form_field_values(writer.pages[0], {"Text1": "Okafor", "Text2": "W123456789"},
                                         auto_regenerate=False)
    filled = tmp_path / "filled.pdf"
    with filled.open("wb") as fh:
        writer.write(fh)
    read = run_cli("extract", str(filled), "--json", env=env)
    assert read.returncode == 0, read.stderr
    doc = json.loads(read.stdout)
    assert doc["form"] == "odd" and doc["method"] == "acroform"
    assert doc["fields"]["patient.last_name"]["value"] == "Okafor"
    assert doc["fields"]["insurance.primary.member_id"]["value"] == "W123456789"
    again = run_cli("forms", "add", str(src), "--id", "odd", "--accept", env=env)
    assert again.returncode == 3 and "exists" in again.stderr  # an existing template is not overwritten
    bad = tmp_path / "notes.pdf"
    bad.write_bytes(b"%PDF-1.4 garbage")
    broken = run_cli("forms", "add", str(bad), env=env)
    assert broken.returncode == 2 and broken.stderr.count("\n") == 1 and "notes.pdf" in broken.stderr


def test_original_form_is_left_alone(tmp_path: Path, settings_: Settings) -> None:
    original, _canonical, _names = original_form("human", tmp_path)
    before = original.read_bytes()
    ob = onboarding.propose(original, Reader(settings_).vocabulary, settings_.fields_file, "human")
    onboarding.write_template(ob, tmp_path / "forms" / "human.pdf")
    assert original.read_bytes() == before


def test_at_a_terminal_each_unsure_box_is_asked(tmp_path: Path, fd_env: dict[str, str]) -> None:
    """Without --accept, at a terminal: each row that is not confident is asked, then the template written."""
    import os
    import subprocess

    from tests.conftest import FRONTDESK

    forms = tmp_path / "forms"
    env = {**fd_env, "FRONTDESK_FORMS_DIRS": json.dumps([str(forms)])}
    src = _odd_form(tmp_path / "odd.pdf")
    master, slave = os.openpty()
    try:
        os.write(master, b"insurance.primary.member_id\ninsurance.secondary.member_id\n-\ny\n")
        proc = subprocess.run([FRONTDESK, "forms", "add", str(src), "--id", "odd"], stdin=slave,
                              capture_output=True, text=True, env=env, timeout=120)
    finally:
        os.close(master)
        os.close(slave)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("key") >= 3  # three questions: two conflicts and the unknown box
    assert set(_fields(forms / "odd.pdf")) == {
        "patient.last_name", "insurance.primary.member_id", "insurance.secondary.member_id"}
