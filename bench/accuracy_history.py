"""How well are the repeating rows of the medical history form read? (``bench/accuracy.py --kinds history``)

Generates filled medical history forms (:mod:`tests.fixtures.history`) per tier, reads them, and counts:

* rows exactly right / rows: a row the patient used is right when a row of the same number was read and
  every box of it equals the truth (blank boxes read as blank);
* extra rows: rows read that the patient left blank (a blank line must be skipped);
* incomplete rows flagged: rows with a blank required box (a medication without its dose) that carry a
  ``row.incomplete`` flag, of those there are;
* silent row errors: wrong rows none of whose boxes carries a flag (nobody would be asked to look);
* check list boxes right / boxes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from frontdesk.extraction import Reader
from frontdesk.models import ExtractionResult
from tests.fixtures import history


@dataclass
class RowTally:
    tier: str
    docs: int = 0
    wrong_form: int = 0
    rows: int = 0
    rows_ok: int = 0
    extra_rows: int = 0
    incomplete: int = 0
    incomplete_flagged: int = 0
    silent: int = 0
    boxes: int = 0
    boxes_ok: int = 0
    pages: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def row_accuracy(self) -> float:
        return self.rows_ok / self.rows if self.rows else 1.0


def score_rows(case: history.HistoryCase, result: ExtractionResult, tally: RowTally) -> None:
    """Add one read medical history form to the tally."""
    tally.docs += 1
    if result.form != history.TEMPLATE.stem:
        tally.wrong_form += 1
        tally.errors.append(f"{case.case_id}: read as form {result.form!r}")
    got = history.rows_read(result.rows)
    flagged = {f.field for f in result.flags if f.field and f.severity in ("warning", "error")}
    incomplete = {f.field.rsplit(".", 1)[0] for f in result.flags if f.code == "row.incomplete" and f.field}
    for group, want_rows in case.rows.items():
        read = {r["row"]: r for r in got.get(group, [])}
        for want in want_rows:
            tally.rows += 1
            n = want["row"]
            have = read.get(n)
            ok = have is not None and all(have.get(k) == v for k, v in want.items())
            tally.rows_ok += ok
            if any(v is None for k, v in want.items() if k in ("drug", "dose", "frequency", "substance",
                                                               "condition")):
                tally.incomplete += 1
                tally.incomplete_flagged += f"{group}.{n}" in incomplete
            if not ok:
                noticed = any(k.startswith(f"{group}.{n}.") for k in flagged)
                tally.silent += not noticed
                tally.errors.append(f"{case.case_id} {group} row {n}: got {have!r} want {want!r}"
                                    + ("" if noticed else " SILENT"))
        used = {w["row"] for w in want_rows}
        tally.extra_rows += sum(1 for n in read if n not in used)
    for group, rows in got.items():
        if group not in case.rows:
            tally.extra_rows += len(rows)
    ticked = set(result.checklists.get("condition_checklist", []))
    options = history.vocabulary()["checklists"]["condition_checklist"]["options"]
    for o in options:
        tally.boxes += 1
        right = (o in ticked) == (o in case.checklist)
        tally.boxes_ok += right
        if not right:
            tally.errors.append(f"{case.case_id} condition_checklist.{o}: got {o in ticked} want {o in case.checklist}")


def bench_history(reader: Reader, tiers: Iterable[str], n: int, seed: int, out: Path) -> list[RowTally]:
    tallies = []
    for tier in tiers:
        cases = history.generate_histories(out / f"history-{tier}", n, seed=seed, kinds=(tier,))
        tally = RowTally(tier)
        for case in cases:
            t0 = time.perf_counter()
            result = reader.extract(case.path)
            tally.seconds += time.perf_counter() - t0
            tally.pages += max(1, result.pages)
            score_rows(case, result, tally)
        tallies.append(tally)
    return tallies


def history_table(tallies: list[RowTally]) -> str:
    rows = [
        ("documents", lambda t: f"{t.docs}"),
        ("rows exactly right", lambda t: f"{t.row_accuracy:.3f}  ({t.rows_ok}/{t.rows})"),
        ("blank rows read as used", lambda t: f"{t.extra_rows}"),
        ("incomplete rows flagged", lambda t: f"{t.incomplete_flagged}/{t.incomplete}"),
        ("silent row errors", lambda t: f"{t.silent}"),
        ("check list boxes right", lambda t: f"{t.boxes_ok}/{t.boxes}"),
        ("read as another form", lambda t: f"{t.wrong_form}"),
        ("seconds per page", lambda t: f"{t.seconds / t.pages if t.pages else 0.0:.2f}"),
    ]
    head = f"{'medical history rows':26}" + "".join(f"{t.tier:>22}" for t in tallies)
    lines = [head, "-" * len(head)]
    for name, fmt in rows:
        lines.append(f"{name:26}" + "".join(f"{fmt(t):>22}" for t in tallies))
    return "\n".join(lines)
