"""Claims per second: Frontdesk's 837P build + check + pyx12 validation, against pyx12 alone.

    python bench/claims_speed.py                 # 10 and 50 claims
    python bench/claims_speed.py --sizes 20 200

Each size builds claims from seeded fictional records and a generated ledger, then times, side by side in
the same run: (a) ``prepare_claims`` (record, payer and ICD-10 checks), (b) ``build_837p`` (our writer),
(c) ``validate_837p`` (pyx12 with the 005010X222A1 map, which is the plain tool) and the whole
``write_checked_837p`` path. The ratio is the whole path over pyx12 alone: what Frontdesk adds on top of
the validation every batch must pass anyway. The 270 row times our 270 writer against x12sdk parsing the
same file.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from frontdesk.claims.claim837 import build_837p, prepare_claims, validate_837p  # noqa: E402
from frontdesk.claims.eligibility import EligibilityRequest, build_270, request_for  # noqa: E402
from frontdesk.claims.ledger import read_claim_ledger  # noqa: E402
from frontdesk.claims.payers import payers_for  # noqa: E402
from frontdesk.settings import load_settings  # noqa: E402
from tests.claims_fixtures import write_ledger  # noqa: E402
from tests.fixtures.appointments import VISIT_DATE  # noqa: E402
from tests.test_claims_x12 import BILLING, insured_records  # noqa: E402

WHEN = datetime(2026, 12, 5, 10, 30)


def timed(fn, *a, **k):  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    out = fn(*a, **k)
    return out, time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 50])
    args = ap.parse_args(argv)
    s = load_settings(claims={"billing": BILLING})
    payers = payers_for(s.claims.payers_file)
    t = time.perf_counter()
    import simple_icd_10_cm  # noqa: F401  (loads the code set: once per process, timed on its own)

    print(f"ICD-10-CM code set loaded in {time.perf_counter() - t:.2f} s (once per command)")
    print(f"{'claims':>7} {'lines':>6} {'check s':>8} {'build s':>8} {'pyx12 s':>8} {'total s':>8} "
          f"{'claims/s':>9} {'total/pyx12':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            recs = insured_records(n, seed=n)
            ledger = write_ledger(Path(tmp) / f"v{n}.csv", [r.patient_id for r in recs], date(2026, 12, 1),
                                  seed=n, max_lines=6)
            visits = read_claim_ledger(ledger)
            records = {r.patient_id: r for r in recs}
            claims, t_check = timed(prepare_claims, visits, records, payers, s)
            text, t_build = timed(build_837p, claims, s, control_number=1, when=WHEN)
            errors, t_pyx = timed(validate_837p, text)
            assert errors == [], errors[:3]
            total = t_check + t_build + t_pyx
            print(f"{len(claims):>7} {sum(len(v.lines) for v in visits):>6} {t_check:>8.3f} {t_build:>8.3f} "
                  f"{t_pyx:>8.3f} {total:>8.3f} {len(claims) / total:>9.1f} {total / t_pyx:>12.2f}")
        from x12sdk.io import X12ModelReader

        for n in args.sizes:
            recs = insured_records(n, seed=n)
            reqs = [r for r in (request_for(x, "k", VISIT_DATE, payers) for x in recs)
                    if isinstance(r, EligibilityRequest)]
            text, t_ours = timed(build_270, reqs, s, control_number=1, when=WHEN)

            def parse(t: str) -> int:
                with X12ModelReader(t) as rd:
                    return sum(len(list(m.members())) for m in rd.models())

            members, t_sdk = timed(parse, text)
            assert members == len(reqs)
            print(f"270: {len(reqs)} requests written in {t_ours:.4f} s; x12sdk parses them in {t_sdk:.4f} s "
                  f"(ratio ours/x12sdk {t_ours / t_sdk:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
