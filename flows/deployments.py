"""Deployments: which flows Frontdesk runs on a server, on which schedule, and the per-document intake
flow that the watcher submits when documents are spread over workers.

Two ways to run them:

* ``frontdesk serve``: :func:`build_deployments` + Prefect's ``serve`` in one process, with the watcher.
* Scale-out: :func:`register` creates the deployments on a process work pool; any number of
  ``prefect worker start --pool frontdesk`` processes (on any machine with this checkout, the same
  settings and the shared storage) pick the runs up. See ``docs/scale-out.md``.

Flows from other parts of Frontdesk join by one line in :data:`SCHEDULED`; a flow whose module is not
there yet is skipped with a log line, so a partial checkout still serves what it has.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from flows.errors import phi_free
from flows.intake import run_here, summary_markdown
from flows.server import environment_set
from frontdesk.settings import Settings
from frontdesk.watch import write_receipt

log = logging.getLogger("frontdesk.deployments")

ROOT = Path(__file__).resolve().parent.parent


@flow(name="intake-document", persist_result=False, log_prints=False)
@phi_free("intake-document")
def intake_document_flow(claim: str) -> dict[str, Any]:
    """One claimed document: extract, check, file; a document that needs review goes to the review
    deployment (which writes its letters after a person confirmed the values), any other gets its letters
    now; then the outcome (ids, keys, flag codes) is left beside the claimed file for the watcher. ``claim``
    is the opaque name of a file in this worker's own processing area (see :mod:`flows.params`): the run's
    parameters carry no patient data, and cannot point the worker at any other file or configuration."""
    from flows.context import pipeline_for
    from flows.params import claimed_file

    path = claimed_file(claim, pipeline_for(None).settings)
    outcome = run_here([path], None, recovery=False)[0].outcome()
    create_markdown_artifact(summary_markdown([outcome]), key="intake-document",
                             description="Intake of one document (ids and counts only)")
    write_receipt(path, outcome)
    return {"document_id": outcome.record_id, "status": outcome.status}


@dataclass(frozen=True)
class Scheduled:
    """A flow that runs on its own clock. Its module's ``deployment_schedule(settings)`` gives the
    schedule when it has one (the module knows its own settings best); else ``cron`` names a field of
    ``settings.prefect``."""

    module: str
    attr: str
    name: str
    cron: str | None = None


#: Flows on a schedule. Adding one is one line here.
SCHEDULED: tuple[Scheduled, ...] = (
    Scheduled("flows.previsit", "previsit_check_flow", "previsit-check"),  # checks.schedule
    Scheduled("flows.mail", "mail_batch_flow", "mail-batch", "mail_cron"),
    Scheduled("flows.eligibility", "eligibility_flow", "eligibility"),  # claims.eligibility.schedule
    Scheduled("flows.clearinghouse", "clearinghouse_inbox_flow", "clearinghouse-inbox"),  # inbox_cron
)


def _optional_flow(entry: Scheduled) -> Any | None:
    try:
        module = importlib.import_module(entry.module)
    except ModuleNotFoundError as exc:
        if exc.name != entry.module:
            log.error("%s cannot be imported (%s: %s); not deployed", entry.module, exc.__class__.__name__, exc.name)
            return None
        log.info("%s is not available yet; not deployed", entry.module)
        return None
    except Exception as exc:  # one broken flow must not keep intake and review from being served
        log.error("%s cannot be imported (%s); not deployed", entry.module, exc.__class__.__name__)
        return None
    found = getattr(module, entry.attr, None)
    if found is None:
        log.warning("%s has no %s; not deployed", entry.module, entry.attr)
    return found


def _entrypoint(fn: Any) -> str:
    module = importlib.import_module(fn.fn.__module__)
    assert module.__file__ is not None
    return f"{Path(module.__file__).resolve().relative_to(ROOT).as_posix()}:{fn.fn.__name__}"


def _schedule(entry: Scheduled, settings: Settings) -> Any:
    from prefect.schedules import Cron

    module = importlib.import_module(entry.module)
    own = getattr(module, "deployment_schedule", None)
    if callable(own):
        return own(settings)
    if entry.cron is None:
        raise ValueError(f"{entry.module} gives no schedule and none is configured")
    return Cron(getattr(settings.prefect, entry.cron), timezone=settings.prefect.timezone)


def flows_to_deploy(settings: Settings) -> list[tuple[Any, str, dict[str, Any]]]:
    """(flow, deployment name, options) for every deployment Frontdesk has in this checkout."""
    found: list[tuple[Any, str, dict[str, Any]]] = [
        (intake_document_flow, "intake", {}),
    ]
    from flows.review import review_flow

    found.append((review_flow, "review", {}))
    for entry in SCHEDULED:
        fn = _optional_flow(entry)
        if fn is not None:
            found.append((fn, entry.name, {"schedule": _schedule(entry, settings)}))
    return found


def config_for_served_runs(config_file: str | None) -> contextlib.AbstractContextManager[None]:
    """While ``serve`` serves: the flow runs it starts as its subprocesses find the configuration the
    command was given in ``FRONTDESK_CONFIG`` (never in a flow parameter, which anyone who can reach the
    API could set; see :mod:`flows.params`); put back when serving ends."""
    return environment_set("FRONTDESK_CONFIG", str(Path(config_file).resolve()) if config_file else None)


def build_deployments(settings: Settings) -> list[Any]:
    """Runner deployments for ``serve``: the flows run as subprocesses of the serving process, with its
    configuration (:func:`config_for_served_runs`)."""
    deployments = []
    for fn, name, opts in flows_to_deploy(settings):
        kwargs: dict[str, Any] = {"name": name, "tags": ["frontdesk"]}
        if "schedule" in opts:
            kwargs["schedules"] = [opts["schedule"]]
        deployments.append(fn.to_deployment(**kwargs))
    return deployments


def register(settings: Settings, pool: str, config_file: str | None = None) -> list[str]:
    """Create (or update) every deployment on a process work pool; return their ids. Workers load the
    flows from this checkout's path, so every worker machine needs the checkout at the same path."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    with get_client(sync_client=True) as client, contextlib.suppress(ObjectAlreadyExists):
        client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
    ids = []
    for fn, name, opts in flows_to_deploy(settings):  # workers read their own FRONTDESK_CONFIG
        kwargs: dict[str, Any] = {"name": name, "work_pool_name": pool, "tags": ["frontdesk"],
                                  "build": False, "push": False, "print_next_steps": False}
        if "schedule" in opts:
            kwargs["schedules"] = [opts["schedule"]]
        source = flow.from_source(source=str(ROOT), entrypoint=_entrypoint(fn))
        ids.append(str(source.deploy(**kwargs)))  # type: ignore[union-attr]
    return ids
