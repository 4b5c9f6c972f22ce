"""One document read in a process of its own, from the parent's side: :func:`read_isolated` hands the file
to this thread's :class:`ReadingServer` (a ``python -m frontdesk.reading_process``), which forks one
process for it; this side kills that process at the time limit.

A module of its own, apart from :mod:`frontdesk.readers` (the pool that runs whole pipelines), because
:mod:`frontdesk.extraction` calls it: the pool imports the pipeline, which imports extraction, so living
in the pool's module would close an import circle.
"""

from __future__ import annotations

import atexit
import os
import threading
from pathlib import Path
from typing import Any

from extractors import RawDocument
from frontdesk.settings import Settings

__all__ = ["ReadingServer", "read_isolated"]



class ReadingServer:
    """A ``python -m frontdesk.reading_process`` of this thread's own: it loads the readers once and forks
    one process per document, which this side kills at the time limit (see that module)."""

    START_SECONDS = 180.0  # imports and templates on a loaded two-core machine

    def __init__(self, settings: Settings, extra_forms_dirs: list[Path] | None) -> None:
        import pickle
        import subprocess
        import sys

        from extractors import ocr

        self.settings = settings
        ex = settings.extraction
        env = {**os.environ, "OMP_THREAD_LIMIT": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
               # OpenCV's own decoder limit, read when cv2 is imported: the practice's pixel limit
               "OPENCV_IO_MAX_IMAGE_PIXELS": str(int(ex.max_image_megapixels * 1e6))}
        self.proc = subprocess.Popen([sys.executable, "-m", "frontdesk.reading_process"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
                                     start_new_session=True)
        self._buf = b""
        setup = {"settings": settings, "extra_forms_dirs": extra_forms_dirs, "memory_mb": ex.read_memory_mb,
                 "ocr_width": ocr.width()}
        self._send(pickle.dumps(setup))
        if self._line(self.START_SECONDS) != "ready":
            self.close()
            raise RuntimeError("the reading process did not start")

    def _send(self, data: bytes) -> None:
        import struct

        assert self.proc.stdin is not None
        self.proc.stdin.write(struct.pack(">I", len(data)) + data)
        self.proc.stdin.flush()

    def _line(self, timeout: float | None) -> str | None:
        """The server's next line; None on timeout or when it has gone."""
        import select
        import time

        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                return None
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode()

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def read(self, path: Path) -> dict[str, Any] | str:
        """The child's answer (a dict), or why there is none (a one-line reason)."""
        import contextlib
        import json
        import signal
        import tempfile

        limit = self.settings.extraction.read_limit_seconds
        fd, answer = tempfile.mkstemp(prefix="frontdesk-answer-", suffix=".json")
        os.close(fd)
        try:
            self._send(json.dumps({"path": str(path), "answer": answer}).encode())
            started = self._line(60.0)
            if started is None or not started.startswith("pid "):
                raise OSError("the reading process stopped answering")
            pid = int(started.split()[1])
            ended = self._line(limit)
            if ended is None:  # past the limit: the document's process and all it started
                for kill in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        kill()
                self._line(60.0)  # its "exit"
                return f"reading took longer than {limit:g} s; the file may be damaged"
            code = int(ended.split()[1])
            with open(answer, encoding="utf-8") as fh:
                text = fh.read()
            try:
                data = json.loads(text) if text else None
            except ValueError:
                data = None
            if isinstance(data, dict):
                return data
            how = f"was stopped by signal {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
            return (f"the reader {how}; the file may be damaged or need more than "
                    f"{self.settings.extraction.read_memory_mb} MB to read")
        finally:
            with contextlib.suppress(OSError):
                os.unlink(answer)

    def close(self) -> None:
        import contextlib
        import signal

        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except Exception:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


_SERVERS = threading.local()


def _server(settings: Settings, extra_forms_dirs: list[Path] | None) -> ReadingServer:
    """This thread's reading server for these settings (one per thread: a server reads one document at
    a time, and threads of one process read side by side)."""
    servers: dict[tuple[int, tuple[Path, ...]], ReadingServer] = getattr(_SERVERS, "servers", None) or {}
    _SERVERS.servers = servers
    key = (id(settings), tuple(extra_forms_dirs or ()))
    server = servers.get(key)
    if server is not None and (not server.alive or server.settings is not settings):
        server.close()
        server = None
    if server is None:
        server = servers[key] = ReadingServer(settings, extra_forms_dirs)
        _ALL.append(server)
    return server


_ALL: list[ReadingServer] = []


@atexit.register
def _close_all() -> None:
    for server in _ALL:
        server.close()


def read_isolated(path: Path, settings: Settings, extra_forms_dirs: list[Path] | None = None) -> list[RawDocument]:
    """The documents in ``path``, read in a process of its own (forked by this thread's
    :class:`ReadingServer`) with a wall-clock limit (``extraction.read_limit_seconds``: the process and
    its tesseracts killed) and a memory limit (``extraction.read_memory_mb``, RLIMIT_AS). Works from any
    thread, process pool or Dask worker. Raises :class:`extractors.UnreadableDocument` with a one-line
    reason when the reader refuses the file, runs out of time or memory, or dies."""
    from extractors import UnreadableDocument

    for attempt in (1, 2):
        server = _server(settings, extra_forms_dirs)
        try:
            answer = server.read(path)
            break
        except (OSError, ValueError):  # the server itself went away (not the document's doing): once more
            server.close()
            if attempt == 2:
                raise UnreadableDocument("the reading process could not be started") from None
    if isinstance(answer, str):
        raise UnreadableDocument(answer)
    if "unreadable" in answer:
        raise UnreadableDocument(str(answer["unreadable"]), encrypted=bool(answer.get("encrypted")))
    return [_document(d) for d in answer["documents"]]


def _document(d: dict[str, Any]) -> RawDocument:
    from extractors import RawField, RawFlag

    return RawDocument(
        document_type=str(d["document_type"]), form=d.get("form"), method=str(d["method"]), pages=int(d["pages"]),
        fields={k: RawField(**v) for k, v in d["fields"].items()},
        flags=[RawFlag(**f) for f in d["flags"]],
        present=set(d["present"]) if d.get("present") is not None else None,
        source_pages=list(d["source_pages"]) if d.get("source_pages") is not None else None,
    )
