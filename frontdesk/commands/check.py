"""``frontdesk check --date DATE [--appointments FILE] [--json] [--skip-bad-rows]``: the pre-visit worklist.

Runs the plain runner (no Prefect): reading an export and printing a worklist should take a second, not
the start-up of an orchestration server. The scheduled ``previsit_check`` flow runs the same steps.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from frontdesk.commands.help import examples
from frontdesk.exceptions import ExitCode


def register(sub: Any) -> None:
    p = sub.add_parser("check", help="pre-visit completeness check: worklist of what to ask each patient",
                       **examples(
        ("frontdesk check --date 2026-03-03 --appointments appointments.csv --no-pdf", "check a day from the scheduler's export; worklist as HTML, CSV and JSON"),
        ("frontdesk check --date 2026-03-03 --appointments appointments.csv --json --no-pdf", "the same worklist printed as JSON")),
                       description="Check every appointment of a day against the patient records and write "
                                   "the worklist (HTML, PDF, CSV, JSON); queue reminder letters for gaps.")
    p.add_argument("--date", default=None, metavar="DATE",
                   help="day to check: YYYY-MM-DD, MM/DD/YYYY, today, tomorrow or next "
                        "(default: the next business day)")
    p.add_argument("--appointments", type=Path, metavar="FILE",
                   help="the scheduling system's export: CSV or FHIR JSON bundle "
                        "(default: the newest file in checks.appointments_dir)")
    p.add_argument("--skip-bad-rows", action="store_true",
                   help="check the good rows of an export that has bad ones (the bad ones are listed)")
    p.add_argument("--json", action="store_true", help="print the worklist as JSON")
    p.add_argument("--out", type=Path, metavar="DIR", help="folder for the worklist files (default: checks.output_dir)")
    p.add_argument("--no-pdf", action="store_true", help="skip the PDF (HTML, CSV and JSON are still written)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: Any) -> int:
    from frontdesk.checks.config import checks_for
    from frontdesk.checks.runner import default_visit_date, run_check
    from frontdesk.checks.schedule import parse_visit_date, practice_zone, settings_zone

    settings = ctx.settings
    now = datetime.now(practice_zone(settings_zone(settings)))  # the one clock reading of this run
    if args.date is None:
        visit_date = default_visit_date(settings, now=now)
    else:
        try:
            visit_date = parse_visit_date(args.date, today=now.date(),
                                          holidays=checks_for(settings.checks.rules_file).config.holidays)
        except ValueError as exc:
            print(f"frontdesk: --date: {exc}", file=sys.stderr)
            return ExitCode.bad_input
    from frontdesk.progress import shown

    with shown(json_output=args.json):
        report = run_check(settings, visit_date, appointments_file=args.appointments,
                           skip_bad_rows=args.skip_bad_rows, out_dir=args.out, pdf=not args.no_pdf, now=now)
    for w in report.warnings:
        print(f"frontdesk: warning: {w}", file=sys.stderr)
    if report.bad_rows:
        print(f"frontdesk: {len(report.bad_rows)} bad row(s) skipped in {report.source}:", file=sys.stderr)
        for line in report.bad_rows:
            print(f"  {line}", file=sys.stderr)
    if args.json:
        print(json.dumps(report.as_json(), indent=2, ensure_ascii=False))
    else:
        print(render_summary(report))
    return ExitCode.ok


def render_summary(report: Any) -> str:
    s = report.summary()
    d = report.visit_date
    lines = [f"Pre-visit check for {d:%A, %B} {d.day}, {d:%Y}" + (f" (run {report.run_id})" if report.run_id else "")
             + f": {s['appointments']} appointments, {s['ready']} ready, {s['missing']} missing paperwork"]
    if report.previous_run_id:
        lines.append(f"Since the previous check (run {report.previous_run_id}): {s['resolved']} resolved, "
                     f"{s['new']} new, {s['gone_since_previous']} appointments gone")
    lines.append(f"Reminder letters queued: {s['reminders_queued']}"
                 + (f" ({s['reminders_not_sent']} patients with gaps have no complete mailing address)"
                    if s["reminders_not_sent"] else "")
                 + (f"; {s['reminders_voided']} voided for cancelled visits" if s["reminders_voided"] else ""))
    skipped = [f"{s['cancelled_skipped']} cancelled", f"{s['other_dates']} on other days"]
    if s["bad_rows_skipped"]:
        skipped.append(f"{s['bad_rows_skipped']} bad rows")
    lines.append("Not checked: " + ", ".join(skipped))
    if s["findings"]:
        lines.append("Findings: " + ", ".join(f"{code} {n}" for code, n in s["findings"].items()))
    out = report.outputs
    main = out.get("pdf") or out.get("html")
    if main:
        others = ", ".join(Path(v).suffix for k, v in out.items() if v != main)
        lines.append(f"Worklist: {main} (also {others})")
    return "\n".join(lines)
