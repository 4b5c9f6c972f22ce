"""SIGKILL at random points of real runs: after every kill storage holds nothing the records do not know,
and after one run that is left alone everything is filed exactly once (``storage verify`` clean)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from frontdesk.db.models import Document, Letter, StoredObjectRow
from frontdesk.pipeline import Pipeline
from frontdesk.records import verify_storage
from tests.fixtures.generator import Case, generate
from tests.s3server import settings_for

# Writes get the latency of a network store (S3 is tens of milliseconds away), so the windows between
# recording and storing are as wide as in a real practice and the random kills land in them.
RUNNER = """
import sys, time
from pathlib import Path
from frontdesk.settings import load_settings
from frontdesk.intake import process_batch
from frontdesk.pipeline import Pipeline
pipeline = Pipeline(load_settings())
put = pipeline.storage.put_bytes
def slow_put(*args, **kwargs):
    time.sleep(0.05)
    obj = put(*args, **kwargs)
    time.sleep(0.05)
    return obj
pipeline.storage.put_bytes = slow_put
print(len(process_batch([Path(sys.argv[1])], pipeline)))
"""


def start_run(inbox: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    # Its own session: the kill takes LibreOffice (a child) down with it, as a power cut would.
    return subprocess.Popen([sys.executable, "-c", RUNNER, str(inbox)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _objects(root: Path) -> int:
    return sum(1 for p in root.rglob("*") if p.is_file()) if root.is_dir() else 0


SCENARIOS = ("complete", "member_id_blank", "self_pay", "payer_blank", "unsigned")


def add_batch(inbox: Path, k: int, n: int) -> list[Case]:
    cases = generate(inbox / f"batch-{k:02d}", n, seed=3100 + k, scenarios=SCENARIOS)
    (inbox / f"batch-{k:02d}" / "truth.json").unlink()
    return cases


@pytest.mark.integration
def test_sigkill_at_random_points_in_ten_runs_then_one_clean_run(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    cases = add_batch(inbox, 0, 12)  # only the final run is handed these
    db_url = f"sqlite:///{tmp_path / 'fd.db'}"
    env = dict(os.environ, FRONTDESK_STORAGE__ROOT=str(tmp_path / "storage"),
               FRONTDESK_STORAGE__SPOOL=str(tmp_path / "spool"), FRONTDESK_DATABASE_URL=db_url)
    settings = settings_for(tmp_path, db_url)
    rnd = random.Random(20261129)
    killed_at = []
    for run in range(1, 11):
        # Every run has new work of its own; what earlier runs left is the next run's recovery.
        cases += add_batch(inbox, run, 3)
        # Killed once it has started filing (its first object is written), at a random point after that:
        # a fixed delay would land before start-up on a busy machine and after the end on an idle one.
        stored_before = _objects(tmp_path / "storage")
        proc = start_run(inbox / f"batch-{run:02d}", env)
        started = time.monotonic()
        while proc.poll() is None and _objects(tmp_path / "storage") == stored_before \
                and time.monotonic() - started < 60:
            time.sleep(0.02)
        delay = rnd.uniform(0.0, 0.6)  # documents ~0.3 s each here (slowed storage), letters after them
        time.sleep(delay)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            killed_at.append(round(delay, 2))
        proc.communicate(timeout=60)
        pipeline = Pipeline(settings)
        report = verify_storage(pipeline.db, pipeline.storage)
        # Mid-crash the records may be behind, never wrong: no object they do not know, none they lost.
        assert report.orphans == [] and report.missing == [] and report.mismatched == [], report.as_dict()
        pipeline.db.dispose()
    assert len(killed_at) >= 7, killed_at  # the runs really were killed mid-way

    final = start_run(inbox, env)  # everything, earlier files included
    out, err = final.communicate(timeout=300)
    assert final.returncode == 0, err[-3000:]
    n = len(cases)
    letters_expected = sum(1 for c in cases if ("insurance.missing_info", None) in c.expected_flags)
    assert n == 42 and letters_expected > 0
    pipeline = Pipeline(settings)
    report = verify_storage(pipeline.db, pipeline.storage)
    assert report.ok, report.as_dict()
    with pipeline.db.begin() as s:
        assert s.scalar(select(func.count()).select_from(Document)) == n
        assert s.scalar(select(func.count()).select_from(Document).where(Document.state != "complete")) == 0
        assert s.scalar(select(func.count()).select_from(Letter)
                        .where(Letter.kind == "missing_insurance")) == letters_expected
        # Welcome letters (config/letters.yaml) wait for the mail batch unrendered: at most one a patient.
        welcomed = list(s.scalars(select(Letter.patient_id).where(Letter.kind == "welcome")))
        assert len(welcomed) == len(set(welcomed))
        assert s.scalar(select(func.count()).select_from(StoredObjectRow)) == 2 * n + letters_expected
    root = settings.storage.root
    originals = sorted(root.rglob("original.pdf"))
    assert len(originals) == n
    assert sorted(p.read_bytes() for p in originals) == sorted(c.path.read_bytes() for c in cases)
    assert len(list(root.rglob("missing_insurance.pdf"))) == letters_expected
