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
from pydantic import Field, create_model

from extractors.base import RawField
from flows.context import pipeline_for
from flows.errors import phi_free
from frontdesk.fields import Vocabulary
from frontdesk.models import ExtractionResult, ProcessOutcome
from frontdesk.pipeline import IntakeWork
from frontdesk.settings import Settings
from frontdesk.validation import validate

log = logging.getLogger("frontdesk.review")

REVIEW_KEY = "review"
#: A review deployment found missing is looked for again after this long, not for every document.
NOT_DEPLOYED_RECHECK_SECONDS = 60.0
_NOT_DEPLOYED: dict[str, float] = {}
#: Flags that validation recomputes from the fields; every other flag (page.missing, ...) is kept.
_RECOMPUTED = {"invalid", "missing", "low_confidence"}
_BOOL_TYPES = {"checkbox", "signature"}


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


def review_model(keys: list[str], result: ExtractionResult, vocab: Vocabulary) -> type[RunInput]:
    """A form with one box per uncertain field, pre-filled with what was read."""
    fields: dict[str, Any] = {}
    for key in keys:
        spec = vocab.fields[key]
        current = result.value(key)
        if spec.type in _BOOL_TYPES:
            fields[field_name(key)] = (bool, Field(default=bool(current), title=vocab.label(key)))
        else:
            default = current if isinstance(current, str) else None
            fields[field_name(key)] = (str | None, Field(default=default, title=vocab.label(key)))
    model: type[RunInput] = create_model("IntakeReview", __base__=RunInput, **fields)
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


def forget_answers() -> None:
    """Delete the form, its pre-filled values and the answer from the Prefect server: PHI."""
    from prefect.client.orchestration import get_client

    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow_run is None:
        return
    with get_client(sync_client=True) as client:
        for state in ("paused", "suspended"):
            for part in ("schema", "response", "description"):
                try:
                    client.delete_flow_run_input(ctx.flow_run.id, f"{state}-{REVIEW_KEY}-{part}")
                except Exception:  # noqa: S112 - absent keys are the normal case
                    continue


@flow(name="review", persist_result=False, log_prints=False)
@phi_free("review")
def review_flow(extraction_key: str) -> dict[str, Any]:
    """Ask a person about one filed document; file the corrected reading and any letter it needs.
    ``extraction_key`` must be an extraction record's key in this worker's own storage (flows.params)."""
    from flows.params import extraction_key as checked_key

    logger = get_run_logger()
    extraction_key = checked_key(extraction_key)
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
    answer = wait_for_review(review_model(keys, result, vocab), timeout)
    values = answer.model_dump()
    forget_answers()

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


def hold_for_review(work: IntakeWork, config_file: str | None = None) -> bool:
    """A document in ``needs_review`` goes to a person before any letter does. Starts its review run and
    returns True when one was started: its letters are then the review's to write, with the values the
    person confirmed, and the document stops being "letters due" (a later run's recovery would otherwise
    write them first). False (letters go now) when review is off, or there is no review deployment."""
    pipeline = pipeline_for(config_file)
    if work.status != "needs_review" or work.document_id is None or not pipeline.settings.prefect.review:
        return False
    if request_review(work.outcome(), pipeline.settings, config_file) is None:
        return False
    from frontdesk import records

    with pipeline.db.begin() as s:
        records.finish_without_letters(s, work.document_id)
    log.info("document %s waits for review before its letters", work.document_id)
    return True


def request_review(outcome: ProcessOutcome, settings: Settings, config_file: str | None) -> str | None:
    """Start the review deployment for a document that needs it; None when there is nothing to start
    (no deployment registered, no server). Keyed by the document so a retry does not ask twice."""
    key = next((s.key for s in outcome.stored if s.key.endswith("/extraction.json")), None)
    if key is None or outcome.record_id is None:
        return None
    name = settings.prefect.review_deployment
    if time.monotonic() < _NOT_DEPLOYED.get(name, 0.0):
        return None
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    try:
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
