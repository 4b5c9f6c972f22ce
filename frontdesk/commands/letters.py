"""``frontdesk letters check|statements``: try every letter template, and bill from a ledger export.

``check`` renders every template with fictional sample data (and ``--layout`` also converts the samples
to PDF and checks what the envelope windows show), so a template edited in Word is proven before a
batch depends on it. ``statements`` turns the billing system's ledger export into one statement per
account that owes more than the minimum, files each PDF and leaves it pending for the next mail batch.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from frontdesk.commands.help import examples
from frontdesk.exceptions import ExitCode


def register(sub: Any) -> None:
    p = sub.add_parser("letters", help="check the letter templates; make patient statements from a ledger",
                       description="Letter templates and patient statements.",
                       **examples(
        ("frontdesk letters check", "render every letter template with sample data and report problems"),
        ("frontdesk letters statements ledger.csv --date 2026-11-30 --dry-run",
         "who would get a statement from this ledger export, and who cannot be billed; nothing recorded"),
        ("frontdesk letters statements ledger.csv --date 2026-11-30",
         "make the statements, file them and leave them for the next mail batch")))
    lsub = p.add_subparsers(dest="letters_command", metavar="ACTION")
    lsub.required = True
    c = lsub.add_parser("check", help="render every template with sample data and report problems")
    c.add_argument("--layout", action="store_true",
                   help="also convert the samples to PDF and check what the envelope windows show (LibreOffice)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(handler=run_check)
    s = lsub.add_parser("statements", help="one statement per account owing more than the minimum, from a "
                                           "ledger CSV export; filed and queued for the next mail batch")
    s.add_argument("ledger", type=Path, metavar="LEDGER.csv")
    s.add_argument("--date", metavar="YYYY-MM-DD", help="statement date (default: today); aging counts from it")
    s.add_argument("--minimum", metavar="DOLLARS", help="bill only balances above this (default: "
                                                       "statements.minimum_balance)")
    s.add_argument("--dry-run", action="store_true", help="report what would be billed; record nothing")
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=run_statements)
    inv = lsub.add_parser("invoices", help="an itemised invoice for each self-pay visit in the visit ledger",
                          **examples(
        ("frontdesk letters invoices visits.csv --date 2026-11-30",
         "(needs a visit ledger with self-pay visits) queue their invoices for the next mail batch"),
        ("frontdesk letters invoices visits.csv --dry-run --json", "(needs a visit ledger) what would be queued")))
    inv.add_argument("ledger", type=Path, metavar="VISITS.csv",
                     help="the visit ledger (as for frontdesk claims: visit, patient id, date, code, charge...)")
    inv.add_argument("--date", metavar="YYYY-MM-DD", help="invoice date (default: today)")
    inv.add_argument("--dry-run", action="store_true", help="count what would be queued; queue nothing")
    inv.add_argument("--json", action="store_true")
    inv.set_defaults(handler=run_invoices)


def check_all(settings: Any, *, layout: bool) -> dict[str, list[str]]:
    """Problems per kind (an empty list is a good template)."""
    from frontdesk.letters.kinds import KINDS, render_context, sample_context
    from frontdesk.rendering import check_template

    results: dict[str, list[str]] = {}
    samples: dict[str, dict[str, Any]] = {}
    for name, kind in KINDS.items():
        template = settings.letters_dir / kind.template_name
        if not template.is_file():
            results[name] = [f"{kind.template_name}: template not found in {settings.letters_dir}"]
            continue
        sample = render_context(sample_context(name), settings)  # with the configured logo, if any
        results[name] = check_template(template, sample)
        if not results[name]:
            samples[name] = sample_context(name)
        for translated in sorted(settings.letters_dir.glob(f"*/{kind.template_name}")):  # es/welcome.docx...
            results[f"{name} ({translated.parent.name})"] = check_template(translated, sample)
    if layout and samples:
        _check_layout(settings, samples, results)
    return results


def _check_layout(settings: Any, samples: dict[str, dict[str, Any]], results: dict[str, list[str]]) -> None:
    from frontdesk.letters.filing import RenderJob, render_pdfs
    from frontdesk.letters.kinds import KINDS
    from frontdesk.letters.layout import LayoutError, inspect_pdf

    rendered = render_pdfs([RenderJob(f"sample-{name}", name, ctx) for name, ctx in samples.items()], settings)
    for name, ctx in samples.items():
        piece = f"sample-{name}"
        if piece in rendered.failed:
            results[name].append(rendered.failed[piece][1])
            continue
        who = ctx[KINDS[name].recipient]
        practice = ctx["practice"]
        try:
            facts = inspect_pdf(rendered.pdfs[piece], [practice["name"], *practice["address_lines"]],
                                [who["full_name"], *who["address_lines"]])
        except LayoutError as exc:
            results[name].append(f"{KINDS[name].template_name}: {exc.reason}")
            continue
        if not facts.fits_windows:
            results[name].append(f"{KINDS[name].template_name}: {facts.why_not}; every letter of this kind will "
                                 "need an address sheet (rebuild it with scripts/build_letters.py, or restore "
                                 "the window block at the top of the first page)")


def run_check(args: argparse.Namespace, ctx: Any) -> int:
    results = check_all(ctx.settings, layout=args.layout)
    bad = {k: v for k, v in results.items() if v}
    if args.json:
        print(json.dumps({"ok": not bad, "templates": results}, indent=2, ensure_ascii=False))
    else:
        for name, problems in results.items():
            print(f"{'ok  ' if not problems else 'FAIL'} {name}")
            for problem in problems:
                print(f"     {problem}")
        print("all templates are fine" if not bad else f"{len(bad)} template(s) need fixing")
    return ExitCode.ok if not bad else ExitCode.template


def _statement_date(text: str | None) -> date:
    if text is None:
        return date.today()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise SystemExit("frontdesk: --date: use YYYY-MM-DD") from None


def _minimum(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        value = Decimal(text.replace("$", "").replace(",", ""))
    except InvalidOperation:
        raise SystemExit("frontdesk: --minimum: give an amount such as 5.00") from None
    if not value.is_finite() or value < 0:
        raise SystemExit("frontdesk: --minimum: give an amount such as 5.00")
    return value


def run_statements(args: argparse.Namespace, ctx: Any) -> int:
    from frontdesk.db import open_database
    from frontdesk.letters.filing import issue_statements, letters_lock
    from frontdesk.letters.statements import read_ledger
    from frontdesk.storage import open_storage

    statement_date, minimum = _statement_date(args.date), _minimum(args.minimum)
    ledger = read_ledger(args.ledger)
    settings = ctx.settings
    db = open_database(settings)
    storage = open_storage(settings)
    from frontdesk.progress import shown

    if args.dry_run:
        run = issue_statements(db, storage, settings, ledger, statement_date=statement_date, minimum=minimum,
                               dry_run=True)
    else:
        with letters_lock(db, settings), shown(json_output=args.json):
            run = issue_statements(db, storage, settings, ledger, statement_date=statement_date, minimum=minimum)
    for problem in run.problems:
        print(f"frontdesk: {args.ledger.name}: {problem}", file=sys.stderr)
    for rows in run.without_address:
        print(f"frontdesk: {args.ledger.name}: account on {rows} has no mailing address (none in the export "
              "and no matching patient record); no statement", file=sys.stderr)
    for piece, reason in run.render_failed.items():
        print(f"frontdesk: statement {piece} could not be rendered: {reason}", file=sys.stderr)
    if args.json:
        print(json.dumps(run.as_dict(), indent=2))
    else:
        made = run.would_issue if args.dry_run else len(run.issued)
        verb = "would be issued" if args.dry_run else "issued and filed"
        print(f"{made} statement(s) {verb} for {run.statement_date.isoformat()} from {run.ledger_rows} ledger rows "
              f"({run.accounts} accounts)")
        print(f"  {run.below_minimum} account(s) at or below the minimum, {run.already_issued} already billed "
              f"on this date, {len(run.without_address)} without an address, {len(run.problems)} problem(s)")
        if run.issued and not args.dry_run:
            print("  they wait for the next mail batch: frontdesk mail --kind statements")
        if run.unbillable:
            print(f"{len(run.unbillable)} account(s) cannot be billed:")
            for item in run.unbillable:
                print(f"  {args.ledger.name} {item['rows']}: {item['reason']}")
    return ExitCode.ok if not run.render_failed else ExitCode.template


def run_invoices(args: argparse.Namespace, ctx: Any) -> int:
    from frontdesk.claims.ledger import read_claim_ledger
    from frontdesk.db import open_database
    from frontdesk.letters.filing import letters_lock
    from frontdesk.letters.invoices import issue_invoices

    invoice_date = _statement_date(args.date)
    visits = read_claim_ledger(args.ledger)
    settings = ctx.settings
    db = open_database(settings)
    if args.dry_run:
        run = issue_invoices(db, settings, visits, invoice_date=invoice_date, dry_run=True)
    else:
        with letters_lock(db, settings):
            run = issue_invoices(db, settings, visits, invoice_date=invoice_date)
    for item in run.not_invoiced:
        print(f"frontdesk: {args.ledger.name}: visit {item['visit']} ({item['patient_id']}): {item['reason']}; "
              "no invoice", file=sys.stderr)
    if args.json:
        print(json.dumps(run.as_dict(), indent=2))
        return ExitCode.ok
    if run.disabled:
        print("self-pay invoices are switched off (config/letters.yaml: self_pay_invoice enabled: false)")
        return ExitCode.ok
    made = run.would_queue if args.dry_run else len(run.queued)
    print(f"{run.visits} visits: {made} invoice(s) {'would be ' if args.dry_run else ''}queued for the next mail "
          f"batch, {run.already_invoiced} already invoiced, {run.insured} insured (billed by claim), "
          f"{len(run.not_invoiced)} not invoiced")
    return ExitCode.ok
