"""Scale-out: a real Prefect server, a process work pool, two workers, the intake deployment; the watcher
submits one flow run per document and every document is filed exactly once, by both workers together."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from tests.conftest import FRONTDESK, run_cli
from tests.fixtures.generator import generate
from tests.prefect_harness import PREFECT, PrefectServer, shared_server, stop_shared

ROOT = Path(__file__).resolve().parent.parent
SUBMIT = re.compile(r"Worker '[^']+' submitting flow run '([0-9a-f-]{36})'")
ABORTED = re.compile(r"Aborted submission of flow run '([0-9a-f-]{36})'")


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    server = shared_server(tmp_path_factory.mktemp("prefect-home"))
    yield server
    stop_shared()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.integration
def test_two_workers_process_forty_documents_each_exactly_once(tmp_path: Path, fd_env,  # type: ignore[no-untyped-def]
                                                               prefect_server: PrefectServer) -> None:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    pool = f"frontdesk-{uuid.uuid4().hex[:8]}"
    env = prefect_server.env(fd_env)
    env.update(
        PYTHONPATH=str(ROOT),
        FRONTDESK_WATCH__LEDGER=str(tmp_path / "ledger.sqlite"),
        FRONTDESK_WATCH__DISPATCH="deployment",
        FRONTDESK_PREFECT__REVIEW="false",  # review has its own test; here every run ends
        PREFECT_WORKER_QUERY_SECONDS="1",
        PREFECT_WORKER_PREFETCH_SECONDS="5",
        COLUMNS="500",  # worker log lines unwrapped: each names its whole flow run id
    )
    # The shared folders every worker sees (in production: the SMB share and S3).
    inbox = tmp_path / "inbox"
    cases = generate(inbox, 40, seed=41)
    (inbox / "truth.json").unlink()
    sources = Counter(sha(c.path) for c in cases)

    reg = run_cli("serve", "--register", pool, env=env, timeout=300)
    assert reg.returncode == 0, reg.stderr

    workers: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = []
    try:
        for name in ("w1", "w2"):
            log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 - closed in finally
            proc = subprocess.Popen([PREFECT, "worker", "start", "--pool", pool, "--name", name, "--limit", "2"],
                                    env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            workers.append((proc, log))
        watch = subprocess.run([FRONTDESK, "-v", "watch", str(inbox), "--once", "--stable", "0.5", "--json"],
                               env=env, capture_output=True, text=True, timeout=900)
        assert watch.returncode == 0, watch.stderr[-3000:]
    finally:
        for proc, log in workers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            log.close()

    # Every document once in storage, once in the archive, nothing left behind.
    storage = Path(env["FRONTDESK_STORAGE__ROOT"])
    assert Counter(sha(p) for p in storage.rglob("original.*")) == sources
    assert Counter(sha(p) for p in (tmp_path / "archive").rglob("*") if p.is_file()) == sources
    assert list((tmp_path / "processing").iterdir()) == []
    assert not (tmp_path / "failed").exists() or list((tmp_path / "failed").iterdir()) == []

    # One flow run per document, all completed, and both workers took part.
    with temporary_settings(updates={PREFECT_API_URL: prefect_server.url}), get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("intake-document/intake")
        assert deployment.work_pool_name == pool
        from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

        runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
                                     limit=200)
        runs = [r for r in runs if r.work_pool_name == pool]
        assert len(runs) == 40
        assert all(r.state is not None and r.state.is_completed() for r in runs)
        assert len({r.idempotency_key for r in runs}) == 40
        assert {r.idempotency_key for r in runs} == set(sources)  # keyed by the document's SHA-256
        for r in runs:  # parameters name the opaque claim, never a patient or the dropped file's name
            assert set(r.parameters) == {"claim"}  # the claim's name in the worker's own processing area
            assert "/" not in r.parameters["claim"] and (tmp_path / "processing").exists()
    # Which worker ran which run: both may try to take the same run; the loser is told so and aborts.
    # The pool also runs the scheduled deployments (the clearinghouse inbox every ten minutes): only the
    # intake runs are counted here.
    intake = {str(r.id) for r in runs}
    ran: dict[str, set[str]] = {}
    for name in ("w1", "w2"):
        text = (tmp_path / f"{name}.log").read_text(errors="replace")
        ran[name] = (set(SUBMIT.findall(text)) - set(ABORTED.findall(text))) & intake
    assert ran["w1"] and ran["w2"], {k: len(v) for k, v in ran.items()}
    assert not ran["w1"] & ran["w2"]
    assert ran["w1"] | ran["w2"] == intake
