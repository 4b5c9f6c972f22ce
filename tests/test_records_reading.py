"""A corrected reading of a filed document (a person's review) is filed and recorded without breaking
the link between records and storage."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from frontdesk.db.models import Document, Extraction, FlagRow
from frontdesk.intake import process_batch
from frontdesk.models import FieldResult
from frontdesk.pipeline import Pipeline
from frontdesk.records import verify_storage
from tests.fixtures.generator import generate
from tests.s3server import settings_for

pytest_plugins = ["tests.conftest_s3"]


def test_a_reviewed_reading_replaces_the_open_flags_and_keeps_storage_verified(tmp_path: Path, db_url: str) -> None:
    generate(tmp_path / "inbox", 1, seed=5, scenarios=("unsigned",))
    (tmp_path / "inbox" / "truth.json").unlink()
    pipeline = Pipeline(settings_for(tmp_path, db_url))
    outcome = process_batch([tmp_path / "inbox"], pipeline)[0]
    assert outcome.status == "needs_review" and outcome.record_id
    key = next(s.key for s in outcome.stored if s.key.endswith("extraction.json"))
    record = json.loads(pipeline.storage.get_bytes(key))
    from frontdesk.models import ExtractionResult

    result = ExtractionResult.model_validate(record["extraction"])
    result.fields["consent.signature"] = FieldResult(value=True, raw="reviewed", confidence=1.0)
    result.flags = [f for f in result.flags if f.field != "consent.signature"]
    record["extraction"] = result.model_dump(mode="json")
    new = json.dumps(record).encode()

    obj = pipeline.refile_reading(outcome.record_id, result, key, new)
    assert obj.key == key and pipeline.storage.get_bytes(key) == new
    assert verify_storage(pipeline.db, pipeline.storage).ok  # the record knows the new hash
    with pipeline.db.begin() as s:
        doc = s.get(Document, outcome.record_id)
        assert doc is not None and doc.outcome == ("needs_review" if result.needs_review() else "filed")
        assert len(s.scalars(select(Extraction).where(Extraction.document_id == doc.id)).all()) == 2
        flags = s.scalars(select(FlagRow).where(FlagRow.document_id == doc.id)).all()
        assert {f.status for f in flags if f.field == "consent.signature"} == {"resolved"}
        assert all(f.status == "open" for f in flags if f.extraction_id == max(x.extraction_id or 0 for x in flags))
