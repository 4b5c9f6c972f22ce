"""The records database on SQLite, and on PostgreSQL when FRONTDESK_TEST_POSTGRES_URL is set: migrations
match the models, patients are matched by name and date of birth, values keep their source document,
documents are unique by content, times stay UTC."""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError

from frontdesk import records
from frontdesk.db import current_revision, head_revision, load_all_models, open_database
from frontdesk.db.models import (
    Appointment,
    AuditEvent,
    Base,
    CheckRun,
    Document,
    Letter,
    MailBatch,
    MailItem,
    Patient,
    Statement,
    StoredObjectRow,
)
from frontdesk.models import ExtractionResult, FieldResult, Flag, StoredObject
from frontdesk.records import PlannedObject

pytest_plugins = ["tests.conftest_s3"]

TABLES = {"patients", "patient_fields", "documents", "arrivals", "stored_objects", "extractions",
          "extracted_fields", "flags", "letters", "statements", "mail_batches", "mail_items", "appointments",
          "check_runs", "audit_events", "alembic_version"}


def reading(first: str = "Ana", last: str = "Núñez", dob: str = "1980-02-29", **values: object) -> ExtractionResult:
    fields = {"patient.first_name": FieldResult(value=first, raw=first),
              "patient.last_name": FieldResult(value=last, raw=last),
              "patient.date_of_birth": FieldResult(value=dob, raw="02/29/1980"),
              "consent.signature": FieldResult(value=True)}
    fields.update({k: FieldResult(value=v, raw=str(v), confidence=0.9) for k, v in values.items()})  # type: ignore[arg-type]
    return ExtractionResult(document_type="intake_form", form="new_patient_intake", method="acroform", pages=2,
                            fields=fields,
                            flags=[Flag(code="missing", severity="error", field="patient.phone",
                                        message="Phone is missing")])


def file_document(db, n: int, result: ExtractionResult | None) -> Document:  # type: ignore[no-untyped-def]
    """A document through reserve and complete, as the pipeline does it."""
    sha = hashlib.sha256(str(n).encode()).hexdigest()
    doc_id = f"doc-{sha[:16]}"
    planned = [PlannedObject(f"documents/2026/11/{doc_id}/original.pdf", "original", sha, 10, "application/pdf")]
    with db.begin() as s:
        records.reserve_document(s, document_id=doc_id, sha256=sha, size=10, prefix=f"documents/2026/11/{doc_id}",
                                 objects=planned, source_path=None)
    with db.begin() as s:
        doc = records.complete_document(s, doc_id, result=result, outcome="needs_review",
                                        stored=[StoredObject(key=planned[0].key, uri="x", sha256=sha, size=10)])
        assert doc is not None
    with db.begin() as s:
        return s.get(Document, doc_id)  # type: ignore[return-value]


def test_migrations_build_exactly_the_models(db_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    load_all_models()
    db = open_database(db_url)
    assert current_revision(db.engine) == head_revision()
    assert set(inspect(db.engine).get_table_names()) >= TABLES
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == [], "models and migrations disagree: write a migration"
    db.dispose()


def test_migrations_go_down_and_up_again(db_url: str) -> None:
    from alembic import command

    from frontdesk.db import _alembic_config

    db = open_database(db_url)
    with db.engine.begin() as conn:
        command.downgrade(_alembic_config(conn), "base")
    assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
    db.dispose()
    db = open_database(db_url)  # the start of the next command migrates again
    assert set(inspect(db.engine).get_table_names()) >= TABLES
    db.dispose()


def test_concurrent_starts_migrate_once(db_url: str) -> None:
    errors: list[BaseException] = []

    def start() -> None:
        try:
            open_database(db_url).dispose()
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert current_revision(open_database(db_url).engine) == head_revision()


def test_a_bad_url_is_a_configuration_error(tmp_path: Path) -> None:
    from frontdesk.db import DatabaseError
    from frontdesk.exceptions import ConfigError

    with pytest.raises(ConfigError):
        open_database("not a url")
    with pytest.raises(DatabaseError) as err:
        open_database("postgresql+psycopg://frontdesk:s3cret@127.0.0.1:1/none")
    assert "s3cret" not in str(err.value)


def test_documents_are_unique_by_content(db_url: str) -> None:
    db = open_database(db_url)
    doc = file_document(db, 1, None)
    with pytest.raises(IntegrityError), db.begin() as s:
        s.add(Document(id="doc-other", sha256=doc.sha256, size=1, storage_prefix="x"))
    with db.begin() as s, pytest.raises(ValueError):  # a complete document is not reserved again
        records.reserve_document(s, document_id=doc.id, sha256=doc.sha256, size=1, prefix="x",
                                 objects=[], source_path=None)


def test_intakes_of_one_person_make_one_patient_with_current_values_and_their_source(db_url: str) -> None:
    db = open_database(db_url)
    first = file_document(db, 1, reading(**{"patient.phone": "2175550100", "insurance.primary.member_id": "ABC1",
                                            "patient.address.city": "Springfield"}))
    # Same person, written differently; the new form has the member id blank and no city box at all.
    second = file_document(db, 2, reading("ana", "Nunez", **{"patient.phone": "2175550199",
                                                            "insurance.primary.member_id": None}))
    other = file_document(db, 3, reading(dob="1980-03-01"))
    unnamed = file_document(db, 4, reading(first=""))
    with db.begin() as s:
        patients = list(s.scalars(select(Patient)))
        assert len(patients) == 2
        ana = s.get(Patient, first.patient_id)
        assert ana is not None and second.patient_id == ana.id and other.patient_id != ana.id
        assert unnamed.patient_id is None
        assert (ana.first_name, ana.last_name, ana.date_of_birth) == ("Ana", "Núñez", date(1980, 2, 29))
        assert ana.value("patient.phone") == "2175550199"
        assert ana.value("insurance.primary.member_id") is None  # the newest form says: none now
        assert ana.value("patient.address.city") == "Springfield"  # not asked again: kept
        source = {f.key: f.source_document_id for f in ana.fields}
        assert source["patient.phone"] == second.id and source["patient.address.city"] == first.id
        assert "consent.signature" not in source  # belongs to the signed document, not the person
        flags = records.show_patient(s, ana.id)
        assert flags is not None and [f.code for f in flags.open_flags] == ["missing", "missing"]
        assert [d.id for d in flags.documents] == [first.id, second.id]


def test_extraction_fields_and_flags_round_trip(db_url: str) -> None:
    db = open_database(db_url)
    result = reading(**{"insurance.self_pay": False, "patient.phone": None})
    doc = file_document(db, 7, result)
    with db.begin() as s:
        again = records.extraction_result(s, doc.id)
    assert again == result
    with db.begin() as s:
        row = s.get(StoredObjectRow, f"documents/2026/11/{doc.id}/original.pdf")
        assert row is not None and row.state == "stored" and row.stored_at is not None


def test_find_and_show_are_audited_without_the_query(db_url: str) -> None:
    db = open_database(db_url)
    doc = file_document(db, 1, reading())
    file_document(db, 2, reading("Bo", "Smith", "1990-01-01"))
    with db.begin() as s:
        assert [p.id for p in records.find_patients(s, "NUNEZ ana")] == [doc.patient_id]
        assert [p.id for p in records.find_patients(s, "núñez", date(1980, 2, 29))] == [doc.patient_id]
        assert records.find_patients(s, "nunez", date(1981, 1, 1)) == []
        assert records.find_patients(s, "1980") == []  # the date inside the match key is not a name
        records.show_patient(s, doc.patient_id)  # type: ignore[arg-type]
    with db.begin() as s:
        events = list(s.scalars(select(AuditEvent).order_by(AuditEvent.id)))
    searches = [e for e in events if e.action == "search"]
    assert [e.object_id for e in searches] == [doc.patient_id, doc.patient_id, None, None]
    assert any(e.action == "read" and e.object_id == doc.patient_id for e in events)
    text = " ".join(f"{e.actor} {e.action} {e.object_type} {e.object_id} {e.detail}" for e in events).lower()
    for phi in ("ana", "núñez", "nunez", "1980", "smith"):
        assert phi not in text


def test_times_are_utc_and_naive_times_are_refused(db_url: str) -> None:
    db = open_database(db_url)
    when = datetime(2026, 11, 3, 8, 30, tzinfo=UTC) + timedelta(microseconds=0)
    with db.begin() as s:
        s.add(Appointment(external_id="ext-1", start_at=when, provider="Dr. Who"))
    with db.begin() as s:
        apt = s.scalars(select(Appointment)).one()
        assert apt.start_at == when and apt.start_at.tzinfo is not None
        assert apt.id.startswith("apt-")
    with pytest.raises(Exception, match="naive"), db.begin() as s:
        s.add(Appointment(external_id="ext-2", start_at=datetime(2026, 11, 3, 8, 30)))


def test_the_other_engineers_tables_take_their_rows(db_url: str) -> None:
    db = open_database(db_url)
    doc = file_document(db, 1, reading())
    with db.begin() as s:
        letter = Letter(kind="missing_insurance", patient_id=doc.patient_id, document_id=doc.id,
                        context={"missing_items": ["Member ID"]})
        stmt = Statement(patient_id=doc.patient_id, statement_date=date(2026, 11, 1), amount_due_cents=4200)
        s.add_all([letter, stmt])
        s.flush()
        s.add(MailBatch(items=[MailItem(letter_id=letter.id), MailItem(statement_id=stmt.id)]))
        s.add(CheckRun(run_date=date(2026, 11, 3), findings={"appointments": 3, "problems": 1}))
    with db.begin() as s:
        b = s.scalars(select(MailBatch)).one()
        assert b.status == "open" and len(b.items) == 2 and b.id.startswith("mb-")
        assert s.scalars(select(Letter)).one().status == "pending"
    with pytest.raises(IntegrityError), db.begin() as s:  # one letter of a kind per document
        s.add(Letter(kind="missing_insurance", document_id=doc.id))
    with pytest.raises(IntegrityError), db.begin() as s:  # a mail item is a letter or a statement
        s.add(MailItem(batch_id=b.id))
