"""The test session's own PostgreSQL: started from initdb into a temporary folder on a free port, shared
by xdist workers through a file lock, and gone (process and folder) once stopped."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from tests.pgcluster import STATE, ClusterUnavailable, _bindir, cluster_url, stop_cluster


@pytest.fixture
def no_external(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FRONTDESK_TEST_POSTGRES_URL", raising=False)


@pytest.mark.skipif(_bindir() is None, reason="PostgreSQL is not installed")
def test_a_cluster_of_its_own_serves_databases_and_goes_away(tmp_path: Path, no_external: None) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    urls: list[str] = []
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            urls.append(cluster_url(tmp_path))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    askers = [threading.Thread(target=ask) for _ in range(3)]  # three workers asking at once
    for t in askers:
        t.start()
    for t in askers:
        t.join()
    assert not errors and len(set(urls)) == 1  # one cluster, started once
    state = json.loads((tmp_path / STATE).read_text())
    engine = create_engine(urls[0], poolclass=NullPool)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        assert conn.execute(text("SELECT current_setting('listen_addresses')")).scalar() == "127.0.0.1"
        conn.execute(text('CREATE DATABASE "fd_pgcluster_probe"'))
        conn.execute(text('DROP DATABASE "fd_pgcluster_probe"'))
    assert cluster_url(tmp_path) == urls[0]  # asked again: the running one
    assert stop_cluster(tmp_path)
    assert not Path(state["home"]).exists()
    assert not (tmp_path / STATE).exists()
    from sqlalchemy.exc import OperationalError

    with pytest.raises(OperationalError), engine.connect():
        pass


def test_an_external_server_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRONTDESK_TEST_POSTGRES_URL", "postgresql+psycopg://ci@127.0.0.1:5999/ci")
    assert cluster_url(tmp_path) == "postgresql+psycopg://ci@127.0.0.1:5999/ci"
    assert not (tmp_path / STATE).exists()


@pytest.mark.skipif(_bindir() is None, reason="PostgreSQL is not installed")
def test_a_failed_start_is_remembered_for_the_other_workers(tmp_path: Path, no_external: None) -> None:
    (tmp_path / STATE).write_text(json.dumps({"error": "initdb exited 1: disk full"}))
    with pytest.raises(ClusterUnavailable, match="disk full"):
        cluster_url(tmp_path)
    assert not stop_cluster(tmp_path)
    assert os.path.exists(tmp_path) and not (tmp_path / STATE).exists()
