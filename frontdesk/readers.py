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
from typing import TYPE_CHECKING

from frontdesk.reading_server import read_isolated as read_isolated  # where it lived before
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
    same records and storage as the caller's): an :class:`~frontdesk.intake.Executor` whose documents are
    read side by side, so the batch's letters are written while the rest is still being read."""

    overlaps = True

    def __init__(self, settings: Settings, workers: int) -> None:
        self.workers = workers
        self.width = 2 * max(1, workers)  # two a process: one finishing finds the next already waiting
        self.broken = False
        # spawn, not fork: the caller may hold Prefect's background threads, which fork would copy broken.
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_start, initargs=(settings, workers))

    def submit(self, path: Path) -> Future[IntakeWork]:
        """One document to whichever process is free. Exceptions come back as raised in the process (a
        storage fault stays a ``StorageError``, so retries see it)."""
        try:  # a pool whose process died between batches refuses at submit already
            future = self._pool.submit(_intake, path)
        except BrokenProcessPool:
            self._broke()
            raise
        future.add_done_callback(self._check)
        return future

    def intake(self, path: Path) -> IntakeWork:
        """One document; blocks until it is filed."""
        return self.submit(path).result()

    def _check(self, future: Future[IntakeWork]) -> None:
        if not future.cancelled() and isinstance(future.exception(), BrokenProcessPool):
            self._broke()

    def _broke(self) -> None:
        """A process died (a hostile file crashed the interpreter, or it was killed): this pool is done;
        the caller's next batch gets a fresh one."""
        self.broken = True
        self._pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        self._pool.shutdown(wait=not self.broken, cancel_futures=True)
