"""The worklist, written four ways: a printable HTML page, its PDF, a CSV for spreadsheets, and JSON.

The page is built for the desk at a glance: grouped by provider, in time order, a READY / MISSING badge
that reads in black and white too (a tick or a cross and the word, not only a colour), and under each
patient the exact sentences to say. Every row stays on one page when printed.

The PDF is printed by headless Chromium, which lays out the same HTML and CSS that staff see in a
browser. Each call gets a throw-away browser profile (as LibreOffice does in :mod:`frontdesk.convert`):
two concurrent runs sharing one profile would fight over its lock.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
from collections import OrderedDict
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import jinja2

from frontdesk.checks.schedule import settings_zone
from frontdesk.exceptions import ConversionError
from frontdesk.settings import Settings

if TYPE_CHECKING:
    from frontdesk.checks.report import CheckReport

log = logging.getLogger("frontdesk.checks.worklist")

CSV_COLUMNS = ("date", "time", "provider", "patient", "date_of_birth", "mrn", "record_id", "status",
               "finding_codes", "ask", "new", "resolved", "reminder_letter", "appointment_id")
PDF_TIMEOUT = 90.0


def _template() -> jinja2.Template:
    """Sandboxed, strict and escaping, like the letters: the worklist shows what patients wrote and what the
    scheduler exported, so a value is text, never markup, and the template cannot turn escaping off."""
    import jinja2.sandbox

    from frontdesk.rendering import refuse_unescaping

    env = jinja2.sandbox.ImmutableSandboxedEnvironment(autoescape=True, undefined=jinja2.StrictUndefined,
                                                       trim_blocks=True, lstrip_blocks=True)
    source = resources.files("frontdesk.checks").joinpath("worklist.html").read_text(encoding="utf-8")
    refuse_unescaping(env.parse(source))
    return env.from_string(source)


def _time(t: Any) -> str:
    return t.strftime("%I:%M %p").lstrip("0")


def page_context(report: CheckReport, settings: Settings) -> dict[str, Any]:
    groups: OrderedDict[str, dict[str, Any]] = OrderedDict()
    for row in report.rows:
        g = groups.setdefault(row.appointment.provider, {"provider": row.appointment.provider, "rows": [],
                                                         "missing": 0})
        g["missing"] += row.status == "missing"
        dob = row.date_of_birth
        g["rows"].append({
            "key": row.appointment.key,
            "time": _time(row.appointment.start),
            "name": row.patient_name,
            "dob": f"{dob:%m/%d/%Y}" if dob else None,
            "mrn": row.appointment.mrn or (row.record.mrn if row.record else None),
            "visit_type": row.appointment.visit_type,
            "match_note": (f"{len(row.match.ambiguous)} records match" if row.match.ambiguous
                           else None if row.record is not None else "no record found"),
            "status": row.status,
            "findings": [{"message": f.message, "severity": f.severity, "new": f.code in row.new}
                         for f in row.findings],
            "resolved": [{"short": r.message} for r in row.resolved],
            "reminder_letter": row.reminder_letter,
            "reminder_note": row.reminder_note,
        })
    d = report.visit_date
    return {
        "practice_name": settings.practice.name,
        "visit_date_iso": d.isoformat(),
        "visit_date_long": f"{d:%A, %B} {d.day}, {d:%Y}",
        "generated": report.generated_at.astimezone(ZoneInfo(settings_zone(settings))).strftime("%m/%d/%Y %I:%M %p"),
        "run_id": report.run_id,
        "previous_run_id": report.previous_run_id,
        "summary": report.summary(),
        "groups": list(groups.values()),
        "bad_rows": report.bad_rows,
        "source_name": report.source.name if report.source else "the appointment export",
        "source_format": report.format,
    }


def render_html(report: CheckReport, settings: Settings) -> str:
    return _template().render(**page_context(report, settings))


def _cell(value: object) -> str:
    """Spreadsheet-safe: a cell starting with = + - @ would run as a formula when the CSV is opened."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def render_csv(report: CheckReport) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    for row in report.rows:
        a, dob = row.appointment, row.date_of_birth
        w.writerow([_cell(x) for x in (
            a.start.date().isoformat(), a.start.strftime("%H:%M"), a.provider, row.patient_name,
            dob.isoformat() if dob else "", a.mrn or "", row.record.patient_id if row.record else "", row.status,
            " ".join(row.codes), " | ".join(f.message for f in row.findings), " ".join(row.new),
            " ".join(r.code for r in row.resolved), row.reminder_letter or "", a.key)])
    return buf.getvalue()


def chromium_binary(configured: str | None = None) -> str:
    candidates = [configured] if configured else []
    candidates += ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]
    for c in candidates:
        if c and (found := shutil.which(c)):
            return found
    raise ConversionError("Chromium is not installed (needed for the worklist PDF); install the 'chromium' "
                          "package or set checks.chromium")


def html_to_pdf(html: Path, pdf: Path, *, binary: str | None = None, timeout: float = PDF_TIMEOUT) -> Path:
    """Print ``html`` to ``pdf`` with headless Chromium; ConversionError with a one-line reason otherwise."""
    exe = chromium_binary(binary)
    pdf.parent.mkdir(parents=True, exist_ok=True)
    tmp_pdf = pdf.with_name(f".{pdf.name}.part")
    with tempfile.TemporaryDirectory(prefix="frontdesk-chromium-") as profile:
        # Chromium's sandbox stays on; it cannot start as root (Chromium refuses a sandboxed root), so only
        # there is it turned off. (Turning JavaScript off with --blink-settings stops it printing at all.)
        sandbox = ["--no-sandbox"] if os.geteuid() == 0 else []
        cmd = [exe, "--headless", *sandbox, "--disable-gpu",
               "--disable-dev-shm-usage", "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-extensions", "--no-first-run", "--no-default-browser-check", "--mute-audio",
               f"--user-data-dir={profile}", "--no-pdf-header-footer", "--run-all-compositor-stages-before-draw",
               f"--print-to-pdf={tmp_pdf}", html.resolve().as_uri()]
        env = dict(os.environ, HOME=profile)  # Chromium writes caches under HOME; keep them throw-away
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                                start_new_session=True)
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            tmp_pdf.unlink(missing_ok=True)
            raise ConversionError(f"{pdf.name}: Chromium did not finish printing within {timeout:.0f} s") from None
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):  # Chromium leaves helper processes (zygote, GPU) in its group
                os.killpg(proc.pid, signal.SIGKILL)
    if not tmp_pdf.is_file() or tmp_pdf.stat().st_size == 0 or not tmp_pdf.read_bytes().startswith(b"%PDF"):
        tmp_pdf.unlink(missing_ok=True)
        last = (err or b"").decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        raise ConversionError(f"{pdf.name}: Chromium printed no PDF (exit {proc.returncode}: {last[0][:200]})")
    tmp_pdf.replace(pdf)
    return pdf


def _write(path: Path, text: str) -> None:
    """Write beside, then rename: a worklist open in a browser never shows half a file."""
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(text, encoding="utf-8", newline="")
    os.chmod(tmp, 0o600)  # patient data: readable by the account that runs Frontdesk only
    tmp.replace(path)


def write_outputs(report: CheckReport, settings: Settings, folder: Path, *, pdf: bool = True) -> dict[str, str]:
    """worklist-DATE.{html,pdf,csv,json} in ``folder``; a later run of the same day replaces them."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"worklist-{report.visit_date.isoformat()}"
    out: dict[str, str] = {}
    html_path = folder / f"{stem}.html"
    _write(html_path, render_html(report, settings))
    out["html"] = str(html_path)
    csv_path = folder / f"{stem}.csv"
    _write(csv_path, render_csv(report))
    out["csv"] = str(csv_path)
    if pdf:
        pdf_path = folder / f"{stem}.pdf"
        html_to_pdf(html_path, pdf_path, binary=settings.checks.chromium)
        os.chmod(pdf_path, 0o600)
        out["pdf"] = str(pdf_path)
    json_path = folder / f"{stem}.json"
    report.outputs = dict(out, json=str(json_path))
    _write(json_path, json.dumps(report.as_json(), indent=2, ensure_ascii=False))
    out["json"] = str(json_path)
    return out
