"""Exactly once: a file is one document however often it arrives, and a crash at any point of filing is
repaired by the next run without a duplicate object or an orphan record."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from frontdesk import records
from frontdesk.db.models import Arrival, Document, Letter, StoredObjectRow
from frontdesk.intake import process_batch
from frontdesk.pipeline import Pipeline
from frontdesk.records import verify_storage
from tests.fixtures.generator import Case, generate
from tests.s3server import settings_for

pytest_plugins = ["tests.conftest_s3"]

NO_LETTER = ("complete", "self_pay", "unsigned")


class Crash(BaseException):
    """Stands in for the process dying: not an Exception, so nothing on the way catches it."""


def make_inbox(tmp_path: Path, n: int, seed: int, scenarios: tuple[str, ...] = NO_LETTER) -> list[Case]:
    cases = generate(tmp_path / "inbox", n, seed=seed, scenarios=scenarios)
    (tmp_path / "inbox" / "truth.json").unlink()
    return cases


def count(pipeline: Pipeline, model: Any, *where: Any) -> int:
    with pipeline.db.begin() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def stored_keys(settings: Any, suffix: str) -> list[str]:
    root = settings.storage.root
    return sorted(p.relative_to(root).as_posix() for p in root.rglob(f"*{suffix}") if p.is_file())


def assert_consistent(pipeline: Pipeline) -> None:
    report = verify_storage(pipeline.db, pipeline.storage)
    assert report.ok, report.as_dict()


def test_the_same_50_files_twice_make_50_documents_and_50_originals(tmp_path: Path, db_url: str) -> None:
    n = 50 if db_url.startswith("sqlite") else 16  # PostgreSQL: the same paths, fewer files
    cases = make_inbox(tmp_path, n, seed=50)
    shutil.copy(cases[0].path, tmp_path / "inbox" / "zz-copy-of-first.pdf")  # same bytes, other name
    settings = settings_for(tmp_path, db_url)

    first = process_batch([tmp_path / "inbox"], Pipeline(settings))
    assert len(first) == n + 1
    by_name = {Path(o.input).name: o for o in first}
    copy = by_name.pop("zz-copy-of-first.pdf")
    assert copy.status == "duplicate" and copy.record_id == by_name[cases[0].path.name].record_id
    assert {o.status for o in by_name.values()} <= {"filed", "needs_review"}

    pipeline = Pipeline(settings)
    second = process_batch([tmp_path / "inbox"], pipeline)
    assert [o.status for o in second] == ["duplicate"] * (n + 1)
    assert [o.record_id for o in second] == [o.record_id for o in first]
    for before, again in zip(first, second, strict=True):  # a duplicate tells where the document is
        if before.status != "duplicate":
            assert {s.key for s in again.stored} == {s.key for s in before.stored}
            assert again.document_type == before.document_type

    assert count(pipeline, Document) == n
    assert count(pipeline, Arrival) == 2 * (n + 1)
    assert count(pipeline, Arrival, Arrival.outcome == "duplicate") == n + 2
    assert len(stored_keys(settings, "/original.pdf")) == n
    assert len(stored_keys(settings, "/extraction.json")) == n
    assert count(pipeline, StoredObjectRow) == 2 * n
    assert_consistent(pipeline)


class CrashingStorage:
    """Delegates to a real storage and dies at the n-th put, before or after writing."""

    def __init__(self, inner: Any, at: int, after_write: bool) -> None:
        self.inner, self.at, self.after_write, self.puts = inner, at, after_write, 0

    def put_bytes(self, data: bytes, key: str, **kw: Any) -> Any:
        self.puts += 1
        if self.puts == self.at and not self.after_write:
            raise Crash(f"before writing {key}")
        obj = self.inner.put_bytes(data, key, **kw)
        if self.puts == self.at:
            raise Crash(f"after writing {key}")
        return obj

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def crash_in(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    def die(*args: Any, **kwargs: Any) -> None:
        raise Crash(name)

    monkeypatch.setattr(records, name, die)


CRASH_POINTS: dict[str, Callable[[pytest.MonkeyPatch, Pipeline], None]] = {
    "before-first-write": lambda mp, p: setattr(p, "storage", CrashingStorage(p.storage, 1, False)),
    "after-original": lambda mp, p: setattr(p, "storage", CrashingStorage(p.storage, 1, True)),
    "after-every-object": lambda mp, p: setattr(p, "storage", CrashingStorage(p.storage, 2, True)),
    "while-recording": lambda mp, p: crash_in(mp, "complete_document"),
}


@pytest.mark.parametrize("point", sorted(CRASH_POINTS))
def test_a_crash_while_filing_is_repaired_by_the_next_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          point: str, db_url: str) -> None:
    make_inbox(tmp_path, 3, seed=7, scenarios=("complete",))
    settings = settings_for(tmp_path, db_url)
    crashing = Pipeline(settings)
    with monkeypatch.context() as mp:
        CRASH_POINTS[point](mp, crashing)
        with pytest.raises(Crash):
            process_batch([tmp_path / "inbox"], crashing)
    crashing.db.dispose()
    report = verify_storage(Pipeline(settings).db, Pipeline(settings).storage)
    assert not report.ok and report.pending_documents  # the crash is visible, not silent
    assert report.orphans == []  # every object written has its record already

    pipeline = Pipeline(settings)
    outcomes = process_batch([tmp_path / "inbox"], pipeline)
    assert [o.status for o in outcomes] == ["filed"] * 3
    assert count(pipeline, Document) == 3 and count(pipeline, Document, Document.state != "complete") == 0
    assert len(stored_keys(settings, "/original.pdf")) == 3
    assert count(pipeline, StoredObjectRow) == 6
    assert_consistent(pipeline)
    with pipeline.db.begin() as s:
        resumed = s.scalars(select(Arrival).where(Arrival.outcome == "resumed")).all()
        assert len(resumed) == 1


def test_a_pending_document_is_completed_from_where_its_file_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  db_url: str) -> None:
    """The next run completes it even when that run is about other files."""
    cases = make_inbox(tmp_path, 1, seed=9, scenarios=("complete",))
    settings = settings_for(tmp_path, db_url)
    with monkeypatch.context() as mp:
        crash_in(mp, "complete_document")
        with pytest.raises(Crash):
            process_batch([cases[0].path], Pipeline(settings))
    pipeline = Pipeline(settings)
    assert process_batch([], pipeline) == []
    assert count(pipeline, Document, Document.state == "complete") == 1
    assert_consistent(pipeline)


def test_a_pending_document_whose_file_is_gone_waits_for_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            db_url: str) -> None:
    cases = make_inbox(tmp_path, 1, seed=10, scenarios=("complete",))
    settings = settings_for(tmp_path, db_url)
    with monkeypatch.context() as mp:
        crash_in(mp, "complete_document")
        with pytest.raises(Crash):
            process_batch([cases[0].path], Pipeline(settings))
    elsewhere = tmp_path / "rescanned.pdf"
    cases[0].path.rename(elsewhere)
    pipeline = Pipeline(settings)
    assert pipeline.recover().documents_still_pending == 1
    report = verify_storage(pipeline.db, pipeline.storage)
    assert report.pending_documents and report.orphans == [] and report.missing == []
    outcome = process_batch([elsewhere], Pipeline(settings))[0]  # handed in again, under another name
    assert outcome.status == "filed"
    assert_consistent(pipeline)


def test_two_runs_at_once_make_one_document_each(tmp_path: Path) -> None:
    """Two processes (e.g. a watcher and a manual run) handed the same files at the same time."""
    import subprocess
    import sys

    make_inbox(tmp_path, 6, seed=12)
    env = _env(tmp_path, f"sqlite:///{tmp_path / 'fd.db'}")
    script = ("import sys; from pathlib import Path; from frontdesk.settings import load_settings; "
              "from frontdesk.intake import process_batch; from frontdesk.pipeline import Pipeline; "
              "print(len(process_batch([Path(sys.argv[1])], Pipeline(load_settings()))))")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "inbox")], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-2000:]
    settings = settings_for(tmp_path, env["FRONTDESK_DATABASE_URL"])
    pipeline = Pipeline(settings)
    assert count(pipeline, Document) == 6
    assert len(stored_keys(settings, "/original.pdf")) == 6
    assert_consistent(pipeline)


def _env(tmp_path: Path, db_url: str) -> dict[str, str]:
    import os

    env = dict(os.environ)
    env.update({"FRONTDESK_STORAGE__ROOT": str(tmp_path / "storage"), "FRONTDESK_STORAGE__SPOOL": str(tmp_path / "spool"),
                "FRONTDESK_DATABASE_URL": db_url, "FRONTDESK_INBOX": str(tmp_path / "inbox"),
                "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    return env


# --- letters (LibreOffice) ------------------------------------------------------------------------------

LETTER_CRASHES: dict[str, Callable[[pytest.MonkeyPatch, Pipeline], None]] = {
    "before-letters": lambda mp, p: mp.setattr(p, "send_letters", lambda works: (_ for _ in ()).throw(Crash())),
    "before-letter-write": lambda mp, p: setattr(p, "storage", CrashingStorage(p.storage, 3, False)),
    "after-letter-write": lambda mp, p: setattr(p, "storage", CrashingStorage(p.storage, 3, True)),
}


@pytest.mark.integration
@pytest.mark.parametrize("point", sorted(LETTER_CRASHES))
def test_a_crash_around_a_letter_leaves_exactly_one_letter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           point: str) -> None:
    cases = make_inbox(tmp_path, 1, seed=4, scenarios=("member_id_blank",))
    settings = settings_for(tmp_path, f"sqlite:///{tmp_path / 'fd.db'}")
    crashing = Pipeline(settings)
    with monkeypatch.context() as mp:
        LETTER_CRASHES[point](mp, crashing)
        with pytest.raises(Crash):
            process_batch([cases[0].path], crashing)
    pipeline = Pipeline(settings)
    again = process_batch([cases[0].path], pipeline)[0]
    assert again.status == "duplicate"  # the document was filed; only its letter was due
    assert len(again.letters) == 1 and again.letters[0].key.endswith("/letters/missing_insurance.pdf")
    assert count(pipeline, Letter) == 1
    assert len(stored_keys(settings, "/missing_insurance.pdf")) == 1
    assert count(pipeline, Document, Document.state == "complete") == 1
    assert_consistent(pipeline)
    third = process_batch([cases[0].path], Pipeline(settings))[0]  # and never a second letter
    assert third.status == "duplicate" and len(third.letters) == 1 and count(pipeline, Letter) == 1


def test_a_document_that_cannot_be_completed_does_not_block_the_others(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cases = make_inbox(tmp_path, 2, seed=13, scenarios=("complete",))
    settings = settings_for(tmp_path, f"sqlite:///{tmp_path / 'fd.db'}")
    with monkeypatch.context() as mp:
        crash_in(mp, "complete_document")
        with pytest.raises(Crash):
            process_batch([cases[0].path], Pipeline(settings))
    pipeline = Pipeline(settings)
    real = pipeline.reader.extract_all

    def reader_bug(path: Path) -> Any:
        if path == cases[0].path:
            raise RuntimeError("a reader bug on this one file")
        return real(path)

    monkeypatch.setattr(pipeline.reader, "extract_all", reader_bug)
    assert [o.status for o in process_batch([cases[1].path], pipeline)] == ["filed"]
    report = verify_storage(pipeline.db, pipeline.storage)
    assert len(report.pending_documents) == 1 and report.orphans == []
