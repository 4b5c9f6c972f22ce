"""Help that is true: every command's ``--help`` ends with examples, every example runs as shown (in a
throw-away practice with a generated form, a scheduler export and a ledger), and every settings key a
comment in config/ names exists."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from frontdesk.cli import build_parser
from frontdesk.commands.help import EXAMPLE_PATIENT, Example, all_parsers, parse_examples
from tests.conftest import FRONTDESK, ROOT

MARIA: dict[str, Any] = {
    "patient.first_name": "Maria", "patient.last_name": "Garcia", "patient.date_of_birth": "1984-03-07",
    "patient.sex": "F", "patient.phone": "2175550142", "patient.email": "maria@example.org",
    "patient.address.street": "48 Linden Ave", "patient.address.city": "Springfield",
    "patient.address.state": "IL", "patient.address.zip": "62702",
    "insurance.self_pay": True, "consent.hipaa_acknowledgment": True, "consent.signature": True,
    "consent.date": "2026-01-05",
}


def help_of(words: tuple[str, ...]) -> str:
    for path, parser in all_parsers(build_parser()):
        if path == words:
            return parser.format_help()
    raise AssertionError(f"no command {' '.join(words)}")


def every_example() -> list[tuple[tuple[str, ...], Example]]:
    out = []
    for path, parser in all_parsers(build_parser()):
        for ex in parse_examples(parser.format_help()):
            out.append((path, ex))
    return out


def test_every_command_shows_examples_and_every_subcommand_has_one() -> None:
    parsers = all_parsers(build_parser())
    commands = [path for path, _ in parsers if len(path) == 1]
    assert len(commands) >= 12
    for path in commands:
        examples = parse_examples(help_of(path))
        assert examples, f"frontdesk {path[0]} --help shows no examples"
        assert all(ex.what for ex in examples), path
        assert all(shlex.split(ex.command)[1] == path[0] for ex in examples), path
    shown = [shlex.split(ex.command)[1:] for _, ex in every_example()]
    for path, _ in parsers:
        if len(path) == 2:
            assert any(words[:2] == list(path) for words in shown), f"no example of frontdesk {' '.join(path)}"


def test_examples_name_only_options_that_exist() -> None:
    """An example that names an option the command does not have fails to parse (argparse exits 2)."""
    parser = build_parser()
    for _, ex in every_example():
        words = shlex.split(ex.command.replace(EXAMPLE_PATIENT, "pat-1"))[1:]
        try:
            parser.parse_args(words)
        except SystemExit as exc:  # pragma: no cover - the assertion names the example
            raise AssertionError(f"{ex.command}: does not parse") from exc
    assert "--list" in help_of(("prefill",))  # the help's "(see --list)" is an option now


@pytest.fixture
def practice(tmp_path: Path) -> tuple[Path, dict[str, str], str]:
    """A practice with one patient on record, a form in scans/ and inbox/, a scheduler export and a ledger."""
    from frontdesk.db import open_database
    from frontdesk.db.models import Patient, PatientField
    from frontdesk.records import match_key
    from frontdesk.settings import load_settings
    from tests.fixtures.appointments import generate as generate_day
    from tests.fixtures.generator import generate
    from tests.fixtures.ledger import make_ledger

    ws = tmp_path / "practice"
    (ws / "scans").mkdir(parents=True)
    (ws / "inbox").mkdir()
    cases = generate(tmp_path / "generated", 2, seed=1601, kinds=("digital",), scenarios=("complete",))
    shutil.copy(cases[0].path, ws / "scans" / "intake-0001.pdf")
    shutil.copy(cases[1].path, ws / "inbox" / "intake-0002.pdf")
    generate_day(4, seed=1602, extra_days=1, cancelled=1, distractors=2).write_appointment_report(
        ws / "appointments.csv")
    make_ledger(ws / "ledger.csv", accounts=4, seed=1603, statement_date=date(2026, 11, 30))
    env = dict(os.environ)
    var = ws / "var"
    env.update({
        "FRONTDESK_STORAGE__ROOT": str(var / "storage"), "FRONTDESK_STORAGE__SPOOL": str(var / "spool"),
        "FRONTDESK_DATABASE_URL": f"sqlite:///{var / 'frontdesk.db'}", "FRONTDESK_INBOX": str(ws / "inbox"),
        "FRONTDESK_CHECKS__OUTPUT_DIR": str(var / "worklists"),
        "FRONTDESK_CHECKS__APPOINTMENTS_DIR": str(var / "appointments"),
        "FRONTDESK_MAIL__OUTPUT_DIR": str(var / "mail"), "FRONTDESK_WATCH__LEDGER": str(var / "watch.sqlite"),
        "FRONTDESK_WATCH__STABLE_SECONDS": "0", "FRONTDESK_ACTOR": "help-test",
    })
    settings = load_settings(storage={"root": var / "storage", "spool": var / "spool"},
                             database_url=env["FRONTDESK_DATABASE_URL"])
    db = open_database(settings)
    with db.begin() as s:
        dob = date.fromisoformat(MARIA["patient.date_of_birth"])
        patient = Patient(match_key=match_key("Maria", "Garcia", dob), first_name="Maria", last_name="Garcia",
                          date_of_birth=dob)
        patient.fields = [PatientField(key=k, value=v) for k, v in MARIA.items()]
        s.add(patient)
        s.flush()
        patient_id = patient.id
    return ws, env, patient_id


def _filed_patient(env: dict[str, str], fallback: str) -> str:
    """The patient whose form an earlier example filed (so show, export and prefill have documents to
    work on), else the one the fixture put on record."""
    from sqlalchemy import create_engine, select
    from sqlalchemy.orm import Session

    from frontdesk.db.models import Document

    engine = create_engine(env["FRONTDESK_DATABASE_URL"])
    try:
        with Session(engine) as s:
            found = s.scalars(select(Document.patient_id).where(Document.patient_id.is_not(None))).first()
    finally:
        engine.dispose()
    return found or fallback


def _argv(ex: Example, patient_id: str) -> list[str]:
    return [FRONTDESK, *shlex.split(ex.command.replace(EXAMPLE_PATIENT, patient_id))[1:]]


def _run_until_stopped(argv: list[str], ws: Path, env: dict[str, str]) -> None:
    """Start it, see it still running after a few seconds, stop it with Ctrl-C as a person would."""
    proc = subprocess.Popen(argv, cwd=ws, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        time.sleep(8)
        assert proc.poll() is None, f"{argv[1:]} exited {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.mark.integration
def test_every_example_runs(practice: tuple[Path, dict[str, str], str]) -> None:
    ws, env, patient_id = practice
    ran: list[str] = []
    for _, ex in every_example():
        if ex.command in ran or ex.needs_setup:  # shown twice (a command's help and its parent's), or it
            continue  # needs what no throw-away practice has (parsed by the test above)
        argv = _argv(ex, _filed_patient(env, patient_id) if EXAMPLE_PATIENT in ex.command else patient_id)
        if ex.long_running:
            _run_until_stopped(argv, ws, env)
        else:
            done = subprocess.run(argv, cwd=ws, env=env, capture_output=True, text=True, timeout=600,
                                  input="correct-horse-battery-staple-9\n")  # `users add` reads a password line
            assert done.returncode == 0, f"{ex.command} exited {done.returncode}:\n{done.stderr[-2000:]}"
            assert "Traceback" not in done.stderr, ex.command
        ran.append(ex.command)
    assert len(ran) >= 25
    # The examples did what they say: the form was filed, the sheets and the prefilled form written.
    assert (ws / "separator.pdf").stat().st_size > 0
    assert (ws / "prefilled.pdf").stat().st_size > 0
    assert any((ws / "exported").iterdir())


# --- settings keys named in comments ---------------------------------------------------------------------

_SECTION = re.compile(r"`([a-z_]+):`")
_DOTTED = re.compile(r"(?<![\w/.-])([a-z_]+(?:\.[a-z_]+)+)(?![\w/-])")
_FILE_ENDINGS = {"yaml", "py", "pdf", "docx", "csv", "json", "md", "html", "sqlite", "db"}


def _settings_keys() -> set[str]:
    from pydantic import BaseModel

    from frontdesk.settings import Settings

    keys: set[str] = set()

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            keys.add(prefix + name)
            ann = field.annotation
            for cand in (ann, *getattr(ann, "__args__", ())):
                if isinstance(cand, type) and issubclass(cand, BaseModel):
                    walk(cand, prefix + name + ".")

    walk(Settings, "")
    return keys


def test_every_settings_key_named_in_a_config_comment_exists() -> None:
    """A comment that sends the IT person to `checks.schedule` or `prefect.mail_cron` must name a real
    setting; a key with a colon (`checks:`) must be a section of config/frontdesk.yaml or of its own file."""
    known = _settings_keys()
    sections = {k for k in known if "." not in k}
    shipped = yaml.safe_load((ROOT / "config" / "frontdesk.yaml").read_text())
    named = 0
    for path in sorted((ROOT / "config").glob("*.yaml")):
        own = yaml.safe_load(path.read_text()) or {}  # a comment may name a section of its own file
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if "#" not in line:
                continue
            comment = line[line.index("#"):]
            for section in _SECTION.findall(comment):
                named += 1
                assert section in shipped or section in own, \
                    f"{path.name}:{n}: section `{section}:` is in neither config/frontdesk.yaml nor {path.name}"
            for ref in _DOTTED.findall(comment):
                if ref.split(".")[0] not in sections or ref.rsplit(".", 1)[1] in _FILE_ENDINGS:
                    continue  # a file name, or words that are not a setting
                named += 1
                assert ref in known, f"{path.name}:{n}: {ref} is not a setting"
    assert named >= 4  # checks:, checks.schedule, prefect.mail_cron, prefect.timezone today


def test_docs_name_deployments_as_they_are_deployed() -> None:
    """The deployment table in the docs says flow/deployment as Prefect shows them."""
    from flows.deployments import SCHEDULED

    text = (ROOT / "docs" / "scale-out.md").read_text()
    for sched in SCHEDULED:
        module = __import__(sched.module, fromlist=[sched.attr])
        flow_name = getattr(module, sched.attr).name
        assert f"`{flow_name}/{sched.name}`" in text, (flow_name, sched.name)
