"""Reading processes: documents of a batch read, checked and filed side by side, one process per core.

Why processes and not threads: OCR is CPU-bound Python around tesseract. Each document itself is read in
a further process of its own (:func:`read_isolated`), killed at the time and memory limits, so a hostile
file never takes a pool process (or the batch) down with it. Why a pool kept for the whole life of a
watcher: each process imports the readers and loads templates, vocabulary and OCR set-up once (seconds
of CPU), not per batch.

The processes do only the per-document stage (:meth:`frontdesk.pipeline.Pipeline.intake` without
recovery); the caller keeps everything that belongs to the batch: recovery, review hand-offs, letters in
one LibreOffice batch, and Prefect, whose flow and task runs all live in the caller's process. Reading
processes never talk to the Prefect server: concurrent flow-run writes from several processes make a
SQLite-backed server answer ``503`` and clients back off for seconds.

Documents are handed out largest first (queued, so a process that finishes one takes the next at once),
so no process idles at the end of a batch behind a slow scan.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING, Any

from extractors import RawDocument
from frontdesk.settings import Settings

if TYPE_CHECKING:
    from frontdesk.pipeline import IntakeWork, Pipeline

__all__ = ["ReadingPool", "largest_first", "read_isolated"]

_PIPELINE: Pipeline | None = None


def _start(settings: Settings, workers: int) -> None:
    global _PIPELINE
    from extractors import ocr
    from frontdesk.pipeline import Pipeline

    ocr.set_width((os.cpu_count() or 1) // workers)  # the cores are shared out between the processes
    _PIPELINE = Pipeline(settings)


def _intake(path: Path) -> IntakeWork:
    assert _PIPELINE is not None
    return _PIPELINE.intake(path, recover=False)  # the batch's owner recovers, once, before handing out


def largest_first(paths: Sequence[Path]) -> list[int]:
    """Indexes of ``paths``, largest file first: a scan's bytes are pixels to read, so the slow documents
    start first and the quick ones fill the gaps at the end."""

    def size(i: int) -> int:
        try:
            return paths[i].stat().st_size
        except OSError:
            return 0

    return sorted(range(len(paths)), key=lambda i: -size(i))


class ReadingPool:
    """``workers`` processes, each with its own :class:`~frontdesk.pipeline.Pipeline` (same settings,
    same records and storage as the caller's)."""

    def __init__(self, settings: Settings, workers: int) -> None:
        self.workers = workers
        self.broken = False
        # spawn, not fork: the caller may hold Prefect's background threads, which fork would copy broken.
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_start, initargs=(settings, workers))

    def submit(self, path: Path) -> Future[IntakeWork]:
        return self._pool.submit(_intake, path)

    def intake(self, path: Path) -> IntakeWork:
        """One document, in whichever process is free; blocks until it is filed. Exceptions come back
        as raised in the process (a storage fault stays a ``StorageError``, so retries see it)."""
        try:  # a pool whose process died between batches refuses at submit already
            return self.submit(path).result()
        except BrokenProcessPool:
            self._broke()
            raise

    def intake_all(self, paths: Sequence[Path]) -> list[IntakeWork]:
        """Every document of a batch, in the batch's order."""
        try:  # a pool whose process died between batches refuses at submit already
            futures = {i: self.submit(paths[i]) for i in largest_first(paths)}
            return [futures[i].result() for i in range(len(paths))]
        except BrokenProcessPool:
            self._broke()
            raise

    def _broke(self) -> None:
        """A process died (a hostile file crashed the interpreter, or it was killed): this pool is done;
        the caller's next batch gets a fresh one."""
        self.broken = True
        self.close()

    def close(self) -> None:
        self._pool.shutdown(wait=not self.broken, cancel_futures=True)


# ------------------------------------------------------------------------------ one document, isolated


def read_isolated(path: Path, settings: Settings, extra_forms_dirs: list[Path] | None = None) -> list[RawDocument]:
    """The documents in ``path``, read by ``python -m frontdesk.reading_process`` in a process of its own
    with a wall-clock limit (``extraction.read_limit_seconds``, the process and its tesseracts killed)
    and a memory limit (``extraction.read_memory_mb``, RLIMIT_AS). Works from any thread, process pool or
    Dask worker. Raises :class:`extractors.UnreadableDocument` with a one-line reason when the reader
    refuses the file, runs out of time or memory, or dies."""
    import contextlib
    import json
    import pickle
    import signal
    import subprocess
    import sys
    import tempfile

    from extractors import UnreadableDocument, ocr

    ex = settings.extraction
    job = {"path": str(path), "settings": settings, "extra_forms_dirs": extra_forms_dirs,
           "memory_mb": ex.read_memory_mb, "ocr_width": ocr.width()}
    env = {**os.environ, "OMP_THREAD_LIMIT": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           # OpenCV's own decoder limit, read when cv2 is imported: the practice's pixel limit
           "OPENCV_IO_MAX_IMAGE_PIXELS": str(int(ex.max_image_megapixels * 1e6))}
    with tempfile.TemporaryFile() as answer:
        proc = subprocess.Popen([sys.executable, "-m", "frontdesk.reading_process"], stdin=subprocess.PIPE,
                                stdout=answer, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
        timed_out = False
        try:
            assert proc.stdin is not None
            try:
                proc.stdin.write(pickle.dumps(job))
                proc.stdin.close()
            except BrokenPipeError:
                pass
            try:
                proc.wait(timeout=ex.read_limit_seconds)
            except subprocess.TimeoutExpired:
                timed_out = True
        finally:
            with contextlib.suppress(ProcessLookupError):  # the reader and anything it started (tesseract)
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if timed_out:
            raise UnreadableDocument(f"reading took longer than {ex.read_limit_seconds:g} s; the file may be damaged")
        answer.seek(0)
        raw = answer.read()
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        code = proc.returncode
        how = f"was stopped by signal {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
        raise UnreadableDocument(f"the reader {how}; the file may be damaged or need more than "
                                 f"{ex.read_memory_mb} MB to read")
    if "unreadable" in data:
        raise UnreadableDocument(str(data["unreadable"]), encrypted=bool(data.get("encrypted")))
    return [_document(d) for d in data["documents"]]


def _document(d: dict[str, Any]) -> RawDocument:
    from extractors import RawField, RawFlag

    return RawDocument(
        document_type=str(d["document_type"]), form=d.get("form"), method=str(d["method"]), pages=int(d["pages"]),
        fields={k: RawField(**v) for k, v in d["fields"].items()},
        flags=[RawFlag(**f) for f in d["flags"]],
        present=set(d["present"]) if d.get("present") is not None else None,
        source_pages=list(d["source_pages"]) if d.get("source_pages") is not None else None,
    )
