"""A throw-away PostgreSQL cluster for the test session, so the PostgreSQL variants of the records tests
run wherever PostgreSQL is installed (CI included) instead of being skipped.

Why a cluster of our own rather than the machine's: a fresh machine's PostgreSQL is not running, needs
root to start and a role to be made; a cluster in a temporary folder on a free port needs nothing and
leaves nothing. ``initdb`` writes it, ``pg_ctl`` starts it on 127.0.0.1 with its socket in its own folder.
PostgreSQL refuses to run as root, so as root both run as the ``postgres`` system user (``runuser``).

Under pytest-xdist every worker asks for the cluster; the first one starts it under a file lock in the
session's shared temporary folder, the others read its URL from there. The controlling process (or the
only one, without xdist) stops it when the session ends (``stop_cluster``).

If ``FRONTDESK_TEST_POSTGRES_URL`` is set, that server is used and no cluster is started.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

POSTGRES_ENV = "FRONTDESK_TEST_POSTGRES_URL"
STATE = "pgcluster.json"
ROLE = "frontdesk_test"


class ClusterUnavailable(RuntimeError):
    """PostgreSQL is not installed here (or will not start): the PostgreSQL variants are skipped."""


def _bindir() -> Path | None:
    """Debian keeps initdb and pg_ctl outside PATH, one folder per major version: the newest wins."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).parent
    root = Path("/usr/lib/postgresql")
    if root.is_dir():
        versions = sorted((p for p in root.iterdir() if (p / "bin" / "initdb").exists()),
                          key=lambda p: [int(x) for x in p.name.split(".") if x.isdigit()])
        if versions:
            return versions[-1] / "bin"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_owner(cmd: list[str]) -> list[str]:
    """PostgreSQL will not run as root: as root, run as the postgres system user."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _run(cmd: list[str], timeout: float = 120) -> None:
    done = subprocess.run(_as_owner(cmd), capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise ClusterUnavailable(f"{Path(cmd[0]).name} exited {done.returncode}: "
                                 f"{(done.stderr or done.stdout).strip()[-500:]}")


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _start(bindir: Path) -> dict[str, object]:
    home = Path(tempfile.mkdtemp(prefix="frontdesk-pg-"))
    if os.geteuid() == 0:
        shutil.chown(home, "postgres", "postgres")
    data = home / "data"
    _run([str(bindir / "initdb"), "-D", str(data), "-U", ROLE, "--auth=trust", "--encoding=UTF8",
          "--locale=C", "--no-sync"])
    last: Exception | None = None
    for _ in range(5):  # another process may take the free port between choosing and binding it
        port = _free_port()
        opts = (f"-c listen_addresses=127.0.0.1 -p {port} -k {home} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        try:
            _run([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(home / "server.log"), "-w", "-t", "60",
                  "-o", opts, "start"])
        except ClusterUnavailable as exc:
            last = exc
            continue
        return {"home": str(home), "data": str(data), "port": port, "bindir": str(bindir), "pid": os.getpid(),
                "url": f"postgresql+psycopg://{ROLE}@127.0.0.1:{port}/postgres"}
    shutil.rmtree(home, ignore_errors=True)
    raise ClusterUnavailable(f"PostgreSQL would not start: {last}")


def cluster_url(shared: Path) -> str:
    """The URL of the session's cluster (a superuser on the ``postgres`` database, which may create and
    drop databases), starting it if no process of this session has. ``shared`` is the session's temporary
    folder common to all xdist workers."""
    external = os.environ.get(POSTGRES_ENV)
    if external:
        return external
    bindir = _bindir()
    if bindir is None:
        raise ClusterUnavailable("PostgreSQL is not installed (no initdb)")
    shared.mkdir(parents=True, exist_ok=True)
    state_file = shared / STATE
    with open(shared / (STATE + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if state_file.exists():
            state = json.loads(state_file.read_text())
            if "error" in state:
                raise ClusterUnavailable(str(state["error"]))
            if _answers(int(state["port"])):
                return str(state["url"])
        try:
            state = _start(bindir)
        except (ClusterUnavailable, OSError, subprocess.TimeoutExpired) as exc:
            # Remembered, so the other workers do not each spend a minute finding the same thing out.
            state_file.write_text(json.dumps({"error": str(exc)}))
            raise ClusterUnavailable(str(exc)) from exc
        state_file.write_text(json.dumps(state))
        return str(state["url"])


def stop_cluster(shared: Path) -> bool:
    """Stop the session's cluster, if one was started, and remove its folder. Returns whether one was."""
    state_file = shared / STATE
    if not state_file.exists():
        return False
    state = json.loads(state_file.read_text())
    state_file.unlink()
    if "error" in state:
        return False
    try:
        _run([str(Path(str(state["bindir"])) / "pg_ctl"), "-D", str(state["data"]), "-m", "immediate", "-w",
              "stop"], timeout=60)
    except ClusterUnavailable:
        time.sleep(1)  # a server that already went away is fine: its folder goes all the same
    shutil.rmtree(str(state["home"]), ignore_errors=True)
    return True


def session_folder(config: object) -> Path:
    """The session's temporary folder shared by the xdist workers and their controller: the basetemp of
    the controller (a worker's own basetemp is a folder inside it)."""
    factory = config._tmp_path_factory  # type: ignore[attr-defined]
    base = Path(factory.getbasetemp())
    return base.parent if hasattr(config, "workerinput") else base
