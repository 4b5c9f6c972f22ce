"""``frontdesk claims``: an 837P batch (validated by pyx12) and CMS-1500 forms from a visit ledger."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

from frontdesk.commands.help import examples
from frontdesk.exceptions import ExitCode

EXAMPLES = examples(
    ("frontdesk claims --alignment-page alignment.pdf",
     "write the CMS-1500 alignment test page: print it on a red form and set claims.printers"),
    ("frontdesk claims --ledger visits.csv --date 2026-03-03",
     "(needs the billing settings and a visit ledger) one 837P batch and the CMS-1500 forms of that day"),
    ("frontdesk claims --acknowledgment response.999",
     "(needs a 999 from the clearinghouse) rejected claims become flags"),
    ("frontdesk claims --list", "every claim's state (accepted, rejected by the payer, ...) and its flags"))


def register(sub: Any) -> None:
    p = sub.add_parser("claims", help="claims: X12 837P batch and CMS-1500 forms from a visit ledger",
                       description="Build a 5010 837P batch from a visit ledger (CPT, charges, units, ICD-10 "
                                   "codes), the patient records and the billing settings; validate it with pyx12; "
                                   "file it and put it in the clearinghouse outbox; print CMS-1500 (02/12) data "
                                   "for the red form and a preview with the form drawn.",
                       **EXAMPLES)
    p.add_argument("--ledger", type=Path, metavar="FILE", help="the visit ledger CSV (one row per service line)")
    p.add_argument("--date", default=None, metavar="YYYY-MM-DD", help="only visits of this day")
    p.add_argument("--printer", default="default", help="printer offsets to use (claims.printers)")
    p.add_argument("--no-paper", action="store_true", help="no CMS-1500 PDFs")
    p.add_argument("--alignment-page", type=Path, metavar="PDF", help="write the alignment test page and stop")
    p.add_argument("--acknowledgment", type=Path, metavar="FILE",
                   help="read a 999 acknowledgment: rejections become flags on the claims")
    p.add_argument("--list", action="store_true",
                   help="list the claims sent and where each stands (999 and 277CA answers, reasons in plain words)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: Any) -> int:
    settings = ctx.settings
    if args.alignment_page is not None:
        from frontdesk.claims.cms1500 import alignment_page
        from frontdesk.claims.store import write_private

        write_private(args.alignment_page, alignment_page(settings, printer=args.printer))
        print(f"Alignment page: {args.alignment_page} (print it on a red CMS-1500 form; see docs/claims.md)")
        return ExitCode.ok
    if args.list:
        return _list(settings, args.json)
    if args.ledger is None and args.acknowledgment is None:
        print("frontdesk: claims: give --ledger FILE, --acknowledgment FILE, --list or --alignment-page PDF",
              file=sys.stderr)
        return ExitCode.bad_input
    service_date = None
    if args.date:
        try:
            service_date = date.fromisoformat(args.date)
        except ValueError:
            print("frontdesk: --date: expected YYYY-MM-DD", file=sys.stderr)
            return ExitCode.bad_input
    from frontdesk.db import open_database
    from frontdesk.storage import open_storage

    db = open_database(settings)
    storage = open_storage(settings)
    try:
        if args.acknowledgment is not None:
            from frontdesk.clearinghouse import read_999

            res = read_999(settings, args.acknowledgment, db, storage)
            print(json.dumps(res) if args.json else
                  f"999 read: {res['accepted']} claims accepted, {res['flagged']} flagged as rejected")
            return ExitCode.ok
        from frontdesk.claims.store import send_claims

        out = send_claims(settings, args.ledger, db, storage, service_date=service_date, printer=args.printer,
                          paper=not args.no_paper)
        if args.json:
            print(json.dumps(out.as_json(), indent=2))
        elif not out.claims:
            print("No visits to bill in the ledger" + (f" on {service_date}" if service_date else ""))
        else:
            print(f"837P batch {out.batch_id}: {out.claims} claims, ${out.total:,.2f}, validated (pyx12); "
                  f"outbox: {out.outbox_file}")
            if out.forms_pdf:
                print(f"CMS-1500: {out.forms} forms: {out.forms_pdf} (preview: {out.preview_pdf})")
        return ExitCode.ok
    finally:
        db.dispose()


STATUS_WORDS = {"written": "sent (in the outbox)", "accepted": "accepted by the clearinghouse (999)",
                "rejected": "REJECTED by the clearinghouse (999)",
                "payer_accepted": "accepted by the payer for processing (277CA)",
                "payer_rejected": "REJECTED by the payer (277CA)"}


def _list(settings: Any, as_json: bool) -> int:
    """Every claim sent, newest batch first, with its state and the reasons a payer or clearinghouse gave."""
    from frontdesk.claims.store import list_claims
    from frontdesk.db import open_database

    db = open_database(settings)
    try:
        rows = list_claims(db)
    finally:
        db.dispose()
    if as_json:
        print(json.dumps(rows, indent=2))
        return ExitCode.ok
    if not rows:
        print("No claims sent yet")
    for r in rows:
        print(f"claim {r['claim_id']}: {STATUS_WORDS.get(r['status'], r['status'])}; ${r['total']} to "
              f"payer {r['payer_id']} (batch {r['batch_id']}, patient {r['patient_id']})")
        for flag in r["flags"]:
            print(f"  - {flag}")
    return ExitCode.ok
