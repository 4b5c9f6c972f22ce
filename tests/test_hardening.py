"""Hardening (issue #15): one bad file blames only itself, patient data locked down, nothing trusted that
should not be. Faults are injected through public inputs only: the documents themselves (a test-fault
comment honoured when FRONTDESK_TEST_FAULTS=1), the inbox, the settings."""

from __future__ import annotations

import json
import os
import stat
import struct
import subprocess
import threading
import time
import zlib
from pathlib import Path

import pytest

from tests.conftest import FRONTDESK
from tests.fixtures.generator import generate


def good_pdfs(folder: Path, n: int, seed: int) -> list[Path]:
    cases = generate(folder, n, seed=seed)
    (folder / "truth.json").unlink()
    return [c.path for c in cases]


def with_fault(pdf: Path, fault: str, dest: Path) -> Path:
    """A copy of a good form whose reader will hang, grow or die (the comment is ignored by PDF readers)."""
    data = pdf.read_bytes()
    cut = data.index(b"\n") + 1
    dest.write_bytes(data[:cut] + f"%FRONTDESK-TEST-FAULT {fault}\n".encode() + data[cut:])
    return dest


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "FRONTDESK_STORAGE__ROOT": str(tmp_path / "storage"),
        "FRONTDESK_STORAGE__SPOOL": str(tmp_path / "spool"),
        "FRONTDESK_DATABASE_URL": f"sqlite:///{tmp_path / 'frontdesk.db'}",
        "FRONTDESK_INBOX": str(tmp_path / "inbox"),
        "FRONTDESK_WATCH__LEDGER": str(tmp_path / "watch" / "ledger.sqlite"),
        "FRONTDESK_PREFECT__REVIEW": "false",
    })
    env.update(extra)
    return env


def reasons(failed: Path) -> dict[str, str]:
    return {d.name: (d / "reason.txt").read_text() for d in failed.iterdir() if (d / "reason.txt").is_file()}


# ------------------------------------------------------------------------------ one bad file, itself only


def test_hung_bloated_and_crashing_readers_fail_only_their_own_documents(tmp_path: Path) -> None:
    """A reader that sleeps forever, one that allocates without bound and one that is killed, among good
    forms in one batch: each bad one is in failed/ with its reason, every good one is filed, once."""
    good = good_pdfs(tmp_path / "src", 4, seed=151)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for p in good:
        p.rename(inbox / p.name)
    spare = good_pdfs(tmp_path / "src2", 3, seed=152)
    for p, fault in zip(spare, ("sleep", "allocate", "kill"), strict=True):
        with_fault(p, fault, inbox / f"{fault}.pdf")
    env = cli_env(tmp_path, FRONTDESK_TEST_FAULTS="1", FRONTDESK_EXTRACTION__READ_LIMIT_SECONDS="15",
                  FRONTDESK_EXTRACTION__READ_MEMORY_MB="700", FRONTDESK_WATCH__MAX_ATTEMPTS="1")
    run = subprocess.run([FRONTDESK, "watch", str(inbox), "--dispatch", "local", "--once", "--stable", "0.2",
                          "--json"], capture_output=True, text=True, env=env, timeout=400)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    finished = json.loads(run.stdout.strip().splitlines()[-1])["finished"]
    assert finished.get("filed", 0) + finished.get("needs_review", 0) == 4 and finished["failed"] == 3, finished
    archived = sorted(p for p in (tmp_path / "archive").rglob("*.pdf"))
    assert len(archived) == 4 and not any(b"FRONTDESK-TEST-FAULT" in p.read_bytes() for p in archived)
    why = " | ".join(reasons(tmp_path / "failed").values())
    assert "took longer than 15 s" in why
    assert why.count("the reader was stopped by signal SIGKILL") + why.count("needed more than 700 MB") == 2, why
    listed = subprocess.run([FRONTDESK, "watch", str(inbox), "--failed"], capture_output=True, text=True, env=env)
    assert {"sleep.pdf", "allocate.pdf", "kill.pdf"} <= set(listed.stdout.split())


# ------------------------------------------------------------------------------------------ the inbox


class Recording:
    """Stands in for the pipeline in watcher-only tests: remembers the bytes it was handed."""

    def __init__(self) -> None:
        self.read: list[bytes] = []

    def run(self, paths: list[Path]) -> list:  # type: ignore[type-arg]
        from frontdesk.models import ProcessOutcome

        out = []
        for p in paths:
            self.read.append(p.read_bytes())
            out.append(ProcessOutcome(input=str(p), status="filed", record_id=f"doc-{len(self.read)}"))
        return out


@pytest.fixture
def wsettings(settings, tmp_path: Path):  # type: ignore[no-untyped-def]
    s = settings.model_copy(deep=True)
    s.watch.ledger = tmp_path / "watch" / "ledger.sqlite"
    s.watch.stable_seconds = 0.0
    return s


def test_symlinks_and_fifos_in_the_inbox_are_refused_without_opening_them(wsettings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from frontdesk.watch import Watcher

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    secret = tmp_path / "outside" / "someone-elses.pdf"
    secret.parent.mkdir()
    secret.write_bytes(b"%PDF-1.4 not for the inbox\n%%EOF\n")
    (inbox / "link.pdf").symlink_to(secret)
    (inbox / "dangling.pdf").symlink_to(tmp_path / "nowhere.pdf")
    os.mkfifo(inbox / "pipe.pdf")
    (inbox / "real.pdf").write_bytes(b"%PDF-1.4 a real one\n%%EOF\n")
    disp = Recording()
    w = Watcher(wsettings, inbox, dispatcher=disp)
    done: list[object] = []
    t = threading.Thread(target=lambda: done.append(w.run(once=True, install_signals=False)), daemon=True)
    t.start()
    t.join(60)
    assert done, "the watcher hung on an inbox entry"
    assert disp.read == [b"%PDF-1.4 a real one\n%%EOF\n"]  # the link's target was never handed on
    assert secret.read_bytes().startswith(b"%PDF-1.4 not for")  # and is left where it was
    assert list(inbox.iterdir()) == []
    why = sorted(reasons(tmp_path / "failed").values())
    assert len(why) == 3
    assert sum("symbolic link" in r for r in why) == 2 and sum("named pipe" in r for r in why) == 1


def test_a_second_watcher_on_the_same_inbox_is_refused(wsettings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Two watchers on one inbox would adopt each other's claims and process files twice: the second is
    refused with a clear message while the first runs, and starts once the first has stopped."""
    from frontdesk.exceptions import InboxInUseError
    from frontdesk.watch import Watcher

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    first = Watcher(wsettings, inbox, dispatcher=Recording())
    wsettings.watch.polling = True
    t = threading.Thread(target=lambda: first.run(install_signals=False), daemon=True)
    t.start()
    time.sleep(1.0)
    second = Watcher(wsettings, inbox, dispatcher=Recording())
    with pytest.raises(InboxInUseError, match="another watcher is already watching this inbox"):
        second.run(once=True, install_signals=False)
    first.stop_event.set()
    t.join(30)
    (inbox / "a.pdf").write_bytes(b"%PDF-1.4 a\n%%EOF\n")
    third = Watcher(wsettings, inbox, dispatcher=Recording())
    third.run(once=True, install_signals=False)
    assert third.stats.finished == {"filed": 1}


def test_a_second_watch_command_exits_with_a_message(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    env = cli_env(tmp_path)
    first = subprocess.Popen([FRONTDESK, "watch", str(inbox), "--dispatch", "local", "--polling"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "processing").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3.0)
        second = subprocess.run([FRONTDESK, "watch", str(inbox), "--dispatch", "local", "--once"], env=env,
                                capture_output=True, text=True, timeout=120)
    finally:
        first.terminate()
        first.wait(30)
    assert second.returncode == 1
    assert "another watcher is already watching this inbox" in second.stderr


# ---------------------------------------------------------------------------------- patient data at rest


def test_every_path_holding_patient_data_is_private_after_a_run(tmp_path: Path) -> None:
    """Files 0600, folders 0700, whatever the caller's umask, and an older install's open files and
    folders are tightened on start."""
    data = tmp_path / "data"
    (data / "storage" / "documents" / "old").mkdir(parents=True)
    old = data / "storage" / "documents" / "old" / "original.pdf"
    old.write_bytes(b"from an older version")
    os.chmod(old, 0o644)
    os.chmod(data / "storage" / "documents" / "old", 0o755)
    env = cli_env(data, FRONTDESK_CHECKS__OUTPUT_DIR=str(data / "worklists"),
                  FRONTDESK_MAIL__OUTPUT_DIR=str(data / "mail"))
    inbox = data / "inbox"
    inbox.mkdir(parents=True)
    for p in good_pdfs(tmp_path / "src", 3, seed=153):
        p.rename(inbox / p.name)
    (inbox / "junk.pdf").write_bytes(b"%PDF-1.4 junk\n%%EOF\n")
    run = subprocess.run(["sh", "-c", f"umask 022 && exec {FRONTDESK} watch {inbox} --dispatch local --once "
                          "--stable 0.2"], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "tightened the permissions" in run.stderr
    seen = 0
    loose = []
    for dirpath, dirnames, filenames in os.walk(data):
        if Path(dirpath) == data:
            dirnames.remove("inbox")  # the staff's drop folder: its permissions are the share's
        for name in dirnames:
            mode = stat.S_IMODE(os.lstat(Path(dirpath) / name).st_mode)
            seen += 1
            if mode != 0o700:
                loose.append((str(Path(dirpath) / name), oct(mode)))
        for name in filenames:
            mode = stat.S_IMODE(os.lstat(Path(dirpath) / name).st_mode)
            seen += 1
            if mode != 0o600:
                loose.append((str(Path(dirpath) / name), oct(mode)))
    assert seen > 20 and (data / "failed").is_dir() and (data / "frontdesk.db").is_file()
    assert loose == []


# ---------------------------------------------------------------------------------- decompression bombs


def png_bomb(path: Path, width: int, height: int) -> Path:
    """A valid PNG of white RGB pixels, a few hundred KB on disk, width x height when decoded."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    comp = zlib.compressobj(9)
    row = b"\x00" + b"\xff" * (3 * width)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def pdf_with_lying_jpeg(path: Path) -> Path:
    """A PDF whose one image says 100 x 100 and whose JPEG header says 40,000 x 40,000."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (100, 100), 255).save(buf, "JPEG")
    jpeg = bytearray(buf.getvalue())
    sof = jpeg.index(b"\xff\xc0")
    jpeg[sof + 5:sof + 9] = struct.pack(">HH", 40000, 40000)
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /Im0 4 0 R >> >> "
            b"/Contents 5 0 R >>",
            b"<< /Type /XObject /Subtype /Image /Width 100 /Height 100 /ColorSpace /DeviceGray "
            b"/BitsPerComponent 8 /Filter /DCTDecode /Length %d >>\nstream\n" % len(jpeg) + bytes(jpeg)
            + b"\nendstream",
            b"<< /Length 30 >>\nstream\nq 612 0 0 792 0 0 cm /Im0 Do Q\nendstream"]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    path.write_bytes(bytes(out))
    return path


def test_decompression_bombs_are_refused_by_their_pixel_count_before_decoding(tmp_path: Path) -> None:
    """Each refused with a reason naming the pixel limit (not by running out of memory), in the reading
    process; the watcher's own process never decodes them."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    pdf_with_lying_jpeg(inbox / "lying-jpeg.pdf")
    png_bomb(inbox / "huge.png", 11000, 11000)  # 121 MP: under Pillow's own bomb limit, over the practice's 60
    env = cli_env(tmp_path, FRONTDESK_WATCH__MAX_ATTEMPTS="1")
    run = subprocess.run(["/usr/bin/time", "-f", "%M", FRONTDESK, "watch", str(inbox), "--dispatch", "local",
                          "--once", "--stable", "0.2"], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    watcher_kb = int(run.stderr.strip().splitlines()[-1])
    assert watcher_kb < 400_000  # the watcher process itself (the readers are its grandchildren)
    why = sorted(reasons(tmp_path / "failed").values())
    assert len(why) == 2
    assert all("megapixels, limit 60" in r or "decompression-bomb limit" in r for r in why), why


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "sparse.pdf"
    with open(big, "wb") as fh:
        fh.write(b"%PDF-1.4\n")
        fh.truncate(3 * 1024 * 1024)
    env = cli_env(tmp_path, FRONTDESK_EXTRACTION__MAX_FILE_MB="2")
    run = subprocess.run([FRONTDESK, "process", str(big), "--json"], capture_output=True, text=True, env=env,
                         timeout=120)
    assert run.returncode in (0, 2), run.stderr[-2000:]
    (outcome,) = json.loads(run.stdout)
    assert outcome["status"] == "failed" and "over the 2 MB limit" in outcome["error"]


def test_a_broken_local_reading_pool_is_replaced_by_a_local_one(wsettings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """``--dispatch local`` chosen: when a reading process dies, the next batch gets a fresh local pool,
    never (silently) Prefect's inline dispatch."""
    import multiprocessing
    import signal

    from flows.dispatch import InlineDispatcher, make_dispatcher
    from frontdesk.watch import LocalDispatcher, Watcher

    wsettings.watch.workers = 2
    src = good_pdfs(tmp_path / "src", 2, seed=154)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    local = make_dispatcher(wsettings, None, "local")
    assert isinstance(local, LocalDispatcher) and local.readers is not None
    local.readers.intake(src[0])  # the reading processes are up
    for child in multiprocessing.active_children():
        os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
    src[1].rename(inbox / "b.pdf")
    w = Watcher(wsettings, inbox, dispatcher=local)
    w.run(once=True, install_signals=False)
    assert sum(w.stats.finished.values()) == 1 and "failed" not in w.stats.finished
    assert type(w.dispatcher) is LocalDispatcher and not isinstance(w.dispatcher, InlineDispatcher)
    w.dispatcher.close()  # type: ignore[union-attr]


# ------------------------------------------------------------------------------- patient data in errors


def test_a_refused_database_write_leaves_no_patient_value_in_what_reaches_prefect(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The records database refuses a write (here: a trigger, as a broken upgrade or a full disk would):
    the error the intake task raises - what Prefect shows as the state message, logs as a traceback and
    pickles into its result storage - names the task and the error class, never a patient's values."""
    import pickle
    import traceback

    from flows.intake import intake_document, use_pipeline
    from frontdesk.pipeline import Pipeline

    case = generate(tmp_path / "src", 1, seed=155)[0]
    pipeline = Pipeline(settings)
    with pipeline.db.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TRIGGER refuse_patients BEFORE INSERT ON patients "
                             "BEGIN SELECT RAISE(ABORT, 'refused'); END")
    use_pipeline(pipeline, None)
    try:
        with pytest.raises(Exception) as caught:
            intake_document.fn(case.path, None)
    finally:
        use_pipeline(Pipeline(settings), None)
    exc = caught.value
    told = " ".join([str(exc), repr(exc), "".join(traceback.format_exception(exc)),
                     pickle.dumps(exc).decode("latin-1")])
    patient_values = [str(case.patient[k]) for k in ("patient.last_name", "patient.first_name",
                                                     "patient.address.street")]
    m, d, y = str(case.patient["patient.date_of_birth"]).split("/")
    patient_values.append(f"{y}-{m}-{d}")
    for value in patient_values:
        assert value not in told
    assert "intake-document" in str(exc)


def test_deployed_flows_take_no_configuration_and_no_path_outside_their_own_areas(settings, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                                   monkeypatch) -> None:
    """Whoever can reach the Prefect API chooses a run's parameters: none names a configuration file, and
    the intake flow takes only a claim's opaque name in the worker's own processing area."""
    import inspect

    from flows.deployments import flows_to_deploy, intake_document_flow
    from flows.intake import use_pipeline
    from flows.params import ParameterRefused
    from frontdesk.pipeline import Pipeline

    for fn, name, _ in flows_to_deploy(settings):
        params = inspect.signature(fn.fn).parameters
        assert "config_file" not in params, name
        assert not {"path", "paths"} & set(params), name
    use_pipeline(Pipeline(settings), None)
    outside = tmp_path / "elsewhere" / "20261205T000000-0123456789ab.pdf"
    outside.parent.mkdir()
    outside.write_bytes(good_pdfs(tmp_path / "src", 1, seed=156)[0].read_bytes())
    processing = tmp_path / "processing"
    processing.mkdir(exist_ok=True)
    (processing / "20261205T000000-aaaaaaaaaaaa.pdf").symlink_to(outside)
    for claim in (str(outside), "../elsewhere/20261205T000000-0123456789ab.pdf", "20261205T000000-aaaaaaaaaaaa.pdf",
                  "20261205T000000-bbbbbbbbbbbb.pdf"):
        with pytest.raises(ParameterRefused):
            intake_document_flow.fn(claim)
    assert sorted(p.name for p in outside.parent.iterdir()) == [outside.name]  # no receipt written beside it
    assert not any((tmp_path / "storage").rglob("*.pdf"))  # nothing was filed


# ------------------------------------------------------------------------------------------- templates


@pytest.mark.parametrize("source", [
    "{% autoescape false %}{{ name }}{% endautoescape %}",
    "{{ name|safe }}",
    "{% filter safe %}{{ name }}{% endfilter %}",
])
def test_a_letter_template_cannot_turn_escaping_off(source: str) -> None:
    from jinja2.exceptions import SecurityError

    from frontdesk.rendering import jinja_env

    with pytest.raises(SecurityError, match="turns escaping off"):
        jinja_env().from_string(source).render(name="</w:t><w:t>O'Brien & Sons")


def test_a_letter_value_is_escaped_into_the_document() -> None:
    from frontdesk.rendering import jinja_env

    assert jinja_env().from_string("{{ name }}").render(name="A & <B>") == "A &amp; &lt;B&gt;"


# ------------------------------------------------------------------------------------ who can reach it


@pytest.mark.timeout(60)
def test_a_prefect_api_on_another_machine_needs_credentials(settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from flows.server import prefect_api
    from frontdesk.exceptions import ConfigError

    monkeypatch.delenv("PREFECT_API_AUTH_STRING", raising=False)
    monkeypatch.delenv("PREFECT_API_KEY", raising=False)
    settings.prefect.api_url = "http://192.0.2.10:4200/api"  # TEST-NET: nothing answers there
    with pytest.raises(ConfigError, match="no credentials are configured"), prefect_api(settings):
        pass


@pytest.mark.timeout(60)
def test_a_dask_scheduler_on_another_machine_needs_tls(settings) -> None:  # type: ignore[no-untyped-def]
    from flows.intake import intake_flow_for
    from frontdesk.exceptions import ConfigError

    settings.prefect.task_runner = "dask"
    settings.prefect.dask_address = "tcp://192.0.2.10:8786"
    with pytest.raises(ConfigError, match="tls://"):
        intake_flow_for(settings)
    settings.prefect.dask_address = "tls://192.0.2.10:8786"
    assert intake_flow_for(settings) is not None  # built, not connected: the run connects
    settings.prefect.dask_address = "tcp://127.0.0.1:8786"
    assert intake_flow_for(settings) is not None


def test_the_local_prefect_server_binds_to_this_machine_only_and_the_docs_say_so() -> None:
    root = Path(__file__).resolve().parent.parent
    serve = (root / "flows" / "server.py").read_text()  # where the local server is started
    assert '"--host", "127.0.0.1"' in serve
    scale = (root / "docs" / "scale-out.md").read_text()
    assert "--host 0.0.0.0" not in scale
    security = (root / "docs" / "security.md").read_text()
    for needed in ("PREFECT_SERVER_API_AUTH_STRING", "PREFECT_API_AUTH_STRING", "tls://", "127.0.0.1"):
        assert needed in security and (needed in scale or needed == "tls://")


# ------------------------------------------------------------------------------------ delete after filing


def test_delete_after_filing_keeps_an_original_whose_copy_is_only_in_the_spool(wsettings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """``watch.after_filing: delete`` removes an original only once its stored copy reads back from
    storage; a copy waiting in the spool (storage down) is no copy yet, so the original is archived."""
    import hashlib

    from frontdesk.models import ProcessOutcome, StoredObject
    from frontdesk.watch import Watcher

    class Spooling:
        def run(self, paths: list[Path]) -> list[ProcessOutcome]:
            out = []
            for p in paths:
                digest = hashlib.sha256(p.read_bytes()).hexdigest()
                key = f"documents/2026/12/doc-{digest[:16]}/original.pdf"
                spooled = tmp_path / "spool" / "objects" / "x.data"
                spooled.parent.mkdir(parents=True, exist_ok=True)
                spooled.write_bytes(p.read_bytes())
                out.append(ProcessOutcome(input=str(p), status="filed", record_id=f"doc-{digest[:16]}",
                                          stored=[StoredObject(key=key, uri=spooled.as_uri(), sha256=digest,
                                                               size=p.stat().st_size)]))
            return out

    wsettings.watch.after_filing = "delete"
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.pdf").write_bytes(b"%PDF-1.4 filed but only spooled\n%%EOF\n")
    w = Watcher(wsettings, inbox, dispatcher=Spooling())
    w.run(once=True, install_signals=False)
    kept = [p.read_bytes() for p in (tmp_path / "archive").rglob("*.pdf")]
    assert kept == [b"%PDF-1.4 filed but only spooled\n%%EOF\n"]


def test_a_file_that_vanishes_after_its_claim_does_not_keep_watch_once_waiting(wsettings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from frontdesk.watch import Watcher

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.pdf").write_bytes(b"%PDF-1.4 here a moment\n%%EOF\n")
    (inbox / "b.pdf").write_bytes(b"%PDF-1.4 stays\n%%EOF\n")
    disp = Recording()
    w = Watcher(wsettings, inbox, dispatcher=disp)
    claim = w.claim(inbox / "a.pdf")
    assert claim is not None
    (w.areas.processing / claim).unlink()  # another program took it
    w.rescan()
    for _ in range(5):
        w.tick()
    assert not w.pending()
    assert disp.read == [b"%PDF-1.4 stays\n%%EOF\n"]


def test_the_worklist_browser_runs_sandboxed_unless_root(tmp_path: Path) -> None:
    """Chromium is given through its public setting (checks.chromium): a stand-in that records how it
    was started and prints a PDF."""
    from frontdesk.checks.worklist import html_to_pdf

    args_file = tmp_path / "args"
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\nprintf '%s\\n' \"$@\" > " + str(args_file) + "\n"
                    "for a; do case $a in --print-to-pdf=*) printf '%%PDF-1.4\\n%%%%EOF\\n' > \"${a#--print-to-pdf=}\";; esac; done\n")
    fake.chmod(0o700)
    html = tmp_path / "w.html"
    html.write_text("<p>worklist</p>")
    html_to_pdf(html, tmp_path / "w.pdf", binary=str(fake))
    args = args_file.read_text().split("\n")
    assert ("--no-sandbox" in args) == (os.geteuid() == 0)


# ------------------------------------------------------------------------------------ storage refusing


def test_storage_that_refuses_every_write_stops_the_run_and_moves_nothing(wsettings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Storage and spool both refuse (here: their folders cannot be made, as on a full or read-only disk):
    no original is failed, archived or deleted, the run stops with storage's reason, and the next run
    files everything once storage takes writes again."""
    from flows.dispatch import make_dispatcher
    from frontdesk.exceptions import StorageError
    from frontdesk.watch import Watcher

    blocked = tmp_path / "blocked"
    blocked.write_text("a file where storage wants a folder")
    wsettings.storage.root = blocked / "storage"
    wsettings.storage.spool = blocked / "spool"
    wsettings.watch.workers = 1
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for p in good_pdfs(tmp_path / "src", 2, seed=157):
        p.rename(inbox / p.name)
    w = Watcher(wsettings, inbox, dispatcher=make_dispatcher(wsettings, None, "local"))
    with pytest.raises(StorageError):
        w.run(once=True, install_signals=False)
    assert len([p for p in (tmp_path / "processing").iterdir() if p.suffix == ".pdf"]) == 2
    assert not any((tmp_path / "failed").iterdir()) and not any((tmp_path / "archive").iterdir())
    blocked.unlink()
    again = Watcher(wsettings, inbox, dispatcher=make_dispatcher(wsettings, None, "local"))
    again.run(once=True, install_signals=False)
    assert sum(again.stats.finished.values()) == 2 and "failed" not in again.stats.finished
    assert len(list((tmp_path / "archive").rglob("*.pdf"))) == 2
