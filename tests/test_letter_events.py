"""Every letter kind is queued by its event, once, as config/letters.yaml says: a welcome letter on a new
patient's first intake (not on the second form), an incomplete-intake letter when a person's review
leaves required answers blank (not twice), kinds switched off stay off, and a config that names a
trigger or rule a kind does not have is refused with the file and the setting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from frontdesk.db import open_database
from frontdesk.db.models import Letter
from frontdesk.exceptions import ConfigError
from frontdesk.intake import process_batch
from frontdesk.letter_events import INCOMPLETE_INTAKE, WELCOME, load_letter_events
from frontdesk.models import ExtractionResult
from frontdesk.pipeline import Pipeline
from tests.conftest import ROOT
from tests.fixtures.generator import DEFAULT_TEMPLATE, fill_digital, generate


def letters(settings: Any, kind: str) -> list[Letter]:
    db = open_database(settings)
    try:
        with db.begin() as s:
            rows = list(s.scalars(select(Letter).where(Letter.kind == kind).order_by(Letter.created_at)))
            s.expunge_all()
            return rows
    finally:
        db.dispose()


def test_the_shipped_config_names_every_kind_with_its_trigger_and_rule() -> None:
    events = load_letter_events(ROOT / "config" / "letters.yaml").events
    assert {k: (e.trigger, e.once_per) for k, e in events.items()} == {
        "welcome": ("first_intake", "patient"),
        "incomplete_intake": ("blank_after_review", "document"),
        "missing_insurance": ("insurance_missing", "document"),
        "appointment_reminder": ("previsit_gap", "appointment_gap"),
        "patient_statement": ("ledger_balance", "account_statement_date"),
        "self_pay_invoice": ("self_pay_visit", "visit"),
    }
    # every kind has its template
    assert all((ROOT / "templates" / "letters" / f"{k}.docx").is_file() for k in events)


def test_a_config_naming_an_unsupported_trigger_or_rule_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "letters.yaml"
    bad.write_text("letters:\n  welcome:\n    trigger: every_visit\n")
    with pytest.raises(ConfigError, match="letters.welcome: .*trigger 'every_visit'"):
        load_letter_events(bad)
    bad.write_text("letters:\n  missing_insurance:\n    once_per: patient\n")
    with pytest.raises(ConfigError, match="letters.missing_insurance: .*once_per"):
        load_letter_events(bad)
    bad.write_text("letters:\n  birthday_card: {}\n")
    with pytest.raises(ConfigError, match="unknown kind 'birthday_card'"):
        load_letter_events(bad)


def test_welcome_on_a_new_patients_first_intake_only(tmp_path: Path, settings: Any) -> None:
    inbox = tmp_path / "inbox"
    cases = generate(inbox, 2, seed=1641, kinds=("digital",), scenarios=("complete",))
    (inbox / "truth.json").unlink()
    outcomes = process_batch([inbox], Pipeline(settings))
    assert {o.status for o in outcomes} == {"filed"}
    welcome = letters(settings, WELCOME)
    assert len(welcome) == 2 and {w.status for w in welcome} == {"pending"}
    assert {w.document_id for w in welcome} == {o.record_id for o in outcomes}
    for w, c in zip(sorted(welcome, key=lambda w: w.created_at), cases, strict=True):
        assert w.context is not None and w.context["patient"]["address_lines"]
        assert str(c.truth["patient.last_name"]) in w.context["patient"]["full_name"]
    # The same patient hands in a second form (a new phone number): no second welcome.
    again = tmp_path / "again"
    again.mkdir()
    values = dict(cases[0].patient)
    values["patient.phone"] = "(217) 555-0199"
    fill_digital(DEFAULT_TEMPLATE, values, again / "second.pdf")
    second = process_batch([again], Pipeline(settings))
    assert second[0].status == "filed"
    db = open_database(settings)
    with db.begin() as s:
        from frontdesk.db.models import Document

        doc = s.get(Document, second[0].record_id)
        assert doc is not None and doc.patient_id in {w.patient_id for w in welcome}  # matched, not new
    db.dispose()
    assert len(letters(settings, WELCOME)) == 2
    assert letters(settings, INCOMPLETE_INTAKE) == []  # nothing was blank


def test_incomplete_intake_after_review_once(tmp_path: Path, settings: Any) -> None:
    inbox = tmp_path / "inbox"
    generate(inbox, 1, seed=1642, kinds=("digital",), scenarios=("unsigned",))
    (inbox / "truth.json").unlink()
    pipeline = Pipeline(settings)
    [outcome] = process_batch([inbox], pipeline)
    assert outcome.status == "needs_review"
    assert letters(settings, INCOMPLETE_INTAKE) == []  # not before a person has looked
    assert letters(settings, WELCOME) == []  # nor a welcome while the name may be misread
    # The reviewer confirms the form as read: the signature is still missing.
    stored = next(o for o in outcome.stored if o.key.endswith("/extraction.json"))
    record = json.loads(pipeline.storage.get_bytes(stored.key))
    result = ExtractionResult.model_validate(record["extraction"])
    assert outcome.record_id is not None
    for _ in range(2):  # reviewed twice (a second look): still one letter
        pipeline.refile_reading(outcome.record_id, result, stored.key, json.dumps(record).encode())
    incomplete = letters(settings, INCOMPLETE_INTAKE)
    assert len(incomplete) == 1 and incomplete[0].status == "pending"
    assert incomplete[0].context is not None
    items = incomplete[0].context["missing_items"]
    assert items and any("ignature" in i for i in items)
    assert len(letters(settings, WELCOME)) == 1  # the review made the first intake a filed one


def test_a_kind_switched_off_is_not_queued(tmp_path: Path, settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    off = tmp_path / "letters.yaml"
    off.write_text("letters:\n  welcome:\n    enabled: false\n")
    monkeypatch.setenv("FRONTDESK_LETTERS_FILE", str(off))
    inbox = tmp_path / "inbox"
    generate(inbox, 1, seed=1643, kinds=("digital",), scenarios=("complete",))
    (inbox / "truth.json").unlink()
    [outcome] = process_batch([inbox], Pipeline(settings))
    assert outcome.status == "filed"
    assert letters(settings, WELCOME) == []
