"""``frontdesk serve``: the watcher and the deployments in one process, against a real Prefect server."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import FRONTDESK
from tests.fixtures.generator import generate
from tests.prefect_harness import PrefectServer, shared_server, stop_shared

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    server = shared_server(tmp_path_factory.mktemp("prefect-home"))
    yield server
    stop_shared()


def test_deployments_cover_intake_review_and_the_scheduled_flows(settings) -> None:  # type: ignore[no-untyped-def]
    from flows.deployments import build_deployments

    deps = {f"{d.flow_name}/{d.name}": d for d in build_deployments(settings)}
    assert {"intake-document/intake", "review/review"} <= set(deps)
    if (ROOT / "flows" / "previsit.py").exists():
        previsit = deps["previsit_check/previsit-check"]
        assert previsit.schedules and previsit.schedules[0].schedule.cron  # type: ignore[union-attr]
    assert not deps["intake-document/intake"].schedules  # intake runs when documents arrive, not by clock


def test_a_scheduled_flow_that_is_missing_is_skipped_not_fatal(settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import flows.deployments as d

    monkeypatch.setattr(d, "SCHEDULED", (*d.SCHEDULED, d.Scheduled("flows.not_there", "x_flow", "x", "mail_cron")))
    names = [name for _, name, _ in d.flows_to_deploy(settings)]
    assert "x" not in names and "intake" in names


def test_a_local_server_records_task_runs_in_batches_unless_the_environment_says_otherwise() -> None:
    """An IT person's own PREFECT_ settings win over Frontdesk's tuning of the server it starts."""
    from flows.server import local_server_env

    key = "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE"
    assert local_server_env({})[key] == "100"
    assert local_server_env({key: "7"})[key] == "7"
    assert local_server_env({}, PREFECT_UI_API_URL="http://x/api")["PREFECT_UI_API_URL"] == "http://x/api"


@pytest.mark.integration
def test_serve_watches_the_inbox_serves_the_deployments_and_stops_cleanly(tmp_path: Path, fd_env,  # type: ignore[no-untyped-def]
                                                                          prefect_server: PrefectServer) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    inbox = tmp_path / "inbox"
    env = prefect_server.env(fd_env)
    env.update(PYTHONPATH=str(ROOT), FRONTDESK_WATCH__LEDGER=str(tmp_path / "ledger.sqlite"),
               FRONTDESK_WATCH__STABLE_SECONDS="0.5", FRONTDESK_PREFECT__REVIEW="false")
    proc = subprocess.Popen([FRONTDESK, "serve", str(inbox)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        cases = generate(tmp_path / "src", 4, seed=51, scenarios=("complete",))
        shas = set()
        for c in cases:
            data = c.path.read_bytes()
            shas.add(hashlib.sha256(data).hexdigest())
            inbox.mkdir(exist_ok=True)
            (inbox / c.path.name).write_bytes(data)

        def archived() -> list[Path]:
            return [p for p in (tmp_path / "archive").rglob("*") if p.is_file()]

        deadline = time.monotonic() + 300  # hang guard for a loaded machine, not a speed check
        while len(archived()) < 4:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "serve did not file the documents"
            time.sleep(0.5)
        assert {hashlib.sha256(p.read_bytes()).hexdigest() for p in archived()} == shas

        with temporary_settings(updates={PREFECT_API_URL: prefect_server.url}), get_client(sync_client=True) as client:
            names = {f"{client.read_flow(d.flow_id).name}/{d.name}" for d in client.read_deployments()}
            assert {"intake-document/intake", "review/review"} <= names
            runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["intake"])))
            # The server is shared with other tests of the session: look at this test's runs only.
            runs = [r for r in runs if any(str(tmp_path) in str(p) for p in r.parameters.get("paths", []))]
            assert runs and all(r.state is not None and r.state.is_completed() for r in runs)
            for r in runs:  # run parameters name opaque claims only
                assert all(Path(p).parent == tmp_path / "processing" for p in r.parameters["paths"])
            # What a person opening a run in the UI sees: one completed intake-document task per document.
            # The server records task runs in batches (LOCAL_SERVER_SETTINGS): they show up within seconds.
            run_ids = [r.id for r in runs]
            deadline = time.monotonic() + 60
            while True:
                tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=run_ids)))
                reads = [t for t in tasks if t.name.startswith("intake-document")]
                if len(reads) >= 4 and all(t.state is not None and t.state.is_completed() for t in reads):
                    break
                assert time.monotonic() < deadline, f"task runs not recorded: {[(t.name, t.state_name) for t in tasks]}"
                time.sleep(0.5)
            assert len(reads) == 4
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    assert list((tmp_path / "processing").iterdir()) == []

    def leftover() -> list[str]:
        return subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True).stdout.split()

    deadline = time.monotonic() + 20  # helpers (multiprocessing's resource tracker) notice the exit
    while leftover() and time.monotonic() < deadline:
        time.sleep(0.5)
    left = {pid: Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:200] for pid in leftover()
            if Path(f"/proc/{pid}/cmdline").exists()}
    for pid in left:  # nothing of ours may outlive serve
        os.kill(int(pid), signal.SIGKILL)
    assert left == {}


def test_served_runs_get_the_commands_config_and_nothing_else_keeps_it(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """`frontdesk --config X serve`: the flow runs it starts (its subprocesses) load X; once serving ends,
    nothing left in the process reads X by accident (a later command, or the next test)."""
    import sys

    from flows.deployments import config_for_served_runs

    monkeypatch.delenv("FRONTDESK_CONFIG", raising=False)
    config = tmp_path / "lakeside.yaml"
    config.write_text("practice:\n  name: Lakeside Pediatrics\n", encoding="utf-8")
    code = "from frontdesk.settings import load_settings; print(load_settings().practice.name)"
    with config_for_served_runs(str(config)):
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr[-2000:]
        assert run.stdout.strip() == "Lakeside Pediatrics"
    assert "FRONTDESK_CONFIG" not in os.environ
