"""The demo: a dozen synthetic intake forms (some missing insurance) through `frontdesk process`.

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

    shutil.rmtree(DEMO, ignore_errors=True)
    inbox = DEMO / "inbox"
    inbox.mkdir(parents=True)
    cases = generate(inbox, 12, seed=7)
    (inbox / "truth.json").unlink(missing_ok=True)  # the answer key is for tests, not for the inbox
    print(f"Generated {len(cases)} sample intake forms in {inbox}")
    env = dict(os.environ,
               FRONTDESK_STORAGE__ROOT=str(DEMO / "storage"),
               FRONTDESK_DATABASE_URL=f"sqlite:///{DEMO / 'frontdesk.db'}")
    frontdesk = Path(sys.executable).with_name("frontdesk")
    rc = subprocess.call([str(frontdesk), "process", str(inbox)], env=env)
    if rc == 0:
        letters = sorted((DEMO / "storage").rglob("letters/*.pdf"))
        if letters:
            print(f"\n{len(letters)} missing-insurance letters were written; for example:\n  {letters[0]}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
