"""The small parts of the scan reader that accuracy numbers would not pin down on their own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from extractors import ocr, register, scan, zonal
from extractors.images import WORK_DPI, Limits, UnreadableImage, _to_work, iter_image_pages
from tests.fixtures import scans

TSV = (
    "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n"
    "1\t1\t0\t0\t0\t0\t0\t0\t500\t200\t-1\t\n"
    "5\t1\t1\t1\t1\t1\t24\t30\t120\t40\t96.5\tMüller\n"
    "5\t1\t1\t1\t1\t2\t160\t30\t80\t40\t71.0\tJosé\n"
    "5\t1\t1\t1\t2\t1\t24\t100\t80\t40\t-1\t \n"
)


def test_tsv_words_keep_boxes_confidences_and_diacritics() -> None:
    words = ocr.parse_tsv(TSV)
    assert [w.text for w in words] == ["Müller", "José"]
    assert words[1].conf == 71.0 and words[0].cy == 50 and words[0].line == (1, 1, 1)


def test_fit_between_downscaled_pages_carries_over_to_full_size() -> None:
    """Turning a page upside down is x -> W-1-x at every scale; the half-pixel offset must come out right."""
    s = register.REG_SCALE
    w_full, h_full = 2550, 3300
    ws, hs = w_full * s, h_full * s
    small = np.array([[-1.0, 0, ws - 1], [0, -1.0, hs - 1]])
    full = register.to_full(small, s)
    np.testing.assert_allclose(full, [[-1, 0, w_full - 1], [0, -1, h_full - 1]], atol=1e-9)
    ident = register.to_full(np.array([[1.0, 0, 0], [0, 1.0, 0]]), s)
    np.testing.assert_allclose(ident, [[1, 0, 0], [0, 1, 0]], atol=1e-9)


def test_fax_pixels_are_made_square_at_working_resolution() -> None:
    fax = np.full((1078, 1734), 255, np.uint8)  # letter page at 204 x 98 dpi
    out = _to_work(fax, 204.0, 98.0)
    assert abs(out.shape[1] - 8.5 * WORK_DPI) < 3 and abs(out.shape[0] - 11 * WORK_DPI) < 5
    unknown = _to_work(np.full((1100, 850), 255, np.uint8), None, None)  # no resolution: letter assumed
    assert unknown.shape == (3300, 2550)


def test_blank_backs_are_blank_and_pages_with_ink_or_all_black_are_not() -> None:
    import random

    back = np.asarray(scans.blank_back("scan300", random.Random(1)).convert("L"))
    assert scan.is_blank(register.small(back))
    fax_back = np.asarray(scans.blank_back("fax", random.Random(2)).convert("L"))
    assert scan.is_blank(register.small(_to_work(fax_back, 204, 196)))
    page = Image.new("L", (2550, 3300), 245)
    ImageDraw.Draw(page).text((300, 400), "Name: Jane Doe", fill=10,
                              font=ImageFont.truetype(str(scans.VALUE_FONT), 60))
    assert not scan.is_blank(register.small(np.asarray(page)))
    assert not scan.is_blank(np.zeros((1100, 850), np.uint8))


def test_ocr_habits_are_undone_and_suspicious_names_distrusted() -> None:
    assert zonal.tidy("Jodı", "name") == ("Jodi", 1.0)
    assert zonal.tidy("Medıcare", "text")[0] == "Medicare"
    assert zonal.tidy("tukasiewicz", "name")[1] < 1.0  # Ł read as t: a name does not start in lower case
    assert zonal.tidy("Smith-jones", "name")[1] < 1.0
    assert zonal.tidy("O'Neil-Brontë", "name") == ("O'Neil-Brontë", 1.0)
    assert zonal.tidy("xgh 4821", "id") == ("xgh 4821", 1.0)  # IDs are written in any case


def test_image_bigger_than_the_limit_is_refused_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.new("1", (9000, 9000), 1).save(path)
    with pytest.raises(UnreadableImage, match="too large"):
        list(iter_image_pages(path, Limits(max_megapixels=60)))
    assert len(list(iter_image_pages(path, Limits(max_megapixels=100)))) == 1


def test_too_many_tiff_pages_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "many.tif"
    frames = [Image.new("1", (200, 260), 1) for _ in range(6)]
    frames[0].save(path, save_all=True, append_images=frames[1:], compression="group4")
    with pytest.raises(UnreadableImage, match="too many pages"):
        list(iter_image_pages(path, Limits(max_pages=5)))


@pytest.mark.integration
def test_slim_latin_model_reads_diacritics_and_starts_fast(tmp_path: Path) -> None:
    import time

    eng = ocr.engine(tmp_path)
    if eng.lang != "Latin":
        pytest.skip("tesseract's Latin script data is not installed (apt-get install tesseract-ocr-script-latn)")
    assert (tmp_path / "tessdata" / "Latin.traineddata").stat().st_size < 5_000_000
    img = Image.new("L", (900, 120), 255)
    ImageDraw.Draw(img).text((20, 25), "Müller Gonçalves", fill=0, font=ImageFont.truetype(str(scans.VALUE_FONT), 42))
    t0 = time.perf_counter()
    words = ocr.run(np.asarray(img), eng=eng, psm=7)
    assert time.perf_counter() - t0 < 5
    assert " ".join(w.text for w in words) == "Müller Gonçalves"


def _zone(text: str, key: str = "insurance.primary.group_number", ftype: str = "id", px: int = 42) -> zonal.Zone:
    font = ImageFont.truetype(str(scans.VALUE_FONT), px)
    img = Image.new("L", (40 + px * len(text), px * 2), 255)
    ImageDraw.Draw(img).text((20, px // 3), text, font=font, fill=0)
    return zonal.Zone(key, ftype, np.asarray(img))


@pytest.mark.skipif(not Path("/usr/bin/tesseract").exists(), reason="tesseract is installed by ./run setup")
def test_a_q_in_an_id_is_not_taken_for_a_zero() -> None:
    eng = ocr.engine()
    fixed, plain = zonal._zero_tails([_zone("595Q7677"), _zone("5950767")],
                                     [zonal.Reading("59507677", 0.95), zonal.Reading("5950767", 0.95)],
                                     eng=eng, timeout=30)
    assert fixed is not None and fixed.text == "595Q7677"
    assert fixed.conf <= zonal.DISAGREED_CONF  # the models disagreed with the glyph: a person checks
    assert plain is None


def test_a_box_edge_read_before_a_capital_is_dropped_but_still_checked() -> None:
    assert zonal.tidy("tŁukasiewicz", "name") == ("Łukasiewicz", 0.5)
    assert zonal.tidy("Craig lOrtiz", "name") == ("Craig Ortiz", 0.5)
    assert zonal.tidy("McDonald", "name") == ("McDonald", 1.0)
    assert zonal.tidy("van der Berg", "name")[0] == "van der Berg"
    assert zonal.tidy("Sean 0'Connor-Hale", "name") == ("Sean O'Connor-Hale", 1.0)
    assert zonal.tidy("Tyler Nguyêñ", "name")[1] < 0.8 and zonal.tidy("Peña", "name")[1] == 1.0
    assert zonal.tidy("44845 Teresa field", "text")[1] < 0.8
    assert zonal.tidy("12 Avenue of the Americas", "text")[1] == 1.0


def test_a_state_read_with_a_digit_is_the_letter() -> None:
    from frontdesk.normalisers import norm_state

    assert norm_state("0K") == ("OK", None) and norm_state("1L") == ("IL", None)
    assert norm_state("0X")[1] is not None


def test_names_the_vietnamese_model_reads_with_other_marks_go_to_review() -> None:
    names = [zonal.Zone("a", "name", np.zeros((1, 1), np.uint8)), zonal.Zone("b", "name", np.zeros((1, 1), np.uint8)),
             zonal.Zone("c", "name", np.zeros((1, 1), np.uint8))]
    readings = {"a": zonal.Reading("Thåo Peña", 0.6), "b": zonal.Reading("Joseph O'Neil", 0.9),
                "c": zonal.Reading("Pham", 0.92)}
    zonal._merge_names(readings, names, [zonal.Reading("Thảo Peña", 0.92), zonal.Reading('Joseph 0"NeiL', 0.72),
                                         zonal.Reading("Phạm", 0.9)])
    assert readings["a"].conf <= zonal.DISAGREED_CONF  # Thåo or Thảo: a person decides
    assert readings["b"] == zonal.Reading("Joseph O'Neil", 0.9)  # not Vietnamese: the Latin reading stands
    assert readings["c"].conf <= zonal.DISAGREED_CONF  # marks the Latin model may have dropped


def test_an_email_with_a_marked_letter_is_read_again() -> None:
    from frontdesk.normalisers import norm_email

    assert norm_email("zwilliamsę@example.com")[1] is not None
    assert norm_email("Z.Williams+clinic@example.co.uk") == ("z.williams+clinic@example.co.uk", None)
