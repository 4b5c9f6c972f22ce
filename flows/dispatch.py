"""How the watcher hands its claimed documents to Prefect: the intake flow in this process (inline), or one
flow run per document on a work pool (deployment). The commands pass :func:`make_dispatcher` to the
watcher, which itself imports nothing of the flows."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

from frontdesk.models import ProcessOutcome
from frontdesk.settings import Settings
from frontdesk.watch import Dispatcher, LocalDispatcher, read_receipt


class InlineDispatcher(LocalDispatcher):
    """One ``intake`` flow run per batch, in this process: with ``workers`` > 1 its document tasks hand
    the reading to the reading processes, so every flow and task run is reported from here (one Prefect
    client, no flow runs racing each other on the server). Documents that need review are handed to the
    review deployment (when one exists) before letters."""

    def __init__(self, settings: Settings, config_file: str | None, workers: int = 1) -> None:
        super().__init__(settings, workers)
        from flows.intake import intake_flow_here, use_pipeline

        self.settings = settings
        self.config_file = config_file
        use_pipeline(self.pipeline, config_file, readers=self.readers)
        self.flow = intake_flow_here(workers)

    def run(self, paths: list[Path]) -> list[ProcessOutcome]:
        outcomes: list[ProcessOutcome] = self.flow([str(p) for p in paths], self.config_file)
        return outcomes  # documents that need review went to the review deployment, before their letters


class DeploymentDispatcher:
    """One flow run per document on the work pool (``run_deployment``, SHA-256 as idempotency key, so a
    watcher that crashed after submitting gets the same run back instead of a second one)."""

    STATE_CHECK_SECONDS = 5.0

    def __init__(self, settings: Settings, config_file: str | None) -> None:
        self.deployment = settings.prefect.intake_deployment
        self.config_file = config_file
        self._checked: dict[str, float] = {}

    def submit(self, path: Path, sha256: str, attempt: int) -> str:
        from prefect.deployments import run_deployment

        from frontdesk.pipeline import document_id

        run = run_deployment(
            name=self.deployment,
            parameters={"claim": path.name},  # an opaque name the worker finds in its own processing area
            idempotency_key=sha256 if attempt <= 1 else f"{sha256}-{attempt}",
            flow_run_name=f"intake-{document_id(sha256)}-{attempt}",
            tags=["frontdesk", "intake"],
            timeout=0,
        )
        return str(run.id)  # type: ignore[union-attr]

    def poll(self, path: Path, flow_run_id: str) -> ProcessOutcome | str | None:
        """The outcome when the worker left its receipt; a reason when the run ended without one."""
        outcome = read_receipt(path)
        if outcome is not None:
            return outcome
        now = time.monotonic()
        if now - self._checked.get(flow_run_id, 0.0) < self.STATE_CHECK_SECONDS:
            return None
        self._checked[flow_run_id] = now
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            state = client.read_flow_run(uuid.UUID(flow_run_id)).state
        if state is None or not state.is_final():
            return None
        outcome = read_receipt(path)  # the run may have finished between the two looks
        if outcome is not None:
            return outcome
        self._checked.pop(flow_run_id, None)
        return f"flow run ended {state.type.value.lower()} without an outcome"


def make_dispatcher(settings: Settings, config_file: str | None, mode: str | None = None) -> Dispatcher:
    """``watch.workers`` processes (0: one per core) for inline and local work; one flow run per
    document on the pool's workers for ``deployment``."""
    mode = mode or settings.watch.dispatch
    if mode == "deployment":
        return DeploymentDispatcher(settings, config_file)
    workers = settings.watch.workers or os.cpu_count() or 1
    if mode == "local":
        return LocalDispatcher(settings, workers)
    return InlineDispatcher(settings, config_file, workers)
