"""Test faults, injected through the document itself: the only seam a test needs to prove that a hung,
bloated or crashing reader costs only its own document.

Off unless ``FRONTDESK_TEST_FAULTS=1`` is in the reading process's environment (a practice never sets it).
When on, a PDF holding a comment line ``%FRONTDESK-TEST-FAULT sleep``, ``... allocate`` or ``... kill``
makes its reader hang, grow without bound, or die by SIGKILL, exactly as a hostile file would.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

ENV = "FRONTDESK_TEST_FAULTS"
_MARK = re.compile(rb"%FRONTDESK-TEST-FAULT (sleep|allocate|kill)\b")


def enabled() -> bool:
    return os.environ.get(ENV) == "1"


def fault_in(path: Path) -> str | None:
    """The fault the file asks for, if faults are on (only the first 64 KB are looked at)."""
    if not enabled():
        return None
    try:
        with open(path, "rb") as fh:
            head = fh.read(65536)
    except OSError:
        return None
    m = _MARK.search(head)
    return m.group(1).decode() if m else None


def apply(path: Path) -> None:
    """Act out the file's fault, if any: never returns for ``sleep`` and ``kill``."""
    fault = fault_in(path)
    if fault == "sleep":
        while True:
            time.sleep(3600)
    elif fault == "allocate":
        hoard = []
        while True:
            hoard.append(bytearray(64 * 1024 * 1024))  # 64 MB at a time, each page touched
    elif fault == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
