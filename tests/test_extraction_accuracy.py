"""Digital and flattened intake forms are read exactly: every value, every expected flag, nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from frontdesk.extraction import Reader
from tests.conftest import run_cli
from tests.fixtures.generator import Case, generate


@pytest.fixture(scope="module")
def reader() -> Reader:
    from frontdesk.settings import load_settings

    return Reader(load_settings())


def _mismatches(case: Case, reader: Reader) -> list[str]:
    result = reader.extract(case.path)
    problems = []
    if result.document_type != "intake_form" or result.form != "new_patient_intake":
        problems.append(f"{case.case_id}: recognised as {result.document_type}/{result.form}")
    want_method = "acroform" if case.kind == "digital" else "text"
    if result.method != want_method:
        problems.append(f"{case.case_id}: method {result.method}, expected {want_method}")
    for key, want in case.truth.items():
        got = result.value(key)
        if got != want:
            problems.append(f"{case.case_id} {case.kind} {key}: got {got!r}, expected {want!r}")
    errors = {(f.code, f.field) for f in result.flags if f.severity == "error"}
    if errors != case.expected_flags:
        problems.append(f"{case.case_id}: flags {sorted(errors, key=str)} != {sorted(case.expected_flags, key=str)}")
    return problems


@pytest.mark.parametrize("kind", ["digital", "flattened"])
def test_fifty_generated_forms_are_read_exactly(tmp_path: Path, reader: Reader, kind: str) -> None:
    cases = generate(tmp_path, 50, seed=2026 if kind == "digital" else 2027, kinds=(kind,))
    assert len(cases) == 50 and {c.scenario for c in cases} >= {"complete", "member_id_blank", "payer_blank",
                                                                 "self_pay", "unsigned"}
    problems = [p for c in cases for p in _mismatches(c, reader)]
    fields = sum(len(c.truth) for c in cases)
    accuracy = 1 - len([p for p in problems if " got " in p]) / fields
    assert not problems, f"accuracy {accuracy:.3f}\n" + "\n".join(problems[:30])


def test_missing_insurance_flag_names_the_missing_items(tmp_path: Path, reader: Reader) -> None:
    cases = generate(tmp_path, 10, seed=5, scenarios=("member_id_blank",))
    for case in cases:
        result = reader.extract(case.path)
        flag = next(f for f in result.flags if f.code == "insurance.missing_info")
        assert flag.severity == "error" and flag.field is None
        assert "Member ID" in flag.message
        assert result.fields["insurance.primary.member_id"].value is None


def test_self_pay_needs_no_insurance(tmp_path: Path, reader: Reader) -> None:
    for case in generate(tmp_path, 4, seed=9, scenarios=("self_pay",)):
        result = reader.extract(case.path)
        assert result.value("insurance.self_pay") is True
        assert not [f for f in result.flags if f.severity == "error"]


def test_extract_cli_prints_the_documented_shape(tmp_path: Path) -> None:
    case = generate(tmp_path, 1, seed=3, kinds=("flattened",))[0]
    proc = run_cli("extract", str(case.path), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) >= {"document_type", "form", "method", "pages", "fields", "flags"}
    assert out["pages"] == 1 and out["method"] == "text"
    for fr in out["fields"].values():
        assert set(fr) == {"value", "raw", "confidence", "page"}
        assert 0 <= fr["confidence"] <= 1
    assert out["fields"]["patient.last_name"]["value"] == case.truth["patient.last_name"]


def test_extract_does_not_start_prefect(tmp_path: Path) -> None:
    """A quick look at one form must not pay for Prefect's server start-up."""
    import subprocess
    import sys

    case = generate(tmp_path, 1, seed=4)[0]
    code = (
        "import sys; from frontdesk.cli import main; rc = main(['extract', sys.argv[1], '--json']);"
        "import sys as s; print('PREFECT' if 'prefect' in s.modules else 'CLEAN', file=s.stderr); raise SystemExit(rc)"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(case.path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert proc.stderr.strip().endswith("CLEAN")


def test_extra_forms_dir_adds_a_template_for_one_call(tmp_path: Path) -> None:
    """A second template with other printed words is only known when its folder is named."""
    from reportlab.lib.pagesizes import letter
    from reportlab.pdfgen import canvas

    forms = tmp_path / "forms"
    forms.mkdir()
    tpl = forms / "dental_history.pdf"
    c = canvas.Canvas(str(tpl), pagesize=letter)
    c.drawString(72, 740, "Dental history questionnaire for returning patients")
    c.drawString(72, 700, "Last name")
    c.acroForm.textfield(name="patient.last_name", x=150, y=690, width=200, height=20, borderWidth=0)
    c.drawString(72, 660, "First name")
    c.acroForm.textfield(name="patient.first_name", x=150, y=650, width=200, height=20, borderWidth=0)
    c.save()
    from pypdf import PdfWriter

    filled = tmp_path / "filled.pdf"
    w = PdfWriter(clone_from=tpl)
    w.update_page_form_field_values(w.pages[0], {"patient.last_name": "Gonçalves", "patient.first_name": "Noël"})
    w.write(filled)
    plain = json.loads(run_cli("extract", str(filled), "--json").stdout)
    assert plain["document_type"] == "unknown"
    extra = json.loads(run_cli("extract", str(filled), "--json", "--forms-dir", str(forms)).stdout)
    assert extra["form"] == "dental_history"
    assert extra["fields"]["patient.last_name"]["value"] == "Gonçalves"
    assert "consent.signature" not in extra["fields"]  # a box the form lacks is not reported missing
    assert not [f for f in extra["flags"] if f["field"] == "consent.signature"]
