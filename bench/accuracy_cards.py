"""How well are insurance cards and letters read? Generates N cards and M letters, reads them as the
dispatcher would when no form template matches, and prints two tables.

Cards (``tests/fixtures/cards.py``: phone photos, flatbed copies, card-scanner crops):

* per field, exact accuracy of the normalised value over all cards (a field the card does not print
  must be read as blank), and how many wrong values carry no flag (silent errors);
* document type: share of cards classified ``insurance_card``;
* member-ID format warnings: precision and recall against the cards printed with a wrong-shaped ID;
* seconds per card (wall clock, classification and reading), median and worst, with
  ``OMP_THREAD_LIMIT=1`` (one core per tesseract).

Letters (``tests/fixtures/letters.py``: typed PDFs and scans):

* document type ``correspondence``, letter type, patient name, date of birth, sender, dates of service,
  reference numbers: exact accuracy;
* patient matching against a list of candidate patients (with look-alikes: same name other birthday,
  twins): matched correctly, matched wrongly (must be 0), left for a person.

Run: ``python bench/accuracy_cards.py --cards 100 --letters 60 [--seed 5] [--show-errors]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("OMP_THREAD_LIMIT", "1")
REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from extractors import classify  # noqa: E402
from extractors.cards import CARD_KEYS  # noqa: E402
from extractors.correspondence import LETTER_KEYS  # noqa: E402
from frontdesk.cards import Candidate, link_letter  # noqa: E402
from frontdesk.extraction import to_result  # noqa: E402
from frontdesk.fields import load_vocabulary  # noqa: E402
from tests.fixtures import cards as card_gen  # noqa: E402
from tests.fixtures import letters as letter_gen  # noqa: E402

VOCAB = load_vocabulary(REPO / "config" / "fields.yaml")


@dataclass
class Table:
    n: int = 0
    ok: Counter[str] = field(default_factory=Counter)
    seen: Counter[str] = field(default_factory=Counter)
    silent: Counter[str] = field(default_factory=Counter)
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # CPU seconds (this process and its tesseracts)
    errors: list[str] = field(default_factory=list)
    by_capture: dict[str, Counter[str]] = field(default_factory=dict)

    def add(self, key: str, good: bool, flagged: bool = False, group: str | None = None) -> None:
        self.seen[key] += 1
        self.ok[key] += int(good)
        if not good and not flagged:
            self.silent[key] += 1
        if group is not None:
            c = self.by_capture.setdefault(group, Counter())
            c[key + ":n"] += 1
            c[key + ":ok"] += int(good)

    def rate(self, key: str) -> float:
        return self.ok[key] / self.seen[key] if self.seen[key] else 1.0


def _timed_read(t: Table, path: Path) -> classify.Recognition:
    """Classify and read one file, adding its wall and CPU seconds to the table."""
    start, cpu0 = time.perf_counter(), _cpu()
    rec = classify.read_file(path)
    t.seconds.append(time.perf_counter() - start)
    t.cpu.append(_cpu() - cpu0)
    t.n += 1
    return rec


def _cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def bench_cards(n: int, seed: int, show_errors: bool) -> Table:
    t = Table()
    with tempfile.TemporaryDirectory(prefix="bench-cards-") as tmp:
        cases = card_gen.generate_cards(Path(tmp), n, seed=seed)
        classify.read_file(cases[0].path)  # build the pipelines once, as a long-running process has them
        for case in cases:
            rec = _timed_read(t, case.path)
            t.add("document_type", rec.document_type == "insurance_card", group=case.capture)
            if rec.document is None:
                if show_errors:
                    t.errors.append(f"{case.case_id} [{case.capture}/{case.layout}] not a card: {rec.reason}")
                for key in CARD_KEYS:
                    t.add(key, case.truth.get(key) is None, group=case.capture)
                continue
            result = to_result(rec.document, VOCAB, 0.8)
            flagged = {f.field for f in result.flags if f.severity in ("warning", "error")}
            for key in CARD_KEYS:
                want = case.truth.get(key)
                got = result.value(key)
                good = got == want
                t.add(key, good, key in flagged, group=case.capture)
                if not good and show_errors:
                    t.errors.append(f"{case.case_id} [{case.capture}/{case.layout}] {key}: got {got!r} want {want!r}")
            warned = any(f.code == "member_id.format" for f in result.flags)
            expected = bool(case.expected_warnings)
            t.add("member_id.format warning", warned == expected, group=case.capture)
    return t


def print_card_table(t: Table) -> None:
    print(f"\nInsurance cards: {t.n} generated (phone photo / flatbed copy / card-scanner crop)")
    print(f"{'field':<44}{'exact':>8}{'silent':>8}   " + "  ".join(f"{c:>6}" for c in card_gen.CAPTURES))
    for key in ["document_type", *CARD_KEYS, "member_id.format warning"]:
        caps = []
        for c in card_gen.CAPTURES:
            cc = t.by_capture.get(c, Counter())
            caps.append(f"{cc[key + ':ok'] / cc[key + ':n']:.3f}" if cc[key + ":n"] else "   -  ")
        print(f"{key:<44}{t.rate(key):>8.3f}{t.silent[key]:>8}   " + "  ".join(f"{x:>6}" for x in caps))
    if t.seconds:
        print(f"seconds per card (file to fields: decode, find the card, OCR, read): wall median "
              f"{statistics.median(t.seconds):.2f}, worst {max(t.seconds):.2f}; CPU (one core) median "
              f"{statistics.median(t.cpu):.2f}, worst {max(t.cpu):.2f} (OMP_THREAD_LIMIT="
              f"{os.environ.get('OMP_THREAD_LIMIT')}, machine load {os.getloadavg()[0]:.1f})")


@dataclass
class Matching:
    letters_with_patient: int = 0  # about a patient on file who can be told apart from every other
    matched_right: int = 0
    matched_wrong: int = 0  # any letter given to a patient it is not about
    left_for_person: int = 0
    unmatched_expected: int = 0  # not a patient here, no patient named, or indistinguishable records
    unmatched_expected_ok: int = 0


def bench_letters(n: int, seed: int, show_errors: bool, scanned_share: float = 0.3) -> tuple[Table, Matching]:
    t = Table()
    m = Matching()
    with tempfile.TemporaryDirectory(prefix="bench-letters-") as tmp:
        cases, patients = letter_gen.generate_letters(Path(tmp), n, seed=seed, scanned_share=scanned_share)
        cands = [Candidate(p.patient_id, p.first, p.last, p.dob.isoformat(), (p.member_id,) if p.member_id else ())
                 for p in patients]
        for case in cases:
            rec = _timed_read(t, case.path)
            t.add("document_type", rec.document_type == "correspondence", group=case.kind)
            if rec.document is None:
                if show_errors:
                    t.errors.append(f"{case.case_id} [{case.kind}/{case.letter_type}] not a letter: {rec.reason}")
                for key in LETTER_KEYS:
                    t.add(key, case.truth.get(key) is None, group=case.kind)
                result = None
            else:
                result = to_result(rec.document, VOCAB, 0.8)
                flagged = {f.field for f in result.flags if f.severity in ("warning", "error")}
                for key in LETTER_KEYS:
                    want = case.truth.get(key)
                    got = result.value(key)
                    good = got == want
                    t.add(key, good, key in flagged, group=case.kind)
                    if not good and show_errors:
                        t.errors.append(f"{case.case_id} [{case.kind}/{case.letter_type}] {key}: got {got!r} want {want!r}")
            match = link_letter(result, cands)[0] if result is not None else None
            got_id = match.patient_id if match else None
            expect_match = case.patient_id is not None and not case.ambiguous
            if got_id is not None and got_id != case.patient_id:
                m.matched_wrong += 1
                t.errors.append(f"{case.case_id} WRONG PATIENT")
            if expect_match:
                m.letters_with_patient += 1
                if got_id == case.patient_id:
                    m.matched_right += 1
                else:
                    m.left_for_person += 1
                    if show_errors:
                        t.errors.append(f"{case.case_id} [{case.kind}/{case.letter_type}] not matched: "
                                        f"{match.reason if match else 'not read as a letter'}")
            else:
                m.unmatched_expected += 1
                m.unmatched_expected_ok += int(got_id is None)
    return t, m


def print_letter_table(t: Table, m: Matching) -> None:
    print(f"\nLetters: {t.n} generated (typed PDF / scanned)")
    print(f"{'field':<44}{'exact':>8}{'silent':>8}   " + "  ".join(f"{c:>7}" for c in letter_gen.KINDS))
    for key in ["document_type", *LETTER_KEYS]:
        caps = []
        for c in letter_gen.KINDS:
            cc = t.by_capture.get(c, Counter())
            caps.append(f"{cc[key + ':ok'] / cc[key + ':n']:.3f}" if cc[key + ":n"] else "   -   ")
        print(f"{key:<44}{t.rate(key):>8.3f}{t.silent[key]:>8}   " + "  ".join(f"{x:>7}" for x in caps))
    r = m.matched_right / m.letters_with_patient if m.letters_with_patient else 1.0
    print(f"patient matched: {m.matched_right}/{m.letters_with_patient} = {r:.3f}; matched to the wrong patient: "
          f"{m.matched_wrong}; left for a person: {m.left_for_person}; correctly left unmatched (no patient, "
          f"not a patient here, indistinguishable records): {m.unmatched_expected_ok}/{m.unmatched_expected}")
    if t.seconds:
        print(f"seconds per letter: wall median {statistics.median(t.seconds):.2f}, worst {max(t.seconds):.2f}; "
              f"CPU median {statistics.median(t.cpu):.2f}, worst {max(t.cpu):.2f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cards", type=int, default=60)
    ap.add_argument("--letters", type=int, default=40)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--show-errors", action="store_true")
    args = ap.parse_args(argv)
    if args.cards:
        t = bench_cards(args.cards, args.seed, args.show_errors)
        print_card_table(t)
        for e in t.errors:
            print("  " + e)
    if args.letters:
        lt, m = bench_letters(args.letters, args.seed, args.show_errors)
        print_letter_table(lt, m)
        for e in lt.errors:
            print("  " + e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
