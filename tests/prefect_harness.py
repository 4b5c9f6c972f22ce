"""One real ``prefect server start`` on 127.0.0.1 per test session, shared by the tests that need it.

Why not ``prefect_test_harness``: pausing for input, work pools and workers need a real server that other
processes can reach. Start-up costs about 15 s (more on a loaded two-core machine), so it is started once,
lazily, and killed with its whole process group when the session ends.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

PREFECT = str(Path(sys.executable).with_name("prefect"))
STARTUP_TIMEOUT = 240.0


@dataclass
class PrefectServer:
    url: str
    home: Path
    proc: subprocess.Popen[bytes]

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """What a process needs to talk to this server and nothing else (no ~/.prefect)."""
        env = dict(base if base is not None else os.environ)
        env.update(PREFECT_API_URL=self.url, PREFECT_HOME=str(self.home), PREFECT_SERVER_ANALYTICS_ENABLED="false",
                   PREFECT_LOGGING_LEVEL="INFO")
        return env

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


_SERVER: PrefectServer | None = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def shared_server(home: Path) -> PrefectServer:
    global _SERVER
    if _SERVER is not None and _SERVER.proc.poll() is None:
        return _SERVER
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    from flows.server import local_server_env

    env = local_server_env(PREFECT_HOME=str(home), PREFECT_UI_ENABLED="false", PREFECT_API_URL=url)
    log = open(home / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen([PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server exited: {(home / 'server.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as resp:
                if resp.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            raise RuntimeError("prefect server did not start in time")
        time.sleep(0.5)
    _SERVER = PrefectServer(url=url, home=home, proc=proc)
    return _SERVER


def stop_shared() -> None:
    global _SERVER
    if _SERVER is not None:
        _SERVER.stop()
        _SERVER = None


def paused_run_id(client: object, run_name: str) -> str | None:
    """The id of a *paused* flow run named ``run_name`` on the server ``client`` talks to, or None.

    Tests share one server per worker and seeded generators make the same document (so the same
    ``review-<document id>`` name) in more than one test: a finished run of an earlier test may carry the
    name too, so the state is part of the filter, as in :func:`flows.review.resume_from_console`."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterName,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(  # type: ignore[attr-defined]
        name=FlowRunFilterName(any_=[run_name]),
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))))
    return str(runs[0].id) if runs else None


def wait_paused(server: PrefectServer, run_name: str, proc: subprocess.Popen[str]) -> str:
    """The id of the run ``run_name`` once it is paused for a person; fails if ``proc`` (the process
    running it) ends first, or after 240 s (a hang guard for a loaded machine, not a speed check)."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    deadline = time.monotonic() + 240
    with temporary_settings(updates={PREFECT_API_URL: server.url}), get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"review flow exited before pausing: {proc.stderr.read() if proc.stderr else ''}")
            run_id = paused_run_id(client, run_name)
            if run_id is not None:
                return run_id
            time.sleep(0.5)
    raise AssertionError("the review flow never paused")
