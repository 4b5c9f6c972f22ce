"""Shared fixtures. Inputs are generated into temporary folders from seeded generators."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
HOSTILE_PDFS = SHARED / "corpora" / "hostile-pdfs"
FRONTDESK = str(Path(sys.executable).with_name("frontdesk"))

# Tesseract's own threads make it several times slower on small machines; we parallelise instead.
os.environ.setdefault("OMP_THREAD_LIMIT", "1")

# Each pytest-xdist worker has a Prefect home of its own: the temporary servers that `frontdesk process`
# starts in two workers at once must not share one SQLite database (nor the profiles and their locks).
if os.environ.get("PYTEST_XDIST_WORKER"):
    import atexit
    import tempfile

    _prefect_home = tempfile.mkdtemp(prefix=f"frontdesk-prefect-{os.environ['PYTEST_XDIST_WORKER']}-")
    os.environ["PREFECT_HOME"] = _prefect_home
    atexit.register(shutil.rmtree, _prefect_home, True)


@pytest.fixture(scope="session")
def resources() -> Path:
    """The repository root: templates and config the tests read (never write)."""
    return ROOT


@pytest.fixture
def fd_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment for running the CLI against throw-away storage and database."""
    env = dict(os.environ)
    env["FRONTDESK_STORAGE__ROOT"] = str(tmp_path / "storage")
    env["FRONTDESK_STORAGE__SPOOL"] = str(tmp_path / "spool")
    env["FRONTDESK_DATABASE_URL"] = f"sqlite:///{tmp_path / 'frontdesk.db'}"
    env["FRONTDESK_INBOX"] = str(tmp_path / "inbox")
    yield env


@pytest.fixture
def settings(tmp_path: Path):  # type: ignore[no-untyped-def]
    from frontdesk.settings import load_settings

    return load_settings(
        storage={"root": tmp_path / "storage", "spool": tmp_path / "spool"},
        database_url=f"sqlite:///{tmp_path / 'frontdesk.db'}",
        inbox=tmp_path / "inbox",
    )


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FRONTDESK, *args], capture_output=True, text=True, env=env, timeout=timeout)


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop the session's throw-away PostgreSQL cluster (tests/pgcluster.py), if a test started one. Under
    xdist only the controller does, after every worker has finished."""
    if hasattr(session.config, "workerinput"):
        return
    from tests.pgcluster import session_folder, stop_cluster

    stop_cluster(session_folder(session.config))
