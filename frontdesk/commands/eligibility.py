"""``frontdesk eligibility``: X12 270 requests for a day's appointments, and 271 responses read back.

No Prefect here: building a file for the clearinghouse takes a second. The scheduled flow
(``flows/eligibility.py``) runs the same functions two business days ahead.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from frontdesk.commands.help import examples
from frontdesk.exceptions import ExitCode

EXAMPLES = examples(
    ("frontdesk eligibility --inbox",
     "read every response waiting in the clearinghouse inbox (271, 999, 277CA)"),
    ("frontdesk eligibility --date 2026-03-03 --appointments appointments.csv",
     "(needs the billing settings) one 270 request batch for that day's appointments"),
    ("frontdesk eligibility --responses response.271 --json",
     "(needs a 271 from the clearinghouse) coverage onto each patient's record and worklist"))


def register(sub: Any) -> None:
    p = sub.add_parser("eligibility", help="insurance eligibility: X12 270 requests and 271 responses",
                       description="Build one X12 5010 270 batch for the appointments of a day (filed, and put "
                                   "in the clearinghouse outbox), or read a 271 response file: coverage goes on "
                                   "each patient's record and the pre-visit worklist; inactive coverage queues "
                                   "the missing-insurance letter.",
                       **EXAMPLES)
    p.add_argument("--date", default=None, metavar="DATE",
                   help="visit day: YYYY-MM-DD, MM/DD/YYYY, today, tomorrow or next (default: "
                        "claims.eligibility.days_ahead business days from today)")
    p.add_argument("--appointments", type=Path, metavar="FILE",
                   help="the scheduling system's export (default: the newest in checks.appointments_dir)")
    p.add_argument("--skip-bad-rows", action="store_true", help="use the good rows of an export with bad ones")
    p.add_argument("--responses", type=Path, metavar="FILE", help="read a 271 response file instead")
    p.add_argument("--inbox", action="store_true",
                   help="read every response in the clearinghouse inbox (271, 999, 277CA) instead")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: Any) -> int:
    from frontdesk.db import open_database
    from frontdesk.storage import open_storage

    settings = ctx.settings
    db = open_database(settings)
    storage = open_storage(settings)
    try:
        if args.inbox:
            from frontdesk.clearinghouse import read_inbox

            inbox = read_inbox(settings, db, storage)
            if args.json:
                print(json.dumps(inbox.as_json(), indent=2))
            else:
                print("Inbox: " + (", ".join(f"{k} {v}" for k, v in inbox.read.items()) or "nothing to read")
                      + f"; {inbox.letters_queued} letters queued, {inbox.claims_flagged} claims flagged")
                for f in inbox.failed:
                    print(f"  failed: {f}")
            return ExitCode.ok if not inbox.failed else ExitCode.bad_input
        if args.responses is not None:
            from frontdesk.clearinghouse import read_responses

            res = read_responses(settings, args.responses, db, storage)
            if args.json:
                print(json.dumps(res.as_json(), indent=2))
            else:
                s = res.summary()
                print(f"271 read (batch {res.batch_id}): {len(res.results)} answers: "
                      + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in s.items())
                      + f"; {res.unmatched} not matched to a request; {res.letters_queued} missing-insurance "
                        "letters queued")
            return ExitCode.ok
        visit_date = _visit_date(args, settings)
        if visit_date is None:
            return ExitCode.bad_input
        from frontdesk.claims.store import send_eligibility

        out = send_eligibility(settings, visit_date, db, storage, appointments_file=args.appointments,
                               skip_bad_rows=args.skip_bad_rows)
        if args.json:
            print(json.dumps(out.as_json(), indent=2))
        else:
            print(f"Eligibility for {visit_date:%A, %B} {visit_date.day}, {visit_date:%Y}: {out.requests} requests"
                  + (f" in {out.outbox_file}" if out.outbox_file else " (nothing to send)")
                  + f"; {len(out.not_sent)} not sent")
            for n in out.not_sent:
                print(f"  not sent: appointment {n.appointment_key}: {n.reason}")
        return ExitCode.ok
    finally:
        db.dispose()


def _visit_date(args: argparse.Namespace, settings: Any) -> Any:
    from frontdesk.checks.config import checks_for
    from frontdesk.checks.schedule import (
        next_business_day,
        parse_visit_date,
        practice_zone,
        settings_zone,
        today_in,
    )

    holidays = checks_for(settings.checks.rules_file).config.holidays
    today = today_in(practice_zone(settings_zone(settings)))
    if args.date is None:
        d = today
        for _ in range(settings.claims.eligibility.days_ahead):
            d = next_business_day(d, holidays)
        return d
    try:
        return parse_visit_date(args.date, today=today, holidays=holidays)
    except ValueError as exc:
        print(f"frontdesk: --date: {exc}", file=sys.stderr)
        return None
