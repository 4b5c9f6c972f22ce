"""``frontdesk forms add FILE.pdf`` and ``frontdesk forms check ID``: bring the practice's own form.

``add`` proposes a vocabulary key for every box of a fillable PDF (any field names), a flattened PDF or a
scan of a blank form, prints the proposal, and writes a template to the first forms folder when the
proposal is accepted (``--accept``: confident rows only; ``--map ID=KEY`` settles the others; at a
terminal, each uncertain row is asked). ``check`` prints a template's keys into its boxes for a person to
look over, and lists the keys the practice's rules need that the form has no box for. No Prefect.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from frontdesk.commands.help import examples
from frontdesk.exceptions import ConfigError, ExitCode


def register(sub: Any) -> None:
    p = sub.add_parser("forms", help="turn the practice's own forms into templates (add, check)", **examples(
        ("frontdesk forms add scans/intake-0001.pdf --id our_intake",
         "propose a key for every box of the practice's form (nothing is written)"),
        ("frontdesk forms check new_patient_intake --out intake-check.pdf",
         "each key printed in its box, and keys the rules need that the form lacks")),
                       description="Bring your own form: propose a key for every box, write the template, check it.")
    fsub = p.add_subparsers(dest="forms_command", metavar="ACTION")
    fsub.required = True
    a = fsub.add_parser("add", help="propose keys for a form's boxes and write it as a template")
    a.add_argument("file", type=Path, metavar="FILE", help="the form: a fillable PDF, a flattened PDF or a scan")
    a.add_argument("--id", dest="form_id", metavar="ID", help="template id (default: from the file name)")
    a.add_argument("--accept", action="store_true", help="write the template with every confident proposal")
    a.add_argument("--map", action="append", default=[], metavar="ID=KEY",
                   help="give box ID (field name or areaN) the key KEY, or '-' to leave it out (repeatable)")
    a.add_argument("--replace", action="store_true", help="overwrite a template with the same id")
    a.add_argument("--json", action="store_true", help="print the proposal as JSON")
    a.set_defaults(handler=run_add)
    c = fsub.add_parser("check", help="print each key in its box and list keys the rules need but the form lacks")
    c.add_argument("form_id", metavar="ID")
    c.add_argument("--out", type=Path, metavar="FILE", help="the check sheet PDF (default: ./ID-check.pdf)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(handler=run_check)


def _parse_maps(items: list[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for item in items:
        ident, sep, key = item.rpartition("=")
        if not sep or not ident:
            raise ConfigError(f"--map {item!r}: expected ID=KEY")
        out[ident] = None if key.strip() in ("-", "") else key.strip()
    return out


def print_table(proposal: Any, out: Any = sys.stdout) -> None:
    """The proposal as staff read it: one row per box."""
    rows = [("page", "label", "field", "proposed key", "conf", "status", "reason")]
    for r in proposal.rows:
        rows.append((str(r.box.page + 1), (r.label or "-")[:28], (r.box.name or r.box.ident)[:18], r.key or "-",
                     f"{r.confidence:.2f}", r.status.value, r.reason[:70]))
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:6])) + "  " + row[6], file=out)


def _ask(proposal: Any, vocab: Any) -> dict[str, str | None]:
    """At a terminal: confirm each row that is not confident."""
    choices: dict[str, str | None] = {}
    for r in proposal.rows:
        if r.status.value in ("proposed", "confirmed"):
            continue
        hint = f" [{r.key}]" if r.key else ""
        answer = input(f"page {r.box.page + 1} {r.box.name or r.box.ident} ({r.label or 'no label'}): "
                       f"key{hint}, '-' to leave out: ").strip()
        if answer == "" and r.key:
            choices[r.box.ident] = r.key
        elif answer in ("", "-"):
            choices[r.box.ident] = None
        elif answer in vocab.fields:
            choices[r.box.ident] = answer
        else:
            print(f"  {answer!r} is not a vocabulary key; left out", file=sys.stderr)
            choices[r.box.ident] = None
    return choices


def run_add(args: argparse.Namespace, ctx: Any) -> int:
    from frontdesk import onboarding
    from frontdesk.fields import load_vocabulary

    settings = ctx.settings
    vocab = load_vocabulary(settings.fields_file)
    if not settings.forms_dirs:
        raise ConfigError("no forms folder is configured (forms_dirs)")
    required = onboarding.required_keys(vocab, settings.fields_file)
    proposal = onboarding.propose(args.file, vocab, settings.fields_file, args.form_id, required)
    maps = _parse_maps(args.map)
    if maps:
        onboarding.apply_choices(proposal, maps, vocab)
    interactive = not args.accept and not args.json and sys.stdin.isatty()
    write = args.accept or bool(maps)
    if interactive:
        print_table(proposal)
        onboarding.apply_choices(proposal, _ask(proposal, vocab), vocab)
        write = input("write the template? [y/N] ").strip().lower() in ("y", "yes")
    written: Path | None = None
    if write:
        written = onboarding.save_template(proposal, Path(settings.forms_dirs[0]), replace=args.replace)
    if args.json:
        data = proposal.as_dict()
        data["template"] = str(written) if written else None
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return ExitCode.ok
    if not interactive:
        print_table(proposal)
    left = proposal.by_status(onboarding.RowStatus.uncertain, onboarding.RowStatus.conflict,
                              onboarding.RowStatus.unknown)
    print(f"\n{len(proposal.rows)} box(es): "
          + ", ".join(f"{n} {s.value}" for s in onboarding.RowStatus if (n := len(proposal.by_status(s)))))
    if left:
        print("Not in the template unless you settle them (--map ID=KEY, or '-' to leave out):")
        for r in left:
            print(f"  {r.box.ident} (page {r.box.page + 1}, {r.label or 'no label'}): {r.status.value}"
                  + (f", suggested {r.key}" if r.key else ""))
    if proposal.required_missing:
        print("The form has no box for these keys the practice's rules need: " + ", ".join(proposal.required_missing))
    if written:
        print(f"wrote {written} (template id {proposal.form_id}); check it with: frontdesk forms check {proposal.form_id}")
    elif not interactive:
        print("nothing written: review the table, then run again with --accept (and --map for the rows above)")
    return ExitCode.ok


def run_check(args: argparse.Namespace, ctx: Any) -> int:
    from frontdesk import onboarding
    from frontdesk.fields import load_vocabulary

    settings = ctx.settings
    path = next((Path(d) / f"{args.form_id}.pdf" for d in settings.forms_dirs
                 if (Path(d) / f"{args.form_id}.pdf").is_file()), None)
    if path is None:
        raise ConfigError(f"no form template named {args.form_id} in {', '.join(map(str, settings.forms_dirs))}")
    vocab = load_vocabulary(settings.fields_file)
    sheet = args.out or Path.cwd() / f"{args.form_id}-check.pdf"
    report = onboarding.check_template(path, vocab, settings.fields_file, sheet)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
        return ExitCode.ok
    print(f"{report.form_id}: {len(report.keys)} box(es) with keys; each key printed in its box: {report.sheet}")
    if report.missing_required:
        print("The form has no box for these keys the practice's rules need:")
        for k in report.missing_required:
            print(f"  {k:<45} {vocab.label(k)}")
    else:
        print("Every key the practice's rules need has a box.")
    return ExitCode.ok
