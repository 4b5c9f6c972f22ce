"""Which record is this appointment's patient?

By MRN when the scheduling system sends one and a record carries it; otherwise by last name, first name
and date of birth, compared after folding case, accents and punctuation, because the same person is
"José García-López" on the intake form and "GARCIA LOPEZ, JOSE" in the scheduler. Nicknames are not
guessed (Bob is not matched to Robert): a wrong match would show another patient's gaps, or hide this
one's, and the cost of a miss is only a "no intake on file" line that staff resolve at the desk.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from frontdesk.checks.appointments import Appointment
from frontdesk.checks.patients import PatientRecord
from frontdesk.identity import fold


def name_key(text: str | None) -> str:
    """Names compare as :func:`frontdesk.identity.fold` folds them, as everywhere in Frontdesk."""
    return fold(text)


def first_token_key(text: str | None) -> str:
    """The first given name alone, for records that carry a middle name the scheduler drops."""
    if not text:
        return ""
    return name_key(text.replace("-", " ").split()[0]) if text.split() else ""


def mrn_key(text: str | None) -> str:
    """MRNs are compared without case, spaces, dashes or leading zeros ('00012345' is '12345')."""
    if not text:
        return ""
    return "".join(c for c in text.upper() if c.isalnum()).lstrip("0")


MatchedBy = Literal["mrn", "name_dob", "name_dob_in_review"]


@dataclass
class Match:
    record: PatientRecord | None
    matched_by: MatchedBy | None = None
    ambiguous: list[PatientRecord] = field(default_factory=list)


class PatientIndex:
    """Records indexed by MRN and by (last name, date of birth), built once per run."""

    def __init__(self, records: Iterable[PatientRecord]) -> None:
        self.by_mrn: dict[str, list[PatientRecord]] = defaultdict(list)
        self.by_last_dob: dict[tuple[str, object], list[PatientRecord]] = defaultdict(list)
        self.in_review_by_dob: dict[object, list[PatientRecord]] = defaultdict(list)
        for r in records:
            if r.mrn:
                self.by_mrn[mrn_key(r.mrn)].append(r)
            if r.date_of_birth is not None:
                self.by_last_dob[(name_key(r.last_name), r.date_of_birth)].append(r)
                if r.intake is not None and r.intake.in_review:
                    self.in_review_by_dob[r.date_of_birth].append(r)

    def match(self, appt: Appointment) -> Match:
        if appt.mrn:
            hits = _unique(self.by_mrn.get(mrn_key(appt.mrn), []))
            if len(hits) == 1:
                return Match(hits[0], "mrn")
            if len(hits) > 1:
                return Match(None, None, hits)
        if not (appt.last_name and appt.first_name and appt.date_of_birth):
            return Match(None)
        same = self.by_last_dob.get((name_key(appt.last_name), appt.date_of_birth), [])
        if appt.mrn:
            # A record that carries a different MRN is a different patient, however alike the names.
            same = [r for r in same if not r.mrn or mrn_key(r.mrn) == mrn_key(appt.mrn)]
        want = name_key(appt.first_name)
        hits = _unique([r for r in same if name_key(r.first_name) == want])
        if not hits:  # "Anne" in the scheduler, "Anne Marie" on the form (or the other way round)
            token = first_token_key(appt.first_name)
            hits = _unique([r for r in same if token and first_token_key(r.first_name) == token])
        if len(hits) == 1:
            return Match(hits[0], "name_dob")
        if len(hits) > 1:
            return Match(None, None, hits)
        return self._match_in_review(appt)

    def _match_in_review(self, appt: Appointment) -> Match:
        """A form still in review may carry a misread name ("MÜULLER" for "MÜLLER"): with the same date of
        birth and first name, a last name one OCR slip away (two for long names) is this patient's form,
        reported as in review rather than missing. Only records whose form waits for a person: a filed
        record's name was read with confidence (or confirmed), and a near miss there is someone else."""
        pool = self.in_review_by_dob.get(appt.date_of_birth, [])
        if appt.mrn:
            pool = [r for r in pool if not r.mrn or mrn_key(r.mrn) == mrn_key(appt.mrn)]
        want_last, want_first = name_key(appt.last_name), first_token_key(appt.first_name)
        hits = _unique([r for r in pool if want_first and first_token_key(r.first_name) == want_first
                        and _ocr_close(name_key(r.last_name), want_last)])
        if len(hits) == 1:
            return Match(hits[0], "name_dob_in_review")
        if len(hits) > 1:
            return Match(None, None, hits)
        return Match(None)


def _ocr_close(a: str, b: str) -> bool:
    """Edit distance at most 1 (at most 2 when both names have 8 letters or more), never 0 letters."""
    if not a or not b:
        return False
    limit = 2 if min(len(a), len(b)) >= 8 else 1
    if abs(len(a) - len(b)) > limit:
        return False
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1] <= limit


def _unique(records: list[PatientRecord]) -> list[PatientRecord]:
    seen: dict[str, PatientRecord] = {}
    for r in records:
        seen.setdefault(r.patient_id, r)
    return list(seen.values())
