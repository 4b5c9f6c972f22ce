"""One intake batch spread over a Dask cluster (prefect-dask): the same filing, the same letters as the
batch run in one process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.fixtures.generator import generate

pytest.importorskip("prefect_dask", reason="prefect-dask is not installed (pip install 'frontdesk[dask]')")


def outcomes(out: str) -> dict[str, tuple[str, str | None, int]]:
    return {Path(o["input"]).name: (o["status"], o["record_id"], len(o["letters"])) for o in json.loads(out)}


@pytest.mark.integration
def test_a_batch_over_a_local_dask_cluster_is_filed_like_one_run_here(tmp_path: Path, fd_env) -> None:  # type: ignore[no-untyped-def]
    cases = generate(tmp_path / "in", 4, seed=61, kinds=("digital",),
                     scenarios=("complete", "member_id_blank", "complete", "payer_blank"))
    paths = [str(c.path) for c in cases]
    env = dict(fd_env, FRONTDESK_PREFECT__REVIEW="false")  # letters at intake, as without a review deployment

    dask = run_cli("process", *paths, "--json", "--task-runner", "dask", env=env, timeout=300)
    assert dask.returncode == 0, dask.stderr[-3000:]
    spread = outcomes(dask.stdout)
    assert sorted(s for s, _, _ in spread.values()) == ["filed", "filed", "needs_review", "needs_review"]
    assert sum(n for _, _, n in spread.values()) == 2  # the two documents missing insurance got their letter
    storage = Path(fd_env["FRONTDESK_STORAGE__ROOT"])
    assert len(list(storage.rglob("letters/*.pdf"))) == 2

    here_env = dict(env, FRONTDESK_STORAGE__ROOT=str(tmp_path / "storage2"),
                    FRONTDESK_STORAGE__SPOOL=str(tmp_path / "spool2"),
                    FRONTDESK_DATABASE_URL=f"sqlite:///{tmp_path / 'here.db'}")
    here = run_cli("process", *paths, "--json", env=here_env, timeout=300)
    assert here.returncode == 0, here.stderr[-3000:]
    assert outcomes(here.stdout) == spread  # same ids, statuses and letters as in one process
