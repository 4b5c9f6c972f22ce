"""Patient data at rest is readable by Frontdesk's own user only: files 0600, folders 0700.

Why here and not left to the IT person's umask: a Debian default umask (022) makes every new record,
ledger, archived scan, reason file and letter world-readable on a shared server. Frontdesk sets umask 077
for its own processes, and on start tightens what an earlier version (or another tool) left open, saying
in the log how many paths it changed. The inbox folder itself is left alone: staff and scanners drop
files there through a share whose permissions are the IT person's choice; a file is moved out of it
(into processing, 0700) as soon as it is whole.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from frontdesk.settings import Settings, areas_paths

log = logging.getLogger("frontdesk.filemodes")

FILE_MODE = 0o600
DIR_MODE = 0o700

_DONE: set[tuple[Path, ...]] = set()


def private_umask() -> None:
    """Every file and folder this process creates from now on is its user's alone."""
    os.umask(0o077)


def data_paths(settings: Settings) -> list[Path]:
    """Every place Frontdesk keeps patient data (files or folders; those that do not exist are skipped)."""
    paths = [settings.storage.root, settings.storage.spool, settings.watch.ledger.parent,
             settings.checks.output_dir, settings.mail.output_dir, *areas_paths(settings.inbox, settings.watch)]
    url = settings.database_url
    if url.startswith("sqlite:///"):
        db = Path(url.removeprefix("sqlite:///"))
        paths += [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm"), db.with_name(db.name + "-journal")]
    return paths


def tighten(paths: Iterable[Path]) -> int:
    """Take group and other permissions off every file and folder under ``paths`` (links are not
    followed); returns how many were changed."""
    changed = 0
    for root in paths:
        try:
            st = os.lstat(root)
        except OSError:
            continue
        changed += _tighten_one(root, st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            for dirpath, dirnames, filenames in os.walk(root):
                for name in (*dirnames, *filenames):
                    p = Path(dirpath) / name
                    try:
                        changed += _tighten_one(p, os.lstat(p).st_mode)
                    except OSError:
                        continue
    return changed


def _tighten_one(path: Path, mode: int) -> int:
    if stat.S_ISLNK(mode) or not (mode & 0o077):
        return 0
    want = DIR_MODE if stat.S_ISDIR(mode) else FILE_MODE if stat.S_ISREG(mode) else stat.S_IMODE(mode) & 0o700
    try:
        os.chmod(path, want, follow_symlinks=False)
    except (OSError, NotImplementedError):
        return 0
    return 1


def lock_down(settings: Settings) -> None:
    """Umask 077 and the data folders tightened: once per process and configuration."""
    private_umask()
    paths = tuple(data_paths(settings))
    if paths in _DONE:
        return
    _DONE.add(paths)
    changed = tighten(paths)
    if changed:
        log.warning("tightened the permissions of %d existing files and folders holding patient data "
                    "(now 0600 for files, 0700 for folders)", changed)
