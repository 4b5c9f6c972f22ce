"""A LibreOffice kept running for a long-lived process: every call after the first is handed to it, the
PDFs are the same as from a cold call, a dead office is replaced, and none outlives its process."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from docx import Document

from frontdesk.convert import WarmOffice, docx_to_pdf

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not (shutil.which("soffice") or shutil.which("libreoffice")),
                                 reason="LibreOffice is not installed")]


def make_letter(path: Path, text: str) -> Path:
    doc = Document()
    doc.add_paragraph(text)
    doc.save(str(path))
    return path


def pdf_text(pdf: Path) -> str:
    return subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


def wait_until(cond, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    """A hang guard, not a timed assertion."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.1)


def test_calls_go_to_one_running_office_and_give_the_same_pdfs(tmp_path: Path) -> None:
    office = WarmOffice()
    try:
        pids = set()
        for batch in range(3):
            docs = [make_letter(tmp_path / f"b{batch}-{i}.docx", f"Letter {batch}-{i} for the front desk")
                    for i in range(3)]
            pdfs = docx_to_pdf(docs, tmp_path / f"out{batch}", office=office)
            assert [p.name for p in pdfs] == [f"b{batch}-{i}.pdf" for i in range(3)]
            for i, pdf in enumerate(pdfs):
                assert f"Letter {batch}-{i} for the front desk" in pdf_text(pdf)
            assert office.proc is not None
            pids.add(office.proc.pid)
        assert len(pids) == 1  # one LibreOffice served every call
    finally:
        office.close()
    assert office.proc is None and not office.root.exists()


def test_an_office_that_died_is_replaced_and_the_letters_still_come_out(tmp_path: Path) -> None:
    office = WarmOffice()
    try:
        first = docx_to_pdf([make_letter(tmp_path / "a.docx", "first")], tmp_path / "o1", office=office)
        assert "first" in pdf_text(first[0])
        assert office.proc is not None
        os.killpg(office.proc.pid, signal.SIGKILL)
        office.proc.wait()
        second = docx_to_pdf([make_letter(tmp_path / "b.docx", "second")], tmp_path / "o2", office=office)
        assert "second" in pdf_text(second[0])
        assert office.proc is not None and office.proc.poll() is None
    finally:
        office.close()


def test_an_office_started_from_a_passing_thread_keeps_running_after_it(tmp_path: Path) -> None:
    """Letters are written in a Prefect task's thread, which ends with its flow run; the office it
    started must keep serving the next run instead of being killed with that thread (and started again,
    seconds of CPU, for every batch)."""
    import threading

    office = WarmOffice()
    try:
        def letters() -> None:
            docx_to_pdf([make_letter(tmp_path / "a.docx", "first run")], tmp_path / "o1", office=office)

        thread = threading.Thread(target=letters)
        thread.start()
        thread.join()
        assert office.proc is not None
        pid, starts = office.proc.pid, office.starts
        time.sleep(0.5)  # a killed office would be a zombie by now
        assert alive(pid)
        second = docx_to_pdf([make_letter(tmp_path / "b.docx", "second run")], tmp_path / "o2", office=office)
        assert "second run" in pdf_text(second[0])
        assert office.proc.pid == pid and office.starts == starts
    finally:
        office.close()


def test_the_office_does_not_outlive_a_killed_process(tmp_path: Path) -> None:
    """A watcher worker killed with SIGKILL runs no clean-up; its LibreOffice must end anyway."""
    letter = make_letter(tmp_path / "a.docx", "kept warm")
    code = ("import sys; from pathlib import Path; from frontdesk import convert; o = convert.keep_warm(); "
            "convert.docx_to_pdf([Path(sys.argv[1])], Path(sys.argv[2])); print(o.proc.pid, flush=True); "
            "import time; time.sleep(600)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(letter), str(tmp_path / "out")], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout is not None
        office_pid = int(proc.stdout.readline())
        assert alive(office_pid) and (tmp_path / "out" / "a.pdf").exists()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        wait_until(lambda: not alive(office_pid))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
