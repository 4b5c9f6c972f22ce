"""Bad input never crashes: one clear line naming the file and the reason, exit code 2."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pypdf import PdfWriter
from reportlab.pdfgen import canvas

from tests.conftest import HOSTILE_PDFS, ROOT, run_cli

TEMPLATE = ROOT / "templates" / "forms" / "new_patient_intake.pdf"


def make_bad_inputs(folder: Path) -> dict[str, Path]:
    """The four kinds of unreadable file staff actually produce."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "not_pdf": folder / "scan-0001.pdf",
        "empty": folder / "scan-0002.pdf",
        "encrypted": folder / "scan-0003.pdf",
        "truncated": folder / "scan-0004.pdf",
    }
    files["not_pdf"].write_text("Dear Dr. Smith,\nplease find attached ...\n")
    files["empty"].write_bytes(b"")
    w = PdfWriter(clone_from=TEMPLATE)
    w.encrypt("s3cret", algorithm="AES-256")
    w.write(files["encrypted"])
    data = TEMPLATE.read_bytes()
    files["truncated"].write_bytes(data[: len(data) // 2])
    return files


def make_unknown_pdf(path: Path) -> Path:
    c = canvas.Canvas(str(path))
    c.drawString(72, 720, "Quarterly newsletter of the county medical society")
    c.drawString(72, 700, "Parking on Elm Street will be closed for repairs next week.")
    c.save()
    return path


@pytest.mark.parametrize(("kind", "reason"), [
    ("not_pdf", "not a PDF"), ("empty", "empty file"),
    ("encrypted", "password-protected"), ("truncated", "damaged or truncated"),
])
def test_unreadable_input_gives_one_line_and_exit_2(tmp_path: Path, kind: str, reason: str) -> None:
    path = make_bad_inputs(tmp_path)[kind]
    proc = run_cli("extract", str(path), "--json")
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert str(path) in lines[0] and reason in lines[0]


def test_missing_file_is_bad_input(tmp_path: Path) -> None:
    proc = run_cli("extract", str(tmp_path / "nowhere.pdf"))
    assert proc.returncode == 2 and "file not found" in proc.stderr


def test_readable_pdf_matching_no_template_is_unknown_not_an_error(tmp_path: Path) -> None:
    import json

    proc = run_cli("extract", str(make_unknown_pdf(tmp_path / "letter.pdf")), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["document_type"] == "unknown" and out["form"] is None
    assert {"code": "form.unrecognised", "severity": "error"}.items() <= out["flags"][0].items()


HOSTILE = sorted(HOSTILE_PDFS.rglob("*.pdf")) if HOSTILE_PDFS.is_dir() else []


@pytest.mark.integration
@pytest.mark.skipif(not HOSTILE, reason="../shared/corpora/hostile-pdfs is not beside the checkout")
def test_every_hostile_pdf_is_read_or_refused_within_60s() -> None:
    assert len(HOSTILE) >= 150

    def one(path: Path) -> tuple[Path, int, str]:
        proc = run_cli("extract", str(path), "--json", timeout=60)
        return path, proc.returncode, proc.stderr

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(one, HOSTILE))
    problems = []
    for path, rc, err in results:
        if rc not in (0, 2) or "Traceback" in err:
            problems.append(f"{path.name}: exit {rc}: {err[-300:]}")
        elif rc == 2:
            lines = err.strip().splitlines()
            if len(lines) != 1 or str(path) not in lines[0]:
                problems.append(f"{path.name}: error is not one line naming the file: {err[:300]}")
    assert not problems, "\n".join(problems)
    readable = sum(1 for _, rc, _ in results if rc == 0)
    assert readable > 0 and readable < len(results)  # some are valid PDFs, many are not
