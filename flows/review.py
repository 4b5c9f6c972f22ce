"""Human review in the Prefect UI: a document in ``needs_review`` waits for a person to confirm or
correct its uncertain fields; validation and letters then run again with what the person entered.

Why a flow of its own, not a pause inside intake: the original is already filed when review starts, so
the watcher can archive it and go on; a review may take a day, and a run waiting that long must not hold
a worker. Run from a deployment the flow *suspends* (the worker is freed and the run is started again on
resume); run directly it *pauses* (blocks). Either way the form comes from ``wait_for_input``.

PHI: the form shows the values read, so the Prefect database holds them while the run waits. They are
deleted from the server as soon as the answer is read; artifacts, logs and run names carry only ids.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.context import FlowRunContext
from prefect.flow_runs import pause_flow_run, suspend_flow_run
from prefect.input import RunInput
from pydantic import ConfigDict, Field, ValidationError, create_model

from extractors.base import RawField
from flows.context import pipeline_for
from flows.errors import phi_free
from flows.server import review_api
from frontdesk.exceptions import FrontdeskError
from frontdesk.field_flags import validate
from frontdesk.fields import Vocabulary
from frontdesk.models import ExtractionResult, ProcessOutcome
from frontdesk.pipeline import IntakeWork
from frontdesk.settings import Settings, validation_reason

log = logging.getLogger("frontdesk.review")

REVIEW_KEY = "review"
#: A review deployment found missing is looked for again after this long, not for every document.
NOT_DEPLOYED_RECHECK_SECONDS = 60.0
_NOT_DEPLOYED: dict[str, float] = {}
#: Flags that validation recomputes from the fields; every other flag (page.missing, ...) is kept.
_RECOMPUTED = {"invalid", "missing", "low_confidence"}
_BOOL_TYPES = {"checkbox", "signature"}


class ReviewInput(RunInput):
    """Base of every review form. An answer that fails validation (sent through the API, a wrong type)
    must not have its value echoed in the error, which reaches logs and the run's state message."""

    model_config = ConfigDict(hide_input_in_errors=True)


class ReviewAnswerError(FrontdeskError):
    """The answer given for a review form is not valid; the document stays in ``needs_review``."""

    exit_code = 2


def field_name(key: str) -> str:
    """Vocabulary keys carry dots; form field names cannot."""
    return key.replace(".", "__")


def uncertain_fields(result: ExtractionResult, vocab: Vocabulary) -> list[str]:
    """The fields a person must look at: flagged ones, and the insurance items a letter would ask for."""
    keys: list[str] = []
    for f in result.flags:
        if f.field and (f.severity == "error" or f.code == "low_confidence") and f.field in vocab:
            keys.append(f.field)
        if f.code == vocab.missing_insurance.code:
            keys.extend(k for k in vocab.missing_insurance.fields if k in vocab)
    ordered = [k for k in vocab.fields if k in set(keys)]  # vocabulary order: the form reads like the paper
    return ordered


#: The answer the staff console gives a held run: the person decided in the console (their decisions are
#: filed and audited there, under their name); the run only finishes. Left empty in Prefect's own form.
CONSOLE_FIELD = "answered_in_console_by"


def review_model(keys: list[str], result: ExtractionResult, vocab: Vocabulary) -> type[RunInput]:
    """A form with one box per uncertain field, pre-filled with what was read, and the box the staff
    console fills when a person answered there (:func:`resume_from_console`)."""
    fields: dict[str, Any] = {
        CONSOLE_FIELD: (str | None, Field(default=None, title="Answered in the staff console by (leave empty)",
                                          max_length=100)),
    }
    for key in keys:
        spec = vocab.fields[key]
        current = result.value(key)
        if spec.type in _BOOL_TYPES:
            fields[field_name(key)] = (bool, Field(default=bool(current), title=vocab.label(key)))
        else:
            default = current if isinstance(current, str) else None
            fields[field_name(key)] = (str | None, Field(default=default, title=vocab.label(key)))
    model: type[RunInput] = create_model("IntakeReview", __base__=ReviewInput, **fields)
    model._description = (
        "Check these fields against the paper form, correct them where needed, then resume. "
        "Validation and letters run again with your values.")
    return model


def apply_review(result: ExtractionResult, answer: dict[str, Any], vocab: Vocabulary,
                 low_confidence: float) -> tuple[ExtractionResult, list[str]]:
    """Re-validate with the person's values taken at full confidence; return the result and the keys
    whose value changed. Fields nobody reviewed keep their raw reading and confidence."""
    raw: dict[str, RawField] = {}
    for key, fr in result.fields.items():
        raw[key] = RawField(raw=fr.raw, confidence=fr.confidence, page=fr.page)
    for name, value in answer.items():
        if name == CONSOLE_FIELD:
            continue
        key = name.replace("__", ".")
        if key not in vocab:
            continue
        if isinstance(value, bool):
            text: str | None = "Yes" if value else None
        else:
            text = value.strip() if isinstance(value, str) and value.strip() else None
        page = result.fields[key].page if key in result.fields else None
        raw[key] = RawField(raw=text, confidence=1.0, page=page)
    kept = [f for f in result.flags if f.code not in _RECOMPUTED and f.code != vocab.missing_insurance.code]
    fresh = ExtractionResult(document_type=result.document_type, form=result.form, method=result.method,
                             pages=result.pages, flags=kept)
    fresh = validate(fresh, raw, vocab, present=set(raw), low_confidence=low_confidence)
    changed = [k for k in raw if fresh.value(k) != result.value(k)]
    return fresh, changed


def wait_for_review(model: type[RunInput], timeout_seconds: int) -> RunInput:
    """Suspend when a worker would otherwise sit idle for hours; pause when run by hand."""
    ctx = FlowRunContext.get()
    if ctx is not None and ctx.flow_run is not None and ctx.flow_run.deployment_id is not None:
        answer = suspend_flow_run(wait_for_input=model, timeout=timeout_seconds, key=REVIEW_KEY)
    else:
        answer = pause_flow_run(wait_for_input=model, timeout=timeout_seconds, poll_interval=2, key=REVIEW_KEY)
    assert answer is not None
    return answer


def _forget(client: Any, flow_run_id: Any) -> int:
    """Delete every review input (form schema, pre-filled description, answer) of one run; how many."""
    gone = 0
    for state in ("paused", "suspended"):
        try:
            present = client.filter_flow_run_input(flow_run_id, key_prefix=f"{state}-{REVIEW_KEY}", limit=20,
                                                   exclude_keys=set())
        except Exception:  # noqa: S112 - a run already deleted, a server hiccup: the next sweep tries again
            continue
        for item in present:
            try:
                client.delete_flow_run_input(flow_run_id, item.key)
                gone += 1
            except Exception:  # noqa: S112 - deleted meanwhile
                continue
    return gone


def forget_answers() -> None:
    """Delete the form, its pre-filled values and the answer from the Prefect server: PHI."""
    from prefect.client.orchestration import get_client

    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow_run is None:
        return
    with get_client(sync_client=True) as client:
        _forget(client, ctx.flow_run.id)


#: How far back the sweep looks for ended review runs (their forms are deleted at the latest by then).
SWEEP_DAYS = 14


def sweep_review_forms() -> int:
    """Delete the forms (pre-filled with patient values) of review runs that will never read them: runs
    that ended without reaching ``forget_answers`` (cancelled, crashed, failed, timed out while
    suspended, whose code never ran again) and runs still paused past their pause timeout. Returns how
    many inputs were deleted. Every review run sweeps when it starts, so forms left by one cancelled run
    are gone by the next review at the latest."""
    from datetime import timedelta

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterEndTime,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    now = datetime.now(UTC)
    gone = 0
    review = FlowFilter(name=FlowFilterName(any_=["review"]))
    with get_client(sync_client=True) as client:
        ended = client.read_flow_runs(
            flow_filter=review, limit=200,
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[
                    StateType.CANCELLED, StateType.CRASHED, StateType.FAILED, StateType.COMPLETED])),
                end_time=FlowRunFilterEndTime(after_=now - timedelta(days=SWEEP_DAYS))))  # type: ignore[arg-type]
        waiting = client.read_flow_runs(
            flow_filter=review, limit=200,
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(
                type=FlowRunFilterStateType(any_=[StateType.PAUSED, StateType.CANCELLING]))))
        for run in waiting:
            details = run.state.state_details if run.state is not None else None
            timeout = getattr(details, "pause_timeout", None)
            if run.state is not None and run.state.type == StateType.CANCELLING or (timeout is not None and timeout < now):
                ended.append(run)
        for run in ended:
            gone += _forget(client, run.id)
    if gone:
        log.info("review forms of %d ended review runs deleted", gone)
    return gone


@flow(name="review", persist_result=False, log_prints=False)
@phi_free("review")
def review_flow(extraction_key: str) -> dict[str, Any]:
    """Ask a person about one filed document; file the corrected reading and any letter it needs.
    ``extraction_key`` must be an extraction record's key in this worker's own storage (flows.params)."""
    from flows.params import extraction_key as checked_key

    logger = get_run_logger()
    extraction_key = checked_key(extraction_key)
    try:  # forms other review runs left behind (cancelled, timed out) hold patient values: gone now
        sweep_review_forms()
    except Exception as exc:  # the sweep must never keep this review from being asked
        logger.warning("review forms not swept (%s)", exc.__class__.__name__)
    pipeline = pipeline_for(None)
    record = json.loads(pipeline.storage.get_bytes(extraction_key))
    doc_id: str = record["document_id"]
    result = ExtractionResult.model_validate(record["extraction"])
    vocab = pipeline.reader.vocabulary
    keys = uncertain_fields(result, vocab)
    if not keys:
        logger.info("document %s has nothing a person could correct", doc_id)
        return {"document_id": doc_id, "status": "needs_review", "changed": 0, "letters": []}

    timeout = int(pipeline.settings.prefect.review_timeout_hours * 3600)
    logger.info("document %s waits for review of %d fields", doc_id, len(keys))
    review_before = record.get("review")
    from prefect.exceptions import Pause

    try:
        answer = wait_for_review(review_model(keys, result, vocab), timeout)
        values = answer.model_dump()
    except Pause:  # suspended: the form stays for the person; the run starts again when it is answered
        raise
    except ValidationError as exc:
        forget_answers()
        raise ReviewAnswerError(f"document {doc_id}: the review answer is not valid "
                                f"({validation_reason(exc)}); it stays in needs_review") from None
    except BaseException:  # timed out, cancelled: the form and its values leave the server
        forget_answers()
        raise
    forget_answers()  # answered: the same

    # Answered in the staff console, or reviewed there (or by `frontdesk review decide`) while this run
    # waited: that review is filed already, under the person's name. Filing this answer too would file
    # the document twice, with values the person never saw.
    in_console = values.pop(CONSOLE_FIELD, None)
    now = json.loads(pipeline.storage.get_bytes(extraction_key))
    if in_console or now.get("review") != review_before:
        status = (now.get("review") or {}).get("status") or "needs_review"
        where = "in the staff console" if in_console else "elsewhere"
        create_markdown_artifact(
            "\n".join([f"# Review of {doc_id}", "", f"Answered {where}; filed there (see the audit trail).", "",
                       "| | |", "|---|---|", f"| status now | {status} |"]),
            key=f"review-{doc_id}", description="Review outcome (ids and counts only)")
        logger.info("document %s was reviewed %s; nothing more to file", doc_id, where)
        return {"document_id": doc_id, "status": status, "changed": len((now.get("review") or {}).get(
            "fields_changed") or []), "letters": [], "answered_in_console": bool(in_console)}

    corrected, changed = apply_review(result, values, vocab, pipeline.settings.extraction.low_confidence_threshold)
    status = "needs_review" if corrected.needs_review() else "filed"
    record["extraction_before_review"] = record.get("extraction_before_review") or record["extraction"]
    record["extraction"] = corrected.model_dump(mode="json")
    record["review"] = {"reviewed_at": datetime.now(UTC).isoformat(timespec="seconds"),
                        "fields_reviewed": keys, "fields_changed": changed, "status": status}
    data = json.dumps(record, indent=2, ensure_ascii=False).encode("utf-8")
    refile = getattr(pipeline, "refile_reading", None)
    if refile is not None:  # the records get the new reading too: open flags resolved, patient updated
        refile(doc_id, corrected, extraction_key, data)
        # The records answer what other documents have given since the form was filed (the card that
        # filled the member ID the person confirmed blank): those flags leave ``corrected.flags``, so no
        # letter asks for it, and the document may need nobody any more.
        filed = "needs_review" if corrected.needs_review() else "filed"
        if filed != status:
            status = record["review"]["status"] = filed
            pipeline.store_recorded(json.dumps(record, indent=2, ensure_ascii=False).encode("utf-8"), extraction_key,
                                    role="extraction", content_type="application/json", document_id=doc_id)
    else:
        pipeline.storage.put_bytes(data, extraction_key, content_type="application/json")

    prefix = extraction_key.rsplit("/", 1)[0]
    work = IntakeWork(input=Path(extraction_key), sha256=record.get("sha256"), document_id=doc_id,
                      status=status, result=corrected, prefix=prefix)
    pipeline.send_letters([work])
    letters = [s.key for s in work.letters]
    codes = sorted({f.code for f in corrected.flags if f.severity == "error"})
    create_markdown_artifact(
        "\n".join([f"# Review of {doc_id}", "", "| | |", "|---|---|",
                   f"| fields reviewed | {len(keys)} |", f"| fields changed | {len(changed)} |",
                   f"| status now | {status} |", f"| letters filed | {len(letters)} |",
                   f"| remaining error flags | {', '.join(codes) or 'none'} |"]),
        key=f"review-{doc_id}", description="Review outcome (ids and counts only)")
    logger.info("document %s reviewed: %d changed, status %s, %d letters", doc_id, len(changed), status, len(letters))
    return {"document_id": doc_id, "status": status, "changed": len(changed), "letters": letters}


def request_review(outcome: ProcessOutcome, settings: Settings, config_file: str | None) -> str | None:
    """Start the review deployment for a document that needs it; None when there is nothing to start
    (no deployment registered, no server). Keyed by the document so a retry does not ask twice."""
    key = next((s.key for s in outcome.stored if s.key.endswith("/extraction.json")), None)
    if key is None or outcome.record_id is None:
        return None
    name = settings.prefect.review_deployment
    if time.monotonic() < _NOT_DEPLOYED.get(name, 0.0):
        return None
    api = review_api(settings)
    if api is None:  # only Prefect's temporary server of this command: nobody would ever serve the run
        return None
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL, temporary_settings

    try:
        with temporary_settings(updates={PREFECT_API_URL: api}):
            run = run_deployment(name=name, parameters={"extraction_key": key},
                                 idempotency_key=f"review-{outcome.record_id}",
                                 flow_run_name=f"review-{outcome.record_id}", tags=["frontdesk", "review"],
                                 timeout=0, as_subflow=False)  # it outlives the intake run; a subflow cannot suspend
    except Exception as exc:  # no review deployment: the document stays in needs_review, as filed
        if isinstance(exc, ObjectNotFound):  # not deployed: do not ask again for every document
            _NOT_DEPLOYED[name] = time.monotonic() + NOT_DEPLOYED_RECHECK_SECONDS
        log.info("no review run for %s (%s)", outcome.record_id, exc.__class__.__name__)
        return None
    return str(run.id)  # type: ignore[union-attr]


def resume_from_console(api_url: str, document_id: str, reviewed_by: str) -> str | None:
    """Tell the review run holding ``document_id`` (paused or suspended, named ``review-<id>``) on the
    Prefect server at ``api_url`` that a
    person answered in the staff console, so it finishes; returns the run's id, or None when no run waits
    for this document. The console files the decision itself first (:func:`frontdesk.review_queue.decide`,
    audited under the person's name): no patient data is sent to Prefect, and a run that cannot be reached
    now finds the review filed when it is resumed later. Raises on a server that does not answer."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterName,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.settings import PREFECT_API_URL, temporary_settings

    # The sync client, not prefect.flow_runs.resume_flow_run: that one returns an un-awaited coroutine when
    # it guesses it is called from async code (a web server's worker thread).
    with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            name=FlowRunFilterName(any_=[f"review-{document_id}"]),
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))))
        for run in runs:
            response = client.resume_flow_run(run.id, run_input={CONSOLE_FIELD: reviewed_by[:100]})
            if response.status == SetStateStatus.REJECT:
                raise RuntimeError(f"review run {run.id} cannot be resumed: {getattr(response.details, 'reason', '')}")
            log.info("review run %s of %s resumed from the console", run.id, document_id)
            return str(run.id)
    return None
