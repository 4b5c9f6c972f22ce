"""Two gaps between cards, letters and the mail (issue #8).

1. The insurance card comes after the missing-insurance letter was put into a mail batch that is printed
   but not mailed yet: the letter is void, the batch goes on with its other pieces, every ``frontdesk mail``
   listing names the piece to pull from the printed stack (batch, position, pages), and marking the batch
   mailed does not record it as mailed. A letter that was mailed already stays mailed.
2. The card fills the member ID a form left blank while the form waits for a person's review; the person
   confirms the form as read (the box is blank): the record keeps the card's member ID and no letter asks
   for it. A different member ID the person types is a correction and replaces the card's (audited).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.fixtures import cards as card_gen
from tests.test_cards_process import P, cli_json, holder_of, intake_case

pytest_plugins = ["tests.conftest_s3"]  # db_url: SQLite, and PostgreSQL when FRONTDESK_TEST_POSTGRES_URL is set

MEMBER = P + "member_id"


def two_patients(folder: Path) -> tuple[Any, Any]:
    """Two intake forms of different patients, each with the member ID left blank."""
    a = intake_case(folder / "a", "member_id_blank")
    b = intake_case(folder / "b", "member_id_blank", start=int(a.path.parent.name) + 1)
    assert a.truth["patient.last_name"] != b.truth["patient.last_name"]
    return a, b


def card_of(case: Any, out: Path, member_id: str | None = None) -> Any:
    return card_gen.card_for(holder_of(case, member_id=member_id), str(case.truth[P + "payer_name"]), out,
                             seed=random.Random(5).randint(0, 999))


def patient_of(case: Any, env: dict[str, str]) -> dict[str, Any]:
    t = case.truth
    found = cli_json("patients", "find", str(t["patient.last_name"]), "--dob", str(t["patient.date_of_birth"]),
                     env=env)
    assert len(found) == 1
    shown: dict[str, Any] = cli_json("patients", "show", found[0]["id"], env=env)
    return shown


def names_of(*cases: Any) -> list[str]:
    return [str(c.truth[k]) for c in cases for k in ("patient.last_name", "patient.first_name")]


# --- 1. a letter in a printed batch ------------------------------------------------------------------------


@pytest.mark.integration
def test_a_card_after_the_letter_was_batched_voids_it_and_staff_are_told_to_pull_it(
        tmp_path: Path, fd_env: dict[str, str]) -> None:
    from frontdesk.letters.layout import read_manifest

    env = {**fd_env, "FRONTDESK_MAIL__OUTPUT_DIR": str(tmp_path / "print")}
    a, b = two_patients(tmp_path / "forms")
    forms = cli_json("process", str(a.path), str(b.path), env=env)
    assert [len(o["letters"]) for o in forms] == [1, 1]  # each patient is asked for the member ID

    # The afternoon mail run: both letters in one batch, printed.
    batch = cli_json("mail", "--kind", "letters", env=env)
    assert batch["items"] == 2
    batch_id = batch["batch_id"]
    manifest = read_manifest((tmp_path / "print" / f"{batch_id}-manifest.csv").read_bytes())
    letter_a = patient_of(a, env)["letters"][0]
    assert letter_a["status"] == "queued"

    # Before the stack goes to the post office, patient A's card is scanned.
    card_a = card_of(a, tmp_path / "cards" / "card-a")
    card_out, = cli_json("process", str(card_a.path), env=env)
    assert card_out["status"] == "filed", card_out["flags"]
    shown_a = patient_of(a, env)
    assert shown_a["fields"][MEMBER]["value"] == card_a.truth[MEMBER]
    assert [(lt["id"], lt["status"]) for lt in shown_a["letters"]] == [(letter_a["id"], "void")]
    assert patient_of(b, env)["letters"][0]["status"] == "queued"  # the rest of the batch goes on

    # Every listing says which printed piece to pull: its batch, its place in the manifest and its pages.
    listing = cli_json("mail", "--list", env=env)
    assert [(x["batch_id"], x["status"]) for x in listing] == [(batch_id, "submitted")]
    pull, = listing[0]["withdrawn"]
    assert pull["item_id"] == letter_a["id"]
    row, = [r for r in manifest if r["item_id"] == letter_a["id"]]
    assert (str(pull["position"]), str(pull["first_page"])) == (row["position"], row["first_page"])
    text = run_cli("mail", "--list", env=env)
    assert text.returncode == 0 and f"PULL 1: piece {pull['position']} ({letter_a['id']})" in text.stdout
    run = run_cli("mail", env=env)  # the next run has nothing to mail, and reminds whoever runs it
    assert run.returncode == 0, run.stderr
    assert "nothing to mail" in run.stdout and "PULL BEFORE MAILING (1)" in run.stdout
    assert f"batch {batch_id}  piece {pull['position']}  {letter_a['id']}" in run.stdout

    # Marked mailed: B's letter went out; A's was pulled and is not recorded as mailed.
    mailed = run_cli("mail", "--mailed", batch_id, env=env)
    assert mailed.returncode == 0, mailed.stderr
    assert "1 piece(s) recorded as mailed" in mailed.stdout
    assert "NOT recorded as mailed" in mailed.stdout and letter_a["id"] in mailed.stdout
    for out in (text, run, mailed):
        assert not any(secret in out.stdout + out.stderr for secret in names_of(a, b))
    assert patient_of(a, env)["letters"][0]["status"] == "void"
    assert patient_of(b, env)["letters"][0]["status"] == "mailed"
    assert cli_json("mail", "--list", env=env)[0]["withdrawn"][0]["batch_status"] == "mailed"
    assert cli_json("mail", "--kind", "letters", "--dry-run", env=env)["withdrawn"] == []  # nothing left to pull

    audit = cli_json("audit", "--patient", shown_a["id"], env=env)
    void, = [e for e in audit if e["object_id"] == letter_a["id"] and (e.get("detail") or "").startswith("void")]
    assert batch_id in void["detail"] and "pull" in void["detail"] and card_out["record_id"] in void["detail"]

    # B's card comes after B's letter went out: the letter stays mailed, the card still fills the record.
    card_b = card_of(b, tmp_path / "cards" / "card-b")
    card_b_out, = cli_json("process", str(card_b.path), env=env)
    assert card_b_out["status"] == "filed", card_b_out["flags"]
    shown_b = patient_of(b, env)
    assert shown_b["fields"][MEMBER]["value"] == card_b.truth[MEMBER]
    assert [lt["status"] for lt in shown_b["letters"]] == ["mailed"]


@pytest.fixture
def mail_env(db_url: str, tmp_path: Path) -> Iterator[tuple[Any, Any, Any]]:
    """Records on SQLite, and on PostgreSQL (where the row locks are real) when it is configured."""
    from frontdesk.db import open_database
    from frontdesk.settings import load_settings
    from frontdesk.storage import open_storage

    settings = load_settings(storage={"root": tmp_path / "storage", "spool": tmp_path / "spool"},
                             database_url=db_url, inbox=tmp_path / "inbox")
    settings.mail.output_dir = tmp_path / "print"
    db = open_database(settings)
    yield settings, db, open_storage(settings)
    db.dispose()


def _withdraw(db: Any, letter_id: str) -> None:
    """What filing a card does to a queued letter (records.void_letters_for_resolved)."""
    from frontdesk.db.models import Letter
    from frontdesk.letters.mail import withdraw_piece

    with db.begin() as s:
        assert withdraw_piece(s, letter_id, reason="test") is not None
        letter = s.get(Letter, letter_id)
        letter.status = "void"


def test_a_withdrawn_piece_is_never_reissued_and_an_unbuilt_batch_is_rebuilt_without_it(
        mail_env: tuple[Any, Any, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy import select

    import frontdesk.letters.mail as mail
    from frontdesk.db.models import Letter, MailBatch
    from tests.test_mail import small_batch

    settings, db, storage = mail_env
    ids = small_batch(settings, db, storage)
    first = mail.run_mail(db, storage, settings)
    assert first.batch_id is not None and first.items == 4
    _withdraw(db, ids["a"])
    nothing = mail.run_mail(db, storage, settings)  # the scheduled run: its summary in the Prefect UI says so
    assert nothing.batch_id is None and [w.item_id for w in nothing.withdrawn] == [ids["a"]]
    assert "Pull before mailing" in nothing.markdown() and ids["a"] in nothing.markdown()
    # The printer jammed: the batch is voided and issued again, without the withdrawn letter.
    again = mail.reissue_batch(db, storage, settings, first.batch_id, reason="printer jammed")
    assert again.items == 3 and again.withdrawn == []
    with db.begin() as s:
        assert s.get(Letter, ids["a"]).status == "void"  # type: ignore[union-attr]
        assert s.get(Letter, ids["b"]).status == "queued"  # type: ignore[union-attr]

    # A run stops after claiming its pieces; a piece is withdrawn before anything was printed: the next run
    # builds the batch without it rather than print a letter to be pulled.
    assert again.batch_id is not None
    mail.void_batch(db, settings, again.batch_id)
    real = mail.compose

    def power_cut(*args: Any, **kwargs: Any) -> bytes:
        raise OSError("power cut")

    monkeypatch.setattr(mail, "compose", power_cut)
    with pytest.raises(OSError):
        mail.run_mail(db, storage, settings)
    with db.begin() as s:
        open_id, = s.scalars(select(MailBatch.id).where(MailBatch.status == "open"))
    _withdraw(db, ids["b"])
    monkeypatch.setattr(mail, "compose", real)
    rebuilt = mail.run_mail(db, storage, settings)
    assert rebuilt.recovered == [] and rebuilt.items == 2 and rebuilt.withdrawn == []
    with db.begin() as s:
        assert s.get(MailBatch, open_id).status == "void"  # type: ignore[union-attr]
        assert s.get(Letter, ids["b"]).status == "void"  # type: ignore[union-attr]
        assert s.get(Letter, ids["c"]).status == "queued"  # type: ignore[union-attr]
    assert rebuilt.batch_id is not None
    assert mail.mark_mailed(db, rebuilt.batch_id) == 2


# --- 2. a review after the card -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prefect_harness() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.mark.integration
def test_a_review_after_the_card_keeps_the_cards_member_id_unless_the_person_corrects_it(
        prefect_harness: None, tmp_path: Path, fd_env: dict[str, str], settings: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import flows.review as review
    from flows import context, intake
    from flows.review import field_name
    from frontdesk.pipeline import Pipeline
    from tests.fixtures.cards import PAYERS

    confirmed, corrected = two_patients(tmp_path / "forms")
    payer = next(p for p in PAYERS if p.canonical == corrected.truth[P + "payer_name"])
    card_a, card_b = (card_of(c, tmp_path / "cards" / name) for c, name in ((confirmed, "a"), (corrected, "b")))
    r = random.Random(13)
    typed = next(m for m in (payer.member_id(r) for _ in range(20)) if m != card_b.truth[MEMBER])

    # `frontdesk serve` is running: each form needing review waits for a person, and no letter is written.
    review_keys: dict[str, str] = {}

    def review_started(outcome: Any, *_: Any) -> str:
        review_keys[outcome.record_id] = next(s.key for s in outcome.stored if s.key.endswith("/extraction.json"))
        return "review-run"

    monkeypatch.setattr(review, "request_review", review_started)
    intake.use_pipeline(Pipeline(settings), None)
    try:
        forms = intake.intake_flow([str(confirmed.path), str(corrected.path)])
        assert [(o.status, o.letters) for o in forms] == [("needs_review", []), ("needs_review", [])]
        assert set(review_keys) == {o.record_id for o in forms}
        # The cards come while the reviews wait: each fills its patient's member ID.
        for o in intake.intake_flow([str(card_a.path), str(card_b.path)]):
            assert (o.document_type, o.status) == ("insurance_card", "filed"), o.flags

        # The person checks each form against the paper: one confirms it as read (the member ID box is
        # blank), the other types a member ID that differs from the card's.
        answers = {forms[0].record_id: {}, forms[1].record_id: {field_name(MEMBER): typed}}
        asked: list[Any] = []

        def person(model: Any, timeout: int) -> Any:
            asked.append(model)
            return model(**answers[doc_id])

        results = {}
        for doc_id in answers:
            monkeypatch.setattr(review, "wait_for_review", person)
            results[doc_id] = review.review_flow(review_keys[doc_id])
        assert all(field_name(MEMBER) in m.model_fields for m in asked)  # the form asked for the member ID
    finally:
        context._PIPELINES.pop(None, None)

    # Confirmed as read: the record keeps the card's member ID, nothing is left open and no letter is written.
    assert results[forms[0].record_id] == {"document_id": forms[0].record_id, "status": "filed", "changed": 0,
                                           "letters": []}
    shown = patient_of(confirmed, fd_env)
    card_id = shown["fields"][MEMBER]["source_document"]
    assert shown["fields"][MEMBER]["value"] == card_a.truth[MEMBER]
    assert card_id != forms[0].record_id
    assert not {(f["code"], f["field"]) for f in shown["open_flags"]} & {("insurance.missing_info", None),
                                                                         ("missing", MEMBER)}
    assert [lt["kind"] for lt in shown["letters"]] == ["welcome"]  # no missing-insurance letter
    docs = {d["id"]: d for d in shown["documents"]}
    assert docs[forms[0].record_id]["outcome"] == "filed"
    pending = cli_json("mail", "--kind", "letters", "--dry-run", env=fd_env)
    assert pending["items"] == 2  # the two new patients' welcome letters, no missing-insurance letter
    audit = cli_json("audit", "--patient", shown["id"], env=fd_env)
    assert any(MEMBER in (e.get("detail") or "") and card_id in (e.get("detail") or "")
               and "left" in (e.get("detail") or "") for e in audit)

    # Corrected: the person's value is the record's now, the form its source, and the trail says so.
    assert results[forms[1].record_id]["status"] == "filed" and results[forms[1].record_id]["letters"] == []
    shown = patient_of(corrected, fd_env)
    assert shown["fields"][MEMBER] == {"value": typed, "source_document": forms[1].record_id}
    assert [lt["kind"] for lt in shown["letters"]] == ["welcome"]
    audit = cli_json("audit", "--patient", shown["id"], env=fd_env)
    fixed = [e for e in audit if "corrected" in (e.get("detail") or "")]
    assert len(fixed) == 1 and MEMBER in fixed[0]["detail"] and forms[1].record_id in fixed[0]["detail"]
    assert typed not in str(audit) and card_b.truth[MEMBER] not in str(audit)  # ids, never values
