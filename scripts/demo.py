"""The demo: a dozen synthetic intake forms (some missing insurance) and one filled in by hand, scanned,
through `frontdesk process`.

Everything goes under var/demo/ so a real installation's storage is never touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "var" / "demo"


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from tests.fixtures.generator import generate
    from tests.fixtures.scans import generate_scans

    shutil.rmtree(DEMO, ignore_errors=True)
    inbox = DEMO / "inbox"
    inbox.mkdir(parents=True)
    cases = generate(inbox, 12, seed=7)
    (inbox / "truth.json").unlink(missing_ok=True)  # the answer key is for tests, not for the inbox
    # One form filled in with a pen and scanned at 300 dpi, as most forms in a waiting room are.
    hand = generate_scans(DEMO / "handwritten", 1, seed=17, tiers=("hand300",))[0]
    hand_path = inbox / f"handwritten-intake{hand.path.suffix}"
    shutil.move(hand.path, hand_path)
    shutil.rmtree(DEMO / "handwritten", ignore_errors=True)
    print(f"Generated {len(cases)} sample intake forms and one handwritten scan ({hand_path.name}) in {inbox}")
    env = dict(os.environ,
               FRONTDESK_STORAGE__ROOT=str(DEMO / "storage"),
               FRONTDESK_DATABASE_URL=f"sqlite:///{DEMO / 'frontdesk.db'}")
    frontdesk = Path(sys.executable).with_name("frontdesk")
    rc = subprocess.call([str(frontdesk), "process", str(inbox)], env=env)
    if rc == 0:
        letters = sorted((DEMO / "storage").rglob("letters/*.pdf"))
        if letters:
            print(f"\n{len(letters)} missing-insurance letters were written; for example:\n  {letters[0]}")
        print("\nThe handwritten form was read with tesseract and the handwriting engine (rapidocr); fields the "
              "two did not agree on, or that do not fit their type, are on the review worklist with the reason.")
    return rc


if __name__ == "__main__":
    sys.exit(main())
