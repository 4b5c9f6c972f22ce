"""The intake flow: Prefect orchestration over :mod:`frontdesk.pipeline`, nothing more.

Tasks return work objects that live in memory only (``persist_result=False``, ``NO_CACHE``): patient data
is never pickled to Prefect's result storage. Documents run one after another in the flow's thread, so
the per-document read time limit (SIGALRM) applies; letters are converted in one batch.

The flow starts by repairing what an earlier run left (spooled objects, pending documents, letters
due): a retried or re-run flow is safe because every document is recorded before it is stored.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from sqlalchemy.exc import OperationalError

from frontdesk.exceptions import ConfigError, StorageError
from frontdesk.models import ProcessOutcome
from frontdesk.pipeline import IntakeWork, Pipeline, RecoveryReport, collect_inputs
from frontdesk.settings import Settings

_PIPELINES: dict[str | None, Pipeline] = {}


def pipeline_for(config_file: str | None) -> Pipeline:
    """One pipeline per process and config: templates and vocabulary load once, not per task."""
    if config_file not in _PIPELINES:
        from frontdesk.settings import load_settings

        _PIPELINES[config_file] = Pipeline(load_settings(config_file))
    return _PIPELINES[config_file]


def use_pipeline(pipeline: Pipeline, config_file: str | None = None) -> None:
    """Let the CLI (or a test) hand the flow a pipeline it already built."""
    _PIPELINES[config_file] = pipeline


@task(name="recover", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE, persist_result=False)
def recover(config_file: str | None = None) -> RecoveryReport:
    """Counts only: safe to show in the UI."""
    return pipeline_for(config_file).recover(force=True)  # every flow run, even in a long-lived worker


def _transient(task: object, run: object, state: Any) -> bool:
    """Storage refused a write, or the records database was busy: a retry repeats the same keys and
    rows (the document is recorded before it is stored), so it is safe."""
    return isinstance(state.result(raise_on_failure=False), StorageError | OperationalError)


@task(name="intake-document", retries=2, retry_delay_seconds=[1, 5], cache_policy=NO_CACHE,
      persist_result=False, retry_condition_fn=_transient)
def intake_document(path: Path, config_file: str | None = None) -> IntakeWork:
    return pipeline_for(config_file).intake(path)


@task(name="send-letters", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE, persist_result=False)
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


def _spread_over_cluster() -> bool:
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    return ctx is not None and type(ctx.task_runner).__name__ == "DaskTaskRunner"


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
        runner = DaskTaskRunner(address=settings.prefect.dask_address)
    else:
        runner = DaskTaskRunner(cluster_kwargs={"n_workers": os.cpu_count() or 1, "threads_per_worker": 1,
                                                "processes": True, "dashboard_address": None})
    return intake_flow.with_options(task_runner=runner)  # type: ignore[arg-type]  # Dask futures are PrefectFutures


@flow(name="intake", persist_result=False, log_prints=False)
def intake_flow(paths: list[str], config_file: str | None = None) -> list[ProcessOutcome]:
    """Every document read, checked and filed; one that needs review goes to a person first (its letters
    follow the review), the others get their letters in one batch."""
    from flows.review import hold_for_review

    recover(config_file)
    inputs = collect_inputs(Path(p) for p in paths)
    works: list[IntakeWork] = []
    held: set[int] = set()
    if _spread_over_cluster():  # each document a task on the cluster's workers; letters here, in one batch
        futures = [intake_document.submit(p, config_file) for p in inputs]
        works = [f.result() for f in futures]
        held = {i for i, w in enumerate(works) if hold_for_review(w, config_file)}
    else:  # here, one after another, in this thread: the per-document read time limit needs it
        for p in inputs:
            work = intake_document(p, config_file)
            if hold_for_review(work, config_file):  # at once: before any later recovery sees its letter due
                held.add(len(works))
            works.append(work)
    lettered = iter(send_letters([w for i, w in enumerate(works) if i not in held], config_file))
    works = [w if i in held else next(lettered) for i, w in enumerate(works)]
    outcomes = [w.outcome() for w in works]
    create_markdown_artifact(summary_markdown(outcomes), key="intake-run", description="Intake run summary")
    return outcomes
