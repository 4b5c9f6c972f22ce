"""The Prefect server a command reports to: the configured one, or one Frontdesk starts for itself.

An adapter like the flows: the watcher (``frontdesk watch``), ``frontdesk serve`` and the benches use it,
and no command imports another for it."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from frontdesk.exceptions import ConfigError
from frontdesk.settings import Settings

log = logging.getLogger("frontdesk.serve")


def _healthy(api_url: str, timeout: float = 5) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def wait_healthy(api_url: str, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """A server on a loaded two-core machine takes a while; wait for its health check, not a fixed time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ConfigError(f"the local Prefect server exited at start-up (code {proc.returncode})")
        if _healthy(api_url):
            return
        time.sleep(0.5)
    raise ConfigError(f"no Prefect server answered at {api_url} within {timeout:.0f} s")


def review_api(settings: Settings) -> str | None:
    """The Prefect API that holds review runs, or None when there is none to ask: the configured one
    (``prefect.api_url``, else ``PREFECT_API_URL``), else a server answering on ``prefect.local_server_port``
    (one ``frontdesk serve`` started). A one-off ``frontdesk process`` runs on Prefect's temporary server,
    which dies with the command: a review run started there would never be served, so it holds nothing and
    the document's letters go out as after any review-free intake."""
    if not settings.prefect.review:
        return None
    url = settings.prefect.api_url or os.environ.get("PREFECT_API_URL")
    if url:
        return url
    local = f"http://127.0.0.1:{settings.prefect.local_server_port}/api"
    return local if _healthy(local, timeout=1) else None


@contextmanager
def environment_set(name: str, value: str | None) -> Iterator[None]:
    """``name`` set to ``value`` (None: left as it is) in this process's environment, which the flow runs
    ``serve`` starts inherit; put back on the way out, so nothing later in the process reads it."""
    before = os.environ.get(name)
    if value is not None:
        os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


#: How a Prefect server that Frontdesk starts itself is tuned; a value already in the environment wins.
#: Why: out of the box the server records each task-run event with its own INSERT, about 30 ms of server
#: CPU per task run; at a few hundred documents a minute that is a tenth of a two-core machine, taken from
#: reading. Written in batches of up to 100 it is about 10 ms, and the UI shows a task run at most a second
#: late. docs/scale-out.md gives the same settings for a server the practice runs itself.
LOCAL_SERVER_SETTINGS: dict[str, str] = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # no phoning home from a clinic
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "100",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "1",
}


def local_server_env(base: dict[str, str] | None = None, **extra: str) -> dict[str, str]:
    """The environment for a ``prefect server start`` of Frontdesk's own: :data:`LOCAL_SERVER_SETTINGS`
    under whatever ``base`` (default: this process's environment) already sets, then ``extra``."""
    return {**LOCAL_SERVER_SETTINGS, **(os.environ if base is None else base), **extra}


@contextmanager
def prefect_api(settings: Settings) -> Iterator[str]:
    """The configured server, else PREFECT_API_URL, else the local server on the configured port if one
    answers, else a ``prefect server start`` that lives as long as this process: a real server, because
    the review form needs its UI and worker processes need one address to share."""
    url = settings.prefect.api_url or os.environ.get("PREFECT_API_URL")
    proc: subprocess.Popen[bytes] | None = None
    if url:
        from frontdesk.netpolicy import check_prefect_api

        check_prefect_api(url)  # another machine's API only with credentials
    if not url:
        port = settings.prefect.local_server_port
        url = f"http://127.0.0.1:{port}/api"
        if not _healthy(url):  # else one is running here already (another frontdesk serve): share it
            prefect_bin = shutil.which("prefect", path=str(Path(sys.executable).parent)) or "prefect"
            env = local_server_env(PREFECT_UI_API_URL=url)
            proc = subprocess.Popen([prefect_bin, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    start_new_session=True)
            print(f"frontdesk: started a local Prefect server at {url.removesuffix('/api')}", file=sys.stderr)
    # In the environment too while the server is used: flow runs `serve` starts as subprocesses and the
    # review hand-off (review_api) read it there; nothing later in this process talks to a stopped server.
    try:
        with environment_set("PREFECT_API_URL", url):
            wait_healthy(url, 180, proc)
            from prefect.settings import PREFECT_API_URL, temporary_settings

            with temporary_settings(updates={PREFECT_API_URL: url}):
                yield url
    finally:
        if proc is not None:
            _drain_to_server()
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _drain_to_server() -> None:
    """Logs and task-run events still queued in this process reach the server before it stops: the
    last run's record stays complete, and nothing prints "Error logging to API" on the way out."""
    try:
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=5)
        EventsWorker.drain_all(timeout=5)
    except Exception as exc:  # best effort: the server is stopped either way
        log.debug("draining to the Prefect server failed: %s", type(exc).__name__)
