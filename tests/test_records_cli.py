"""Commands that need no records never touch the database: `frontdesk extract` stays quick and works
where no database is configured."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.fixtures.generator import generate


def test_extract_starts_neither_the_database_nor_prefect(tmp_path: Path, fd_env: dict[str, str]) -> None:
    case = generate(tmp_path / "in", 1, seed=63, scenarios=("complete",))[0]
    env = dict(fd_env, FRONTDESK_DATABASE_URL=f"sqlite:///{tmp_path / 'never' / 'frontdesk.db'}")
    code = ("import sys, json; from frontdesk.cli import main; rc = main(['extract', sys.argv[1], '--json']); "
            "print(json.dumps({'rc': rc, 'loaded': sorted(m for m in sys.modules if m.split('.')[0] in "
            "('sqlalchemy', 'alembic', 'prefect', 'boto3') or m.startswith('frontdesk.db'))}), file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code, str(case.path)], env=env, capture_output=True, text=True,
                          timeout=120)
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert report == {"rc": 0, "loaded": []}
    assert json.loads(proc.stdout)["fields"]["patient.last_name"]["value"] == case.truth["patient.last_name"]
    assert not (tmp_path / "never").exists()
