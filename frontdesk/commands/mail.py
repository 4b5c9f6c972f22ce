"""``frontdesk mail``: every pending letter and statement in one print-ready PDF, exactly once.

    frontdesk mail [--kind letters|statements|all] [--dry-run] [--out DIR] [--json]
    frontdesk mail --void BATCH [--reason TEXT] [--reissue]
    frontdesk mail --mailed BATCH
    frontdesk mail --list

The batch PDF and its manifest are filed under ``mail/YYYY/MM/<batch id>/`` and a print copy is written
to ``mail.output_dir`` (or ``--out``). Pieces that cannot be mailed (incomplete address, template
problem) are held back and listed by id and reason; they stay pending until fixed.

A piece withdrawn from a batch that is printed but not yet mailed (a missing-insurance letter whose
patient's card has come in since) is named with its batch, position and pages by every run, by ``--list``
and by ``--mailed``, so that whoever stuffs the envelopes pulls it; it is not recorded as mailed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from frontdesk.commands.help import examples
from frontdesk.exceptions import ExitCode


def register(sub: Any) -> None:
    p = sub.add_parser("mail", help="batch every pending letter and statement into one print-ready PDF",
                       **examples(
        ("frontdesk mail --dry-run", "what the next batch would hold; nothing is recorded"),
        ("frontdesk mail --kind statements --out print", "one print-ready PDF of every pending statement"),
        ("frontdesk mail --list", "recent batches and whether they were mailed")),
                       description="Collect pending letters and statements into one print-ready PDF for "
                                   "#10 double-window envelopes, with a manifest; void or re-issue a batch.")
    p.add_argument("--kind", choices=("letters", "statements", "all"), default="all", help="what to mail")
    p.add_argument("--dry-run", action="store_true",
                   help="show what would be mailed (and with --out, write a preview); record nothing")
    p.add_argument("--out", type=Path, metavar="DIR", help="folder for the print copy (default: mail.output_dir)")
    p.add_argument("--json", action="store_true")
    action = p.add_mutually_exclusive_group()
    action.add_argument("--void", metavar="BATCH", help="void a batch not yet mailed; its pieces go back to pending")
    action.add_argument("--mailed", metavar="BATCH", help="record that a batch was posted")
    action.add_argument("--list", action="store_true", help="list recent batches")
    p.add_argument("--reissue", action="store_true", help="with --void: mail the same pieces again in a new batch")
    p.add_argument("--reason", metavar="TEXT", help="with --void: why (kept with the batch)")
    p.set_defaults(handler=run)


def _print_summary(summary: Any) -> None:
    data = summary.as_dict()
    if summary.recovered:
        print(f"finished {len(summary.recovered)} batch(es) an interrupted run left: {', '.join(summary.recovered)}")
    if summary.items:
        head = "dry run: would mail" if summary.dry_run else f"batch {summary.batch_id}:"
        print(f"{head} {summary.items} piece(s), {summary.pages} pages on {summary.sheets} sheets "
              f"({summary.address_sheets} address sheet(s), {summary.blank_pages} blank back(s))")
        for kind, count in data["by_kind"].items():
            print(f"  {kind:<22} {count}")
        if summary.reissue_of:
            print(f"  re-issues {summary.reissue_of}")
        if summary.flat_envelopes:
            print(f"  {summary.flat_envelopes} piece(s) have more than 6 sheets: use a 9x12 flat envelope "
                  "(see the manifest)")
        for path in summary.print_files:
            print(f"  print: {path}")
    else:
        print("nothing to mail")
    if summary.held:
        print(f"held back ({len(summary.held)}), not mailed:")
        for held in summary.held:
            print(f"  {held.piece_id}  {held.kind:<22} {held.code}: {held.reason}")
    _print_withdrawn(summary.withdrawn)


def _print_withdrawn(withdrawn: Any, *, mailed: bool = False) -> None:
    """Which printed pages to take out of which stack: ids, positions and pages only (the manifest names
    the person)."""
    if not withdrawn:
        return
    if mailed:
        print(f"{len(withdrawn)} piece(s) were withdrawn after the batch was printed and are NOT recorded as "
              "mailed; if one is still in the stack, pull it and shred it:")
    else:
        print(f"PULL BEFORE MAILING ({len(withdrawn)}): withdrawn after the batch was printed, "
              "take these out of the printed stack:")
    for w in withdrawn:
        print(f"  batch {w.batch_id}  piece {w.position}  {w.item_id}  {w.kind:<22} "
              f"pages {w.first_page}-{w.last_page} of the batch PDF")


def run(args: argparse.Namespace, ctx: Any) -> int:
    from frontdesk.db import open_database
    from frontdesk.letters.mail import (
        list_batches,
        mark_mailed,
        reissue_batch,
        run_mail,
        void_batch,
        withdrawn_pieces,
    )
    from frontdesk.storage import open_storage

    settings = ctx.settings
    if (args.reissue or args.reason) and not args.void:
        print("frontdesk: --reissue and --reason go with --void BATCH", file=sys.stderr)
        return ExitCode.bad_input
    db = open_database(settings)
    if args.list:
        batches = list_batches(db)
        if args.json:
            print(json.dumps([b.__dict__ for b in batches], indent=2))
        for b in batches if not args.json else []:
            pull = ""
            if b.withdrawn:
                pull = (f"  {len(b.withdrawn)} withdrawn (pulled)" if b.status == "mailed" else
                        f"  PULL {len(b.withdrawn)}: " + ", ".join(f"piece {w['position']} ({w['item_id']})"
                                                                     for w in b.withdrawn))
            print(f"{b.batch_id}  {b.created_at}  {b.status:<9} {b.kind:<10} {b.items:>4} pieces "
                  f"{b.pages:>5} pages {b.held:>3} held{'  re-issues ' + b.reissue_of if b.reissue_of else ''}{pull}")
        return ExitCode.ok
    if args.mailed:
        count = mark_mailed(db, args.mailed)
        print(f"batch {args.mailed}: {count} piece(s) recorded as mailed")
        _print_withdrawn(withdrawn_pieces(db, args.mailed), mailed=True)
        return ExitCode.ok
    storage = open_storage(settings)
    if args.void:
        if args.reissue:
            summary = reissue_batch(db, storage, settings, args.void, reason=args.reason, out_dir=args.out)
            print(f"batch {args.void} voided", file=sys.stderr if args.json else sys.stdout)
        else:
            pieces = void_batch(db, settings, args.void, reason=args.reason)
            print(f"batch {args.void} voided; {len(pieces)} piece(s) are pending again "
                  "(run frontdesk mail to issue them in a new batch)")
            return ExitCode.ok
    else:
        from frontdesk.progress import shown

        with shown(json_output=args.json):
            summary = run_mail(db, storage, settings, kind=args.kind, dry_run=args.dry_run, out_dir=args.out)
    if args.json:
        print(json.dumps(summary.as_dict(), indent=2))
    else:
        _print_summary(summary)
    return ExitCode.ok
