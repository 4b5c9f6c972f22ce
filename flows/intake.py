"""The intake flow: Prefect around the one intake run (:func:`frontdesk.intake.run_intake`), nothing more:
recovery, each document and the letters as task runs (retries on transient faults), a review run asked for
each document held for a person, and a summary artifact.

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

from flows.context import pipeline_for, readers_for
from flows.context import use_pipeline as use_pipeline  # where callers hand the flow its pipeline
from flows.errors import is_transient, phi_free
from frontdesk.exceptions import ConfigError
from frontdesk.intake import Letters, Pending, done_now, run_intake
from frontdesk.models import ProcessOutcome
from frontdesk.pipeline import IntakeWork, RecoveryReport
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
    return pipeline_for(config_file).intake(path) if readers is None else readers.intake(path)


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


class TaskExecutor:
    """The intake run's :class:`~frontdesk.intake.Executor` inside a flow: each document an
    ``intake-document`` task run (retried on a transient fault), submitted to the flow's task runner
    (reading processes behind a thread pool, or a Dask cluster) or run here, one after another."""

    def __init__(self, config_file: str | None, *, width: int, overlaps: bool, submitted: bool) -> None:
        self.config_file = config_file
        self.width, self.overlaps, self.submitted = width, overlaps, submitted

    def submit(self, path: Path) -> Pending[IntakeWork]:
        if self.submitted:
            return intake_document.submit(path, self.config_file)
        return done_now(intake_document, path, self.config_file)


def executor_here(config_file: str | None, documents: int) -> TaskExecutor:
    """Where this flow run reads: handed to the reading processes (two a process, letters written beside
    the reading), spread over the Dask cluster (all at once, letters after), or one after another here."""
    readers = readers_for(config_file)
    if readers is not None:
        return TaskExecutor(config_file, width=readers.width, overlaps=True, submitted=True)
    if _on_cluster():
        return TaskExecutor(config_file, width=max(1, documents), overlaps=False, submitted=True)
    return TaskExecutor(config_file, width=1, overlaps=False, submitted=False)


def letters_task(config_file: str | None, *, submitted: bool) -> Letters:
    """The letters stage as a task: submitted beside the reading (to the flow's thread pool, never to a
    Dask worker: LibreOffice and the letters belong to the flow's machine), else run here."""
    def write(works: list[IntakeWork]) -> Pending[list[IntakeWork]]:
        if submitted:
            return send_letters.submit(works, config_file)
        return done_now(send_letters, works, config_file)
    return write


def _later() -> None:
    """No recovery now: the pipeline's own, on its clock, when it takes the document."""


def run_here(paths: list[Path], config_file: str | None, *, recovery: bool = True) -> list[IntakeWork]:
    """The one intake run (:func:`frontdesk.intake.run_intake`) with Prefect around it: recovery,
    reading and letters as tasks, and a review run asked for every document held for a person.
    ``recovery=False`` for one document of many on a shared work pool: each worker's pipeline recovers
    on its own clock (:attr:`~frontdesk.pipeline.Pipeline.RECOVER_INTERVAL`), not once per document, or
    workers would take each other's documents in flight for a crashed run's."""
    from flows.review import request_review

    pipeline = pipeline_for(config_file)
    executor = executor_here(config_file, len(paths))
    return run_intake(pipeline, paths, executor, recover=(lambda: recover(config_file)) if recovery else _later,
                      letters=letters_task(config_file, submitted=executor.overlaps),
                      review_run=lambda d: request_review(d.outcome(), pipeline.settings, config_file) is not None)


def intake_flow_here(workers: int) -> Callable[[list[str], str | None], list[ProcessOutcome]]:
    """The intake flow as the watcher runs it, once per batch in its own process: two document tasks a
    reading process at a time (each waits for a reading process, see :func:`use_pipeline`), and no heartbeat
    thread. A heartbeat only marks a flow run whose process died; here the watcher's ledger takes the
    batch again after a crash, and stopping the thread costs up to a second at the end of every run."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.task_runners import ThreadPoolTaskRunner

    runner: ThreadPoolTaskRunner[Any] = ThreadPoolTaskRunner(max_workers=2 * max(1, workers) + 1)  # + letters
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
    works = run_here([Path(p) for p in paths], config_file)
    outcomes = [w.outcome() for w in works]
    create_markdown_artifact(summary_markdown(outcomes), key="intake-run", description="Intake run summary")
    return outcomes
