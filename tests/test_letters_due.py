"""A letter LibreOffice could not convert is not lost: its document is filed, and the next run writes it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from frontdesk import convert
from frontdesk.intake import process_batch
from frontdesk.pipeline import Pipeline
from tests.fixtures.generator import generate

pytestmark = pytest.mark.integration


def test_a_letter_that_fails_to_convert_is_written_by_the_next_run(
        tmp_path: Path, settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    inbox = tmp_path / "inbox"
    generate(inbox, 2, seed=21, kinds=("digital",), scenarios=("member_id_blank",))
    (inbox / "truth.json").unlink()
    real = convert.docx_to_pdf

    def one_hangs(docs: list[Path], out_dir: Path, **kw: Any) -> list[Path]:
        good = real(docs[1:], out_dir, **kw)
        raise convert.BatchConversionError({docs[0]: "timed out after 120 s"}, good)

    monkeypatch.setattr(convert, "docx_to_pdf", one_hangs)
    first = process_batch([inbox], Pipeline(settings))
    assert [o.status for o in first] == ["needs_review", "needs_review"]
    assert sorted(len(o.letters) for o in first) == [0, 1]  # both filed; one letter written, one still due

    monkeypatch.setattr(convert, "docx_to_pdf", real)
    pipeline = Pipeline(settings)
    report = pipeline.recover(force=True)
    assert report.letters_due == 1
    pipeline.send_letters([])
    second = process_batch([inbox], Pipeline(settings))  # the same files again: duplicates, each with its letter
    assert [o.status for o in second] == ["duplicate", "duplicate"]
    assert [len(o.letters) for o in second] == [1, 1]
