"""`./run demo` is the first thing a practice's IT person runs: it must work, and show the first week."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.integration
def test_the_demo_runs_a_first_week_and_lists_its_letters(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo.py"), "--out", str(tmp_path / "demo")],
                          capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    for name in ("medical_history", "hipaa_acknowledgment", "release_of_information", "financial_policy"):
        assert f"{name}-digital.pdf" in out and f"{name}-scanned" in out  # each new form, on screen and on paper
    assert "insurance-card-secondary" in out
    rows = [line.split() for line in out.splitlines() if line.startswith("  welcome") or line.startswith("  missing")]
    assert ["welcome", "es"] in [r[:2] for r in rows], out  # the Spanish speaker's welcome is in Spanish
    assert any(r[:2] == ["missing_insurance", "en"] for r in rows)
    assert "Print-ready PDF:" in out
    pdf = next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("Print-ready PDF:"))
    assert Path(pdf).is_file() and Path(pdf).read_bytes().startswith(b"%PDF")

    from sqlalchemy import func, select

    from frontdesk.db import open_database
    from frontdesk.db.models import InsuranceCard, Patient

    db = open_database(f"sqlite:///{tmp_path / 'demo' / 'frontdesk.db'}")
    with db.begin() as s:  # the later forms and the card found the patients of day one
        assert s.scalar(select(func.count()).select_from(Patient)) == 14
        assert [c.rank for c in s.scalars(select(InsuranceCard))] == ["secondary"]
