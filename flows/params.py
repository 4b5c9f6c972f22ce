"""What a flow run's parameters may name: opaque ids, never a path or a configuration of the caller's.

Why: whoever can reach the Prefect API can start a run with any parameters. A ``path`` would make a
worker read (and file, and write a receipt beside) any file it can reach; a ``config_file`` would make it
obey the caller's settings, storage endpoint included. So a deployed flow takes a claim's opaque name,
looked up in the worker's *own* processing area, or an object key of the worker's own storage; its
configuration is the worker's (``FRONTDESK_CONFIG`` or config/frontdesk.yaml where it runs).
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from frontdesk.exceptions import FrontdeskError
from frontdesk.settings import Settings

#: A claim's name as the watcher makes it: ``<UTC time>-<12 hex>[.<suffix>]`` (see Watcher.claim_all).
CLAIM = re.compile(r"^\d{8}T\d{6}-[0-9a-f]{12}(\.[a-z0-9]{1,6})?$")
#: An extraction key as the pipeline files it: ``documents/.../<document id>/extraction.json``.
EXTRACTION_KEY = re.compile(r"^([A-Za-z0-9_-]+/)*documents/([A-Za-z0-9_-]+/)*doc-[0-9a-f]{16}(-\d+)?/extraction\.json$")


class ParameterRefused(FrontdeskError):
    """A flow run's parameter names something it may not; nothing was read or written."""


def claimed_file(claim: str, settings: Settings) -> Path:
    """The claimed file named ``claim`` in this worker's processing area: a plain name of the watcher's
    making, resolved inside the area, a regular file and not a link."""
    from frontdesk.settings import areas_paths

    if not isinstance(claim, str) or not CLAIM.fullmatch(claim):
        raise ParameterRefused("claim: not a claim id of the watcher's making")
    area = areas_paths(settings.inbox, settings.watch)[0].resolve()
    path = area / claim
    if path.resolve().parent != area:
        raise ParameterRefused("claim: outside the processing area")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise ParameterRefused(f"claim {claim}: no such file in the processing area") from None
    if not stat.S_ISREG(st.st_mode):
        raise ParameterRefused(f"claim {claim}: not a regular file")
    return path


def extraction_key(key: str) -> str:
    """An extraction record's key in this worker's storage, nothing else (no ``..``, no absolute path)."""
    if not isinstance(key, str) or ".." in key or not EXTRACTION_KEY.fullmatch(key):
        raise ParameterRefused("extraction_key: not an extraction record's key")
    return key


def file_in(folder: Path, name: str, what: str) -> Path:
    """A file directly inside one of the worker's own folders (e.g. the appointments export folder),
    named by its plain file name: no separators, no ``..``, not a link."""
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name in (".", "..") or "\x00" in name:
        raise ParameterRefused(f"{what}: a file name inside the configured folder, nothing else")
    root = Path(folder).resolve()
    path = root / name
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise ParameterRefused(f"{what}: no such file in the configured folder") from None
    if not stat.S_ISREG(st.st_mode) or path.resolve().parent != root:
        raise ParameterRefused(f"{what}: not a regular file in the configured folder")
    return path
