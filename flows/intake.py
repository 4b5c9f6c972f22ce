"""The intake flow: Prefect orchestration over :mod:`frontdesk.pipeline`, nothing more.

Tasks return work objects that live in memory only (``persist_result=False``, ``NO_CACHE``): patient data
is never pickled to Prefect's result storage. Documents run one after another in the flow's thread; in a
watcher they run side by side, each task handing its document to a reading pool process
(:mod:`frontdesk.readers`). Wherever a document is read, it is read in a process of its own that is killed
at the per-document time limit (:mod:`frontdesk.reading_process`), in any thread. Exceptions leave tasks
without patient data (:mod:`flows.errors`). Letters are converted in one batch.

The flow starts by repairing what an earlier run left (spooled objects, pending documents, letters
due): a retried or re-run flow is safe because every document is recorded before it is stored.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture

from flows.context import pipeline_for, readers_for
from flows.context import use_pipeline as use_pipeline  # where callers hand the flow its pipeline
from flows.errors import is_transient, phi_free
from frontdesk.exceptions import ConfigError
from frontdesk.models import ProcessOutcome
from frontdesk.pipeline import IntakeWork, RecoveryReport, collect_inputs
from frontdesk.progress import step
from frontdesk.settings import Settings


@task(name="recover", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE, persist_result=False)
@phi_free("recover")
def recover(config_file: str | None = None) -> RecoveryReport:
    """Counts only: safe to show in the UI."""
    return pipeline_for(config_file).recover(force=True)  # every flow run, even in a long-lived worker


def _transient(task: object, run: object, state: Any) -> bool:
    """Storage refused a write, or the records database was busy: a retry repeats the same keys and
    rows (the document is recorded before it is stored), so it is safe."""
    return is_transient(state.result(raise_on_failure=False))


@task(name="intake-document", retries=2, retry_delay_seconds=[1, 5], cache_policy=NO_CACHE,
      persist_result=False, retry_condition_fn=_transient)
@phi_free("intake-document")
def intake_document(path: Path, config_file: str | None = None) -> IntakeWork:
    readers = readers_for(config_file)
    if readers is None:
        return pipeline_for(config_file).intake(path)
    done = pipeline_for(config_file).take_recovered(path)  # the flow's recovery finished it from this file
    return done if done is not None else readers.intake(path)


@task(name="send-letters", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE, persist_result=False)
@phi_free("send-letters")
def send_letters(works: list[IntakeWork], config_file: str | None = None) -> list[IntakeWork]:
    return pipeline_for(config_file).send_letters(works)


def summary_markdown(outcomes: list[ProcessOutcome]) -> str:
    """Counts and flag codes only: the artifact is visible in the UI and must not carry patient data."""
    status = Counter(o.status for o in outcomes)
    codes = Counter(f.code for o in outcomes for f in o.flags if f.severity == "error")
    letters = sum(len(o.letters) for o in outcomes)
    lines = ["# Intake run", "", "| status | documents |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(status.items())]
    lines += ["", f"Letters filed: {letters}", "", "| error flag | count |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(codes.items())]
    duplicates = [o.record_id for o in outcomes if o.status == "duplicate"]
    if duplicates:
        lines += ["", f"Seen before, not processed again: {len(duplicates)}"]
    failed = [o.record_id for o in outcomes if o.status == "failed"]
    if failed:
        lines += ["", "Failed records: " + ", ".join(str(f) for f in failed)]
    return "\n".join(lines)


def _on_cluster() -> bool:
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    return ctx is not None and type(ctx.task_runner).__name__ == "DaskTaskRunner"


def in_flight(workers: int) -> int:
    """Documents handed out at once: two per reading process, so a process that finishes one finds the
    next already waiting instead of idling while the flow hands it over (tens of milliseconds a document,
    seconds a batch)."""
    return 2 * max(1, workers)


def _read_and_letter(inputs: list[Path], config_file: str | None, workers: int, *,
                     on_read: Callable[[], Any] | None = None) -> tuple[list[IntakeWork], set[int]]:
    """Documents handed to the reading processes (largest first, two per process), and letters written
    as documents come back, one ``send-letters`` task at a time, while the others are still
    being read: LibreOffice then works beside the readers instead of after them. Needs a task runner
    with one thread more than :func:`in_flight` (see :func:`intake_flow_here`). Returns the works in input
    order and the indexes of those handed to review."""
    import queue

    from flows.review import hold_for_review
    from frontdesk.readers import largest_first

    finished: queue.Queue[tuple[str, int, PrefectFuture[Any]]] = queue.Queue()

    def start(kind: str, i: int, future: PrefectFuture[Any]) -> None:
        future.add_done_callback(lambda f: finished.put((kind, i, f)))

    pipeline = pipeline_for(config_file)
    order = iter(largest_first(inputs))
    works: dict[int, IntakeWork] = {}
    held: set[int] = set()
    ready: list[int] = []  # read, not held, letters not yet asked for
    lettering: list[int] = []  # indexes in the letters task now running
    reading = 0
    remaining = len(inputs)
    while True:
        while reading < in_flight(workers) and (i := next(order, None)) is not None:
            start("read", i, intake_document.submit(inputs[i], config_file))
            reading += 1
        # While a letters task runs, the next ones gather (LibreOffice converts them together); documents
        # that need no letter ride along with the next task, or need none at all.
        if not lettering and pipeline.has_letter_work([works[i] for i in ready]):
            lettering, ready = ready, []
            start("letters", -1, send_letters.submit([works[i] for i in lettering], config_file))
        if not (remaining or lettering):
            break
        kind, i, future = finished.get()
        if kind == "read":
            reading -= 1
            remaining -= 1
            works[i] = future.result()
            if on_read is not None:
                on_read()
            if hold_for_review(works[i], config_file):  # at once: before any later recovery sees its letter due
                held.add(i)
            else:
                ready.append(i)
        else:
            for j, w in zip(lettering, future.result(), strict=True):
                works[j] = w
            lettering = []
    return [works[i] for i in range(len(inputs))], held


def intake_flow_here(workers: int) -> Callable[[list[str], str | None], list[ProcessOutcome]]:
    """The intake flow as the watcher runs it, once per batch in its own process: :func:`in_flight`
    document tasks at a time (each waits for a reading process, see :func:`use_pipeline`), and no heartbeat
    thread. A heartbeat only marks a flow run whose process died; here the watcher's ledger takes the
    batch again after a crash, and stopping the thread costs up to a second at the end of every run."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.task_runners import ThreadPoolTaskRunner

    runner: ThreadPoolTaskRunner[Any] = ThreadPoolTaskRunner(max_workers=in_flight(workers) + 1)  # + letters
    batch_flow = intake_flow.with_options(task_runner=runner)  # type: ignore[arg-type]

    def run(paths: list[str], config_file: str | None = None) -> list[ProcessOutcome]:
        with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            outcomes: list[ProcessOutcome] = batch_flow(paths, config_file)
        return outcomes

    return run


def intake_flow_for(settings: Settings) -> Any:
    """The intake flow with the task runner the settings ask for: as it is (documents one after another
    in the flow's process), or over a Dask cluster (``prefect.task_runner: dask``; ``prefect.dask_address``
    names a running scheduler, else a local cluster of one single-threaded worker process per core starts
    with the flow and stops with it)."""
    if settings.prefect.task_runner != "dask":
        return intake_flow
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as exc:
        raise ConfigError("prefect.task_runner is dask but prefect-dask is not installed "
                          "(pip install 'frontdesk[dask]')") from exc
    if settings.prefect.dask_address:
        from frontdesk.netpolicy import check_dask_address

        check_dask_address(settings.prefect.dask_address)  # beyond this machine: tls:// only
        runner = DaskTaskRunner(address=settings.prefect.dask_address)
    else:
        # The local cluster's scheduler and nannies live in this process and log at INFO, including a
        # traceback (logged at INFO) whenever a worker stopped at the time limit closes its connection:
        # noise on the staff's terminal, not a failure. Warnings and errors still show.
        logging.getLogger("distributed").setLevel(logging.WARNING)
        runner = DaskTaskRunner(cluster_kwargs={"n_workers": os.cpu_count() or 1, "threads_per_worker": 1,
                                                "processes": True, "dashboard_address": None})
    return intake_flow.with_options(task_runner=runner)  # type: ignore[arg-type]  # Dask futures are PrefectFutures


@flow(name="intake", persist_result=False, log_prints=False)
@phi_free("intake")
def intake_flow(paths: list[str], config_file: str | None = None) -> list[ProcessOutcome]:
    """Every document read, checked and filed; one that needs review goes to a person first (its letters
    follow the review), the others get their letters in one batch."""
    from flows.review import hold_for_review

    recover(config_file)
    inputs = collect_inputs(Path(p) for p in paths)
    works: list[IntakeWork] = []
    held: set[int] = set()
    readers = readers_for(config_file)
    with step("reading documents", len(inputs)) as reading:
        if readers is not None:  # reading processes: letters written while the rest is still being read
            works, held = _read_and_letter(inputs, config_file, readers.workers, on_read=reading.advance)
            outcomes = [w.outcome() for w in works]
            create_markdown_artifact(summary_markdown(outcomes), key="intake-run", description="Intake run summary")
            return outcomes
        if _on_cluster():  # each document a task on the cluster's workers; letters here, in one batch
            futures = [intake_document.submit(p, config_file) for p in inputs]
            for f in futures:
                works.append(f.result())
                reading.advance()
            held = {i for i, w in enumerate(works) if hold_for_review(w, config_file)}
        else:  # here, one after another, in this thread
            for p in inputs:
                work = intake_document(p, config_file)
                if hold_for_review(work, config_file):  # at once: before any later recovery sees its letter due
                    held.add(len(works))
                works.append(work)
                reading.advance()
    lettered = iter(send_letters([w for i, w in enumerate(works) if i not in held], config_file))
    works = [w if i in held else next(lettered) for i, w in enumerate(works)]
    outcomes = [w.outcome() for w in works]
    create_markdown_artifact(summary_markdown(outcomes), key="intake-run", description="Intake run summary")
    return outcomes
