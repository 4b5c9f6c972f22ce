"""The layers hold: commands -> flows -> frontdesk -> extractors, no circles, the core runs without Prefect.

``lint-imports`` checks the contracts in pyproject.toml ([tool.importlinter]) statically; the other tests
check what matters at run time: every core module imports, and the watcher files a document through the
pipeline with the handler its caller passes in, in a process where Prefect cannot be imported at all.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

from tests.conftest import ROOT

#: Put first on sys.path in a child process: ``import prefect`` (or prefect_dask) then fails.
NO_PREFECT = textwrap.dedent("""
    import importlib.abc, sys

    class NoPrefect(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("prefect", "prefect_dask"):
                raise ImportError(f"{name} is made unimportable for this test")
            return None

    sys.meta_path.insert(0, NoPrefect())
""")


def run_without_prefect(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "without_prefect.py"
    script.write_text(NO_PREFECT + textwrap.dedent(code), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the test fixtures' generators
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=600)


def test_the_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_every_core_module_is_placed_in_a_layer() -> None:
    """A module the layers contract does not name is not checked: a new one must be given its layer."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    layers = next(c for c in config["contracts"] if c["type"] == "layers")["layers"]
    named = {m.strip() for layer in layers for m in layer.replace("|", ":").split(":")}
    children = {f"frontdesk.{p.stem}" for p in (ROOT / "frontdesk").iterdir()
                if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()}
    assert children - named == set(), "add these to the core layer in pyproject.toml [tool.importlinter]"


def test_every_frontdesk_module_imports_without_prefect(tmp_path: Path) -> None:
    done = run_without_prefect("""
        import importlib, pkgutil
        import frontdesk

        names = [m.name for m in pkgutil.walk_packages(frontdesk.__path__, "frontdesk.")
                 if not m.name.startswith("frontdesk.db.migrations")]  # run by Alembic, not imported
        for name in names:
            importlib.import_module(name)
        try:
            import prefect  # noqa: F401
        except ImportError:
            print("imported", len(names), "without prefect")
        else:
            raise SystemExit("prefect was importable: the test proves nothing")
    """, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    count = int(done.stdout.split()[1])
    assert count > 40  # every command, letters, checks, db, the watcher and the pipeline


def test_the_watcher_files_a_document_with_the_handler_it_is_given_without_prefect(tmp_path: Path) -> None:
    """The command passes the watcher its document handler; the core's own (the pipeline here) needs no
    Prefect: the form is filed, its original archived, and a junk file is moved aside with its reason."""
    done = run_without_prefect(f"""
        from pathlib import Path

        from frontdesk.settings import load_settings
        from frontdesk.watch import LocalDispatcher, Watcher
        from tests.fixtures.generator import generate

        tmp = Path({str(tmp_path)!r})
        settings = load_settings(storage={{"root": tmp / "storage", "spool": tmp / "spool"}},
                                 database_url=f"sqlite:///{{tmp / 'frontdesk.db'}}", inbox=tmp / "inbox")
        settings.watch.ledger = tmp / "ledger.sqlite"
        settings.watch.stable_seconds = 0.2
        made = []
        watcher = Watcher(settings, dispatcher=lambda: made.append(1) or LocalDispatcher(settings))
        form = generate(tmp / "src", 1, seed=31)[0].path
        (watcher.areas.inbox / "intake.pdf").write_bytes(form.read_bytes())
        (watcher.areas.inbox / "junk.pdf").write_bytes(b"junk, not a PDF %%EOF")
        stats = watcher.run(once=True, install_signals=False)
        print("finished", sorted(stats.finished.items()), "handlers", len(made))
        print("archived", len([p for p in watcher.areas.archive.rglob("*.pdf")]))
        print("failed", len([p for p in watcher.areas.failed.rglob("reason.txt")]))
        print("filed", len(list((tmp / "storage" / "documents").rglob("original.pdf"))))
    """, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    assert lines["finished"].endswith("handlers 1")
    assert "('failed', 1)" in lines["finished"]
    assert "('filed', 1)" in lines["finished"] or "('needs_review', 1)" in lines["finished"]
    assert lines["archived"] == "1" and lines["failed"] == "1" and lines["filed"] == "1"
