"""PDF conversion: batching, private profiles, timeouts, bad inputs, and real LibreOffice runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest
from docx import Document

from frontdesk import convert
from frontdesk.convert import BatchConversionError, docx_to_pdf, soffice_binary
from frontdesk.exceptions import ConversionError
from frontdesk.rendering import render_docx

ROOT = Path(__file__).resolve().parent.parent
HAVE_LIBREOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
needs_libreoffice = pytest.mark.skipif(not HAVE_LIBREOFFICE, reason="LibreOffice is not installed")


def make_letter(path: Path, *lines: str) -> Path:
    doc = Document()
    for line in lines:
        doc.add_paragraph(line)
    doc.save(str(path))
    return path


def broken_inside(path: Path, good: Path) -> Path:
    """A valid zip with the .docx layout whose document XML is garbage: only LibreOffice can tell."""
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(path, "w") as target:
        for name in source.namelist():
            target.writestr(name, b"<<<not xml" if name == "word/document.xml" else source.read(name))
    return path


def pdf_text(pdf: Path) -> str:
    return subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout


# --- a fake soffice, to test process handling without LibreOffice ---------------------------------

FAKE_SOFFICE = """#!{python}
import json, os, subprocess, sys, time, zipfile
from pathlib import Path
log = Path(os.environ["FAKE_LOG"])
args = sys.argv[1:]
profile = next(a.split("=", 1)[1] for a in args if a.startswith("-env:UserInstallation="))
outdir = Path(args[args.index("--outdir") + 1])
inputs = [a for a in args if a.endswith(".docx")]
mode = os.environ.get("FAKE_MODE", "ok")
record = {{"pid": os.getpid(), "home": os.environ["HOME"], "profile": profile, "inputs": inputs}}
if mode == "hang":
    child = subprocess.Popen(["sleep", "300"])
    record["child"] = child.pid
if mode == "barrier":  # wait (up to 20 s) until another call has started: proves calls overlap
    gate = Path(os.environ["FAKE_GATE"])
    (gate / str(os.getpid())).touch()
    deadline = time.time() + 20
    while len(list(gate.iterdir())) < 2 and time.time() < deadline:
        time.sleep(0.05)
    record["saw_other"] = len(list(gate.iterdir())) >= 2
with log.open("a") as handle:
    handle.write(json.dumps(record) + "\\n")
if mode == "hang":
    time.sleep(300)
for name in inputs:
    body = zipfile.ZipFile(name).read("word/document.xml")
    target = outdir / (Path(name).stem + ".pdf")
    if mode == "garbage":
        target.write_bytes(b"<html>not a pdf</html>")
    elif mode == "truncated":
        target.write_bytes(b"%PDF-1.4\\n" + body[:20])
    elif b"fail-me" not in body:
        target.write_bytes(b"%PDF-1.4\\n% " + str(len(body)).encode() + b"\\ntrailer\\n%%EOF\\n")
"""


@pytest.fixture
def fake_soffice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put a scripted 'soffice' first on PATH; returns the log it writes one JSON line per call to."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "soffice"
    script.write_text(FAKE_SOFFICE.format(python=sys.executable))
    script.chmod(0o755)
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin")
    monkeypatch.setenv("FAKE_LOG", str(log))
    convert.keep_warm(False)  # an office another test's dispatcher left running would take the calls
    return log


def calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_soffice_binary_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConversionError, match="LibreOffice"):
        soffice_binary()


def test_soffice_binary_found(fake_soffice: Path) -> None:
    assert Path(soffice_binary()).name == "soffice"


def test_empty_batch_does_nothing(tmp_path: Path) -> None:
    assert docx_to_pdf([], tmp_path / "out") == []


def test_batch_is_one_call_with_private_profile_and_input_order(tmp_path: Path, fake_soffice: Path) -> None:
    docs = [make_letter(tmp_path / f"{name}.docx", name) for name in ("c", "a", "b")]
    out = tmp_path / "out"
    pdfs = docx_to_pdf([*docs, docs[0]], out)
    assert pdfs == [out / "c.pdf", out / "a.pdf", out / "b.pdf", out / "c.pdf"]
    assert all(p.read_bytes().startswith(b"%PDF") for p in pdfs)
    assert sorted(p.name for p in out.iterdir()) == ["a.pdf", "b.pdf", "c.pdf"]  # work dir cleaned up
    (call,) = calls(fake_soffice)
    assert len(call["inputs"]) == 3  # the repeated input is converted once
    assert all(not Path(i).stem.startswith(("a", "b", "c")) for i in call["inputs"])  # neutral names
    assert call["profile"] == Path(call["home"]).as_uri()
    assert not Path(call["home"]).exists()  # the profile is removed afterwards


def test_large_batches_are_chunked_with_fresh_profiles(tmp_path: Path, fake_soffice: Path) -> None:
    docs = [make_letter(tmp_path / f"letter{i}.docx", str(i)) for i in range(5)]
    pdfs = docx_to_pdf(docs, tmp_path / "out", chunk_size=2)
    assert [p.stem for p in pdfs] == [d.stem for d in docs]
    log = calls(fake_soffice)
    assert [len(c["inputs"]) for c in log] == [2, 2, 1]
    assert len({c["profile"] for c in log}) == 3


def test_workers_convert_chunks_side_by_side_with_own_profiles(
    tmp_path: Path, fake_soffice: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    monkeypatch.setenv("FAKE_MODE", "barrier")
    monkeypatch.setenv("FAKE_GATE", str(gate))
    docs = [make_letter(tmp_path / f"letter{i}.docx", str(i)) for i in range(20)]
    pdfs = docx_to_pdf(docs, tmp_path / "out", workers=2)
    assert [p.stem for p in pdfs] == [d.stem for d in docs]
    log = calls(fake_soffice)
    assert sorted(len(c["inputs"]) for c in log) == [10, 10]  # one chunk would have left a core idle
    assert all(c["saw_other"] for c in log)  # both LibreOffice calls were running at the same time
    assert len({c["profile"] for c in log}) == 2


def test_chunks_are_even_and_one_per_worker_when_there_is_enough_work() -> None:
    docs = [Path(f"{i}.docx") for i in range(130)]
    assert [len(c) for c in convert._split(docs, 50, 1)] == [44, 44, 42]
    assert [len(c) for c in convert._split(docs, 50, 2)] == [33, 33, 33, 31]
    assert [len(c) for c in convert._split(docs[:10], 50, 2)] == [10]  # too little to be worth two starts
    assert [len(c) for c in convert._split(docs[:16], 50, 2)] == [8, 8]
    with pytest.raises(ValueError):
        docx_to_pdf(docs, Path("out"), workers=0)


def test_hang_kills_process_group_retries_once_then_names_files(
    tmp_path: Path, fake_soffice: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_MODE", "hang")
    docs = [make_letter(tmp_path / "slow-one.docx", "x"), make_letter(tmp_path / "slow-two.docx", "y")]
    started = time.monotonic()
    with pytest.raises(ConversionError) as caught:
        docx_to_pdf(docs, tmp_path / "out", timeout=1.5)
    assert time.monotonic() - started < 30
    assert "slow-one.docx" in str(caught.value) and "slow-two.docx" in str(caught.value)
    log = calls(fake_soffice)
    assert len(log) == 2  # first try and one retry
    time.sleep(0.2)
    for call in log:
        for pid in (call["pid"], call["child"]):
            assert (
                not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
            )


@pytest.mark.parametrize("mode", ["garbage", "truncated"])
def test_output_that_is_not_a_complete_pdf_is_an_error(
    tmp_path: Path, fake_soffice: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setenv("FAKE_MODE", mode)
    doc = make_letter(tmp_path / "letter.docx", "x")
    out = tmp_path / "out"
    with pytest.raises(ConversionError, match="letter.docx"):
        docx_to_pdf([doc], out)
    assert list(out.iterdir()) == []


def test_skipped_documents_are_isolated_and_named(tmp_path: Path, fake_soffice: Path) -> None:
    good = [make_letter(tmp_path / f"good{i}.docx", str(i)) for i in range(3)]
    bad = make_letter(tmp_path / "refused.docx", "fail-me")
    with pytest.raises(BatchConversionError) as caught:
        docx_to_pdf([good[0], bad, good[1], good[2]], tmp_path / "out")
    assert list(caught.value.failed) == [bad]
    assert "refused.docx" in str(caught.value)
    assert [p.name for p in caught.value.converted] == ["good0.pdf", "good1.pdf", "good2.pdf"]
    assert [len(c["inputs"]) for c in calls(fake_soffice)] == [4, 1]  # the batch, then the straggler alone


def test_non_docx_inputs_never_reach_libreoffice(tmp_path: Path, fake_soffice: Path) -> None:
    good = make_letter(tmp_path / "fine.docx", "x")
    (tmp_path / "empty.docx").write_bytes(b"")
    (tmp_path / "text.docx").write_text("just text")
    (tmp_path / "cut.docx").write_bytes(good.read_bytes()[:500])
    bad = [tmp_path / "empty.docx", tmp_path / "text.docx", tmp_path / "cut.docx", tmp_path / "gone.docx"]
    with pytest.raises(BatchConversionError) as caught:
        docx_to_pdf([bad[0], good, *bad[1:]], tmp_path / "out")
    assert list(caught.value.failed) == bad
    for path in bad:
        assert path.name in str(caught.value)
    assert [p.name for p in caught.value.converted] == ["fine.pdf"]
    assert [len(c["inputs"]) for c in calls(fake_soffice)] == [1]


def test_two_inputs_with_the_same_name_are_refused(tmp_path: Path, fake_soffice: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    docs = [make_letter(tmp_path / d / "letter.docx", d) for d in ("a", "b")]
    with pytest.raises(ConversionError, match="letter.pdf"):
        docx_to_pdf(docs, tmp_path / "out")
    assert calls(fake_soffice) == []


# --- real LibreOffice ----------------------------------------------------------------------------


@pytest.mark.integration
@needs_libreoffice
def test_three_letters_in_one_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    names = ["Ada Lovelace", "Grace Hopper", "Katherine Johnson"]
    docs = [make_letter(tmp_path / f"letter{i}.docx", "Dear patient,", name) for i, name in enumerate(names)]
    runs: list[int] = []
    real_run = convert._run_soffice

    def counting_run(*args, **kwargs):  # type: ignore[no-untyped-def]
        runs.append(len(args[1]))
        return real_run(*args, **kwargs)

    monkeypatch.setattr(convert, "_run_soffice", counting_run)
    pdfs = docx_to_pdf(docs, tmp_path / "out")
    assert runs == [3]
    assert [p.name for p in pdfs] == ["letter0.pdf", "letter1.pdf", "letter2.pdf"]
    for pdf, name in zip(pdfs, names, strict=True):
        assert pdf.read_bytes().startswith(b"%PDF")
        assert name in pdf_text(pdf)


@pytest.mark.integration
@needs_libreoffice
def test_concurrent_batches_in_threads(tmp_path: Path) -> None:
    results: dict[str, list[Path]] = {}
    errors: list[BaseException] = []

    def batch(tag: str) -> None:
        try:
            folder = tmp_path / tag
            folder.mkdir()
            docs = [make_letter(folder / f"{tag}{i}.docx", f"Patient {tag.upper()}{i}") for i in range(2)]
            results[tag] = docx_to_pdf(docs, folder / "out")
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=batch, args=(tag,)) for tag in ("left", "right")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors
    for tag in ("left", "right"):
        assert len(results[tag]) == 2
        for i, pdf in enumerate(results[tag]):
            assert f"Patient {tag.upper()}{i}" in pdf_text(pdf)


@pytest.mark.integration
@needs_libreoffice
def test_corrupt_docx_is_named_and_the_rest_still_convert(tmp_path: Path) -> None:
    good = [make_letter(tmp_path / f"good{i}.docx", f"Recipient {i}") for i in range(2)]
    corrupt = broken_inside(tmp_path / "corrupt.docx", good[0])
    not_a_zip = tmp_path / "scrambled.docx"
    not_a_zip.write_bytes(b"\x00\x01 scrambled bytes")
    with pytest.raises(ConversionError) as caught:
        docx_to_pdf([good[0], corrupt, not_a_zip, good[1]], tmp_path / "out")
    error = caught.value
    assert isinstance(error, BatchConversionError)
    assert "corrupt.docx" in str(error) and "scrambled.docx" in str(error)
    assert "good0" not in str(error) and "good1" not in str(error)
    assert [p.name for p in error.converted] == ["good0.pdf", "good1.pdf"]
    for i, pdf in enumerate(error.converted):
        assert f"Recipient {i}" in pdf_text(pdf)
    assert not (tmp_path / "out" / "corrupt.pdf").exists()


@pytest.mark.integration
@needs_libreoffice
def test_missing_insurance_letter_end_to_end(tmp_path: Path) -> None:
    context = {
        "practice": {
            "name": "Harbor & Main Family Practice",
            "address_lines": ["1 Main St", "Springfield, IL 62704"],
            "phone": "(217) 555-0142",
        },
        "letter_date": "November 29, 2026",
        "patient": {
            "full_name": "Sean O'Neil & Sons <Jr>",
            "first_name": "Sean",
            "address_lines": ["48 Linden Avenue", "Springfield, IL 62702"],
        },
        "missing_items": ["Member ID", "Name of the policy holder"],
        "reference": "FD-3K9QX2",
    }
    template = ROOT / "templates" / "letters" / "missing_insurance.docx"
    letter = render_docx(template, context, tmp_path / "FD-3K9QX2.docx")
    (pdf,) = docx_to_pdf([letter], tmp_path / "out")
    text = pdf_text(pdf)
    for expected in (
        "Sean O'Neil & Sons <Jr>",
        "Dear Sean,",
        "Member ID",
        "Name of the policy holder",
        "Reference: FD-3K9QX2",
        "Harbor & Main Family Practice",
        "November 29, 2026",
    ):
        assert expected in text
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert "Pages:           1" in info
    assert "612 x 792" in info  # US Letter
