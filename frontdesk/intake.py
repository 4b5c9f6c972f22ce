"""One intake run: the way a batch of documents goes through Frontdesk, whoever starts it.

``frontdesk process``, the watcher (with or without Prefect), the intake flow, the per-document
deployment flow and the benches all call :func:`run_intake`; they differ only in the :class:`Executor`
that reads the documents (here, one after another; a pool of reading processes; Prefect tasks on a
thread pool or a Dask cluster) and in what they add around it (Prefect: retries, artifacts, a review run
in its UI). The stages, in order:

1. **recover** -- finish what an earlier run left: spooled objects, pending documents, letters due.
2. **collect** -- the files named, folders expanded (:func:`frontdesk.pipeline.collect_inputs`).
3. **read** -- per document, on the executor: hash, extract, check, match the patient, plan the objects,
   store, confirm (:meth:`frontdesk.pipeline.Pipeline.intake`, the records' reserve -> store -> complete).
4. **review** -- a document that needs a person is *held*: recorded ``needs_review`` with no letters due.
   Its letters are written when the review is decided (staff console, or the Prefect review run), with
   the values the person confirmed; never before, on every path.
5. **letters** -- the others' letters, rendered and converted in LibreOffice batches. With an executor
   that reads side by side, letters are written while the rest of the batch is still being read.
6. **outcomes** -- one :class:`~frontdesk.models.ProcessOutcome` per input, in input order.

A stop error (storage and spool refused, the records database gone for longer than the reconnect
window) ends the run after the documents in flight: it carries the outcomes of the documents filed
before it, so the caller records those as filed and not as duplicates of themselves later.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

from frontdesk import records
from frontdesk.db import DatabaseUnavailableError
from frontdesk.exceptions import StorageError
from frontdesk.pipeline import IntakeWork, Pipeline, collect_inputs
from frontdesk.progress import step

log = logging.getLogger("frontdesk.intake")

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Pending(Protocol[T_co]):
    """A result on its way: a :class:`concurrent.futures.Future` or a Prefect future."""

    def add_done_callback(self, fn: Callable[[Any], None], /) -> None: ...

    def result(self) -> T_co: ...


@runtime_checkable
class Executor(Protocol):
    """Where the documents of a run are read. ``width``: documents handed out at once (two per reading
    process keeps each busy while the run hands over the next); ``overlaps``: whether letters may be
    written while other documents are still being read (only worth it when reading goes on elsewhere)."""

    width: int
    overlaps: bool

    def submit(self, path: Path) -> Pending[IntakeWork]: ...


def done_now(fn: Callable[..., T], *args: Any) -> Future[T]:
    """Run ``fn`` here and now; its result (or exception) as a finished future."""
    future: Future[T] = Future()
    try:
        future.set_result(fn(*args))
    except BaseException as exc:  # handed to whoever asks for the result, as a pool would
        future.set_exception(exc)
    return future


class InProcess:
    """Documents read one after another in this thread: the plain path, and the tests' baseline."""

    width = 1
    overlaps = False

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def submit(self, path: Path) -> Future[IntakeWork]:
        return done_now(self.pipeline.intake, path)


#: What the letters stage runs: the pipeline's own batch, or a Prefect task around it.
Letters = Callable[[list[IntakeWork]], Pending[list[IntakeWork]]]


def doubted(work: IntakeWork) -> bool:
    """A value on it was read with doubt: letters written from it could go to the wrong address or ask
    for the wrong thing."""
    return work.result is not None and any(f.code == "low_confidence" for f in work.result.flags)


def hold(pipeline: Pipeline, work: IntakeWork, review_run: Callable[[IntakeWork], bool] | None = None) -> bool:
    """The review stage for one document in ``needs_review``: held (no letter before a person decides)
    when a value on it was read with doubt, on every path; and, where a review run can be started
    (``review_run``: a Prefect server serving the review deployment), whenever one was. A document whose
    only problem is a confidently read blank (no member ID on the form) gets its missing-insurance letter
    at once unless a reviewer was asked: that letter is what the blank calls for. The staff console's
    review queue lists every ``needs_review`` document either way. ``prefect.review: false`` holds none."""
    if work.status != "needs_review" or work.document_id is None or not pipeline.settings.prefect.review:
        return False
    started = review_run is not None and review_run(work)
    if not (started or doubted(work)):
        return False
    with pipeline.db.begin() as s:
        records.finish_without_letters(s, work.document_id)  # recovery must not write them either
    log.info("document %s waits for review before its letters", work.document_id)
    return True


def run_intake(pipeline: Pipeline, paths: Iterable[Path], executor: Executor, *,
               recover: Callable[[], object] | None = None, letters: Letters | None = None,
               review_run: Callable[[IntakeWork], bool] | None = None) -> list[IntakeWork]:
    """Every stage for a batch (see the module's docstring); returns the works in input order.

    ``recover`` replaces the pipeline's own recovery (a flow runs it as a task); ``letters`` the letters
    stage (a flow runs it as a task); ``review_run`` asks for a review run for a document in
    ``needs_review`` and says whether one was started (a flow asks Prefect, so it shows in its UI)."""
    (recover or pipeline.recover)()
    inputs = collect_inputs(paths)
    write = letters or (lambda works: done_now(pipeline.send_letters, works))
    works: dict[int, IntakeWork] = {}
    ready: list[IntakeWork] = []  # read, not held, letters not yet asked for
    lettering: list[IntakeWork] = []  # in the letters stage now running
    finished: queue.Queue[tuple[str, int, Pending[Any]]] = queue.Queue()
    stop: DatabaseUnavailableError | StorageError | None = None

    def watch(kind: str, i: int, pending: Pending[Any]) -> None:
        pending.add_done_callback(lambda _: finished.put((kind, i, pending)))

    def start_letters() -> None:
        nonlocal lettering, ready
        lettering, ready = ready, []
        watch("letters", -1, write(lettering))

    order = iter(_largest_first(inputs) if executor.width > 1 else range(len(inputs)))
    reading = 0
    remaining = len(inputs)
    with step("reading documents", len(inputs)) as progress:
        while True:
            while stop is None and reading < executor.width and (i := next(order, None)) is not None:
                recovered = pipeline.take_recovered(inputs[i])  # recovery just finished it from this file
                watch("read", i, done_now(lambda w: w, recovered) if recovered is not None
                      else executor.submit(inputs[i]))
                reading += 1
            if stop is not None:
                remaining = reading  # nothing more is handed out; the documents in flight are waited for
            if (not lettering and stop is None and (executor.overlaps or not remaining)
                    and pipeline.has_letter_work(_documents(ready))):
                start_letters()
            if not (remaining or lettering):
                break
            kind, i, pending = finished.get()
            if kind == "letters":
                _settle(lettering, pending.result())
                lettering = []
                continue
            reading -= 1
            remaining -= 1
            progress.advance()
            try:
                work = works[i] = pending.result()
            except (DatabaseUnavailableError, StorageError) as exc:
                stop = stop or exc
                continue
            held = [d for d in work.documents() if hold(pipeline, d, review_run)]  # before a recovery sees it
            ready.extend(d for d in work.documents() if d not in held)
    if stop is not None:
        stop.finished = tuple(works[i].outcome() for i in sorted(works))
        raise stop
    return [works[i] for i in range(len(inputs))]


def _documents(works: Sequence[IntakeWork]) -> list[IntakeWork]:
    return [d for w in works for d in w.documents()]


def _settle(given: list[IntakeWork], returned: list[IntakeWork]) -> None:
    """The letters stage files letters on the works it is given; a stage that ran elsewhere (a task whose
    result came back as a copy) returns copies: their letters are taken over."""
    for mine, theirs in zip(given, returned, strict=True):
        if theirs is not mine:
            mine.letters = theirs.letters


def _largest_first(paths: Sequence[Path]) -> list[int]:
    from frontdesk.readers import largest_first

    return largest_first(paths)


def process_batch(paths: Sequence[Path], pipeline: Pipeline) -> list[Any]:
    """Every stage here, without Prefect: the outcomes of ``frontdesk process`` for scripts and tests."""
    return [w.outcome() for w in run_intake(pipeline, paths, InProcess(pipeline))]


__all__ = ["Executor", "InProcess", "Letters", "Pending", "done_now", "doubted", "hold", "process_batch", "run_intake"]
