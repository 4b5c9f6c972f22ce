"""Seeded generators for eligibility and claims tests: visit ledgers with ICD-10 codes, 271 responses,
999 acknowledgments. Fictional data only.

:func:`answer_270` is the stand-in for the clearinghouse (which cannot run here): it reads a 270 the way
a payer would and answers each subscriber with a generated 271 (active with copay and deductible,
inactive, not found, or rejected with an AAA reason).
"""

from __future__ import annotations

import csv
import random
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from pathlib import Path

from frontdesk.claims.x12 import (
    FunctionalGroup,
    Interchange,
    Party,
    Segment,
    Transaction,
    loops,
    parse_interchange,
    render_interchange,
    seg,
)

OUTCOMES = ("active", "inactive", "not_found", "rejected")
CPT = ("99203", "99213", "99214", "99215", "90471", "90686", "36415", "80053", "85025", "93000", "81002",
       "87880", "G0438", "97110")
ICD10 = ("E11.9", "I10", "J45.909", "Z00.00", "J06.9", "E78.5", "F41.1", "K21.9", "R51.9", "N39.0",
         "H10.9", "L30.9", "M25.561", "E66.9", "Z23", "M54.50", "R05.9", "J02.9", "E55.9", "G43.909")
PLANS = ("CHOICE POS II", "OPEN ACCESS PLUS", "HMO BLUE ADVANTAGE", "GOLD PPO", "SILVER HMO")


def answer_270(text: str, *, seed: int = 1, outcomes: Mapping[str, str] | None = None,
               when: datetime = datetime(2026, 12, 7, 9, 30)) -> tuple[str, dict[str, dict[str, object]]]:
    """A 271 for every subscriber (and dependent) in a 270, and what it says per trace number:
    {trace: {"status", "copay", "deductible", "plan", "aaa"}}. ``outcomes`` fixes a trace's outcome;
    the rest are drawn from the seed."""
    rnd = random.Random(seed)
    ix = parse_interchange(text, "270")
    t = ix.groups[0].transactions[0]
    body: list[Segment] = [seg("BHT", "0022", "11", t.body[0][3], when.strftime("%Y%m%d"), when.strftime("%H%M"))]
    truth: dict[str, dict[str, object]] = {}
    for block in loops(t.body, "HL", ()):
        hl = block[0]
        level = hl[3]
        if level in ("20", "21"):
            body += block
            continue
        if level == "23":
            continue  # answered together with its subscriber below
        trn = next(s for s in block if s.id == "TRN")
        trace = trn[2]
        outcome = (outcomes or {}).get(trace) or rnd.choice(OUTCOMES)
        info: dict[str, object] = {"status": outcome}
        nm1 = next(s for s in block if s.id == "NM1")
        dmg = next((s for s in block if s.id == "DMG"), None)
        dependent = hl[4] == "1"
        body += [hl, seg("TRN", "2", trace, trn[3]), nm1]
        if outcome == "not_found":
            body.append(seg("AAA", "N", "", "75", "C"))
            info["aaa"] = "75"
        elif outcome == "rejected":
            body.append(seg("AAA", "N", "", "42", "R"))
            info["aaa"] = "42"
        if dmg is not None:
            body.append(dmg)
        if outcome in ("active", "inactive"):
            plan = rnd.choice(PLANS)
            info["plan"] = plan
            target: list[Segment] = []
            if outcome == "active":
                copay = rnd.choice((10, 20, 25, 30, 40, 50))
                deductible = rnd.choice((0, 150, 500, 1250))
                info["copay"], info["deductible"] = copay, deductible
                target += [seg("EB", "1", "IND", "30", "", plan),
                           seg("EB", "B", "IND", "98", "", "", "27", str(copay), "", "", "", "", "Y"),
                           seg("EB", "C", "IND", "30", "", "", "29", str(deductible), "", "", "", "", "Y"),
                           seg("EB", "C", "IND", "30", "", "", "29", "9999", "", "", "", "", "N")]
            else:
                target += [seg("EB", "6", "IND", "30", "", plan)]
            if dependent:
                dep = [b for b in loops(t.body, "HL", ()) if b[0][3] == "23" and b[0][2] == hl[1]]
                if dep:
                    d = dep[0]
                    body += [d[0], next(s for s in d if s.id == "NM1")]
                    ddmg = next((s for s in d if s.id == "DMG"), None)
                    if ddmg is not None:
                        body.append(ddmg)
                    body += target
                    truth[trace] = info
                    continue
            body += target
        truth[trace] = info
    out = Interchange(Party(ix.receiver.qualifier, ix.receiver.id), Party(ix.sender.qualifier, ix.sender.id),
                      ix.control_number + 500, when, ix.usage,
                      [FunctionalGroup("HB", "005010X279A1", 1, ix.receiver.id, ix.sender.id,
                                       [Transaction("271", "0001", body)])])
    return render_interchange(out), truth


def write_ledger(path: Path, patient_ids: Sequence[str], service_date: date, *, seed: int = 1,
                 max_lines: int = 4, bad_icd: str | None = None) -> Path:
    """A visit ledger: one visit per patient, 1..max_lines service lines, 1-3 diagnoses a line."""
    rnd = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Visit ID", "Patient ID", "Date of Service", "CPT", "Modifier", "Units", "Charge", "Diagnoses"])
        for n, pid in enumerate(patient_ids, 1):
            visit_dx = rnd.sample(ICD10, 4)
            for _ in range(rnd.randint(1, max_lines)):
                code = rnd.choice(CPT)
                dx = rnd.sample(visit_dx, rnd.randint(1, 3))
                if bad_icd and n == 1:
                    dx = [bad_icd]
                w.writerow([f"V{service_date:%m%d}{n:04d}", pid, service_date.isoformat(), code,
                            "25" if code.startswith("992") and rnd.random() < 0.3 else "",
                            rnd.choice((1, 1, 1, 2)), f"{rnd.randint(20, 400)}.{rnd.choice(('00', '50'))}",
                            "; ".join(dx)])
    return path


def make_999(text_837: str, *, reject_segment_of_claim: str | None = None,
             when: datetime = datetime(2026, 12, 9, 8, 0)) -> str:
    """A 999 for an 837P: accepted, or rejecting the transaction with an IK3 pointing at the CLM of a
    given claim (its position within the transaction, ST = 1)."""
    ix = parse_interchange(text_837, "837")
    g = ix.groups[0]
    t = g.transactions[0]
    body: list[Segment] = [seg("AK1", "HC", str(g.control_number), g.version), seg("AK2", "837", t.control_number, g.version)]
    if reject_segment_of_claim is None:
        body += [seg("IK5", "A")]
        ak9 = seg("AK9", "A", "1", "1", "1")
    else:
        pos = next(i for i, s in enumerate(t.body, 2) if s.id == "CLM" and s[1] == reject_segment_of_claim)
        body += [seg("IK3", "CLM", str(pos), "2300", "8"), seg("IK4", "2", "782", "6"), seg("IK5", "R", "5")]
        ak9 = seg("AK9", "R", "1", "1", "0")
    body.append(ak9)
    out = Interchange(Party(ix.receiver.qualifier, ix.receiver.id), Party(ix.sender.qualifier, ix.sender.id),
                      ix.control_number + 900, when, ix.usage,
                      [FunctionalGroup("FA", "005010X231A1", 1, ix.receiver.id, ix.sender.id,
                                       [Transaction("999", "0001", body)])])
    return render_interchange(out)
