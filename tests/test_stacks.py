"""A stack of forms scanned into one file is filed as one document per form, each with only its own pages."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from frontdesk.db.models import Document, StoredObjectRow
from frontdesk.intake import process_batch
from frontdesk.pipeline import Pipeline
from frontdesk.records import verify_storage
from tests.fixtures import scans

pytestmark = pytest.mark.integration


def _pdf_pages(data: bytes) -> int:
    import pypdf

    return len(pypdf.PdfReader(io.BytesIO(data)).pages)


def _read(pipeline: Pipeline, key: str) -> bytes:
    return pipeline.storage.get_bytes(key)


def _scenario_wants_letter(scenario: str) -> bool:
    return scenario in ("member_id_blank", "payer_blank")


def test_a_duplex_stack_is_filed_as_one_document_per_form(tmp_path: Path, settings: Any) -> None:
    scenarios = ("complete", "member_id_blank", "self_pay", "payer_blank")
    path, cases, spans = scans.generate_stack(tmp_path / "inbox" / "stack", 4, seed=41, scenarios=scenarios)
    pipeline = Pipeline(settings)
    [outcome] = process_batch([path], pipeline)

    assert outcome.status in ("filed", "needs_review")
    assert [p.source_pages for p in outcome.parts] == spans  # blank backs dropped
    assert {p.parent_record_id for p in outcome.parts} == {outcome.record_id}
    assert len({p.record_id for p in outcome.parts}) == 4
    for case, part in zip(cases, outcome.parts, strict=True):
        assert part.document_type == "intake_form"
        original = next(o for o in part.stored if "/original" in o.key)
        assert _pdf_pages(_read(pipeline, original.key)) == len(case_span := spans[cases.index(case)])
        assert case_span
        record = json.loads(_read(pipeline, next(o.key for o in part.stored if o.key.endswith("extraction.json"))))
        assert record["source"] == {"document_id": outcome.record_id, "pages": part.source_pages}
        assert record["extraction"]["fields"]["patient.date_of_birth"]["value"] == case.truth["patient.date_of_birth"]
        # A form with a value read in doubt waits for a person before any letter (frontdesk.intake.hold).
        doubted = any(f.code == "low_confidence" for f in part.flags)
        assert bool(part.letters) == (_scenario_wants_letter(case.scenario) and not doubted), case.scenario

    # The whole scan is kept once, with the list of its parts; nothing in the listing is patient data.
    listing = json.loads(_read(pipeline, f"{outcome.stored[0].key.rsplit('/', 1)[0]}/stack.json"))
    assert [p["pages"] for p in listing["parts"]] == spans
    assert _pdf_pages(_read(pipeline, outcome.stored[0].key)) == 8

    # Each form belongs to its own patient; none of them is linked to the stack as a whole.
    with pipeline.db.begin() as s:
        parts = list(s.scalars(select(Document).where(Document.parent_id == outcome.record_id)))
        assert len({d.patient_id for d in parts}) == 4 and None not in {d.patient_id for d in parts}
        stack = s.get(Document, outcome.record_id)
        assert stack is not None and stack.patient_id is None and stack.state == "complete"
    assert verify_storage(pipeline.db, pipeline.storage).ok


def test_the_same_stack_again_is_a_duplicate_with_its_parts(tmp_path: Path, settings: Any) -> None:
    path, _cases, spans = scans.generate_stack(tmp_path / "inbox" / "stack", 3, seed=42, scenarios=("complete",))
    first = process_batch([path], Pipeline(settings))[0]
    pipeline = Pipeline(settings)
    again = process_batch([path], pipeline)[0]
    assert again.status == "duplicate" and again.record_id == first.record_id
    assert [p.record_id for p in again.parts] == [p.record_id for p in first.parts]
    assert [p.source_pages for p in again.parts] == spans
    with pipeline.db.begin() as s:
        assert s.scalar(select(func.count()).select_from(Document)) == 4  # the stack and its three forms


def test_a_crash_half_way_through_a_stack_is_finished_by_the_next_run(
        tmp_path: Path, settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    path, _cases, spans = scans.generate_stack(tmp_path / "inbox" / "stack", 3, seed=43, scenarios=("complete",))
    real = Pipeline._file
    calls = {"n": 0}

    def crash_on_second(self: Pipeline, work: Any, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("power cut")
        return real(self, work, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "_file", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        process_batch([path], Pipeline(settings))
    monkeypatch.setattr(Pipeline, "_file", real)

    pipeline = Pipeline(settings)
    [outcome] = process_batch([path], pipeline)
    assert outcome.status in ("filed", "needs_review"), [p.flags for p in outcome.parts]
    assert all(p.status in ("filed", "needs_review") for p in outcome.parts)
    assert [p.source_pages for p in outcome.parts] == spans
    with pipeline.db.begin() as s:
        assert s.scalar(select(func.count()).select_from(Document)) == 4
        assert s.scalar(select(func.count()).select_from(Document).where(Document.state == "pending")) == 0
        originals = s.scalar(select(func.count()).select_from(StoredObjectRow)
                             .where(StoredObjectRow.role == "original"))
        assert originals == 4
    assert verify_storage(pipeline.db, pipeline.storage).ok


def test_a_faxed_stack_keeps_its_parts_as_fax_tiffs(tmp_path: Path, settings: Any) -> None:
    path, _cases, spans = scans.generate_stack(tmp_path / "inbox" / "fax", 2, seed=44, tier="fax",
                                               scenarios=("complete",))
    pipeline = Pipeline(settings)
    [outcome] = process_batch([path], pipeline)
    assert [p.source_pages for p in outcome.parts] == spans
    for part in outcome.parts:
        original = next(o for o in part.stored if "/original" in o.key)
        assert original.key.endswith(".tif")
        with Image.open(io.BytesIO(_read(pipeline, original.key))) as img:
            assert img.n_frames == len(part.source_pages or [])
            assert img.mode == "1" and img.info.get("compression") == "group4"


def _barcode(text: str, fmt: str, module: int, height: int) -> Image.Image:
    """A printed barcode at 300 dpi, ``module`` pixels to a bar of the narrowest kind."""
    import zxingcpp

    bars = Image.fromarray(np.asarray(zxingcpp.create_barcode(text, getattr(zxingcpp.BarcodeFormat, fmt))
                                      .to_image(scale=module)))
    return bars.resize((bars.width, height), Image.Resampling.NEAREST)


def _letter_page(rnd: Any, lines: int, corner_code: str = "") -> Image.Image:
    """A typed page that is not a form (a cover letter, a lab report) at 300 dpi, with a small Code 128 in
    the corner (an invoice or order number) when ``corner_code`` is given."""
    from PIL import ImageDraw, ImageFont

    page = Image.new("L", (2550, 3300), 255)
    draw = ImageDraw.Draw(page)
    font = ImageFont.truetype("DejaVuSans.ttf", 42)
    words = ["please", "find", "enclosed", "the", "results", "of", "the", "examination", "requested", "for", "your", "patient"]
    for i in range(lines):
        draw.text((250, 300 + i * 70), " ".join(rnd.choice(words) for _ in range(9)), fill=0, font=font)
    if corner_code:
        page.paste(_barcode(corner_code, "Code128", 3, 90), (1750, 3080))
    return page


def _separator_page(tmp: Path, barcode: str = "qr") -> Image.Image:
    import pypdfium2 as pdfium

    from frontdesk.commands.separator import write_separator_sheet

    pdf = pdfium.PdfDocument(str(write_separator_sheet(tmp / f"sep-{barcode}.pdf", "PATCHT", barcode=barcode)))
    return pdf[0].render(scale=300 / 72, grayscale=True).to_pil().convert("L")


def _code39_sheet() -> Image.Image:
    """A PATCHT sheet as scanner software prints it: a modest Code 39 (0.013 in bars) under a caption."""
    from PIL import ImageDraw, ImageFont

    page = Image.new("L", (2550, 3300), 255)
    ImageDraw.Draw(page).text((900, 1350), "PATCH T - Document Separator", fill=0,
                              font=ImageFont.truetype("DejaVuSans.ttf", 44))
    bars = _barcode("PATCHT", "Code39", 4, 300)
    page.paste(bars, ((2550 - bars.width) // 2, 1500))
    return page


def _standard_fax(path: Path) -> Path:
    """The same fax at standard resolution, 204x98 dpi: every other line of the fine one."""
    from PIL import ImageSequence

    with Image.open(path) as tif:
        frames = [f.resize((f.width, f.height // 2), Image.Resampling.NEAREST)
                  for f in ImageSequence.Iterator(tif)]
    frames[0].save(path, compression="group4", dpi=(204, 98), save_all=True, append_images=frames[1:])
    return path


@pytest.mark.parametrize("tier", ["scan300", "fax", "fax98"])
@pytest.mark.parametrize("sheets", ["qr", "1-D"])
def test_separator_sheets_split_documents_that_are_not_forms(
        tmp_path: Path, settings: Any, tier: str, sheets: str) -> None:
    """QR sheets, and the 1-D sheets practices bring from scanner software, split a stack alike; the order
    number in a letter's corner does not."""
    import random

    from faker import Faker

    from frontdesk.extraction import Reader
    from tests.fixtures import generator as gen

    rnd, fake = random.Random(45), Faker("en_US")
    fake.seed_instance(45)
    if sheets == "qr":
        seps = [_separator_page(tmp_path)] * 3
    else:  # the practice's own Code 128 sheet and one in Code 39 from scanner software
        seps = [_separator_page(tmp_path, "code128"), _code39_sheet(), _separator_page(tmp_path, "code128")]

    def form() -> list[Image.Image]:
        printed, _truth = gen._make_record(rnd, fake, "complete", gen.date(2026, 11, 15))
        return scans.print_form(gen.DEFAULT_TEMPLATE, scans._fit_values(gen.DEFAULT_TEMPLATE, printed), rnd)

    printed = [*form(), seps[0], _letter_page(rnd, 6), _letter_page(rnd, 4, corner_code="INV-2026-00417"),
               seps[1], _letter_page(rnd, 5), seps[2], *form()]
    device = "fax" if tier.startswith("fax") else tier
    pages = [scans.scan_page(p, device, rnd) for p in printed]
    path = scans.save_scan(pages, device, tmp_path / "mixed", rnd)
    if tier == "fax98":
        path = _standard_fax(path)
    results = Reader(settings).extract_all(path)
    assert [r.source_pages for r in results] == [[1], [3, 4], [6], [8]]
    assert [r.document_type == "intake_form" for r in results] == [True, False, False, True]

    if tier != "scan300":
        return
    # Without separator codes, or with a code of the practice's own that these sheets do not read, the two
    # letters run together as one document and the sheets are filed with them.
    codes = [] if sheets == "qr" else ["NEXT-DOCUMENT"]
    ex = settings.extraction.model_copy(update={"separator_codes": codes})
    off = settings.model_copy(update={"extraction": ex})
    assert [r.source_pages for r in Reader(off).extract_all(path)] == [[1], [2, 3, 4, 5, 6, 7], [8]]


@pytest.mark.parametrize("barcode", ["qr", "code128"])
def test_the_separator_sheet_command_writes_a_sheet_the_reader_recognises(
        tmp_path: Path, fd_env: Any, barcode: str) -> None:
    import pypdfium2 as pdfium
    import zxingcpp

    from extractors.scan import is_separator
    from tests.conftest import run_cli

    extra = ["--barcode", barcode] if barcode != "qr" else []
    proc = run_cli("separator-sheet", str(tmp_path / "sheets.pdf"), "--copies", "2", *extra, env=fd_env)
    assert proc.returncode == 0, proc.stderr
    pdf = pdfium.PdfDocument(str(tmp_path / "sheets.pdf"))
    assert len(pdf) == 2

    gray = np.asarray(pdf[0].render(scale=200 / 72, grayscale=True).to_pil().convert("L"))
    assert [(str(b.format), b.text) for b in zxingcpp.read_barcodes(gray)] == [
        ("QR Code" if barcode == "qr" else "Code 128", "PATCHT")]  # the default stays a QR code
    assert is_separator(gray, frozenset({"PATCHT"}))
    assert not is_separator(gray, frozenset({"SOMETHING-ELSE"}))


def test_a_stack_whose_pages_cannot_be_cut_apart_is_set_aside_whole(
        tmp_path: Path, settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from frontdesk import stacks
    from frontdesk.exceptions import InputFileError

    path, _cases, _spans = scans.generate_stack(tmp_path / "inbox" / "stack", 2, seed=46, scenarios=("complete",))
    other = tmp_path / "inbox" / "single.pdf"
    scans.generate_scans(tmp_path / "one", 1, seed=47, tiers=("scan300",))[0].path.rename(other)

    def broken(p: Path, numbers: Any) -> tuple[bytes, str]:
        raise InputFileError(p, "its pages could not be cut out for filing (PdfReadError)")

    monkeypatch.setattr(stacks, "pages_of", broken)
    pipeline = Pipeline(settings)
    stack_out, single_out = process_batch([path, other], pipeline)
    assert stack_out.status == "failed" and stack_out.parts == []
    assert "could not be cut out" in (stack_out.error or "") and str(path) in (stack_out.error or "")
    assert any(o.key.endswith("reason.txt") for o in stack_out.stored)
    assert single_out.status in ("filed", "needs_review")  # the batch went on
    with pipeline.db.begin() as s:
        assert s.scalar(select(func.count()).select_from(Document).where(Document.state == "pending")) == 0
