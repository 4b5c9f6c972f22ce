"""Progress on long work: a bar with counts at a terminal (a real pseudo-terminal here), plain lines when
the output goes to a file or a pipe, nothing with --json (a script reads standard output)."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import struct
import subprocess
import termios
from fcntl import ioctl
from pathlib import Path

from frontdesk import progress
from tests.conftest import FRONTDESK, ROOT, run_cli

SAMPLES = ROOT / "tests" / "fixtures" / "samples"
CHECK = ["check", "--date", "2026-03-03", "--appointments", str(SAMPLES / "ehr_export.csv"), "--no-pdf"]


def check_env(fd_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return dict(fd_env, FRONTDESK_CHECKS__TIMEZONE="America/Chicago",
                FRONTDESK_CHECKS__OUTPUT_DIR=str(tmp_path / "out"),
                FRONTDESK_CHECKS__APPOINTMENTS_DIR=str(tmp_path / "drop"))


def run_on_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """Run the command with its standard error on a pseudo-terminal (120 columns), standard output on a
    pipe; returns the exit code, what the terminal showed and standard output."""
    master, slave = pty.openpty()
    ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen([FRONTDESK, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave,
                            env=dict(env, TERM="xterm-256color"), start_new_session=True)
    os.close(slave)
    shown = bytearray()
    assert proc.stdout is not None
    out = bytearray()
    streams = [master, proc.stdout.fileno()]
    while streams:
        ready, _, _ = select.select(streams, [], [], 120)
        assert ready, "the command stopped answering"
        for fd in ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the terminal's other end closed (Linux: EIO)
                chunk = b""
            if not chunk:
                streams.remove(fd)
            elif fd == master:
                shown += chunk
            else:
                out += chunk
    os.close(master)
    return proc.wait(timeout=60), shown.decode("utf-8", "replace"), out.decode()


def test_check_shows_a_bar_with_counts_on_a_terminal(tmp_path: Path, fd_env: dict[str, str]) -> None:
    code, terminal, out = run_on_terminal(CHECK, check_env(fd_env, tmp_path))
    assert code == 0, terminal
    assert "checking appointments" in terminal
    assert "8/8" in terminal  # counts: the export has eight appointments on the day
    assert "━" in terminal  # the bar itself
    assert "\x1b[" in terminal  # drawn with terminal control codes (and taken away when done)
    assert "8 appointments, 0 ready, 8 missing paperwork" in out  # the summary is unchanged, on stdout


def test_no_progress_with_json_even_on_a_terminal(tmp_path: Path, fd_env: dict[str, str]) -> None:
    code, terminal, out = run_on_terminal([*CHECK, "--json"], check_env(fd_env, tmp_path))
    assert code == 0, terminal
    assert "checking appointments" not in terminal and "━" not in terminal
    assert json.loads(out)["summary"]["appointments"] == 8  # standard output is the JSON and nothing else


def test_plain_lines_when_not_a_terminal(tmp_path: Path, fd_env: dict[str, str]) -> None:
    proc = run_cli(*CHECK, env=check_env(fd_env, tmp_path))
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("checking appointments")]
    assert lines and lines[-1].startswith("checking appointments: 8/8 done in ")
    assert "\x1b[" not in proc.stderr and "\r" not in proc.stderr  # nothing redrawn: a log stays readable


def test_plain_lines_come_once_a_tenth_and_at_the_end() -> None:
    out = io.StringIO()
    with progress.shown(stream=out), progress.step("reading documents", 25) as st:
        for _ in range(25):
            st.advance()
    lines = out.getvalue().splitlines()
    assert [ln.split(":")[1].strip() for ln in lines[:-1]] == [
        "3/25", "5/25", "8/25", "10/25", "13/25", "15/25", "18/25", "20/25", "23/25"]
    assert lines[-1].startswith("reading documents: 25/25 done in ")


def test_without_a_command_listening_nothing_is_shown(capsys) -> None:  # type: ignore[no-untyped-def]
    """A deployed flow or the core used as a library: steps cost nothing and print nothing."""
    with progress.step("converting to PDF", 3) as st:
        st.advance(3)
    out = io.StringIO()
    with progress.shown(stream=out, json_output=True), progress.step("filing letters", 2) as st:
        st.advance(2)
    assert out.getvalue() == "" and capsys.readouterr() == ("", "")
