"""The mail batch: layout and padding, exactly once, void and re-issue, held pieces, dry runs, crash
recovery, the lease, the CLI and the flow; and (integration) 100 mixed pieces rendered by LibreOffice whose
windows are read back by OCR."""

from __future__ import annotations

import io
import json
import os
import random
import threading
import unicodedata
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from reportlab.pdfgen.canvas import Canvas
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from frontdesk.db import Database, open_database
from frontdesk.db.letters_models import LetterLock, MailBatchDetail, MailPiece
from frontdesk.db.models import AuditEvent, Letter, MailBatch, MailItem, Statement, StoredObjectRow, utcnow
from frontdesk.letters.envelope import ENVELOPE
from frontdesk.letters.filing import MailBusyError, file_letter, file_statement, letters_lock
from frontdesk.letters.kinds import practice_block, sample_context
from frontdesk.letters.layout import read_manifest
from frontdesk.letters.mail import BatchStateError, mark_mailed, reissue_batch, run_mail, void_batch
from frontdesk.storage import open_storage
from tests.conftest import run_cli

STREETS = ("Linden Avenue", "Harbor Street", "Oak Street", "Maple Drive", "Lincoln Road")


@pytest.fixture
def env(settings: Any, tmp_path: Path) -> Iterator[tuple[Any, Database, Any]]:
    settings.mail.output_dir = tmp_path / "print"
    db = open_database(settings)
    yield settings, db, open_storage(settings)
    db.dispose()


def return_lines(settings: Any) -> list[str]:
    block = practice_block(settings)
    return [block["name"], *block["address_lines"]]


def pdf_bytes(settings: Any, name: str, lines: list[str], *, pages: int = 1, fits: bool = True,
              size: tuple[float, float] = (612, 792)) -> bytes:
    """A letter as a filed PDF: laid out for the windows (``fits``) or an old layout with the letterhead at
    the top left, where a window would show it."""
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=size, invariant=1)
    for page in range(pages):
        if page == 0:
            if fits:
                for rect, block, font in ((ENVELOPE.return_address, return_lines(settings), 9),
                                          (ENVELOPE.recipient_address, [name, *lines], 10)):
                    text = canvas.beginText()
                    text.setFont("Helvetica", font, font + 2)
                    text.setTextOrigin(rect.left * 72, 792 - rect.top * 72 - 2 - font)
                    for line in block:
                        text.textLine(line)
                    canvas.drawText(text)
            else:
                canvas.drawString(72, 792 - 72, "Riverside Family Medicine, 120 Main Street")
                canvas.drawString(72, 792 - 130, f"Dear {name},")
        canvas.drawString(72, 300, f"Letter body, page {page + 1}")
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def add_letter(settings: Any, db: Database, storage: Any, name: str, lines: list[str], *, kind: str = "welcome",
               pdf: bytes | None = None, context: bool = True) -> str:
    ctx = sample_context(kind)
    ctx["practice"] = practice_block(settings)
    ctx["patient"] = {"full_name": name, "first_name": name.split()[0], "address_lines": lines}
    with db.begin() as s:
        letter = Letter(kind=kind, status="pending", context=ctx if context else None)
        s.add(letter)
        s.flush()
        letter_id = letter.id
    if pdf is not None:
        file_letter(db, storage, letter_id, pdf)
    return letter_id


def add_statement(settings: Any, db: Database, storage: Any, name: str, lines: list[str], *,
                  pdf: bytes | None = None) -> str:
    ctx = sample_context("patient_statement")
    ctx["practice"] = practice_block(settings)
    ctx["guarantor"] = {"full_name": name, "address_lines": lines}
    with db.begin() as s:
        stm = Statement(status="pending", statement_date=date(2026, 11, 30), amount_due_cents=8500, context=ctx)
        s.add(stm)
        s.flush()
        stm_id = stm.id
    if pdf is not None:
        file_statement(db, storage, stm_id, pdf)
    return stm_id


def address(rnd: random.Random) -> list[str]:
    return [f"{rnd.randrange(1, 9999)} {rnd.choice(STREETS)}", f"Springfield, IL 627{rnd.randrange(100):02d}"]


def small_batch(settings: Any, db: Database, storage: Any) -> dict[str, str]:
    """Four mailable pieces (one needs an address sheet) and three that must be held back."""
    rnd = random.Random(1)
    ids = {}
    for key, name, pages, fits in (("a", "Dana O'Connor", 1, True), ("b", "Luis García-Núñez", 2, True),
                                   ("c", "Mei Chen", 3, False)):
        lines = address(rnd)
        ids[key] = add_letter(settings, db, storage, name, lines, pdf=pdf_bytes(settings, name, lines, pages=pages,
                                                                                fits=fits))
    lines = address(rnd)
    ids["s"] = add_statement(settings, db, storage, "Omar Haddad", lines,
                             pdf=pdf_bytes(settings, "Omar Haddad", lines, pages=2))
    ids["no_zip"] = add_letter(settings, db, storage, "Grace Kim", ["48 Linden Avenue", "Springfield, IL"],
                               pdf=pdf_bytes(settings, "Grace Kim", ["x"]))
    ids["no_data"] = add_letter(settings, db, storage, "Ravi Patel", address(rnd), context=False)
    lines = address(rnd)
    ids["a4"] = add_letter(settings, db, storage, "Ellen Brown", lines,
                           pdf=pdf_bytes(settings, "Ellen Brown", lines, size=(595, 842)))
    return ids


def count(db: Database, model: Any, *where: Any) -> int:
    with db.begin() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


# --- one batch ----------------------------------------------------------------------------------------------


def test_batch_pages_padding_records_and_exactly_once(env: tuple[Any, Database, Any]) -> None:
    from pypdf import PdfReader

    from frontdesk.records import verify_storage

    settings, db, storage = env
    ids = small_batch(settings, db, storage)
    summary = run_mail(db, storage, settings)
    held = {h.piece_id: h.code for h in summary.held}
    assert held == {ids["no_zip"]: "address.incomplete", ids["no_data"]: "piece.no_data",
                    ids["a4"]: "pdf.page_size"}
    assert summary.items == 4 and summary.address_sheets == 1
    batch_id = summary.batch_id
    assert batch_id is not None and summary.objects == {
        "batch": f"mail/{utcnow():%Y/%m}/{batch_id}/batch.pdf",
        "manifest": f"mail/{utcnow():%Y/%m}/{batch_id}/manifest.csv",
        "summary": f"mail/{utcnow():%Y/%m}/{batch_id}/summary.json"}

    pdf = PdfReader(io.BytesIO(storage.get_bytes(summary.objects["batch"])))
    rows = read_manifest(storage.get_bytes(summary.objects["manifest"]))
    assert len(rows) == 4 and {r["item_id"] for r in rows} == {ids["a"], ids["b"], ids["c"], ids["s"]}
    content = {ids["a"]: 1, ids["b"]: 2, ids["c"]: 3, ids["s"]: 2}
    sheets = {r["item_id"]: 2 if r["address_sheet"] == "yes" else 0 for r in rows}
    padding = sum(int(r["pages"]) - content[r["item_id"]] - sheets[r["item_id"]] for r in rows)
    assert len(pdf.pages) == sum(content.values()) + sum(sheets.values()) + padding == sum(int(r["pages"]) for r in rows)
    assert summary.pages == len(pdf.pages) and summary.sheets == len(pdf.pages) // 2
    page = 1
    for r in rows:
        assert int(r["first_page"]) == page and page % 2 == 1  # every piece starts on the front of a sheet
        page += int(r["pages"])
    sheet_row = next(r for r in rows if r["item_id"] == ids["c"])
    assert sheet_row["address_sheet"] == "yes" and "Address sheet" in pdf.pages[int(sheet_row["first_page"]) - 1].extract_text()

    with db.begin() as s:
        for key in ("a", "b", "c"):
            assert s.get(Letter, ids[key]).status == "queued"  # type: ignore[union-attr]
        assert s.get(Statement, ids["s"]).status == "queued"  # type: ignore[union-attr]
        for key in ("no_zip", "no_data", "a4"):
            assert s.get(Letter, ids[key]).status == "pending"  # type: ignore[union-attr]
        batch = s.get(MailBatch, batch_id)
        detail = s.get(MailBatchDetail, batch_id)
        assert batch is not None and batch.status == "submitted" and batch.storage_key == summary.objects["batch"]
        assert detail is not None and detail.held == 3 and "PostalMethods" in detail.placement
        roles = {r.key: r for r in s.scalars(select(StoredObjectRow).where(StoredObjectRow.mail_batch_id == batch_id))}
        assert set(roles) == set(summary.objects.values()) and all(r.state == "stored" for r in roles.values())
        audit_text = " ".join((e.detail or "") + (e.object_id or "") for e in s.scalars(select(AuditEvent)))
    assert verify_storage(db, storage).ok
    stored_summary = storage.get_bytes(summary.objects["summary"]).decode()
    for secret in ("O'Connor", "García", "Chen", "Haddad", "Linden", "Springfield"):
        assert secret not in stored_summary and secret not in audit_text
        assert all(secret not in key for key in summary.objects.values())
    for path in summary.print_files:
        assert Path(path).name.startswith(batch_id) and (os.stat(path).st_mode & 0o077) == 0

    again = run_mail(db, storage, settings)
    assert again.batch_id is None and again.items == 0 and len(again.held) == 3
    assert count(db, MailBatch) == 1 and count(db, MailItem) == 4


def test_kind_filter(env: tuple[Any, Database, Any]) -> None:
    settings, db, storage = env
    ids = small_batch(settings, db, storage)
    only_statements = run_mail(db, storage, settings, kind="statements")
    assert only_statements.by_kind == {"patient_statement": 1} and not only_statements.held
    letters = run_mail(db, storage, settings, kind="letters")
    assert letters.by_kind == {"welcome": 3} and {h.piece_id for h in letters.held} >= {ids["no_zip"]}
    with pytest.raises(ValueError):
        run_mail(db, storage, settings, kind="everything")


def test_dry_run_records_and_files_nothing(env: tuple[Any, Database, Any], tmp_path: Path) -> None:
    settings, db, storage = env
    small_batch(settings, db, storage)
    tables = (Letter, Statement, MailBatch, MailItem, MailPiece, StoredObjectRow, AuditEvent)
    before = [count(db, t) for t in tables]
    keys = sorted(storage.keys())
    dry = run_mail(db, storage, settings, dry_run=True, out_dir=tmp_path / "preview")
    assert dry.dry_run and dry.items == 4 and dry.batch_id is None and len(dry.held) == 3
    assert [count(db, t) for t in tables] == before and sorted(storage.keys()) == keys
    assert sorted(Path(p).name for p in dry.print_files) == ["dry-run-manifest.csv", "dry-run.pdf"]
    assert count(db, Letter, Letter.status == "queued") == 0


# --- void, re-issue, mailed -------------------------------------------------------------------------------------


def live_batches_of(db: Database, piece: str) -> list[str]:
    with db.begin() as s:
        return list(s.scalars(select(MailPiece.batch_id).where(MailPiece.live_piece == piece)))


def test_void_then_next_run_reissues_and_each_piece_is_in_one_live_batch(env: tuple[Any, Database, Any]) -> None:
    settings, db, storage = env
    ids = small_batch(settings, db, storage)
    first = run_mail(db, storage, settings)
    assert first.batch_id is not None
    pieces = void_batch(db, settings, first.batch_id, reason="printer jammed")
    assert set(pieces) == {ids["a"], ids["b"], ids["c"], ids["s"]}
    with db.begin() as s:
        assert s.get(MailBatch, first.batch_id).status == "void"  # type: ignore[union-attr]
        assert {i.status for i in s.scalars(select(MailItem).where(MailItem.batch_id == first.batch_id))} == {"void"}
        assert s.get(Letter, ids["a"]).status == "pending"  # type: ignore[union-attr]
        assert s.get(MailBatchDetail, first.batch_id).void_reason == "printer jammed"  # type: ignore[union-attr]
    with pytest.raises(BatchStateError):
        void_batch(db, settings, first.batch_id)
    second = run_mail(db, storage, settings)
    assert second.batch_id not in (None, first.batch_id) and second.items == 4
    for piece in pieces:
        assert live_batches_of(db, piece) == [second.batch_id]
    assert count(db, MailItem) == 8 and count(db, MailItem, MailItem.status != "void") == 4


def test_reissue_mails_exactly_the_voided_pieces(env: tuple[Any, Database, Any]) -> None:
    settings, db, storage = env
    ids = small_batch(settings, db, storage)
    first = run_mail(db, storage, settings, kind="letters")
    assert first.batch_id is not None
    rnd = random.Random(9)
    lines = address(rnd)
    newcomer = add_letter(settings, db, storage, "Kofi Mensah", lines, pdf=pdf_bytes(settings, "Kofi Mensah", lines))
    again = reissue_batch(db, storage, settings, first.batch_id, reason="reprint")
    assert again.reissue_of == first.batch_id and again.items == first.items
    with db.begin() as s:
        assert s.get(MailBatchDetail, again.batch_id).reissue_of == first.batch_id  # type: ignore[union-attr]
        assert s.get(Letter, newcomer).status == "pending"  # type: ignore[union-attr]  # not part of the re-issue
        assert s.get(Statement, ids["s"]).status == "pending"  # type: ignore[union-attr]  # never in the batch
    assert again.batch_id is not None
    assert mark_mailed(db, again.batch_id) == again.items
    with db.begin() as s:
        assert s.get(Letter, ids["a"]).status == "mailed"  # type: ignore[union-attr]
        assert s.get(MailBatch, again.batch_id).mailed_at is not None  # type: ignore[union-attr]
    with pytest.raises(BatchStateError, match="only a batch not yet mailed"):
        void_batch(db, settings, again.batch_id)
    with pytest.raises(BatchStateError):
        mark_mailed(db, again.batch_id)
    with pytest.raises(BatchStateError, match="no mail batch"):
        void_batch(db, settings, "mb-000000000000")


def test_the_database_refuses_a_piece_in_two_live_batches(env: tuple[Any, Database, Any]) -> None:
    settings, db, storage = env
    small_batch(settings, db, storage)
    first = run_mail(db, storage, settings)
    with db.begin() as s:
        mp = s.scalars(select(MailPiece).where(MailPiece.batch_id == first.batch_id)).first()
        assert mp is not None
        piece, kind = mp.piece_id, mp.kind
    with pytest.raises(IntegrityError), db.begin() as s:
        batch = MailBatch(status="open")
        s.add(batch)
        s.flush()
        item = MailItem(batch_id=batch.id, letter_id=piece if kind != "patient_statement" else None,
                        statement_id=piece if kind == "patient_statement" else None)
        s.add(item)
        s.flush()
        s.add(MailPiece(mail_item_id=item.id, batch_id=batch.id, piece_id=piece, live_piece=piece, kind=kind,
                        position=1, first_page=1, content_pages=1, address_sheet=False, blank_pages=1, pages=2,
                        sheets=1, envelope="#10", pdf_sha256="0" * 64))


# --- failures ---------------------------------------------------------------------------------------------------


def test_a_run_that_stops_after_claiming_is_finished_by_the_next(env: tuple[Any, Database, Any],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import frontdesk.letters.mail as mail

    settings, db, storage = env
    small_batch(settings, db, storage)
    real = mail.compose

    def crash(*args: Any, **kwargs: Any) -> bytes:
        raise OSError("power cut")

    monkeypatch.setattr(mail, "compose", crash)
    with pytest.raises(OSError):
        run_mail(db, storage, settings)
    with db.begin() as s:
        (batch,) = s.scalars(select(MailBatch))
        assert batch.status == "open"
        assert s.get(LetterLock, "mail") is None  # the lease is released even when the run fails
    monkeypatch.setattr(mail, "compose", real)
    summary = run_mail(db, storage, settings)
    assert summary.recovered == [batch.id] and summary.batch_id is None  # nothing else was pending
    with db.begin() as s:
        assert s.get(MailBatch, batch.id).status == "submitted"  # type: ignore[union-attr]
    assert count(db, MailBatch) == 1 and count(db, MailItem) == 4
    rows = read_manifest(storage.get_bytes(f"mail/{utcnow():%Y/%m}/{batch.id}/manifest.csv"))
    assert len(rows) == 4


def test_hostile_or_unknown_templates_hold_their_pieces_and_the_rest_goes_out(env: tuple[Any, Database, Any],
                                                                               tmp_path: Path) -> None:
    import shutil

    from docx import Document

    settings, db, storage = env
    letters = tmp_path / "letters"
    shutil.copytree(settings.letters_dir, letters)
    doc = Document(str(letters / "welcome.docx"))
    doc.add_paragraph("{{ cycler.__init__.__globals__.os.popen('touch pwned').read() }}")
    doc.save(str(letters / "welcome.docx"))
    settings.letters_dir = letters
    rnd = random.Random(3)
    hostile = add_letter(settings, db, storage, "Dana O'Connor", address(rnd))  # rendered by the run: refused
    unknown = add_letter(settings, db, storage, "Luis Garcia", address(rnd), kind="welcome")
    with db.begin() as s:
        s.get(Letter, unknown).kind = "birthday_card"  # type: ignore[union-attr]
    lines = address(rnd)
    fine = add_letter(settings, db, storage, "Mei Chen", lines, pdf=pdf_bytes(settings, "Mei Chen", lines))
    summary = run_mail(db, storage, settings)
    held = {h.piece_id: h for h in summary.held}
    assert held[hostile].code == "template.error" and "welcome.docx" in held[hostile].reason
    assert "refused" in held[hostile].reason and "O'Connor" not in held[hostile].reason
    assert held[unknown].code == "template.unknown"
    assert summary.items == 1 and live_batches_of(db, fine) == [summary.batch_id]
    assert not Path("pwned").exists() and not (tmp_path / "pwned").exists()


def test_changed_or_missing_pdfs_are_held(env: tuple[Any, Database, Any]) -> None:
    settings, db, storage = env
    ids = small_batch(settings, db, storage)
    with db.begin() as s:
        key = s.get(Letter, ids["a"]).storage_key  # type: ignore[union-attr]
    assert key is not None
    storage.backend.put_bytes(b"%PDF-1.4 tampered", key)  # behind the records' back
    summary = run_mail(db, storage, settings)
    assert {h.piece_id: h.code for h in summary.held}[ids["a"]] == "pdf.missing"


def test_the_lease_keeps_two_runs_apart_and_expires(env: tuple[Any, Database, Any]) -> None:
    settings, db, storage = env
    small_batch(settings, db, storage)
    with letters_lock(db, settings), pytest.raises(MailBusyError, match="another mail"):
        run_mail(db, storage, settings)
    assert count(db, MailBatch) == 0
    with db.begin() as s:  # a run that crashed long ago left its lease behind
        s.add(LetterLock(name="mail", holder="dead", acquired_at=utcnow() - timedelta(hours=3),
                         expires_at=utcnow() - timedelta(hours=2)))
    assert run_mail(db, storage, settings).items == 4


def test_two_runs_at_once_never_mail_a_piece_twice(tmp_path: Path, fd_env: dict[str, str]) -> None:
    import subprocess

    from tests.conftest import FRONTDESK

    env_vars = {**fd_env, "FRONTDESK_MAIL__OUTPUT_DIR": str(tmp_path / "print")}
    settings = _settings_from(env_vars)
    db = open_database(settings)
    small_batch(settings, db, open_storage(settings))
    runs = [subprocess.Popen([FRONTDESK, "mail", "--json"], env=env_vars, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outcomes = [run.communicate(timeout=300) + (run.returncode,) for run in runs]
    mailed = [json.loads(out)["items"] for out, _, code in outcomes if code == 0]
    busy = [err for _, err, code in outcomes if code != 0]
    assert sum(mailed) == 4 and all("another mail" in err for err in busy)
    with db.begin() as s:
        live = list(s.scalars(select(MailPiece.live_piece).where(MailPiece.live_piece.is_not(None))))
    assert len(live) == len(set(live)) == 4
    db.dispose()


def _settings_from(env_vars: dict[str, str]) -> Any:
    from frontdesk.settings import load_settings

    old = dict(os.environ)
    os.environ.update(env_vars)
    try:
        return load_settings()
    finally:
        os.environ.clear()
        os.environ.update(old)


# --- CLI -----------------------------------------------------------------------------------------------------------


def test_mail_cli(tmp_path: Path, fd_env: dict[str, str]) -> None:
    env_vars = {**fd_env, "FRONTDESK_MAIL__OUTPUT_DIR": str(tmp_path / "print")}
    settings = _settings_from(env_vars)
    db = open_database(settings)
    storage = open_storage(settings)
    small_batch(settings, db, storage)
    db.dispose()

    dry = run_cli("mail", "--dry-run", "--json", env=env_vars)
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["items"] == 4
    proc = run_cli("mail", "--kind", "letters", env=env_vars)
    assert proc.returncode == 0, proc.stderr
    assert "3 piece(s)" in proc.stdout and "held back (3)" in proc.stdout and "address.incomplete" in proc.stdout
    for secret in ("O'Connor", "Linden", "Grace Kim"):
        assert secret not in proc.stdout + proc.stderr
    listing = run_cli("mail", "--list", "--json", env=env_vars)
    (batch,) = json.loads(listing.stdout)
    assert batch["status"] == "submitted" and batch["items"] == 3
    assert run_cli("mail", "--void", batch["batch_id"], "--reissue", "--json", env=env_vars).returncode == 0
    listing = json.loads(run_cli("mail", "--list", "--json", env=env_vars).stdout)
    assert [b["status"] for b in listing] == ["submitted", "void"] and listing[0]["reissue_of"] == batch["batch_id"]
    mailed = run_cli("mail", "--mailed", listing[0]["batch_id"], env=env_vars)
    assert mailed.returncode == 0 and "3 piece(s)" in mailed.stdout
    bad = run_cli("mail", "--void", listing[0]["batch_id"], env=env_vars)
    assert bad.returncode == 1 and "mailed" in bad.stderr and "Traceback" not in bad.stderr
    assert run_cli("mail", "--reissue", env=env_vars).returncode == 2


# --- 100 mixed pieces through LibreOffice, read back by OCR ------------------------------------------------------

FIRST = ("Dana", "Luis", "Mei", "Omar", "Grace", "Tomasz", "Aisha", "Ravi", "Ellen", "Kofi", "Zoë", "José", "Inés",
         "Siobhán", "D'Andre", "Amara", "Yusuf", "Hana", "Pedro", "Olga")
LAST = ("Miller", "Garcia", "Chen", "Okafor", "Nowak", "Patel", "Smith", "Haddad", "Lindqvist", "Brown", "O'Neil",
        "Núñez", "D'Angelo", "Kowalski", "Schmidt", "Hernández", "Müller", "Jensen", "St. John", "Murphy")


def _ocr(image: Any, text_hint: str) -> list[str]:
    import subprocess
    import tempfile

    from PIL import ImageOps

    lang = "eng" if text_hint.isascii() else "Latin"  # tesseract's Latin script model reads accents
    framed = ImageOps.expand(image.convert("L"), border=24, fill=255)
    with tempfile.TemporaryDirectory() as tmp:  # tesseract itself, as extractors/ocr.py runs it
        png = Path(tmp) / "window.png"
        framed.save(png)
        text = subprocess.run(["tesseract", str(png), "stdout", "-l", lang, "--psm", "6"], capture_output=True,
                              text=True, check=True, env={**os.environ, "OMP_THREAD_LIMIT": "1"}).stdout
    return [" ".join(line.split()) for line in text.replace("’", "'").splitlines() if line.strip()]


def _fold(lines: list[str]) -> list[str]:
    """Lines without diacritics: tesseract reads "Đức" as "Đúc"; the letters themselves are checked exactly
    through the PDF text layer, OCR proves the addresses sit legibly in the windows."""
    return ["".join(ch for ch in unicodedata.normalize("NFKD", line) if not unicodedata.combining(ch))
            for line in lines]


def _blank_outside_windows(image: Any, dpi: int) -> bool:
    """No ink in the keep-clear area once the two window rectangles are painted over."""
    from PIL import ImageDraw

    area = image.convert("L").crop(ENVELOPE.keep_clear.pixels(dpi))
    draw = ImageDraw.Draw(area)
    for rect in (ENVELOPE.return_address, ENVELOPE.recipient_address):
        left, top, right, bottom = rect.pixels(dpi)
        draw.rectangle((left - 3, top - 3, right + 3, bottom + 3), fill=255)
    return area.point(lambda v: 255 if v > 200 else 0).getextrema()[0] == 255


@pytest.mark.integration
def test_hundred_mixed_pieces_read_back_through_the_windows(env: tuple[Any, Database, Any], tmp_path: Path) -> None:
    import pypdfium2 as pdfium

    from frontdesk.letters.filing import issue_statements
    from frontdesk.letters.statements import read_ledger
    from frontdesk.records import verify_storage
    from tests.fixtures.ledger import make_ledger

    settings, db, storage = env
    truth = make_ledger(tmp_path / "ledger.csv", accounts=34, seed=21, bad_accounts=0)
    run = issue_statements(db, storage, settings, read_ledger(tmp_path / "ledger.csv"), statement_date=date(2026, 11, 30))
    statements = len(run.issued)
    assert statements >= 20 and not run.render_failed
    rnd = random.Random(5)
    names = [f"{f} {last}" for f in FIRST for last in LAST]
    rnd.shuffle(names)
    kinds = ["missing_insurance", "incomplete_intake", "appointment_reminder", "welcome"]
    expected: dict[str, list[str]] = {}
    for index in range(100 - statements):
        name, lines = names[index], address(rnd)
        if index % 9 == 4:
            lines.insert(1, f"Apt {rnd.randrange(1, 40)}{rnd.choice('ABC')}")
        kind = kinds[index % 4]
        if index % 15 == 7:  # filed earlier with an old layout: needs an address sheet
            piece = add_letter(settings, db, storage, name, lines, kind=kind, pdf=pdf_bytes(settings, name, lines,
                                                                                        fits=False, pages=2))
        else:
            piece = add_letter(settings, db, storage, name, lines, kind=kind)
            if index % 10 == 3:  # a long checklist runs onto a second page
                with db.begin() as s:
                    letter = s.get(Letter, piece)
                    assert letter is not None and letter.context is not None
                    letter.context = {**letter.context, "missing_items": [
                        f"Please bring document number {n} of the list we discussed on the phone." for n in range(40)]}
        expected[piece] = [name, *lines]
    held_ids = [add_letter(settings, db, storage, "Nobody Home", ["PO Box", "Springfield"]),
                add_letter(settings, db, storage, "=cmd|' /C calc'!A0", ["=cmd|' /C calc'!A0"])]

    summary = run_mail(db, storage, settings)
    assert summary.items == 100 and {h.piece_id for h in summary.held} == set(held_ids)
    assert summary.by_kind["patient_statement"] == statements
    batch_pdf = storage.get_bytes(summary.objects["batch"])
    rows = read_manifest(storage.get_bytes(summary.objects["manifest"]))
    assert len(rows) == 100
    pdf = pdfium.PdfDocument(batch_pdf)
    with db.begin() as s:
        content = {}
        for row in rows:
            item = s.get(Letter, row["item_id"]) or s.get(Statement, row["item_id"])
            assert item is not None and item.storage_key is not None
            content[row["item_id"]] = len(pdfium.PdfDocument(storage.get_bytes(item.storage_key)))
    sheet_pages = sum(2 for r in rows if r["address_sheet"] == "yes")
    padding = sum(int(r["pages"]) for r in rows) - sum(content.values()) - sheet_pages
    assert len(pdf) == sum(content.values()) + sheet_pages + padding == summary.pages
    assert 0 <= padding <= 100 and any(v > 1 for v in content.values())
    assert sum(1 for r in rows if r["address_sheet"] == "yes") >= 4
    page = 1
    for r in rows:
        assert int(r["first_page"]) == page and page % 2 == 1
        assert int(r["pages"]) % 2 == 0 and int(r["sheets"]) == int(r["pages"]) // 2
        page += int(r["pages"])
    for account in truth.values():
        if account.billed(500):
            expected_stm = next(r for r in rows if r["recipient"] == account.guarantor)
            expected[expected_stm["item_id"]] = [account.guarantor, *account.address_lines]
    assert len(expected) == 100

    dpi = 300
    practice = return_lines(settings)
    pdfium_lock = threading.Lock()

    def read(row: dict[str, str]) -> tuple[str, list[str], list[str], bool, str]:
        """OCR of exactly the two window rectangles (stacked into one image: one tesseract call)."""
        from PIL import Image

        with pdfium_lock:  # PDFium is not thread-safe: render here, OCR side by side
            image = pdf[int(row["first_page"]) - 1].render(scale=dpi / 72).to_pil()
            text = pdf[int(row["first_page"]) - 1 + (2 if row["address_sheet"] == "yes" else 0)] \
                .get_textpage().get_text_range()
        recipient = [row["recipient"], *row["address"].split(" / ")]
        back_img = image.crop(ENVELOPE.return_address.pixels(dpi))
        to_img = image.crop(ENVELOPE.recipient_address.pixels(dpi))
        stacked = Image.new("RGB", (max(back_img.width, to_img.width), back_img.height + 60 + to_img.height), "white")
        stacked.paste(back_img, (0, 0))
        stacked.paste(to_img, (0, back_img.height + 60))
        lines = _ocr(stacked, " ".join([*recipient, *practice]))
        return row["item_id"], lines[len(practice):], lines[:len(practice)], _blank_outside_windows(image, dpi), text

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(read, rows))
    misread = []
    for (item, got, back, blank, text), row in zip(results, rows, strict=True):
        want = expected[item]
        assert [row["recipient"], *row["address"].split(" / ")] == want  # the manifest names the right person
        if _fold(got) != _fold(want) or back != practice:
            misread.append((item, got, want, back))
        assert blank, f"{item}: something besides the addresses shows through a window"
        assert unicodedata.normalize("NFC", want[0]) in unicodedata.normalize("NFC", " ".join(text.split()))
    assert not misread, misread[:3]
    assert verify_storage(db, storage).ok
    assert run_mail(db, storage, settings).items == 0


@pytest.mark.integration
def test_reminders_queued_by_the_previsit_check_are_mailed(env: tuple[Any, Database, Any], tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from frontdesk.checks.runner import run_check
    from tests.fixtures.appointments import TIMEZONE, TODAY, VISIT_DATE, generate

    settings, db, storage = env
    settings.checks.timezone = TIMEZONE
    scenario = generate(25, seed=4)
    scenario.load_into_db(db)
    export = tmp_path / "appointments.json"
    scenario.write_fhir(export)
    report = run_check(settings, VISIT_DATE, appointments_file=export, db=db, today=TODAY, render=False)
    assert report.reminders_queued > 0
    summary = run_mail(db, storage, settings, kind="letters")
    assert summary.by_kind.get("appointment_reminder") == report.reminders_queued
    assert not [h for h in summary.held if h.code.startswith(("template", "pdf"))]
    import pdfplumber

    with db.begin() as s:
        letters = list(s.scalars(select(Letter).where(Letter.kind == "appointment_reminder")))
        for letter in letters[:5]:
            assert letter.status == "queued" and letter.storage_key is not None and letter.context is not None
            with pdfplumber.open(io.BytesIO(storage.get_bytes(letter.storage_key))) as doc:
                text = " ".join((p.extract_text() or "") for p in doc.pages)
            appointment = letter.context["appointment"]
            assert appointment["date"] in " ".join(text.split()) and appointment["time"] in text
            for item in letter.context["missing_items"]:
                assert " ".join(item.split())[:30] in " ".join(text.split())


@pytest.mark.integration
def test_missing_insurance_letters_filed_by_intake_go_out_without_address_sheets(
        env: tuple[Any, Database, Any], tmp_path: Path) -> None:
    from frontdesk.intake import process_batch
    from frontdesk.pipeline import Pipeline
    from tests.fixtures.generator import generate

    settings, db, storage = env
    cases = generate(tmp_path / "inbox", 6, seed=12, kinds=["digital"], scenarios=["member_id_blank", "payer_blank"],
                     today=date(2026, 11, 2))
    outcomes = process_batch([c.path for c in cases], Pipeline(settings, storage=storage, db=db))
    filed = [o for o in outcomes if o.letters]
    assert filed
    summary = run_mail(db, storage, settings, kind="letters")
    complete = [h for h in summary.held if not h.code.startswith("address.")]
    assert not complete, complete  # only an incomplete address may hold a letter back
    assert summary.items + len(summary.held) == len(filed) and summary.items > 0
    assert summary.address_sheets == 0  # the shipped template puts both addresses in the windows
    rows = read_manifest(storage.get_bytes(summary.objects["manifest"]))
    with db.begin() as s:
        for row in rows:
            letter = s.get(Letter, row["item_id"])
            assert letter is not None and letter.kind == "missing_insurance" and letter.document_id is not None
            assert letter.storage_key is not None and letter.storage_key.startswith("documents/")
            assert row["recipient"] == letter.context["patient"]["full_name"]  # type: ignore[index]


@pytest.fixture(scope="module")
def prefect_harness() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.mark.integration
def test_mail_flow_reports_counts_only(prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.mail import mail_batch_flow
    from frontdesk.settings import load_settings

    for k, v in {"FRONTDESK_DATABASE_URL": f"sqlite:///{tmp_path / 'frontdesk.db'}",
                 "FRONTDESK_STORAGE__ROOT": str(tmp_path / "storage"), "FRONTDESK_STORAGE__SPOOL": str(tmp_path / "spool"),
                 "FRONTDESK_MAIL__OUTPUT_DIR": str(tmp_path / "print")}.items():
        monkeypatch.setenv(k, v)
    settings = load_settings()
    db = open_database(settings)
    small_batch(settings, db, open_storage(settings))
    db.dispose()
    result = mail_batch_flow()
    assert result["items"] == 4 and result["held_by_reason"] == {"address.incomplete": 1, "pdf.page_size": 1,
                                                                  "piece.no_data": 1}
    assert result["withdrawn"] == []  # nothing was taken out of a printed batch
    assert mail_batch_flow()["items"] == 0  # a second run mails nothing twice
    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["mail-batch"])))
    assert arts
    shown = " ".join(str(a.data) + (a.description or "") for a in arts) + json.dumps(result)
    for secret in ("O'Connor", "García", "Chen", "Haddad", "Linden", "Springfield", "Grace Kim"):
        assert secret not in shown
