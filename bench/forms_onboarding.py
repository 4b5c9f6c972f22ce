"""How well does ``frontdesk forms add`` key a practice's own forms, and are they then read?

For each kind of form (fillable with ``Text1..N`` names, with human names, with tooltips only, a flattened
blank PDF, a 300 dpi scan of the blank form), on layouts that are not Frontdesk's own
(tests/fixtures/byof.py), it onboards the form with ``--accept`` and counts, against the known truth:

* keyed right: a box written into the template with the right key;
* wrong: a box written with a wrong key (silent: nobody was asked) -- must be 0;
* unkeyed: a box left out and listed for a person (uncertain, conflict or unknown); "listed wrong" counts
  the listed ones whose suggestion was wrong;
* missed: an answer area not found at all (printed forms only); extra: a found area that is no box.

Then it fills copies of the original form (digitally for fillable ones, scanned for printed ones),
reads them through the written template and prints the field accuracy, beside the same copies read
through a hand-made template with canonical names (the plain way: rebuilding the form by hand).

Run: ``python bench/forms_onboarding.py [--n 3] [--seed 5] [--kinds textn,human,tooltip,blank,scan,f2-textn,f2-blank,f2-scan]``.
The ``f2-*`` kinds are the second test form (tests/fixtures/forms2.py: two pages, labels above boxes, headings
in white type on dark bands) with its field names taken away.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from faker import Faker  # noqa: E402

from bench.accuracy import Tally, score  # noqa: E402
from frontdesk import onboarding  # noqa: E402
from frontdesk.extraction import Reader  # noqa: E402
from tests.fixtures import byof, forms2, scans  # noqa: E402
from tests.fixtures import generator as gen  # noqa: E402

KINDS = ("textn", "human", "tooltip", "blank", "scan", "f2-textn", "f2-blank", "f2-scan")
LAYOUT_OF = {"textn": "westlake", "human": "westlake", "tooltip": "westlake", "blank": "westlake", "scan": "lakeside",
             "f2-textn": "forms2", "f2-blank": "forms2", "f2-scan": "forms2"}
PRINTED = ("blank", "scan", "f2-blank", "f2-scan")  # forms with no fields: filled copies come in as scans


@dataclass
class Keying:
    kind: str
    boxes: int = 0  # answer areas of the form (truth)
    right: int = 0
    wrong: int = 0  # written with a wrong key: silent
    unkeyed: int = 0  # left out and listed for a person
    listed_wrong: int = 0  # left out, and its suggestion was wrong (a person would correct it)
    missed: int = 0  # not found at all (printed forms)
    extra: int = 0  # found where the form has no answer area
    extra_written: int = 0  # ... and written with a key
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    listed: dict[str, str] = field(default_factory=dict)  # box id -> its true key, for boxes left to a person

    @property
    def right_share(self) -> float:
        return self.right / self.boxes if self.boxes else 0.0


def _center_in(rect: tuple[float, float, float, float], other: tuple[float, float, float, float]) -> bool:
    cx, cy = (rect[0] + rect[2]) / 2, (rect[1] + rect[3]) / 2
    return other[0] - 2 <= cx <= other[2] + 2 and other[1] - 6 <= cy <= other[3] + 6


def judge(proposal: onboarding.Proposal, truth: dict[str, tuple[int, tuple[float, float, float, float]]],
          kind: str) -> Keying:
    """Compare every row of a proposal with the truth (key -> page and rectangle of its box)."""
    k = Keying(kind, boxes=len(truth))
    used: set[int] = set()
    for key, (page, rect) in truth.items():
        rows = [r for r in proposal.rows if r.box.page == page and id(r) not in used
                and (_center_in(r.box.rect, rect) or _center_in(rect, r.box.rect))]
        if not rows:
            k.missed += 1
            k.problems.append(f"{kind}: {key}: no box found")
            continue
        row = rows[0]
        used.add(id(row))
        if row.written:
            if row.key == key:
                k.right += 1
            else:
                k.wrong += 1
                k.problems.append(f"{kind}: {key}: WRITTEN AS {row.key} ({row.reason})")
        else:
            k.unkeyed += 1
            k.listed_wrong += row.key != key
            k.listed[row.box.ident] = key
            k.problems.append(f"{kind}: {key}: listed {row.status.value} (suggested {row.key}; {row.reason})")
    for r in proposal.rows:
        if id(r) not in used:
            k.extra += 1
            k.extra_written += r.written
            k.problems.append(f"{kind}: extra box {r.box.ident} p{r.box.page + 1} {r.status.value} {r.key}")
    return k


def original_form(kind: str, work: Path, seed: int = 0) -> tuple[Path, Path, dict[str, str]]:
    """The practice's original form of ``kind``, the canonical (truth) version of its layout, and the
    original's field name for each key (empty for printed forms). ``f2-*`` kinds are the second test form
    (tests/fixtures/forms2.py, two pages, labels above boxes) with its names taken away."""
    layout = LAYOUT_OF[kind]
    if layout == "forms2":
        canonical = forms2.build(work / "forms2-truth")
        mode = kind.split("-", 1)[1]
        names = byof.anonymise(canonical, "blank" if mode == "scan" else mode, work / f"forms2-{mode}.pdf")
        if mode == "scan":
            return byof.scan_blank(work / "forms2-scan.pdf", work / "forms2-scanned.pdf", seed), canonical, {}
        return work / f"forms2-{mode}.pdf", canonical, {k: v for k, v in names.items()}
    canonical = byof.build(layout, "canonical", work / f"{layout}-truth" / f"{layout}.pdf")
    if kind == "scan":
        blank = byof.build(layout, "blank", work / f"{layout}-blank.pdf")
        return byof.scan_blank(blank, work / f"{layout}-scan.pdf", seed), canonical, {}
    return byof.build(layout, kind, work / f"{layout}-{kind}.pdf"), canonical, byof.names_of(layout, kind)


@dataclass
class Onboarded:
    keying: Keying
    proposal: onboarding.Proposal
    forms: Path  # the folder the template was written to
    canonical: Path
    names: dict[str, str]  # key -> the original's field name (fillable forms)


def onboard(kind: str, work: Path, reader: Reader, seed: int = 0, *, review: bool = False) -> Onboarded:
    """``forms add --accept`` on the original form of ``kind``, judged against the truth; with ``review``
    the boxes it listed for a person are then settled with their true keys (``--map``)."""
    original, canonical, names = original_form(kind, work, seed)
    vocab = reader.vocabulary
    fields_file = reader.settings.fields_file
    t0 = time.perf_counter()
    proposal = onboarding.propose(original, vocab, fields_file, f"byof_{kind}",
                                  onboarding.required_keys(vocab, fields_file))
    forms = work / f"forms-{kind}"
    forms.mkdir(parents=True, exist_ok=True)
    keying = judge(proposal, byof.truth_boxes(canonical), kind)
    if review and keying.listed:
        # The two-minute review: the person gives each listed box its key (--map), as the table asks.
        onboarding.apply_choices(proposal, keying.listed, vocab)
    onboarding.write_template(proposal, forms / f"byof_{kind}.pdf")
    keying.seconds = time.perf_counter() - t0
    return Onboarded(keying, proposal, forms, canonical, names)


def read_filled(kind: str, n: int, seed: int, work: Path, reader: Reader, ob: Onboarded, tally: Tally, *,
                as_canonical: bool = False) -> list[str]:
    """Fill ``n`` copies of the original form, read each through the reader's templates; returns the
    form ids they were recognised as. ``as_canonical``: fill the hand-made canonical form instead."""
    canonical = ob.canonical
    keys = {b.key for b in scans.template_boxes(canonical)[0]}
    rnd = random.Random(seed)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    types = {k: s.type for k, s in reader.vocabulary.fields.items()}
    ids: list[str] = []
    for i in range(n):
        scenario = gen.SCENARIOS[i % len(gen.SCENARIOS)]
        printed, truth = byof.record_for(keys, rnd, fake, scenario)
        if kind in PRINTED:
            pages = scans.print_form(canonical, printed, rnd)
            path = scans.save_scan([scans.scan_page(p, "scan300", rnd) for p in pages], "scan300",
                                   work / f"filled-{kind}-{i}", rnd)
        else:
            src, names = (canonical, {k: k for k in keys}) if as_canonical else (ob.proposal.source, ob.names)
            path = byof.fill_named(src, names, printed, work / f"filled-{kind}-{i}.pdf")
        case = gen.Case(f"{kind}-{i}", scenario, kind, path, truth, scans._expected_flags(truth), printed)
        t0 = time.perf_counter()
        result = reader.extract(path)
        tally.seconds += time.perf_counter() - t0
        tally.pages += 1
        ids.append(str(result.form))
        score(case, result, types, tally)
    return ids


def main(argv: list[str] | None = None) -> int:
    from frontdesk.settings import load_settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=3, help="filled copies read per kind")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--show", action="store_true", help="list every box that was not keyed right")
    args = parser.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    settings = load_settings()
    rows = []
    with tempfile.TemporaryDirectory(prefix="frontdesk-byof-") as tmp:
        work = Path(tmp)
        for kind in kinds:
            ob = onboard(kind, work / kind, Reader(settings), args.seed, review=True)
            keying = ob.keying
            ours = Tally(kind)
            ids = read_filled(kind, args.n, args.seed, work / kind, Reader(settings, [ob.forms]), ob, ours)
            # The plain way, side by side: the same copies through a hand-made canonical template.
            hand = work / kind / "hand"
            hand.mkdir()
            shutil.copy(ob.canonical, hand / f"byof_{kind}.pdf")
            plain = Tally(kind)
            read_filled(kind, args.n, args.seed, work / kind / "plain", Reader(settings, [hand]), ob, plain,
                        as_canonical=True)
            rows.append((keying, ours, plain, ids))
            if args.show:
                for p in keying.problems:
                    print("  " + p)
                for e in ours.errors:
                    print("  read: " + e)
    head = (f"{'kind':9} {'boxes':>5} {'right':>6} {'wrong':>5} {'unkeyed':>7} {'missed':>6} {'extra':>5} "
            f"{'keyed %':>7} {'add s':>6} {'read acc':>9} {'silent':>6} {'hand acc':>9} {'ratio':>6} {'recognised':>10}")
    print(head)
    print("-" * len(head))
    for k, ours, plain, ids in rows:
        ok = sum(1 for i in ids if i == f"byof_{k.kind}")
        ratio = ours.field_accuracy / plain.field_accuracy if plain.field_accuracy else 0.0
        print(f"{k.kind:9} {k.boxes:>5} {k.right:>6} {k.wrong:>5} {k.unkeyed:>7} {k.missed:>6} {k.extra:>5} "
              f"{100 * k.right_share:>6.1f}% {k.seconds:>6.1f} {ours.field_accuracy:>9.3f} {ours.silent:>6} "
              f"{plain.field_accuracy:>9.3f} "
              f"{ratio:>6.3f} {ok:>4}/{len(ids):<5}")
    print("\nread acc: field accuracy of filled copies read through the written template (marks: "
          + ", ".join(f"{o.mark_accuracy:.3f}" for _k, o, _p, _i in rows)
          + "); hand acc: the same copies through a template rebuilt by hand with canonical names.\n"
          "right/wrong/unkeyed: boxes keyed by --accept alone; before reading, the unkeyed (listed) boxes are settled "
          "with --map as a person would; missed boxes stay missing (their keys count as wrong reads).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
