"""Issue #15, the faults still open after tests/test_hardening.py: a lost database connection, the
100 + 5 crash batch, a hung reader under Dask, a full disk, review forms left behind, and validation
errors that would echo patient values."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import FRONTDESK
from tests.s3server import postgres_db
from tests.test_hardening import cli_env, good_pdfs, reasons, with_fault

pytest_plugins = ["tests.conftest_s3"]  # postgres_admin_url: FRONTDESK_TEST_POSTGRES_URL, or the session's own cluster


@pytest.fixture
def wsettings(settings, tmp_path: Path):  # type: ignore[no-untyped-def]
    s = settings.model_copy(deep=True)
    s.watch.ledger = tmp_path / "watch" / "ledger.sqlite"
    s.watch.stable_seconds = 0.0
    s.prefect.review = False
    return s


# ------------------------------------------------------------------------- the database goes away


@pytest.fixture
def pg_url(postgres_admin_url: str) -> Iterator[str]:
    """A database of this test's own on FRONTDESK_TEST_POSTGRES_URL's server, or the session's cluster."""
    yield from postgres_db(postgres_admin_url)


class Outage:
    """PostgreSQL going away under a running batch, as a restart does, on this test's database only
    (the server is shared): once ``after`` documents are complete, new connections are refused and every
    open one is terminated (``pg_terminate_backend``); ``seconds`` later connections are allowed again."""

    def __init__(self, url: str, admin_url: str, *, after: int, seconds: float) -> None:
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url
        from sqlalchemy.pool import NullPool

        self.name = make_url(url).database
        self.admin = create_engine(make_url(admin_url).set(drivername="postgresql+psycopg"), poolclass=NullPool,
                                   isolation_level="AUTOCOMMIT")
        self.own = create_engine(make_url(url).set(drivername="postgresql+psycopg"), poolclass=NullPool)
        self.after, self.seconds = after, seconds
        self.terminated = 0
        self.happened = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def complete(self) -> int:
        from sqlalchemy import text

        with self.own.connect() as c:
            return int(c.execute(text("SELECT count(*) FROM documents WHERE state != 'pending'")).scalar_one())

    def _run(self) -> None:
        from sqlalchemy import text

        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            try:
                if self.complete() >= self.after:
                    break
            except Exception:  # noqa: S112 - the schema may not be there yet
                pass
            time.sleep(0.05)
        with self.admin.connect() as c:
            c.execute(text(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS false'))
            self.terminated = int(c.execute(text(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :d AND pid <> pg_backend_pid()) t"), {"d": self.name}).scalar_one())
        self.happened.set()
        time.sleep(self.seconds)
        self.restore()

    def restore(self) -> None:
        from sqlalchemy import text

        with self.admin.connect() as c:
            c.execute(text(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true'))

    def start(self) -> Outage:
        self.thread.start()
        return self

    def close(self) -> None:
        self.thread.join(timeout=60)
        self.restore()
        self.admin.dispose()
        self.own.dispose()


def filed_once(tmp_path: Path, url: str, n: int) -> None:
    """Every one of ``n`` documents is complete in the records with one arrival, stored once, archived
    once under its own name (no "-duplicate-"), nothing in failed/ and nothing left in processing."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    eng = create_engine(make_url(url).set(drivername="postgresql+psycopg"), poolclass=NullPool)
    with eng.connect() as c:
        states = dict(c.execute(text("SELECT state, count(*) FROM documents GROUP BY state")).all())
        arrivals = dict(c.execute(text("SELECT outcome, count(*) FROM arrivals GROUP BY outcome")).all())
        originals = c.execute(text("SELECT count(*) FROM stored_objects WHERE role = 'original'")).scalar_one()
    eng.dispose()
    assert sum(states.values()) == n and "pending" not in states, states
    # "resumed" is the records' note that a reserved (pending) document was taken again: no second filing.
    assert "duplicate" not in arrivals and arrivals.get("new") == n, arrivals
    assert originals == n
    archived = [p.name for p in (tmp_path / "archive").rglob("*.pdf")]
    assert len(archived) == n and not any("duplicate" in a for a in archived), archived
    assert not any((tmp_path / "failed").iterdir())
    assert not [p for p in (tmp_path / "processing").iterdir() if p.suffix == ".pdf"]
    stored = [p for p in (tmp_path / "storage").rglob("original.pdf")]
    assert len(stored) == n


def test_a_database_restart_mid_batch_is_bridged_and_nothing_is_filed_twice(wsettings, pg_url: str,  # type: ignore[no-untyped-def]
                                                                             postgres_admin_url: str,
                                                                             tmp_path: Path) -> None:
    """PostgreSQL refuses connections for 4 s and drops every open one while a batch of 8 is being filed:
    the document caught in it is tried again on a new connection, the batch goes on, and each file is
    filed once: one record, one arrival, one stored original, archived under its own name."""
    from flows.dispatch import make_dispatcher
    from frontdesk.watch import Watcher

    wsettings.database_url = pg_url
    wsettings.watch.workers = 1
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for p in good_pdfs(tmp_path / "src", 8, seed=1511):
        p.rename(inbox / p.name)
    w = Watcher(wsettings, inbox, dispatcher=make_dispatcher(wsettings, None, "local"))
    outage = Outage(pg_url, postgres_admin_url, after=3, seconds=4.0).start()
    try:
        w.run(once=True, install_signals=False)
    finally:
        outage.close()
        w.dispatcher.close()  # type: ignore[union-attr]
    assert outage.happened.is_set() and outage.terminated >= 1
    assert set(w.stats.finished) <= {"filed", "needs_review"} and sum(w.stats.finished.values()) == 8, \
        w.stats.finished
    filed_once(tmp_path, pg_url, 8)


def test_a_database_that_stays_away_stops_the_run_and_the_next_run_files_the_rest_once(  # type: ignore[no-untyped-def]
        wsettings, pg_url: str, postgres_admin_url: str, tmp_path: Path) -> None:
    """The database stays away longer than ``database_reconnect_seconds``: the run stops with the
    database's exit code and a message naming no patient; the documents filed before are recorded as
    filed, the rest wait in processing without an attempt charged; the next run files them, each once."""
    from flows.dispatch import make_dispatcher
    from frontdesk.db import DatabaseUnavailableError
    from frontdesk.watch import Watcher

    wsettings.database_url = pg_url
    wsettings.database_reconnect_seconds = 2.0
    wsettings.watch.workers = 1
    wsettings.watch.max_attempts = 1  # an attempt charged for the outage would fail a good file
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for p in good_pdfs(tmp_path / "src", 6, seed=1512):
        p.rename(inbox / p.name)
    w = Watcher(wsettings, inbox, dispatcher=make_dispatcher(wsettings, None, "local"))
    outage = Outage(pg_url, postgres_admin_url, after=2, seconds=15.0).start()
    try:
        with pytest.raises(DatabaseUnavailableError) as raised:
            w.run(once=True, install_signals=False)
    finally:
        outage.close()
        w.dispatcher.close()  # type: ignore[union-attr]
    assert raised.value.exit_code == 7 and "cannot be reached" in str(raised.value)
    first = sum(w.stats.finished.values())
    assert 2 <= first < 6 and "failed" not in w.stats.finished and "duplicate" not in w.stats.finished
    assert not any((tmp_path / "failed").iterdir())
    again = Watcher(wsettings, inbox, dispatcher=make_dispatcher(wsettings, None, "local"))
    try:
        again.run(once=True, install_signals=False)
    finally:
        again.dispatcher.close()  # type: ignore[union-attr]
    assert set(again.stats.finished) <= {"filed", "needs_review"}, again.stats.finished
    assert first + sum(again.stats.finished.values()) == 6
    filed_once(tmp_path, pg_url, 6)


# ------------------------------------------------------------------- 100 good files, 5 that kill their reader


@pytest.mark.timeout(900)
def test_a_hundred_good_files_and_five_that_kill_their_reader(tmp_path: Path) -> None:
    """The issue's crash test: 100 good forms (digital, so it stays quick enough for CI) and 5 whose reader
    is killed (SIGKILL, injected through the document) in one watched inbox, read by two local processes:
    100 filed, 5 in failed/ with the reason, 0 lost, 0 filed twice."""
    import sqlite3

    from tests.fixtures.generator import generate

    cases = generate(tmp_path / "src", 105, seed=1513, kinds=("digital",), scenarios=("complete",))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for i, case in enumerate(cases):
        if i % 21 == 20:  # five of them, spread through the batch
            with_fault(case.path, "kill", inbox / f"killer-{i}.pdf")
        else:
            case.path.rename(inbox / case.path.name)
    env = cli_env(tmp_path, FRONTDESK_TEST_FAULTS="1", FRONTDESK_WATCH__MAX_ATTEMPTS="1",
                  FRONTDESK_WATCH__WORKERS="2")
    run = subprocess.run([FRONTDESK, "watch", str(inbox), "--dispatch", "local", "--once", "--stable", "0.2",
                          "--json"], capture_output=True, text=True, env=env, timeout=850)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    finished = json.loads(run.stdout.strip().splitlines()[-1])["finished"]
    assert finished.get("filed", 0) + finished.get("needs_review", 0) == 100 and finished["failed"] == 5, finished
    assert "duplicate" not in finished
    # 0 lost: nothing left in the inbox or processing; every file is in the archive or in failed/.
    assert not any(inbox.iterdir())
    assert not [p for p in (tmp_path / "processing").iterdir() if not p.name.startswith(".")]
    archived = list((tmp_path / "archive").rglob("*.pdf"))
    assert len(archived) == 100 and not any("duplicate" in p.name for p in archived)
    why = reasons(tmp_path / "failed")
    assert len(why) == 5 and all("the reader was stopped by signal SIGKILL" in r for r in why.values()), why
    # 0 filed twice: one record and one arrival per file, one stored original each.
    with sqlite3.connect(tmp_path / "frontdesk.db") as db:
        arrivals = dict(db.execute("SELECT outcome, count(*) FROM arrivals GROUP BY outcome").fetchall())
        outcomes = dict(db.execute("SELECT outcome, count(*) FROM documents GROUP BY outcome").fetchall())
        originals = db.execute("SELECT count(DISTINCT key) FROM stored_objects WHERE role = 'original'").fetchone()[0]
    assert arrivals == {"new": 105}, arrivals
    assert outcomes.get("failed") == 5 and sum(outcomes.values()) == 105, outcomes
    assert originals == 105
    listed = subprocess.run([FRONTDESK, "watch", str(inbox), "--failed"], capture_output=True, text=True, env=env)
    assert {f"killer-{i}.pdf" for i in range(20, 105, 21)} <= set(listed.stdout.split())


# ------------------------------------------------------------------------------ a hung reader under Dask


@pytest.mark.timeout(600)
def test_a_hung_reader_under_dask_is_stopped_at_the_limit_and_fails_only_its_own_document(tmp_path: Path) -> None:
    """A batch spread over a local Dask cluster (``--task-runner dask``) holding one document whose reader
    hangs: it is stopped at ``extraction.read_limit_seconds`` and only it fails; the others are filed."""
    pytest.importorskip("prefect_dask", reason="prefect-dask is not installed (pip install 'frontdesk[dask]')")
    from tests.fixtures.generator import generate

    cases = generate(tmp_path / "src", 3, seed=1514, kinds=("digital",), scenarios=("complete",))
    hung = with_fault(cases[2].path, "sleep", tmp_path / "hung.pdf")
    env = cli_env(tmp_path, FRONTDESK_TEST_FAULTS="1", FRONTDESK_EXTRACTION__READ_LIMIT_SECONDS="10")
    run = subprocess.run([FRONTDESK, "process", str(cases[0].path), str(hung), str(cases[1].path), "--json",
                          "--task-runner", "dask"], capture_output=True, text=True, env=env, timeout=500)
    assert run.returncode in (0, 2), run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    by_name = {Path(o["input"]).name: o for o in json.loads(run.stdout)}
    assert by_name["hung.pdf"]["status"] == "failed" and "took longer than 10 s" in by_name["hung.pdf"]["error"]
    assert {by_name[c.path.name]["status"] for c in cases[:2]} <= {"filed", "needs_review"}


# ------------------------------------------------------------------------------------------ a full disk


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 3 MB filesystem (tmpfs), so writes fail with the kernel's own ENOSPC. Needs root to mount;
    without it the test is skipped (tests/test_hardening.py covers storage refusing through the
    Storage protocol on any machine)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m,mode=0700", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip()[:120]})")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_full_disk_stops_the_run_moves_no_original_and_the_run_resumes_when_space_returns(  # type: ignore[no-untyped-def]
        small_disk: Path, tmp_path: Path) -> None:
    """Storage and spool on a disk that fills up after a few documents (a real ENOSPC): the run stops with
    exit code 5 and a one-line message saying the disk is full, no original is deleted, failed or moved
    anywhere but the archive (for the ones filed before), and once space is freed the next run files the
    rest, each once."""
    import sqlite3

    from tests.fixtures.generator import generate

    cases = generate(tmp_path / "src", 10, seed=1515, kinds=("digital",), scenarios=("complete",))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    originals = {c.path.name: c.path.read_bytes() for c in cases}
    for c in cases:
        c.path.rename(inbox / c.path.name)
    filler = small_disk / "filler"
    # Leave room for about three documents (original + reading, ~30 KB each, plus folders).
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    filler.write_bytes(b"\0" * (free - 110 * 1024))
    env = cli_env(tmp_path, FRONTDESK_STORAGE__ROOT=str(small_disk / "storage"),
                  FRONTDESK_STORAGE__SPOOL=str(small_disk / "spool"), FRONTDESK_WATCH__WORKERS="1",
                  FRONTDESK_WATCH__AFTER_FILING="delete")
    cmd = [FRONTDESK, "watch", str(inbox), "--dispatch", "local", "--once", "--stable", "0.2", "--json"]
    full = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=400)
    assert full.returncode == 5, (full.returncode, full.stderr[-2000:])
    assert "Traceback" not in full.stderr
    assert "No space left on device" in full.stderr
    processing = tmp_path / "processing"
    waiting = {p.name for p in processing.iterdir() if p.suffix == ".pdf"}
    assert waiting and not any((tmp_path / "failed").iterdir())
    with sqlite3.connect(tmp_path / "frontdesk.db") as db:
        complete = db.execute("SELECT count(*) FROM documents WHERE state != 'pending'").fetchone()[0]
    # every original is either waiting in processing, or filed (and read back before it was deleted)
    assert len(waiting) + complete == 10
    assert {p.read_bytes() for p in processing.glob("*.pdf")} <= set(originals.values())

    filler.unlink()  # space returns
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=400)
    assert again.returncode == 0, again.stderr[-2000:]
    finished = json.loads(again.stdout.strip().splitlines()[-1])["finished"]
    assert set(finished) <= {"filed", "needs_review"} and sum(finished.values()) == len(waiting), finished
    assert not [p for p in processing.iterdir() if p.suffix == ".pdf"] and not any((tmp_path / "failed").iterdir())
    with sqlite3.connect(tmp_path / "frontdesk.db") as db:
        arrivals = dict(db.execute("SELECT outcome, count(*) FROM arrivals GROUP BY outcome").fetchall())
        states = dict(db.execute("SELECT state, count(*) FROM documents GROUP BY state").fetchall())
    assert "duplicate" not in arrivals and arrivals.get("new") == 10 and "pending" not in states, (arrivals, states)
    stored = {p.read_bytes() for p in (small_disk / "storage").rglob("original.pdf")}
    assert stored == set(originals.values())  # every original is in storage, so deleting it was safe


# ----------------------------------------------------------------- review forms left on the Prefect server


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from tests.prefect_harness import shared_server, stop_shared

    server = shared_server(tmp_path_factory.mktemp("prefect-home"))
    yield server
    stop_shared()


def _review_inputs(server, run_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: server.url}), get_client(sync_client=True) as client:
        found = client.filter_flow_run_input(UUID(run_id), key_prefix="paused-review", limit=20, exclude_keys=set())
    return [i.key for i in found]


@pytest.mark.integration
@pytest.mark.timeout(900)
def test_review_forms_are_deleted_after_a_timeout_and_after_a_cancel(tmp_path: Path, settings, fd_env,  # type: ignore[no-untyped-def]
                                                                     prefect_server) -> None:
    """A review form holds the values read from a patient's form. One review times out: its form leaves
    the server as the run ends. Another is cancelled while it waits and its process is gone (as a
    suspended run's is): the next sweep (every review run starts with one) deletes its form."""
    import signal
    import sys
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.states import Cancelled

    from tests.prefect_harness import wait_paused
    from tests.test_review import ROOT, _needs_review_document

    timed_doc, timed_key = _needs_review_document(tmp_path, settings, seed=1516)
    cancelled_doc, cancelled_key = _needs_review_document(tmp_path, settings, seed=1517)
    env = prefect_server.env(fd_env)
    env["PYTHONPATH"] = str(ROOT)

    def start(doc: str, key: str, hours: str) -> subprocess.Popen[str]:
        code = ("import sys; from flows.review import review_flow; "
                f"review_flow.with_options(flow_run_name='review-{doc}')(sys.argv[1])")
        return subprocess.Popen([sys.executable, "-c", code, key], text=True, start_new_session=True,
                                env=dict(env, FRONTDESK_PREFECT__REVIEW_TIMEOUT_HOURS=hours),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    timed = start(timed_doc, timed_key, "0.004")  # about 14 s
    cancelled = start(cancelled_doc, cancelled_key, "72")
    try:
        timed_run = wait_paused(prefect_server, f"review-{timed_doc}", timed)
        assert _review_inputs(prefect_server, timed_run)  # the form is there while the run waits
        cancelled_run = wait_paused(prefect_server, f"review-{cancelled_doc}", cancelled)
        assert _review_inputs(prefect_server, cancelled_run)
        timed.communicate(timeout=300)
        assert timed.returncode != 0  # the pause timed out
        assert _review_inputs(prefect_server, timed_run) == []

        os.killpg(cancelled.pid, signal.SIGKILL)  # its code never runs again, as for a suspended run
        cancelled.wait()
        with temporary_settings(updates={PREFECT_API_URL: prefect_server.url}), get_client(sync_client=True) as c:
            c.set_flow_run_state(UUID(cancelled_run), Cancelled(), force=True)
        assert _review_inputs(prefect_server, cancelled_run)  # left behind ...
        from flows.review import sweep_review_forms

        with temporary_settings(updates={PREFECT_API_URL: prefect_server.url}):
            assert sweep_review_forms() >= 1
        assert _review_inputs(prefect_server, cancelled_run) == []  # ... until the sweep
    finally:
        for p in (timed, cancelled):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


# ------------------------------------------------------------- validation errors never echo patient values

PHI = "Maria Lopez 1962-03-14"


@pytest.mark.parametrize("setting", ["FRONTDESK_WATCH__MAX_ATTEMPTS", "FRONTDESK_EXTRACTION__SPACY_MODEL",
                                     "FRONTDESK_FORMS_DIRS", "FRONTDESK_WATCH__AFTER_FILING"])
def test_a_setting_that_fails_validation_is_named_without_its_value(tmp_path: Path, setting: str) -> None:
    """A patient's name typed into the wrong setting: the command stops with exit code 3 and a one-line
    message naming the setting, never the value, and no traceback."""
    run = subprocess.run([FRONTDESK, "watch", "--failed"], capture_output=True, text=True,
                         env=cli_env(tmp_path, **{setting: PHI}), timeout=120)
    assert run.returncode == 3, (run.returncode, run.stderr[-1500:])
    assert "Maria" not in run.stderr and "Lopez" not in run.stderr and "1962" not in run.stderr, run.stderr
    assert "Traceback" not in run.stderr
    name = setting.removeprefix("FRONTDESK_").lower().replace("__", ".")
    assert name in run.stderr, run.stderr


def test_a_review_answer_that_fails_validation_is_not_echoed(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A review answer of the wrong shape (sent through Prefect's API rather than its form): the error,
    which would reach the run's state message and logs, names the field and never the value."""
    import json as _json

    from pydantic import ValidationError

    from flows.review import review_model, uncertain_fields
    from frontdesk.models import ExtractionResult
    from frontdesk.pipeline import Pipeline
    from frontdesk.settings import validation_reason
    from tests.test_review import _needs_review_document

    _, key = _needs_review_document(tmp_path, settings, seed=1518)
    pipeline = Pipeline(settings)
    result = ExtractionResult.model_validate(_json.loads((settings.storage.root / key).read_text())["extraction"])
    vocab = pipeline.reader.vocabulary
    keys = uncertain_fields(result, vocab)
    model = review_model(keys, result, vocab)
    from flows.review import field_name

    with pytest.raises(ValidationError) as raised:
        model(**{field_name(keys[0]): {"patient": PHI}})
    for text in (str(raised.value), repr(raised.value), validation_reason(raised.value)):
        assert "Maria" not in text and "1962" not in text, text
    assert field_name(keys[0]) in validation_reason(raised.value)


# ------------------------------------------------------------------------------ hostile run memory


def test_a_file_refused_for_its_size_is_not_copied_into_storage(tmp_path: Path) -> None:
    """A file over ``extraction.max_file_mb`` is failed with its reason, and its bytes are never read
    into memory to be copied into storage: the hostile run's 2 GB sparse file cost 2 GB of memory in a
    reading process (bench/hostile.py, PSS) and would fill the store."""
    big = tmp_path / "sparse.pdf"
    with open(big, "wb") as fh:
        fh.write(b"%PDF-1.4\n")
        fh.truncate(64 * 1024 * 1024)
    env = cli_env(tmp_path, FRONTDESK_EXTRACTION__MAX_FILE_MB="2")
    run = subprocess.run([FRONTDESK, "process", str(big), "--json"], capture_output=True, text=True, env=env,
                         timeout=120)
    assert run.returncode in (0, 2), run.stderr[-2000:]
    (outcome,) = json.loads(run.stdout)
    assert outcome["status"] == "failed" and "over the 2 MB limit" in outcome["error"]
    stored = [p for p in (tmp_path / "storage").rglob("*") if p.is_file()]
    assert [p.name for p in stored] == ["reason.txt"], stored
    assert "over the 2 MB limit" in stored[0].read_text()
    assert big.stat().st_size == 64 * 1024 * 1024  # the original itself is left where it was


# ------------------------------------------------------------------------------------- supply chain


def _pins(lock: Path) -> dict[str, str]:
    import re

    pins = {}
    for line in lock.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^ \\;]+)", line)
        if m:
            pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


def test_the_service_install_is_locked_with_hashes_and_has_no_test_tools() -> None:
    """requirements.lock (``./run install-service``) pins every package with its hashes, holds psycopg for
    PostgreSQL and no test tool; requirements-dev.lock (``./run setup``) adds them; neither has pytesseract
    (not used); vulnerable releases are below the floors; ``./run lock`` regenerates both."""
    from packaging.version import Version

    from tests.conftest import ROOT

    service, dev = ROOT / "requirements.lock", ROOT / "requirements-dev.lock"
    pins, dev_pins = _pins(service), _pins(dev)
    text = service.read_text()
    assert text.count("==") == len(pins) and text.count("--hash=sha256:") >= len(pins)
    assert "file://" not in text and "/opt/" not in text  # nothing of the machine it was made on
    assert "psycopg" in pins and "frontdesk" not in pins
    for tool in ("pytest", "moto", "playwright", "ruff", "mypy", "pip-tools", "pytesseract"):
        assert tool not in pins, tool
    assert {"pytest", "moto", "playwright", "psycopg"} <= set(dev_pins) and "pytesseract" not in dev_pins
    floors = {"jinja2": "3.1.6", "pillow": "11.3.0", "pypdf": "6.4.0", "pdfminer-six": "20251107",
              "h11": "0.16.0", "urllib3": "2.5.0", "requests": "2.32.4", "starlette": "0.47.2"}
    for name, floor in floors.items():
        assert Version(pins[name]) >= Version(floor), (name, pins[name])
    run = (ROOT / "run").read_text()
    assert "lock)" in run and "--generate-hashes" in run and "--require-hashes -r requirements.lock" in run
