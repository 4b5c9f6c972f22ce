"""Scanned forms: every tier read to its accuracy floor, any orientation, stacks, a second form, hostile files.

Inputs are generated into tmp_path by the seeded scan generator (tests/fixtures/scans.py); the floors on
these small samples sit a little under the targets that bench/accuracy.py measures on larger ones.
"""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from faker import Faker
from PIL import Image

from bench.accuracy import Tally, run_tier, score
from frontdesk.extraction import Reader
from tests.conftest import FRONTDESK, run_cli
from tests.fixtures import forms2, scans
from tests.fixtures import generator as gen

# Issue #3 is open: on a fresh set-up these floors were missed on small samples (Vietnamese letters such as
# ả/ễ/ư that tesseract's Latin model lacks, O/0 in group numbers read silently, one 204x98 fax). They stay
# as the acceptance tests of the issue and are expected to pass again once it is finished.


@pytest.fixture(scope="module")
def reader() -> Reader:
    from frontdesk.settings import load_settings

    return Reader(load_settings())


def _types(reader: Reader) -> dict[str, str]:
    return {k: s.type for k, s in reader.vocabulary.fields.items()}


FLOORS = {"scan300": 0.97, "noisy": 0.92, "fax": 0.85}


@pytest.mark.integration
@pytest.mark.parametrize("tier", scans.PRINTED_TIERS)  # handwriting: tests/test_handwriting.py
def test_each_tier_meets_its_floors(tmp_path: Path, reader: Reader, tier: str) -> None:
    t = run_tier(reader, tier, 10, seed=404, out=tmp_path)
    report = "\n".join(t.errors)
    assert t.field_accuracy >= FLOORS[tier], report
    assert t.mark_accuracy >= 0.97, report
    assert t.insurance_precision >= 0.9 and t.insurance_recall >= 0.9, report
    assert t.missing_precision >= 0.9 and t.missing_recall >= 0.9, report
    assert t.silent <= 1, report  # 10 forms hold ~170 filled fields: 1 silent error is ~6 per 1000
    assert t.review_share <= 0.12, report
    assert t.unrecognised == 0


@pytest.mark.integration
def test_pages_turned_sideways_or_upside_down_read_like_upright(tmp_path: Path, reader: Reader) -> None:
    upright = run_tier(reader, "scan300", 6, seed=77, out=tmp_path / "up")
    turned = run_tier(reader, "scan300", 6, seed=77, out=tmp_path / "turned", rotations=(90, 180, 270))
    fax_turned = run_tier(reader, "fax", 6, seed=78, out=tmp_path / "fax", rotations=(180, 90, 270))
    assert turned.field_accuracy >= upright.field_accuracy - 0.02, "\n".join(turned.errors)
    assert turned.field_accuracy >= 0.97 and turned.mark_accuracy == 1.0
    assert fax_turned.field_accuracy >= 0.85 and fax_turned.mark_accuracy >= 0.97, "\n".join(fax_turned.errors)


@pytest.mark.integration
def test_duplex_stack_of_ten_forms_becomes_ten_documents(tmp_path: Path, reader: Reader) -> None:
    path, cases, spans = scans.generate_stack(tmp_path / "stack", 10, seed=31)
    results = reader.extract_all(path)
    assert [r.source_pages for r in results] == spans  # blank backs dropped, each form on its own
    tally = Tally("stack")
    for case, result in zip(cases, results, strict=True):
        assert result.form == "new_patient_intake"
        score(case, result, _types(reader), tally)
    assert tally.field_accuracy >= 0.97, "\n".join(tally.errors)
    assert tally.mark_accuracy == 1.0 and tally.silent <= 1
    assert reader.extract(path).source_pages == spans[0]  # extract() is the first document


@pytest.mark.integration
def test_stack_cli_stays_under_a_gigabyte(tmp_path: Path) -> None:
    path, _cases, spans = scans.generate_stack(tmp_path / "stack", 6, seed=32, tier="fax")
    code = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], capture_output=True);"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, p.returncode)")
    out = subprocess.run([sys.executable, "-c", code, FRONTDESK, "extract", str(path), "--json"],
                         capture_output=True, text=True, timeout=300).stdout.split()
    max_rss_kb, rc = int(out[0]), int(out[1])
    assert rc == 0
    assert max_rss_kb < 1024 * 1024, f"peak memory {max_rss_kb / 1024:.0f} MB"


@pytest.fixture(scope="module")
def form2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("forms")
    forms2.build(folder)
    return folder


@pytest.mark.integration
@pytest.mark.parametrize("tier", ["scan300", "fax"])
def test_a_second_form_is_read_without_code(tmp_path: Path, form2_dir: Path, tier: str) -> None:
    from frontdesk.settings import load_settings

    reader = Reader(load_settings(), [form2_dir])
    tpl = form2_dir / f"{forms2.FORM_ID}.pdf"
    t = run_tier(reader, tier, 5, seed=55, out=tmp_path, template=tpl)
    assert t.unrecognised == 0
    assert t.field_accuracy >= FLOORS[tier] and t.mark_accuracy >= 0.97, "\n".join(t.errors)
    assert t.insurance_precision == 1.0 and t.insurance_recall == 1.0
    result = reader.extract(next(tmp_path.rglob("scan-0001.*")))
    assert result.form == forms2.FORM_ID and result.pages == 2 and result.source_pages == [1, 2]
    assert "insurance.secondary.payer_name" not in result.fields  # the form has no box for it


@pytest.mark.integration
def test_pages_out_of_order_or_missing(tmp_path: Path, form2_dir: Path) -> None:
    from frontdesk.settings import load_settings

    reader = Reader(load_settings(), [form2_dir])
    tpl = form2_dir / f"{forms2.FORM_ID}.pdf"
    rnd = random.Random(9)
    case = scans.generate_scans(tmp_path / "one", 1, seed=9, template=tpl, scenarios=("complete",))[0]
    pages = [scans.scan_page(p, "scan300", rnd) for p in scans.print_form(tpl, case.patient, rnd)]
    swapped = scans.save_scan([pages[1], pages[0]], "scan300", tmp_path / "swapped")
    result = reader.extract(swapped)
    assert result.form == forms2.FORM_ID and result.source_pages == [1, 2]
    assert result.value("patient.last_name") == case.truth["patient.last_name"]
    assert result.value("insurance.primary.member_id") == case.truth["insurance.primary.member_id"]
    assert not [f for f in result.flags if f.code == "page.missing"]

    only_first = scans.save_scan([pages[0]], "scan300", tmp_path / "first-only")
    result = reader.extract(only_first)
    assert result.form == forms2.FORM_ID
    assert {f.code for f in result.flags} >= {"page.missing", "missing"}
    assert result.value("patient.last_name") == case.truth["patient.last_name"]
    assert result.value("insurance.primary.member_id") is None  # reported missing, not invented
    assert result.value("consent.signature") is False
    assert ("missing", "consent.signature") in {(f.code, f.field) for f in result.flags}


@pytest.mark.integration
def test_names_keep_their_diacritics(tmp_path: Path, reader: Reader) -> None:
    rnd = random.Random(4)
    fake = Faker("en_US")
    fake.seed_instance(4)
    names = [("Müller", "José"), ("Gonçalves", "Noël"), ("O'Neil-Brontë", "Zoë"), ("Núñez", "Björn")]
    for i, (last, first) in enumerate(names):
        values = gen.make_patient(rnd, fake, "complete")
        values["patient.last_name"], values["patient.first_name"] = last, first
        page = scans.print_form(gen.DEFAULT_TEMPLATE, values, rnd)[0]
        path = scans.save_scan([scans.scan_page(page, "scan300", rnd)], "scan300", tmp_path / f"n{i}")
        result = reader.extract(path)
        for key, want in (("patient.last_name", last), ("patient.first_name", first)):
            got = result.fields[key]
            flagged = any(f.field == key for f in result.flags)
            assert got.value == want or flagged, f"{key}: {got.value!r} passed silently for {want!r}"
        assert result.value("patient.last_name") == last


@pytest.mark.integration
def test_fax_at_standard_resolution_is_resampled_square(tmp_path: Path, reader: Reader) -> None:
    """A 204x98 dpi fax has half the lines of a fine one: it is still read, and what it gets wrong is flagged."""
    right = total = silent = 0
    for seed in (12, 13, 14):
        case = scans.generate_scans(tmp_path / str(seed), 1, seed=seed, tiers=("fax",), scenarios=("complete",))[0]
        fine = Image.open(case.path)
        standard = fine.resize((fine.width, fine.height // 2), Image.Resampling.NEAREST)  # 204x98 dpi
        path = tmp_path / f"standard-{seed}.tif"
        standard.save(path, compression="group4", dpi=(204, 98))
        result = reader.extract(path)
        assert result.form == "new_patient_intake"
        flagged = {f.field for f in result.flags}
        for k, v in case.truth.items():
            total += 1
            right += result.value(k) == v
            silent += result.value(k) != v and k not in flagged
    assert right / total >= 0.85
    assert silent == 0


def test_unrecognised_scan_is_flagged_not_an_error(tmp_path: Path) -> None:
    page = Image.new("L", (2550, 3300), 250)
    from PIL import ImageDraw, ImageFont

    draw = ImageDraw.Draw(page)
    font = ImageFont.truetype(str(scans.VALUE_FONT), 40)
    rnd = random.Random(3)
    for y in range(300, 3000, 70):
        draw.text((200, y), " ".join(rnd.choice(["parking", "closed", "repairs", "newsletter", "county"])
                                     for _ in range(6)), font=font, fill=20)
    path = tmp_path / "letter.png"
    page.save(path, dpi=(300, 300))
    proc = run_cli("extract", str(path), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["document_type"] == "unknown" and out["method"] == "ocr"
    assert out["flags"][0]["code"] == "form.unrecognised"


def _one_line_error(path: Path, reason: str, limit: float = 60) -> None:
    t0 = time.monotonic()
    proc = run_cli("extract", str(path), "--json", timeout=limit + 30)
    assert time.monotonic() - t0 < limit
    assert proc.returncode == 2, proc.stdout[:300] + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and reason in lines[0], proc.stderr


def test_image_over_the_decompression_bomb_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    Image.new("1", (12000, 12000), 1).save(path)  # 144 megapixels, a few kilobytes on disk
    assert path.stat().st_size < 1_000_000
    _one_line_error(path, "too large")


def test_five_hundred_page_scan_is_refused_quickly(tmp_path: Path) -> None:
    from reportlab.pdfgen import canvas

    path = tmp_path / "huge.pdf"
    c = canvas.Canvas(str(path))
    for _ in range(500):
        c.rect(100, 100, 50, 50, fill=1)
        c.showPage()
    c.save()
    _one_line_error(path, "too many pages", limit=45)


def test_truncated_jpeg_is_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (1100, 850), dtype=np.uint8)).save(
        buf, "JPEG", quality=80)
    path = tmp_path / "half.jpg"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    _one_line_error(path, "truncated")


def test_tiff_with_a_corrupt_strip_ends_cleanly(tmp_path: Path) -> None:
    case = scans.generate_scans(tmp_path, 1, seed=5, tiers=("fax",))[0]
    data = bytearray(case.path.read_bytes())
    rnd = random.Random(2)
    for i in range(len(data) // 3, len(data) // 3 + 4000):
        data[i] = rnd.randrange(256)
    path = tmp_path / "corrupt.tif"
    path.write_bytes(bytes(data))
    t0 = time.monotonic()
    proc = run_cli("extract", str(path), "--json", timeout=120)
    assert time.monotonic() - t0 < 90
    assert proc.returncode in (0, 2) and "Traceback" not in proc.stderr
    if proc.returncode == 2:
        assert len(proc.stderr.strip().splitlines()) == 1
    else:  # the decoder resynchronised: what was damaged is flagged, never silently wrong
        out = json.loads(proc.stdout)
        flagged = {f["field"] for f in out["flags"]}
        wrong = [k for k, v in case.truth.items() if out["fields"].get(k, {}).get("value") != v and k not in flagged]
        assert out["document_type"] == "unknown" or len(wrong) <= 1, wrong


def test_all_black_page_is_flagged(tmp_path: Path) -> None:
    path = tmp_path / "black.png"
    Image.new("L", (2550, 3300), 0).save(path, dpi=(300, 300))
    proc = run_cli("extract", str(path), "--json", timeout=90)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["document_type"] == "unknown"
    assert out["flags"][0]["code"] == "form.unrecognised" and "dark" in out["flags"][0]["message"]



@pytest.mark.integration
def test_a_page_two_forms_fit_equally_well_goes_to_a_person_naming_both(tmp_path: Path, reader: Reader) -> None:
    """The practice's forms share their header and identity rows: a page showing only those (the rest torn
    off, or lost to a bad copy) is not read as whichever form fits by a hair; it is unrecognised, and the
    reason names the candidates."""
    import pypdfium2 as pdfium

    case = scans.generate_scans(tmp_path, 1, seed=12, tiers=("scan300",))[0]
    pdf = pdfium.PdfDocument(str(case.path))
    page = np.array(pdf[0].render(scale=300 / 72).to_pil().convert("L"))
    pdf.close()
    page[page.shape[0] // 2:, :] = 255  # the lower half of the sheet is gone
    torn = tmp_path / "torn.png"
    Image.fromarray(page).save(torn, dpi=(300, 300))
    result = reader.extract(torn)
    assert result.document_type == "unknown"
    [why] = [f.message for f in result.flags if f.code == "form.unrecognised"]
    assert "new_patient_intake" in why and "medical_history" in why

    whole = reader.extract(case.path)  # the same sheet whole is the registration form, read as usual
    assert whole.form == "new_patient_intake"
