"""Turn .docx letters into PDF with headless LibreOffice.

A cold ``soffice --convert-to pdf`` costs about a second, most of it start-up, so a batch is converted in
as few calls as possible (one per chunk of documents). Each call gets a fresh, private user profile:
concurrent ``soffice`` processes sharing one profile fail silently. Each call also has a timeout that
kills the whole process group (``soffice`` is a wrapper around ``oosplash`` and ``soffice.bin``).

LibreOffice skips a document it cannot load and carries on with the others, and it exits 0 either way,
so success is judged only by the PDFs found afterwards. Documents missing from a batch's output are
retried one by one, which also isolates a document that crashes LibreOffice from the rest of its chunk.

Inputs are copied to neutral names before conversion: LibreOffice names its output after the input,
would read a name starting with ``-`` as an option, and its log lines then never carry a letter's name.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from frontdesk import progress
from frontdesk.exceptions import ConversionError

__all__ = ["BatchConversionError", "CHUNK_SIZE", "WarmOffice", "default_workers", "docx_to_pdf", "keep_warm",
           "soffice_binary"]

log = logging.getLogger(__name__)

#: Documents per LibreOffice call. Large enough to amortise start-up, small enough that a hang or a
#: crash costs little work and a call stays well inside its timeout.
CHUNK_SIZE = 50

# Below this many documents per call, a second LibreOffice start costs more than it saves.
_MIN_PARALLEL_CHUNK = 8


class BatchConversionError(ConversionError):
    """Some documents of a batch could not be converted; the others were, and are listed for the caller.

    ``failed`` maps each failed input to a short reason; ``converted`` holds the PDFs that were written,
    in input order, so a flow can file the good letters and queue the rest for a person.
    """

    def __init__(self, failed: dict[Path, str], converted: list[Path]) -> None:
        self.failed = dict(failed)
        self.converted = list(converted)
        listed = "; ".join(f"{path.name}: {reason}" for path, reason in self.failed.items())
        super().__init__(
            f"{len(self.failed)} document(s) could not be converted to PDF "
            f"({len(self.converted)} converted): {listed}"
        )


def soffice_binary() -> str:
    """Path of the LibreOffice executable; ConversionError if neither usual name is on PATH."""
    for name in ("soffice", "libreoffice"):
        found = shutil.which(name)
        if found:
            return found
    raise ConversionError(
        "LibreOffice is not installed or not on PATH (looked for 'soffice' and 'libreoffice'); "
        "install it (Debian/Ubuntu: apt-get install libreoffice-writer-nogui) to produce PDF letters"
    )


def _docx_problem(doc: Path) -> str | None:
    """Why ``doc`` cannot be a Word document, or None.

    LibreOffice happily turns an empty or plain-text file named .docx into a blank or garbage PDF, so
    such files are refused before they reach it.
    """
    if not doc.is_file():
        return "file not found"
    try:
        with zipfile.ZipFile(doc) as archive:
            names = set(archive.namelist())
            if "word/document.xml" not in names or "[Content_Types].xml" not in names:
                return "not a Word .docx file (no document inside the archive)"
            if archive.testzip() is not None:
                return "damaged .docx file (checksum error)"
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError):
        return "not a Word .docx file (damaged or not a zip archive)"
    return None


def _is_complete_pdf(path: Path) -> bool:
    """A PDF LibreOffice finished writing: the header at the start and the end-of-file marker at the end."""
    try:
        size = path.stat().st_size
        if size < 16:
            return False
        with path.open("rb") as handle:
            if handle.read(5) != b"%PDF-":
                return False
            handle.seek(max(0, size - 1024))
            return b"%%EOF" in handle.read()
    except OSError:
        return False


def _kill_group(pgid: int) -> None:
    """SIGKILL every process of a LibreOffice run (the wrapper, oosplash, soffice.bin)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


#: Exit code of a LibreOffice that created its profile and asks to be started again.
_RESTART_REQUESTED = 81


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL when the process that started it dies, even by SIGKILL, so a
    killed watcher worker never leaves a LibreOffice running.

    Linux sends this signal when the *thread* that forked the child ends, not the process: a child
    started from a short-lived thread (a Prefect task's worker thread ends with its flow run) would be
    killed with it. Start such children through :func:`_spawn_from_lasting_thread`."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


_SPAWNER: ThreadPoolExecutor | None = None
_SPAWNER_LOCK = threading.Lock()


def _spawn_from_lasting_thread(start: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    """Run ``start`` on one thread kept for the life of the process, so a child bound to its parent by
    :func:`_die_with_parent` lives until the process ends, whichever thread asked for it."""
    global _SPAWNER
    with _SPAWNER_LOCK:
        if _SPAWNER is None:
            _SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="office-spawner")
        spawner = _SPAWNER
    return spawner.submit(start).result()


class WarmOffice:
    """One LibreOffice kept running for the conversions of a long-lived process.

    Starting LibreOffice costs about a second of CPU, converting a letter well under a tenth of one.
    ``soffice --convert-to`` run with the profile of a LibreOffice that is already running hands the
    work to it over LibreOffice's own single-instance pipe and waits for it, so every call after the
    first costs its documents only. An open, empty document keeps the office from quitting after each
    conversion. Everything else stays as with a cold call (staging, verification, timeouts, stragglers
    one by one); a call that times out stops the office, and a dead office is started again on the next
    call. Private profile and temporary folder, removed on :meth:`close`.
    """

    STARTUP_TIMEOUT = 120.0  # a loaded two-core machine; a hang guard, not an expectation

    def __init__(self, binary: str | None = None) -> None:
        self.binary = binary or soffice_binary()
        real = Path(os.path.realpath(self.binary))
        program = real.with_name("soffice.bin")
        # soffice.bin directly (not the wrapper): this process is its parent, so it is reaped here and
        # its CPU counted where it was spent.
        self.program = str(program) if program.is_file() else self.binary
        self.root = Path(tempfile.mkdtemp(prefix="frontdesk-office-"))
        self.profile = self.root / "profile"
        self.tmp = self.root / "tmp"
        self.tmp.mkdir()
        self.keep_open = self.root / "keep-open.txt"
        self.keep_open.write_bytes(b"")
        self.pipe_name = f"frontdesk-{os.getpid()}-{os.urandom(6).hex()}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._lock = threading.Lock()

    def _ready_marker(self) -> list[Path]:
        name = f"OSL_PIPE_{os.getuid()}_{self.pipe_name}"
        return [Path("/tmp") / name, Path("/var/tmp") / name]

    def _launch(self) -> subprocess.Popen[bytes]:
        command = [
            self.program,
            f"-env:UserInstallation={self.profile.as_uri()}",
            "--headless", "--invisible", "--nologo", "--norestore", "--nolockcheck",
            f"--accept=pipe,name={self.pipe_name};urp;",
            str(self.keep_open),
        ]
        env = dict(os.environ, HOME=str(self.profile), TMPDIR=str(self.tmp))

        def start() -> subprocess.Popen[bytes]:
            with (self.root / "office.log").open("ab") as sink:
                return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                                        env=env, cwd=self.root, start_new_session=True,
                                        preexec_fn=_die_with_parent)  # prctl only: safe between fork and exec

        return _spawn_from_lasting_thread(start)

    def ensure(self) -> bool:
        """Running and accepting calls (started when needed); False when it cannot be, and the caller
        converts the cold way."""
        with self._lock:
            if self.proc is not None and self.proc.poll() is None:
                return True
            if self.proc is not None:
                log.info("the kept LibreOffice exited (code %s); starting another", self.proc.returncode)
                self.proc = None
            for _ in range(3):
                started = time.monotonic()
                proc = self._launch()
                self.starts += 1
                while time.monotonic() - started < self.STARTUP_TIMEOUT:
                    if proc.poll() is not None:
                        break
                    if any(p.exists() for p in self._ready_marker()):
                        self.proc = proc
                        return True
                    time.sleep(0.05)
                if proc.poll() is None:  # never became ready
                    _kill_group(proc.pid)
                    proc.wait()
                    break
                if proc.returncode != _RESTART_REQUESTED:  # 81: first start of a profile, start it again
                    break
            log.warning("could not keep a LibreOffice running; converting without it")
            return False

    def stop(self) -> None:
        """End the office (it is started again when needed) and reap it."""
        with self._lock:
            proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=15)
        _kill_group(proc.pid)
        proc.wait()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


_WARM: WarmOffice | None = None


def keep_warm(enabled: bool = True) -> WarmOffice | None:
    """From now on, single-process conversions in this process go to one LibreOffice kept running (for
    a watcher's workers, which convert a few letters per batch all day); it is stopped when the process
    exits. ``keep_warm(False)`` stops it."""
    global _WARM
    if not enabled:
        if _WARM is not None:
            _WARM.close()
            _WARM = None
        return None
    if _WARM is None:
        try:
            _WARM = WarmOffice()
        except ConversionError:  # no LibreOffice: conversions will say so themselves
            return None
        from multiprocessing import util

        # Runs at interpreter exit and in multiprocessing workers, which skip atexit handlers.
        util.Finalize(_WARM, _WARM.close, exitpriority=50)
    return _WARM


@dataclass
class _RunResult:
    converted: dict[Path, Path] = field(default_factory=dict)  # input -> PDF inside the work directory
    timed_out: bool = False


def _run_soffice(binary: str, docs: Sequence[Path], work: Path, timeout: float,
                 office: WarmOffice | None = None) -> _RunResult:
    """One LibreOffice call converting ``docs``; never raises on failure. With a private profile of its
    own, or, when ``office`` is running, with that office's profile: the call is then handed to the
    running LibreOffice instead of starting one."""
    result = _RunResult()
    root = Path(tempfile.mkdtemp(prefix="frontdesk-soffice-"))
    out = Path(tempfile.mkdtemp(dir=work, prefix="run-"))
    warm = office is not None and office.ensure()
    try:
        profile, inbox, tmp = root / "profile", root / "in", root / "tmp"
        for directory in (inbox, tmp) if warm else (profile, inbox, tmp):
            directory.mkdir()
        if warm:
            assert office is not None
            profile, tmp = office.profile, office.tmp
        staged: list[Path] = []
        for index, doc in enumerate(docs):
            target = inbox / f"{index:04d}.docx"
            shutil.copyfile(doc, target)
            staged.append(target)
        command = [
            binary,
            f"-env:UserInstallation={profile.as_uri()}",
            "--headless",
            "--invisible",
            "--nologo",
            "--nodefault",
            "--nolockcheck",
            "--norestore",
            "--convert-to",
            "pdf",
            "--outdir",
            str(out),
            *map(str, staged),
        ]
        env = dict(os.environ, HOME=str(profile), TMPDIR=str(tmp))
        output = root / "soffice.log"
        started = time.monotonic()
        # Output goes to a file, not a pipe: a pipe would keep us waiting on any straggling child.
        with output.open("wb") as sink:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=root,
                start_new_session=True,  # its own process group, so a hang can be killed as a whole
            )
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                result.timed_out = True
                _kill_group(process.pid)
                process.wait()
                if warm:  # it is still busy with what hung: start afresh next time
                    assert office is not None
                    office.stop()
            else:
                _kill_group(process.pid)  # leftovers of a finished run must not outlive its profile
        failures = output.read_text("utf-8", "replace").count("source file could not be loaded")
        log.debug(
            "soffice%s: %d document(s), exit %s, %d load error(s), %.1f s%s",
            " (warm)" if warm else "",
            len(docs),
            process.returncode,
            failures,
            time.monotonic() - started,
            ", timed out" if result.timed_out else "",
        )
        for doc, source in zip(docs, staged, strict=True):
            pdf = out / f"{source.stem}.pdf"
            if _is_complete_pdf(pdf):
                result.converted[doc] = pdf
    finally:
        # A killed group's last process may still write into the profile for a moment after the signal
        # (seen under load): remove it again until it stays gone, so no profile outlives its run.
        for _ in range(40):
            shutil.rmtree(root, ignore_errors=True)
            if not root.exists():
                break
            time.sleep(0.05)
    return result


def _convert_chunk(
    binary: str, chunk: Sequence[Path], work: Path, timeout: float, office: WarmOffice | None = None
) -> tuple[dict[Path, Path], dict[Path, str]]:
    """Convert a chunk: one call, the remainder once more after a timeout, stragglers one by one."""
    converted: dict[Path, Path] = {}
    pending = list(chunk)
    timeouts = 0
    while pending:
        run = _run_soffice(binary, pending, work, timeout, office)
        converted.update(run.converted)
        pending = [doc for doc in pending if doc not in run.converted]
        if not run.timed_out:
            break
        timeouts += 1
        log.warning(
            "LibreOffice timed out after %.0f s on a batch of documents (attempt %d)", timeout, timeouts
        )
        if timeouts >= 2:
            reason = f"LibreOffice did not finish within {timeout:g} s, twice"
            return converted, dict.fromkeys(pending, reason)

    failed: dict[Path, str] = {}
    for doc in pending:  # LibreOffice finished but skipped these: isolate each one
        run = _run_soffice(binary, [doc], work, timeout, office)
        if doc in run.converted:
            converted[doc] = run.converted[doc]
        elif run.timed_out:
            failed[doc] = f"LibreOffice did not finish within {timeout:g} s"
        else:
            failed[doc] = "LibreOffice could not load or convert it"
    return converted, failed


def _split(todo: list[Path], chunk_size: int, workers: int) -> list[list[Path]]:
    """Chunks of at most ``chunk_size``, of even size, and (when there is enough work) at least one per
    worker, so a batch of 60 on two workers is 30 + 30 rather than 50 + 10."""
    if not todo:
        return []
    count = -(-len(todo) // chunk_size)
    if workers > 1:
        count = max(count, min(workers, len(todo) // _MIN_PARALLEL_CHUNK))
        count = -(-count // workers) * workers if count > workers else count
    size = -(-len(todo) // count)
    return [todo[start : start + size] for start in range(0, len(todo), size)]


def default_workers() -> int:
    """LibreOffice processes to run side by side: one per core, at most 4.

    A conversion keeps one core busy, so more processes than cores only add memory (each takes
    ~150 MB); on a small office machine two in parallel nearly halve a batch's time.
    """
    return max(1, min(4, os.cpu_count() or 1))


def docx_to_pdf(
    docs: Sequence[Path],
    out_dir: Path,
    *,
    timeout: float = 180.0,
    chunk_size: int = CHUNK_SIZE,
    workers: int = 1,
    office: WarmOffice | None = None,
) -> list[Path]:
    """Convert ``docs`` to ``out_dir/<name>.pdf``; return the PDF paths in input order.

    ``timeout`` applies to each LibreOffice call (one per chunk of ``chunk_size`` documents); up to
    ``workers`` calls run at once, each with its own profile. With one worker, calls go to ``office``
    (default: the office :func:`keep_warm` keeps for this process, if any) instead of starting a
    LibreOffice each. A PDF appears in ``out_dir`` only once complete and verified. If any document
    fails, the others are still converted and BatchConversionError (a ConversionError) names the
    failed files.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    if workers < 1:
        raise ValueError("workers must be at least 1")
    paths = [Path(doc) for doc in docs]
    if not paths:
        return []
    out_dir = Path(out_dir).absolute()

    targets: dict[Path, Path] = {}
    claimed: dict[str, Path] = {}
    for doc in paths:
        key = doc.resolve()
        pdf_name = f"{doc.stem}.pdf"
        owner = claimed.setdefault(pdf_name, key)
        if owner != key:
            raise ConversionError(
                f"{doc.name}: two input documents would both be written as {pdf_name}; give them distinct names"
            )
        targets[key] = out_dir / pdf_name

    failed: dict[Path, str] = {}
    todo: list[Path] = []
    seen: set[Path] = set()
    for doc in paths:
        key = doc.resolve()
        if key in seen:  # the same file listed twice is converted once
            continue
        seen.add(key)
        problem = _docx_problem(doc)
        if problem:
            failed[doc] = problem
        else:
            todo.append(doc)

    binary = soffice_binary() if todo else ""
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    done: set[Path] = set()
    # The work directory sits inside out_dir so finished PDFs are moved in with an atomic rename.
    chunks = _split(todo, chunk_size, workers)
    with (tempfile.TemporaryDirectory(dir=out_dir, prefix=".frontdesk-convert-") as work_name,
          progress.step("converting to PDF", len(todo)) as converting):
        work = Path(work_name)

        def finish(converted: dict[Path, Path], chunk_failed: dict[Path, str]) -> None:
            for doc, pdf in converted.items():
                os.replace(pdf, targets[doc.resolve()])
                done.add(doc.resolve())
            failed.update(chunk_failed)
            converting.advance(len(converted) + len(chunk_failed))

        if workers == 1 or len(chunks) == 1:
            warm = (office or _WARM) if workers == 1 else None
            for chunk in chunks:
                finish(*_convert_chunk(binary, chunk, work, timeout, warm))
        else:
            # Each call makes its own profile and staging folder under ``work``, so calls never share one.
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="soffice") as pool:
                for result in pool.map(lambda chunk: _convert_chunk(binary, chunk, work, timeout), chunks):
                    finish(*result)
    if todo:
        log.info(
            "converted %d of %d document(s) to PDF in %.1f s",
            len(done),
            len(todo),
            time.monotonic() - started,
        )

    if failed:
        failed = {doc: failed[doc] for doc in paths if doc in failed}  # report in input order
        converted_paths = [targets[doc.resolve()] for doc in paths if doc.resolve() in done]
        raise BatchConversionError(failed, list(dict.fromkeys(converted_paths)))
    return [targets[doc.resolve()] for doc in paths]
