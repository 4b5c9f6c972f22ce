"""The intake template and the synthetic-form generator that every extraction test depends on.

If these are wrong, every accuracy number measured with them is wrong, so they get their own checks:
the template carries exactly the vocabulary, labels stay clear of the boxes, generated forms read back
as written, and the truth follows the normalisation rules in the brief.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from datetime import date, datetime
from pathlib import Path

import pdfplumber
import pytest
import yaml
from pypdf import PdfReader

from tests.fixtures import generator as gen

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "templates" / "forms" / "new_patient_intake.pdf"
TODAY = date(2026, 11, 15)


def _fields_yaml() -> dict:
    """The intake form's keys (fields marked ``intake: false`` are read from cards and letters only)."""
    fields = yaml.safe_load((REPO / "config" / "fields.yaml").read_text(encoding="utf-8"))["fields"]
    return {k: spec for k, spec in fields.items() if spec.get("intake", True) and not spec.get("form")}


def _build_forms_module():
    spec = importlib.util.spec_from_file_location("build_forms", REPO / "scripts" / "build_forms.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("build_forms", module)  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def _text_in_rect(page: pdfplumber.page.Page, rect: tuple[float, float, float, float]) -> str:
    """Text whose characters lie wholly inside a widget rectangle (PDF coordinates, origin bottom-left)."""
    x0, y0, x1, y1 = rect
    h = float(page.height)
    return page.within_bbox((x0, h - y1, x1, h - y0)).extract_text() or ""


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> list[gen.Case]:
    return gen.generate(tmp_path_factory.mktemp("cases"), 10, seed=11, today=TODAY)


@pytest.fixture(scope="module")
def many_cases(tmp_path_factory: pytest.TempPathFactory) -> list[gen.Case]:
    """Enough cases that the rarer branches (secondary insurance, real-world names, ZIP+4) occur."""
    return gen.generate(tmp_path_factory.mktemp("many"), 60, seed=5, today=TODAY)


# -- template ---------------------------------------------------------------------------------------


def test_template_has_a_field_for_every_key() -> None:
    fields = _fields_yaml()
    form_fields = PdfReader(TEMPLATE).get_fields() or {}
    assert set(form_fields) == set(fields)
    for key, spec in fields.items():
        ft = form_fields[key].get("/FT")
        if spec["type"] == "checkbox":
            assert ft == "/Btn", key
            assert "/Yes" in form_fields[key].get("/_States_", []), key
        else:  # signatures are typed names, so text fields too
            assert ft == "/Tx", key


def test_template_is_one_letter_page_with_title_and_form_id() -> None:
    reader = PdfReader(TEMPLATE)
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert (float(box.width), float(box.height)) == (612, 792)
    assert reader.metadata is not None and reader.metadata.title == "New Patient Intake Form"
    text = reader.pages[0].extract_text()
    for needle in ("New Patient Intake Form", "Form NPI-1 (rev. 2026-11)", "Notice of Privacy Practices",
                   "Signature (type or sign your full name)"):
        assert needle in text


def test_template_labels_stay_clear_of_widgets() -> None:
    rects = gen.widget_rects(TEMPLATE)
    margin = 4.0
    with pdfplumber.open(TEMPLATE) as pdf:
        page = pdf.pages[0]
        h = float(page.height)
        assert page.chars
        offenders = []
        for ch in page.chars:
            for key, (x0, y0, x1, y1) in rects.items():
                top, bottom = h - y1, h - y0
                if (ch["x1"] > x0 - margin and ch["x0"] < x1 + margin
                        and ch["bottom"] > top - margin and ch["top"] < bottom + margin):
                    offenders.append((key, ch["text"]))
        assert offenders == []
        assert {c["fontname"] for c in page.chars} <= {"Helvetica", "Helvetica-Bold", "Helvetica-Oblique"}


def test_template_widgets_do_not_overlap() -> None:
    rects = sorted(gen.widget_rects(TEMPLATE).items())
    for i, (a, ra) in enumerate(rects):
        for b, rb in rects[i + 1:]:
            overlap = ra[0] < rb[2] and rb[0] < ra[2] and ra[1] < rb[3] and rb[1] < ra[3]
            assert not overlap, (a, b)


def test_build_is_deterministic_and_matches_committed_layout(tmp_path: Path) -> None:
    build_forms = _build_forms_module()
    no_config = tmp_path / "absent.yaml"
    first = build_forms.build(tmp_path / "a.pdf", practice_path=no_config)
    second = build_forms.build(tmp_path / "b.pdf", practice_path=no_config)
    assert first.read_bytes() == second.read_bytes()
    assert gen.widget_rects(first) == gen.widget_rects(TEMPLATE)


def test_build_uses_configured_practice(tmp_path: Path) -> None:
    build_forms = _build_forms_module()
    cfg = tmp_path / "frontdesk.yaml"
    cfg.write_text(yaml.safe_dump({"practice": {"name": "Lakeview Pediatrics",
                                                "address_lines": ["9 Elm Ave", "Peoria, IL 61602"],
                                                "phone": "(309) 555-0100"}}), encoding="utf-8")
    out = build_forms.build(tmp_path / "form.pdf", practice_path=cfg)
    text = PdfReader(out).pages[0].extract_text()
    assert "Lakeview Pediatrics" in text and "Peoria, IL 61602" in text and "(309) 555-0100" in text
    assert "Riverside" not in text


# -- generator --------------------------------------------------------------------------------------


def test_same_seed_same_cases(tmp_path: Path) -> None:
    a = gen.generate(tmp_path / "a", 10, seed=3, today=TODAY)
    b = gen.generate(tmp_path / "b", 10, seed=3, today=TODAY)
    assert [c.truth for c in a] == [c.truth for c in b]
    assert [c.patient for c in a] == [c.patient for c in b]
    assert (tmp_path / "a" / "truth.json").read_bytes() == (tmp_path / "b" / "truth.json").read_bytes()
    assert all(x.path.read_bytes() == y.path.read_bytes() for x, y in zip(a, b, strict=True))
    c = gen.generate(tmp_path / "c", 10, seed=4, today=TODAY)
    assert [x.truth for x in a] != [x.truth for x in c]


def test_every_scenario_and_kind_appears_in_ten(cases: list[gen.Case]) -> None:
    combos = {(c.scenario, c.kind) for c in cases}
    assert combos == {(s, k) for s in gen.SCENARIOS for k in ("digital", "flattened")}
    for c in cases:
        assert c.path.exists() and re.fullmatch(r"case-\d{4}\.pdf", c.path.name)


def test_truth_json_lists_every_case(cases: list[gen.Case]) -> None:
    out_dir = cases[0].path.parent
    data = json.loads((out_dir / "truth.json").read_text(encoding="utf-8"))
    assert [d["case_id"] for d in data] == [c.case_id for c in cases]
    for d, c in zip(data, cases, strict=True):
        assert d["file"] == c.path.name and d["scenario"] == c.scenario and d["kind"] == c.kind
        assert d["truth"] == c.truth
        assert {(code, key) for code, key in d["expected_flags"]} == c.expected_flags


def test_digital_reads_back_the_printed_values(cases: list[gen.Case]) -> None:
    digital = [c for c in cases if c.kind == "digital"]
    assert digital
    for case in digital:
        reader = PdfReader(case.path)
        assert bool(reader.trailer["/Root"]["/AcroForm"]["/NeedAppearances"]) is True
        fields = reader.get_fields() or {}
        for key, printed in case.patient.items():
            value = fields[key].get("/V")
            if isinstance(printed, bool):
                assert value == ("/Yes" if printed else "/Off"), (case.case_id, key)
            elif printed:
                assert value == printed, (case.case_id, key)
            else:
                assert value in (None, ""), (case.case_id, key)


def test_flattened_has_no_fields_and_text_sits_in_each_box(cases: list[gen.Case]) -> None:
    rects = gen.widget_rects(TEMPLATE)
    flattened = [c for c in cases if c.kind == "flattened"]
    assert flattened
    for case in flattened:
        reader = PdfReader(case.path)
        assert "/AcroForm" not in reader.trailer["/Root"]
        assert "/Annots" not in reader.pages[0]
        assert not reader.get_fields()
        raw = case.path.read_bytes()
        assert b"/Widget" not in raw and b"/FT" not in raw
        with pdfplumber.open(case.path) as pdf:
            page = pdf.pages[0]
            for key, printed in case.patient.items():
                found = _text_in_rect(page, rects[key])
                if isinstance(printed, bool):
                    assert found == ("X" if printed else ""), (case.case_id, key)
                else:
                    assert " ".join(found.split()) == " ".join(printed.split()), (case.case_id, key)


def test_flattened_keeps_characters_outside_helvetica(tmp_path: Path) -> None:
    values: dict[str, str | bool] = {"patient.first_name": "Łucja", "patient.last_name": "Nguyễn",
                                     "consent.signature": "Đức Trần-O'Neil", "patient.address.city": "Zürich"}
    out = tmp_path / "f.pdf"
    gen.fill_flattened(TEMPLATE, values, out)
    rects = gen.widget_rects(TEMPLATE)
    with pdfplumber.open(out) as pdf:
        for key, value in values.items():
            assert _text_in_rect(pdf.pages[0], rects[key]) == value


def test_long_values_shrink_to_fit_and_overlong_values_are_refused(tmp_path: Path) -> None:
    rects = gen.widget_rects(TEMPLATE)
    x0, y0, x1, y1 = rects["insurance.primary.group_number"]
    long_value = "1234567890123456"  # too wide at 10 pt for the small group-number box
    gen.fill_flattened(TEMPLATE, {"insurance.primary.group_number": long_value}, tmp_path / "ok.pdf")
    with pdfplumber.open(tmp_path / "ok.pdf") as pdf:
        page = pdf.pages[0]
        chars = page.within_bbox((x0, page.height - y1, x1, page.height - y0)).chars
        assert "".join(c["text"] for c in chars) == long_value
        assert 7 <= chars[0]["size"] < 10
    with pytest.raises(ValueError, match="insurance.primary.group_number"):
        gen.fill_flattened(TEMPLATE, {"insurance.primary.group_number": "8" * 40}, tmp_path / "bad.pdf")


def test_unknown_field_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        gen.fill_digital(TEMPLATE, {"patient.nickname": "x"}, tmp_path / "x.pdf")


EXPECTED_FLAGS = {
    "complete": set(),
    "self_pay": set(),
    "member_id_blank": {("missing", "insurance.primary.member_id"), ("insurance.missing_info", None)},
    "payer_blank": {("missing", "insurance.primary.payer_name"), ("insurance.missing_info", None)},
    "unsigned": {("missing", "consent.hipaa_acknowledgment"), ("missing", "consent.signature")},
}


def test_expected_flags_per_scenario(many_cases: list[gen.Case]) -> None:
    for case in many_cases:
        assert case.expected_flags == EXPECTED_FLAGS[case.scenario], case.case_id


def _parse_printed_date(text: str) -> date:
    return datetime.strptime(text, "%m/%d/%Y").date()


def test_truth_follows_the_normalisation_rules(many_cases: list[gen.Case]) -> None:
    keys = set(_fields_yaml())
    for case in many_cases:
        t, p = case.truth, case.patient
        assert set(t) == keys and set(p) == keys
        for key in keys:
            if p[key] == "":
                assert t[key] is None or (key == "consent.signature" and t[key] is False), key
        for key in ("patient.date_of_birth", "insurance.primary.subscriber_date_of_birth", "consent.date"):
            if t[key] is not None:
                assert re.fullmatch(r"\d{1,2}/\d{1,2}/\d{4}", p[key])
                assert _parse_printed_date(p[key]).isoformat() == t[key]
        dob = date.fromisoformat(t["patient.date_of_birth"])
        assert 0 <= (TODAY - dob).days // 365 <= 95 and dob <= TODAY
        if t["consent.date"] is not None:
            assert 0 <= (TODAY - date.fromisoformat(t["consent.date"])).days <= 30
        for key in ("patient.phone", "emergency_contact.phone"):
            if t[key] is not None:
                assert re.fullmatch(r"\d{10}", t[key]) and re.sub(r"\D", "", p[key]) == t[key]
        assert t["patient.address.state"] == p["patient.address.state"].upper()
        assert re.fullmatch(r"[A-Z]{2}", t["patient.address.state"])
        assert re.fullmatch(r"\d{5}(-\d{4})?", t["patient.address.zip"])
        for key in ("insurance.primary.member_id", "insurance.secondary.member_id"):
            if t[key] is not None:
                assert t[key] == re.sub(r"[\s-]", "", p[key]).upper() and t[key].isalnum()
        if t["patient.sex"] is not None:
            assert t["patient.sex"] in ("F", "M", "X") and p["patient.sex"][0] == t["patient.sex"]
        if t["patient.email"] is not None:
            assert t["patient.email"] == p["patient.email"].lower()
        for key in ("patient.first_name", "patient.last_name", "patient.address.street",
                    "patient.address.city", "insurance.primary.subscriber_name", "emergency_contact.name"):
            if t[key] is not None:
                assert t[key] == " ".join(p[key].split())
        rel = t["insurance.primary.relationship_to_patient"]
        if rel is not None:
            assert rel in ("self", "spouse", "child", "parent", "other")
            assert p["insurance.primary.relationship_to_patient"].lower() == rel
        if rel == "self":
            assert t["insurance.primary.subscriber_name"] == f"{t['patient.first_name']} {t['patient.last_name']}"
            assert t["insurance.primary.subscriber_date_of_birth"] == t["patient.date_of_birth"]
        assert t["consent.signature"] is (p["consent.signature"] != "")
        assert t["consent.hipaa_acknowledgment"] is (case.scenario != "unsigned")
        assert t["insurance.self_pay"] is (case.scenario == "self_pay")
        if case.scenario == "self_pay":
            assert all(t[k] is None for k in keys if k.startswith("insurance.") and k != "insurance.self_pay")


def test_generated_data_has_the_variety_extraction_must_handle(many_cases: list[gen.Case]) -> None:
    printed = [c.patient for c in many_cases]
    names = [p["patient.last_name"] for p in printed] + [p["patient.first_name"] for p in printed]
    assert any(not n.isascii() for n in names)
    assert any(("-" in n or "'" in n) for n in names)
    assert any(p["insurance.secondary.payer_name"] for p in printed)
    assert any(re.fullmatch(r"\d{1,2}/\d{1,2}/\d{4}", str(p["patient.date_of_birth"]))
               and len(str(p["patient.date_of_birth"])) < 10 for p in printed)
    assert any("-" in str(p["patient.address.zip"]) for p in printed)
    assert any(any(ch in str(p["insurance.primary.member_id"]) for ch in " -") for p in printed)
    phone_styles = {re.sub(r"\d", "9", str(p["patient.phone"])) for p in printed}
    assert phone_styles == {"(999) 999-9999", "999-999-9999", "999.999.9999"}


def test_make_patient_is_seeded() -> None:
    import random

    from faker import Faker

    def one(seed: int) -> dict:
        fake = Faker("en_US")
        fake.seed_instance(seed)
        return gen.make_patient(random.Random(seed), fake, "complete", today=TODAY)

    assert one(1) == one(1)
    with pytest.raises(ValueError):
        gen.make_patient(random.Random(0), Faker("en_US"), "no_such_scenario")


def test_cli_writes_cases(tmp_path: Path) -> None:
    assert gen.main(["--out", str(tmp_path), "--n", "3", "--seed", "7", "--kinds", "flattened"]) == 0
    data = json.loads((tmp_path / "truth.json").read_text(encoding="utf-8"))
    assert [d["kind"] for d in data] == ["flattened"] * 3
    assert sorted(p.name for p in tmp_path.glob("*.pdf")) == ["case-0001.pdf", "case-0002.pdf", "case-0003.pdf"]
