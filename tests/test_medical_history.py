"""The medical history form (issue 16): repeating rows (medications, allergies, other conditions) and the
conditions check list are read as lists from digital, flattened and scanned copies, blank lines skipped,
a used row with a required box blank flagged for review, and the rows kept with the document's record."""

from __future__ import annotations

import importlib.util
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pdfplumber
import pytest
import yaml

from frontdesk.exceptions import ConfigError
from frontdesk.extraction import Reader
from frontdesk.fields import load_vocabulary
from frontdesk.intake import process_batch
from frontdesk.pipeline import Pipeline
from frontdesk.readings import extraction_result
from tests.fixtures import generator as gen
from tests.fixtures import history


@pytest.fixture(scope="module")
def reader() -> Reader:
    from frontdesk.settings import load_settings

    return Reader(load_settings())


def _rows_of(case: history.HistoryCase, result_rows: dict[str, object]) -> None:
    got = history.rows_read(result_rows)  # type: ignore[arg-type]
    assert got == case.rows, case.case_id


def test_scanned_medical_history_rows_come_out_as_lists_blank_lines_skipped(tmp_path: Path, reader: Reader) -> None:
    cases = history.generate_histories(tmp_path, 3, seed=1616, kinds=("scan300",),
                                       scenarios=("complete", "gaps", "missing_dose"))
    gaps = cases[1]
    used = [r["row"] for r in gaps.rows["medications"]]
    assert used[1] - used[0] > 1, "the gaps scenario leaves a blank line after the first medication"
    for case in cases:
        result = reader.extract(case.path)
        assert result.form == "medical_history" and result.method == "ocr"
        _rows_of(case, result.rows)  # every used row, exactly; no row for a blank line
        assert result.checklists.get("condition_checklist", []) == case.checklist
        assert result.value("patient.last_name") == case.fields["patient.last_name"]


def test_a_medication_without_its_dose_is_flagged_for_review_not_dropped(tmp_path: Path, reader: Reader) -> None:
    case = history.generate_histories(tmp_path, 1, seed=1617, kinds=("scan300",), scenarios=("missing_dose",))[0]
    want = next(r for r in case.rows["medications"] if r["dose"] is None)
    result = reader.extract(case.path)
    row = next(r for r in result.rows["medications"] if r.row == want["row"])
    assert row.value("drug") == want["drug"] and row.value("dose") is None
    flag = next(f for f in result.flags if f.code == "row.incomplete")
    assert flag.field == f"medications.{want['row']}.dose" and flag.severity == "error"
    assert want["drug"] not in flag.message  # labels, never values
    assert result.needs_review()


@pytest.mark.parametrize("kind", ["digital", "flattened"])
def test_filled_pdfs_are_recognised_by_form_id_and_read_row_by_row(tmp_path: Path, reader: Reader, kind: str) -> None:
    cases = history.generate_histories(tmp_path, 4, seed=1618, kinds=(kind,))
    for case in cases:
        result = reader.extract(case.path)
        assert result.form == "medical_history"
        _rows_of(case, result.rows)
        assert result.checklists.get("condition_checklist", []) == case.checklist
        assert not result.rows or case.scenario != "none"
    intake = gen.generate(tmp_path / "intake", 1, seed=3, kinds=(kind,), today=date(2026, 11, 15))[0]
    read = reader.extract(intake.path)
    assert read.form == "new_patient_intake" and read.rows == {}  # the intake form is still itself


def test_rows_are_kept_with_the_document_record(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    case = history.generate_histories(tmp_path / "inbox", 1, seed=1619, kinds=("digital",),
                                      scenarios=("complete",))[0]
    (tmp_path / "inbox" / "truth.json").unlink()
    pipeline = Pipeline(settings)
    outcome = process_batch([tmp_path / "inbox"], pipeline)[0]
    assert outcome.record_id
    with pipeline.db.begin() as s:
        stored = extraction_result(s, outcome.record_id)
    assert stored is not None and stored.form == "medical_history"
    _rows_of(case, stored.rows)
    assert stored.checklists["condition_checklist"] == case.checklist
    assert not any(k.split(".")[0] in ("medications", "allergies", "conditions") for k in stored.fields)


def test_a_plain_field_named_like_a_row_box_is_refused(tmp_path: Path) -> None:
    data = yaml.safe_load((gen.FIELDS_YAML).read_text(encoding="utf-8"))
    data["fields"]["pharmacy.1.name"] = {"type": "text", "label": "Pharmacy"}
    path = tmp_path / "fields.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ConfigError, match="rows of groups"):
        load_vocabulary(path)


def _build_forms() -> Any:
    spec = importlib.util.spec_from_file_location("build_forms", gen.REPO / "scripts" / "build_forms.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("build_forms", module)  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def test_the_committed_form_is_the_built_one_with_every_row_box_and_labels_clear(tmp_path: Path) -> None:
    built = _build_forms().build_history(tmp_path / "mh.pdf", practice_path=tmp_path / "absent.yaml")
    rects = gen.widget_rects(history.TEMPLATE)
    assert gen.widget_rects(built) == rects
    vocab = load_vocabulary(gen.FIELDS_YAML)
    rows = history.form_rows()
    assert set(rows) == set(vocab.groups) and all(n >= 3 for n in rows.values())
    for group, n in rows.items():
        for i in range(1, n + 1):
            assert {f"{group}.{i}.{f}" for f in vocab.groups[group].fields} <= set(rects)
    for name, spec in vocab.checklists.items():
        assert {f"{name}.{o}" for o in spec.options} <= set(rects)
    with pdfplumber.open(history.TEMPLATE) as pdf:  # extraction reads what lies inside a box: no label there
        page = pdf.pages[0]
        h = float(page.height)
        near = [(key, ch["text"]) for ch in page.chars for key, (x0, y0, x1, y1) in rects.items()
                if ch["x1"] > x0 - 4 and ch["x0"] < x1 + 4 and ch["bottom"] > h - y1 - 4 and ch["top"] < h - y0 + 4]
        assert near == []
        assert "Form MH-1" in (page.extract_text() or "")


def test_the_form_build_fails_when_the_vocabulary_grows_a_group_the_layout_lacks(tmp_path: Path) -> None:
    build_forms = _build_forms()
    data = yaml.safe_load((gen.FIELDS_YAML).read_text(encoding="utf-8"))
    data["groups"]["surgeries"] = {"label": "Past surgeries", "fields": {"procedure": {"type": "text"}}}
    path = tmp_path / "fields.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ValueError, match="surgeries"):
        build_forms.build_history(tmp_path / "mh.pdf", path)
