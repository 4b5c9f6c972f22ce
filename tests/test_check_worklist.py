"""The worklist as staff see it: HTML grouped by provider and time with a READY/MISSING badge per row,
its PDF with one row per appointment, the CSV, and a PNG rendered by headless Chromium."""

from __future__ import annotations

import csv
import html
import io
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape

from frontdesk.checks.patients import InMemoryRecords
from frontdesk.checks.runner import CheckReport, run_check
from frontdesk.db import open_database
from frontdesk.settings import load_settings
from tests.fixtures.appointments import TIMEZONE, VISIT_DATE, generate

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


def settings_for(tmp: Path) -> Any:
    return load_settings(database_url=f"sqlite:///{tmp / 'frontdesk.db'}",
                         storage={"root": tmp / "storage", "spool": tmp / "spool"},
                         checks={"timezone": TIMEZONE, "output_dir": tmp / "out", "appointments_dir": tmp / "in"})


def two_runs(tmp: Path, n: int, *, pdf: bool) -> tuple[CheckReport, Any]:
    """A day checked twice, with one gap closed in between, so the page shows changes too."""
    from sqlalchemy import update

    from frontdesk.db.models import ExtractedField

    settings = settings_for(tmp)
    sc = generate(n, seed=7)
    db = open_database(settings)
    sc.load_into_db(db)
    path = sc.write_appointment_report(tmp / "appointments.csv")
    first = run_check(settings, VISIT_DATE, appointments_file=path, db=db, today=sc.today, render=False)
    fixed = [r for r in first.rows if "hipaa.unsigned" in r.codes][:3]
    with db.begin() as s:
        for r in fixed:
            s.execute(update(ExtractedField).where(ExtractedField.document_id == r.record.intake.document_id,  # type: ignore[union-attr]
                                                   ExtractedField.key == "consent.hipaa_acknowledgment")
                      .values(value=True))
    report = run_check(settings, VISIT_DATE, appointments_file=path, db=db, today=sc.today, pdf=pdf)
    db.dispose()
    return report, sc


def test_html_rows_badges_and_groups(tmp_path: Path) -> None:
    report, sc = two_runs(tmp_path, 200, pdf=False)
    page = Path(report.outputs["html"]).read_text(encoding="utf-8")
    rows = re.findall(r'<tr class="appointment (ready|missing)" data-appointment="([^"]+)"', page)
    assert len(rows) == 200 and {k for _, k in rows} == set(sc.expected())
    status = Counter(s for s, _ in rows)
    summary = report.summary()
    assert status == Counter({"ready": summary["ready"], "missing": summary["missing"]})
    assert page.count("&#10007; MISSING") == summary["missing"] and page.count("&#10003; READY") == summary["ready"]
    # Grouped by provider, each group in time order.
    order = [(r.appointment.provider, r.appointment.start) for r in report.rows]
    assert order == sorted(order, key=lambda x: (x[0].casefold(), x[1]))
    assert [html.unescape(g) for g in re.findall(r'<th colspan="5" class="group">([^<]+)<', page)] == sorted(
        {p for p, _ in order}, key=str.casefold)
    assert page.count("Resolved:") == 3 and "Since the last check (run 1): 3 resolved, 0 new" in page
    # Every sentence to say is on the page, in the row of its appointment.
    for r in report.rows:
        chunk = page.split(f'data-appointment="{r.appointment.key}"', 1)[1].split("</tr>", 1)[0]
        for f in r.findings:
            assert str(escape(f.message)) in chunk  # as Jinja escapes it


def test_names_are_escaped(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    p = tmp_path / "a.csv"
    p.write_text("Appt ID,Appt Date,Appt Time,Provider,Patient Name,DOB\n"
                 '1,03/03/2026,9:00 AM,Dr. <b>Kim</b> & Co,"O\'Neil & Sons <Jr>, <script>x</script>",01/02/1980\n',
                 encoding="utf-8")
    report = run_check(settings, VISIT_DATE, appointments_file=p, records=InMemoryRecords([]),
                       today=VISIT_DATE, pdf=False)
    page = Path(report.outputs["html"]).read_text(encoding="utf-8")
    assert "<script>" not in page and "<b>Kim</b>" not in page
    assert "O&#39;Neil &amp; Sons &lt;Jr&gt;" in page


def test_csv_has_one_row_per_appointment_and_is_spreadsheet_safe(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    p = tmp_path / "a.csv"
    p.write_text("Appt ID,Appt Date,Appt Time,Provider,Patient Name,DOB\n"
                 '1,03/03/2026,9:00 AM,=HYPERLINK(1),"Doe, Jane",01/02/1980\n'
                 '2,03/03/2026,9:10 AM,Dr. Kim,"Roe, Rick",01/02/1981\n', encoding="utf-8")
    report = run_check(settings, VISIT_DATE, appointments_file=p, records=InMemoryRecords([]),
                       today=VISIT_DATE, pdf=False)
    rows = list(csv.DictReader(io.StringIO(Path(report.outputs["csv"]).read_text(encoding="utf-8"))))
    assert [r["appointment_id"] for r in rows] == ["1", "2"]
    assert rows[0]["provider"] == "'=HYPERLINK(1)"
    assert rows[1]["status"] == "missing" and rows[1]["finding_codes"] == "intake.missing"


@pytest.mark.integration
@needs_chromium
def test_pdf_has_one_row_per_appointment_and_the_page_renders(tmp_path: Path) -> None:
    import pdfplumber

    report, sc = two_runs(tmp_path, 200, pdf=True)
    pdf = Path(report.outputs["pdf"])
    seen: Counter[str] = Counter()
    pages_of: dict[str, int] = {}
    with pdfplumber.open(pdf) as doc:
        n_pages = len(doc.pages)
        assert doc.pages[0].width > doc.pages[0].height  # letter landscape
        for i, page in enumerate(doc.pages):
            text = page.extract_text() or ""
            for key in re.findall(r"Appt (\d+)", text):
                seen[key] += 1
                pages_of[key] = i
            # No row is cut in two: every row on this page has its badge on this page too.
            assert len(re.findall(r"Appt \d+", text)) == text.count("READY") + text.count("MISSING")
    assert set(seen) == set(sc.expected()) and set(seen.values()) == {1}
    assert n_pages <= 30

    png = tmp_path / "worklist.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
                    f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1100",
                    f"--screenshot={png}", Path(report.outputs["html"]).as_uri()],
                   check=True, capture_output=True, timeout=120)
    import numpy as np
    from PIL import Image

    with Image.open(png) as im:
        assert im.size == (1400, 1100)
        rgb = np.asarray(im.convert("RGB")).astype(int)
    dark = int((rgb.sum(axis=2) < 300).sum())
    assert dark > 0.02 * 1400 * 1100  # text, not a blank page
    red = int(((rgb[..., 0] > 150) & (rgb[..., 1] < 60) & (rgb[..., 2] < 80)).sum())
    assert red > 500  # MISSING badges are solid red
    shutil.copy(png, tmp_path.parent / "worklist-latest.png")  # kept for a person to look at
