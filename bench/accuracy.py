"""How well are scanned forms read? Generates N scanned cases per tier, reads them, prints a table per tier.

Measures, per tier (``scan300``, ``noisy``, ``fax``):

* field accuracy on filled fields: text-like fields the patient filled in, value equal to the truth;
* blank accuracy: text-like fields left blank, read as blank;
* missing-field flags: precision and recall of ``missing`` errors against the expected ones;
* checkbox and signature accuracy;
* the insurance-missing flag (``insurance.missing_info``): precision and recall per document;
* silent errors: wrong filled values whose field carries no warning or error flag, per 1000 filled fields
  (what nobody would be asked to look at);
* review share: filled fields that carry a flag (a person looks at them);
* seconds per page (wall clock, reading only).

Then the other shipped forms (``--kinds other``: HIPAA acknowledgment, release of information, financial
policy; digital and scanned at 300 dpi by default), in the same table. Then the medical history rows of
``bench/accuracy_history.py`` (repeating rows of generated medical history
forms, scanned at 300 dpi by default: rows exactly right / rows, blank rows skipped, incomplete rows flagged),
and the card and letter tables of ``bench/accuracy_cards.py`` (generated insurance cards and letters,
read as the dispatcher reads what no form template matches).

Tiers ``digital`` and ``flattened`` are filled PDFs (AcroForm values; values printed as page text, ticked
boxes marked as viewers print them: X, ZapfDingbats' square and check, a check mark glyph); ``--layout``
fills another practice's form instead of the shipped one.

Run: ``python bench/accuracy.py --n 40 [--tiers scan300,noisy,fax] [--seed 11] [--show-errors]
[--kinds forms,history,other,cards,letters] [--history 12] [--other 10] [--other-tiers digital,scan300] [--history-tiers scan300] [--cards 60] [--letters 40]
[--card-seed 5]``.
The same functions back the accuracy floors in ``tests/test_scan_accuracy.py``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from frontdesk.extraction import Reader  # noqa: E402
from frontdesk.models import ExtractionResult  # noqa: E402
from tests.fixtures import generator as gen  # noqa: E402
from tests.fixtures import scans  # noqa: E402

MARK_TYPES = ("checkbox", "signature")
KINDS = ("forms", "history", "other", "cards", "letters")
#: The shipped one-page forms besides registration and medical history (kind ``other``).
OTHER_FORMS = ("hipaa_acknowledgment", "release_of_information", "financial_policy")


@dataclass
class Tally:
    tier: str
    filled: int = 0
    filled_ok: int = 0
    blank: int = 0
    blank_ok: int = 0
    marks: int = 0
    marks_ok: int = 0
    miss_tp: int = 0
    miss_fp: int = 0
    miss_fn: int = 0
    ins_tp: int = 0
    ins_fp: int = 0
    ins_fn: int = 0
    silent: int = 0
    reviewed: int = 0
    pages: int = 0
    seconds: float = 0.0
    docs: int = 0
    unrecognised: int = 0
    wrong_form: int = 0  # read as another form template than the one filled in
    errors: list[str] = field(default_factory=list)

    @staticmethod
    def _ratio(a: int, b: int) -> float:
        return a / b if b else 1.0

    @property
    def field_accuracy(self) -> float:
        return self._ratio(self.filled_ok, self.filled)

    @property
    def blank_accuracy(self) -> float:
        return self._ratio(self.blank_ok, self.blank)

    @property
    def mark_accuracy(self) -> float:
        return self._ratio(self.marks_ok, self.marks)

    @property
    def missing_precision(self) -> float:
        return self._ratio(self.miss_tp, self.miss_tp + self.miss_fp)

    @property
    def missing_recall(self) -> float:
        return self._ratio(self.miss_tp, self.miss_tp + self.miss_fn)

    @property
    def insurance_precision(self) -> float:
        return self._ratio(self.ins_tp, self.ins_tp + self.ins_fp)

    @property
    def insurance_recall(self) -> float:
        return self._ratio(self.ins_tp, self.ins_tp + self.ins_fn)

    @property
    def silent_per_1000(self) -> float:
        return 1000 * self.silent / self.filled if self.filled else 0.0

    @property
    def review_share(self) -> float:
        return self._ratio(self.reviewed, self.filled) if self.filled else 0.0

    @property
    def seconds_per_page(self) -> float:
        return self.seconds / self.pages if self.pages else 0.0


def score(case: gen.Case, result: ExtractionResult, types: dict[str, str], tally: Tally) -> None:
    """Add one read case to the tally."""
    tally.docs += 1
    if result.document_type == "unknown":
        tally.unrecognised += 1
    flagged = {f.field for f in result.flags if f.field and f.severity in ("warning", "error")}
    for key, want in case.truth.items():
        got = result.value(key)
        ftype = types.get(key, "text")
        if ftype in MARK_TYPES:
            tally.marks += 1
            tally.marks_ok += got == want
            if got != want:
                tally.errors.append(f"{case.case_id} {key}: got {got!r} want {want!r}")
            continue
        if want is None:
            tally.blank += 1
            tally.blank_ok += got is None
            if got is not None:
                tally.errors.append(f"{case.case_id} {key}: got {got!r} want blank")
            continue
        tally.filled += 1
        ok = got == want
        tally.filled_ok += ok
        tally.reviewed += key in flagged
        if not ok:
            tally.silent += key not in flagged
            mark = "" if key in flagged else " SILENT"
            conf = result.fields[key].confidence if key in result.fields else None
            tally.errors.append(f"{case.case_id} {key}: got {got!r} want {want!r} conf {conf}{mark}")
    want_missing = {k for c, k in case.expected_flags if c == "missing"}
    got_missing = {f.field for f in result.flags if f.code == "missing"}
    tally.miss_tp += len(want_missing & got_missing)
    tally.miss_fp += len(got_missing - want_missing)
    tally.miss_fn += len(want_missing - got_missing)
    want_ins = any(c == "insurance.missing_info" for c, _ in case.expected_flags)
    got_ins = any(f.code == "insurance.missing_info" for f in result.flags)
    tally.ins_tp += want_ins and got_ins
    tally.ins_fp += got_ins and not want_ins
    tally.ins_fn += want_ins and not got_ins


PDF_TIERS = ("digital", "flattened")  # filled PDFs: AcroForm values / values printed as text, ticks as viewers print them


def run_tier(reader: Reader, tier: str, n: int, seed: int, out: Path, *,
             template: Path = gen.DEFAULT_TEMPLATE, rotations: Sequence[int] = (0,)) -> Tally:
    if tier in PDF_TIERS:
        cases = gen.generate(out / tier, n, seed=seed, kinds=(tier,), template=template, marks=gen.MARKS,
                             today=date(2026, 11, 15))
    else:
        cases = scans.generate_scans(out / tier, n, seed=seed, tiers=(tier,), template=template,
                                     rotations=rotations)
    types = {k: s.type for k, s in reader.vocabulary.fields.items()}
    tally = Tally(tier)
    for case in cases:
        t0 = time.perf_counter()
        result = reader.extract(case.path)
        tally.seconds += time.perf_counter() - t0
        tally.pages += max(1, result.pages)
        score(case, result, types, tally)
        if result.document_type != "unknown" and result.form != template.stem:
            tally.wrong_form += 1
            tally.errors.append(f"{case.case_id}: read as form {result.form!r}, want {template.stem!r}")
    return tally


def table(tallies: Iterable[Tally]) -> str:
    rows = [
        ("documents", lambda t: f"{t.docs}"),
        ("field accuracy (filled)", lambda t: f"{t.field_accuracy:.3f}  ({t.filled_ok}/{t.filled})"),
        ("blank accuracy", lambda t: f"{t.blank_accuracy:.3f}  ({t.blank_ok}/{t.blank})"),
        ("missing flags precision", lambda t: f"{t.missing_precision:.3f}"),
        ("missing flags recall", lambda t: f"{t.missing_recall:.3f}"),
        ("checkbox+signature acc.", lambda t: f"{t.mark_accuracy:.3f}  ({t.marks_ok}/{t.marks})"),
        ("insurance flag precision", lambda t: f"{t.insurance_precision:.3f}"),
        ("insurance flag recall", lambda t: f"{t.insurance_recall:.3f}"),
        ("silent errors / 1000", lambda t: f"{t.silent_per_1000:.1f}  ({t.silent})"),
        ("filled fields to review", lambda t: f"{t.review_share:.3f}  ({t.reviewed})"),
        ("unrecognised documents", lambda t: f"{t.unrecognised}"),
        ("read as another form", lambda t: f"{t.wrong_form}"),
        ("seconds per page", lambda t: f"{t.seconds_per_page:.2f}"),
    ]
    tallies = list(tallies)
    head = f"{'':26}" + "".join(f"{t.tier:>22}" for t in tallies)
    lines = [head, "-" * len(head)]
    for name, fmt in rows:
        lines.append(f"{name:26}" + "".join(f"{fmt(t):>22}" for t in tallies))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from frontdesk.settings import load_settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="cases per tier")
    parser.add_argument("--tiers", default=",".join(scans.TIERS),
                        help=f"comma-separated, of {', '.join(scans.TIERS + PDF_TIERS)}")
    parser.add_argument("--layout", default="shipped", choices=("shipped", "westlake", "lakeside"),
                        help="the form filled in: the shipped template, or another practice's layout "
                             "(tests/fixtures/byof.py) handed to the reader as an extra forms folder")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--rotations", default="0", help="comma-separated, e.g. 0,90,180,270")
    parser.add_argument("--show-errors", action="store_true", help="list every wrong field (synthetic data)")
    parser.add_argument("--kinds", default=",".join(KINDS),
                        help="comma-separated: forms (scanned forms per tier), history (medical history "
                             "rows), cards, letters")
    parser.add_argument("--history", type=int, default=12, help="medical history forms per history tier")
    parser.add_argument("--history-tiers", default="scan300",
                        help="comma-separated, of digital, flattened, scan300, noisy, fax")
    parser.add_argument("--other", type=int, default=10, help="forms of each of the other shipped forms per tier")
    parser.add_argument("--other-tiers", default="digital,scan300",
                        help="comma-separated tiers for the other forms (HIPAA acknowledgment, release of "
                             "information, financial policy)")
    parser.add_argument("--cards", type=int, default=60, help="generated insurance cards")
    parser.add_argument("--letters", type=int, default=40, help="generated letters (typed and scanned)")
    parser.add_argument("--card-seed", type=int, default=5, help="seed of the cards and letters")
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        parser.error(f"--kinds: unknown {', '.join(unknown)}; choose from {', '.join(KINDS)}")
    if "forms" in kinds:
        rotations = [int(r) for r in args.rotations.split(",")]
        tallies = []
        with tempfile.TemporaryDirectory(prefix="frontdesk-accuracy-") as tmp:
            template, extra = gen.DEFAULT_TEMPLATE, []
            if args.layout != "shipped":
                from tests.fixtures import byof

                extra = [Path(tmp) / "forms"]
                template = byof.build(args.layout, "canonical", extra[0] / f"{args.layout}.pdf")
            reader = Reader(load_settings(), extra)
            for tier in [t.strip() for t in args.tiers.split(",") if t.strip()]:
                tally = run_tier(reader, tier, args.n, args.seed, Path(tmp), rotations=rotations, template=template)
                tallies.append(tally)
                if args.show_errors:
                    print(f"--- {tier}: {len(tally.errors)} wrong fields")
                    for e in tally.errors:
                        print("  " + e)
        print(table(tallies))
    if "history" in kinds and args.history:
        from bench import accuracy_history as ah

        with tempfile.TemporaryDirectory(prefix="frontdesk-history-") as tmp:
            history_tiers = [t.strip() for t in args.history_tiers.split(",") if t.strip()]
            rows = ah.bench_history(Reader(load_settings()), history_tiers, args.history, args.seed, Path(tmp))
        print()
        print(ah.history_table(rows))
        if args.show_errors:
            for t in rows:
                for e in t.errors:
                    print(f"  {t.tier} {e}")
    if "other" in kinds and args.other:
        other = []
        reader = Reader(load_settings())
        with tempfile.TemporaryDirectory(prefix="frontdesk-other-") as tmp:
            for form_id in OTHER_FORMS:
                template = gen.DEFAULT_TEMPLATE.with_name(f"{form_id}.pdf")
                for tier in [t.strip() for t in args.other_tiers.split(",") if t.strip()]:
                    tally = run_tier(reader, tier, args.other, args.seed, Path(tmp) / form_id, template=template)
                    tally.tier = f"{form_id.split('_')[0]} {tier}"
                    other.append(tally)
                    if args.show_errors:
                        for e in tally.errors:
                            print(f"  {tally.tier} {e}")
        print()
        print(table(other))
    if "cards" in kinds or "letters" in kinds:
        from bench import accuracy_cards as ac

        if "cards" in kinds and args.cards:
            print()
            cards = ac.bench_cards(args.cards, args.card_seed, args.show_errors)
            ac.print_card_table(cards)
            for e in cards.errors:
                print("  " + e)
        if "letters" in kinds and args.letters:
            print()
            letters, matching = ac.bench_letters(args.letters, args.card_seed, args.show_errors)
            ac.print_letter_table(letters, matching)
            for e in letters.errors:
                print("  " + e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
