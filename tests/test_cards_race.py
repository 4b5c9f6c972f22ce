"""A card and its patient's intake form filed at the same moment by two workers (the form from the
scanner's inbox, the card from the check-in desk): whichever commits second must see the first, so the
card is filed into the record and nobody is asked for a member ID the practice has."""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from frontdesk import records
from frontdesk.db.models import FlagRow
from frontdesk.pipeline import Pipeline
from tests.fixtures import cards as card_gen
from tests.s3server import settings_for
from tests.test_cards_process import P, holder_of, intake_case

pytest_plugins = ["tests.conftest_s3"]


def _file(pipeline: Pipeline, document_id: str, path: Path, result: Any) -> None:
    """One worker's filing transaction for an already read document (reserve, then complete)."""
    with pipeline.db.begin() as s:
        records.reserve_document(s, document_id=document_id, sha256=document_id.ljust(64, "0"), size=1,
                                 prefix=f"intake/{document_id}", objects=[], source_path=None)
    with pipeline.db.begin() as s:
        records.complete_document(s, document_id, result=result, outcome="filed", stored=[],
                                  vocab=pipeline.reader.vocabulary)


@pytest.mark.integration
def test_a_card_filed_while_its_form_is_being_filed_is_matched_to_it(tmp_path: Path, db_url: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    case = intake_case(tmp_path / "forms", "member_id_blank")
    card = card_gen.card_for(holder_of(case), str(case.truth[P + "payer_name"]), tmp_path / "cards" / "card-0001",
                             seed=random.Random(5).randint(0, 999))
    pipeline = Pipeline(settings_for(tmp_path, db_url))
    form_result = pipeline.reader.extract(case.path)
    card_result = pipeline.reader.extract(card.path)
    assert (form_result.document_type, card_result.document_type) == ("intake_form", "insurance_card")

    # The form's worker has created the patient and looked for waiting cards (none yet), and has not
    # committed; the card's worker files the card in that moment.
    looked, go = threading.Event(), threading.Event()
    real_file_waiting = records.file_waiting

    def file_waiting_then_stall(*args: Any, **kwargs: Any) -> int:
        n = real_file_waiting(*args, **kwargs)
        looked.set()
        assert go.wait(60)
        return n

    monkeypatch.setattr(records, "file_waiting", file_waiting_then_stall)
    errors: list[BaseException] = []

    def run(document_id: str, path: Path, result: Any) -> None:
        try:
            _file(pipeline, document_id, path, result)
        except BaseException as exc:
            errors.append(exc)

    form_worker = threading.Thread(target=run, args=("doc-form", case.path, form_result))
    form_worker.start()
    assert looked.wait(60)
    monkeypatch.setattr(records, "file_waiting", real_file_waiting)  # the card's worker files normally
    card_worker = threading.Thread(target=run, args=("doc-card", card.path, card_result))
    card_worker.start()
    card_worker.join(1.5)  # without the lock it finishes here, before the form is on file
    go.set()
    form_worker.join(60)
    card_worker.join(60)
    assert not errors, errors

    with pipeline.db.begin() as s:
        patient = records.match_patient(s, form_result)
        assert patient is not None
        member = {f.key: (f.value, f.source_document_id) for f in patient.fields}[P + "member_id"]
        card_flags = {(f.code, f.status) for f in s.scalars(select(FlagRow).where(FlagRow.document_id == "doc-card"))}
        form_open = {f.code for f in s.scalars(select(FlagRow).where(FlagRow.document_id == "doc-form",
                                                                        FlagRow.status == "open"))}
    assert ("card.unmatched", "open") not in card_flags, card_flags
    assert member == (card.truth[P + "member_id"], "doc-card")
    assert "insurance.missing_info" not in form_open
