"""How fast does the watched folder file documents, and what does orchestration cost?

Generates N mixed documents (digital AcroForm, flattened, and scans read by OCR), then measures:

1. **extraction only**: ``Reader.extract`` on every document, one after another, warm; the sum of the
   per-document times is the work that cannot be avoided;
2. **pipeline without Prefect** (``--baseline``): the watcher with its local dispatcher (hash, extract,
   records, storage, letters, archive), no orchestration;
3. **end to end**: the documents dropped into an inbox and ``frontdesk watch --once`` with the inline
   dispatcher: claim, intake flow runs under Prefect (tasks, retries, artifacts), letters, archive.

Prints documents per minute and the ratio of end-to-end time to the extraction-only sum (orchestration
overhead; the issue's bar is at most 1.15), and the same ratio in CPU seconds, which does not move with
whatever else the machine is running. Start-up (server, templates) is warmed up first and not
counted: a long-running watcher pays it once.

Run: ``python bench/throughput.py [--n 100] [--scans 0.34] [--seed 7] [--baseline] [--json]``.
Uses PREFECT_API_URL when set, else starts ``prefect server start`` on a free local port (PREFECT_HOME in a
temp folder). The watcher runs one intake flow per batch (``--batch-size``, default the setting: 100) and
reads with ``--workers`` reading processes (default: one per core).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
WORKERS = 0  # --workers
BATCH = 0  # --batch-size
EXTRACT_CPU = 0.0
WATCH_CPU: dict[str, float] = {}
WINDOW_CPU: dict[str, float] = {}
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def make_documents(out: Path, n: int, scan_share: float, seed: int) -> dict[str, int]:
    """Digital and flattened forms in equal parts, plus a share of scans, all with distinct content."""
    from tests.fixtures.generator import generate

    n_scans = round(n * scan_share)
    n_forms = n - n_scans
    made: dict[str, int] = {}
    tmp = out.parent / "gen"
    generate(tmp / "forms", n_forms, seed=seed)
    if n_scans:
        from tests.fixtures.scans import generate_scans

        generate_scans(tmp / "scans", n_scans, seed=seed + 1)
    for kind_dir in (tmp / "forms", tmp / "scans"):
        if not kind_dir.is_dir():
            continue
        for i, p in enumerate(sorted(q for q in kind_dir.iterdir() if q.name != "truth.json")):
            shutil.move(str(p), out / f"{kind_dir.name}-{i:03d}{p.suffix}")
            made[kind_dir.name] = made.get(kind_dir.name, 0) + 1
    shutil.rmtree(tmp)
    return made


def fresh_settings(work: Path, name: str) -> Any:
    from frontdesk.settings import load_settings

    s = load_settings(storage={"root": work / name / "storage", "spool": work / name / "spool"},
                      database_url=f"sqlite:///{work / name / 'frontdesk.db'}", inbox=work / name / "inbox")
    s.watch.ledger = work / name / "ledger.sqlite"
    s.watch.stable_seconds = 0.0
    s.watch.workers = WORKERS
    if BATCH:
        s.watch.batch_size = BATCH
    return s


def cpu_seconds() -> float:
    """This process and every child it has reaped (pool workers, tesseract, soffice): work done, which
    unlike wall time does not depend on what else the machine is running."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _proc_table() -> dict[int, list[str]]:
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                table[int(entry.name)] = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
    return table


def window_cpu_seconds() -> float:
    """CPU of this process and all its descendants so far, live ones read from /proc (the Prefect server's
    process group left out: it is counted on its own). The difference of two readings is the work done in
    between, without the workers' start-up and warm-up, which :func:`cpu_seconds` can only count once
    the workers have been reaped."""
    table = _proc_table()
    me = os.getpid()
    servers = {int(f[2]) for f in table.values() if int(f[1]) == me and int(f[2]) not in (me, int(table[me][2]))}
    children: dict[int, list[int]] = {}
    for pid, f in table.items():
        children.setdefault(int(f[1]), []).append(pid)
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, list(children.get(me, []))
    while todo:
        pid = todo.pop()
        f = table[pid]
        if int(f[2]) in servers:
            continue
        total += (int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])) / tick
        todo.extend(children.get(pid, []))
    return cpu_seconds() + total


def server_cpu_seconds() -> float | None:
    """CPU of the local Prefect server this bench started (its whole process group), read from /proc: it
    shares the machine with the workers, so it belongs to the cost of orchestration."""
    groups = set()
    proc = Path("/proc")
    stats: list[list[str]] = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        stats.append(fields)
        if int(fields[1]) == os.getpid() and b"prefect" in cmd and b"server" in cmd:
            groups.add(int(fields[2]))  # its process group: it was started in a session of its own
    if not groups:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    return sum(int(f[11]) + int(f[12]) + int(f[13]) + int(f[14]) for f in stats if int(f[2]) in groups) / tick


def extraction_only(docs: list[Path], settings: Any) -> tuple[float, dict[str, float]]:
    from frontdesk.exceptions import InputFileError
    from frontdesk.extraction import Reader

    reader = Reader(settings)
    reader.extract(docs[0])  # warm: templates, OCR models, caches
    total, per_kind = 0.0, dict[str, float]()
    global EXTRACT_CPU
    cpu0 = cpu_seconds()
    for p in docs:
        t = time.perf_counter()
        with contextlib.suppress(InputFileError):
            reader.extract(p)
        dt = time.perf_counter() - t
        total += dt
        kind = p.name.split("-")[0]
        per_kind[kind] = per_kind.get(kind, 0.0) + dt
    EXTRACT_CPU = cpu_seconds() - cpu0
    return total, per_kind


def through_watcher(docs: list[Path], settings: Any, dispatch: str, warm: list[Path]) -> tuple[float, dict[str, int]]:
    """Wall time from the first claim to the last original archived, after a warm-up batch of one
    document per worker process (each process loads templates, Prefect and LibreOffice once)."""
    from flows.dispatch import make_dispatcher
    from frontdesk.watch import Watcher

    dispatcher = make_dispatcher(settings, None, "local" if dispatch == "local" else "inline")
    inbox = settings.inbox
    inbox.mkdir(parents=True, exist_ok=True)
    for i, w in enumerate(warm):
        shutil.copy(w, inbox / f"warm-up-{i}.pdf")
    Watcher(settings, inbox, dispatcher=dispatcher).run(once=True, install_signals=False)
    for p in docs:
        shutil.copy(p, inbox / p.name)
    watcher = Watcher(settings, inbox, dispatcher=dispatcher)
    cpu0 = cpu_seconds()
    window0 = window_cpu_seconds()
    t = time.perf_counter()
    stats = watcher.run(once=True, install_signals=False)
    elapsed = time.perf_counter() - t
    WINDOW_CPU[dispatch] = window_cpu_seconds() - window0
    close = getattr(dispatcher, "close", None)
    if close is not None:
        close()  # joins the workers: their CPU (warm-up included, a conservative bias) is counted now
    WATCH_CPU[dispatch] = cpu_seconds() - cpu0
    return elapsed, stats.finished


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--scans", type=float, default=0.34, help="share of scanned documents (OCR)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--baseline", action="store_true", help="also time the pipeline without Prefect")
    ap.add_argument("--workers", type=int, default=0, help="reading processes (0: one per core)")
    ap.add_argument("--batch-size", type=int, default=0, help="documents per batch (0: the setting)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = ap.parse_args(argv)
    global WORKERS, BATCH
    WORKERS, BATCH = args.workers, args.batch_size

    os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # tesseract's threads oversubscribe small machines
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    work = args.keep or Path(tempfile.mkdtemp(prefix="frontdesk-bench-"))
    os.environ.setdefault("PREFECT_HOME", str(work / "prefect-home"))
    import logging

    logging.basicConfig(level=logging.WARNING)
    for noisy in ("pypdf", "pdfminer", "pdfplumber", "PIL", "fontTools", "prefect"):
        logging.getLogger(noisy).setLevel(logging.ERROR)

    src = work / "documents"
    src.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    made = make_documents(src, args.n, args.scans, args.seed)
    gen_s = time.perf_counter() - t
    docs = sorted(src.iterdir())
    from tests.fixtures.generator import generate

    workers = args.workers or os.cpu_count() or 1
    # Their own content (not duplicates of measured ones), each needing a letter: LibreOffice warms too.
    warm_copy = [c.path for c in generate(work / "warm", workers, seed=args.seed + 99, scenarios=("member_id_blank",))]

    extract_s, per_kind = extraction_only(docs, fresh_settings(work, "extract"))
    report: dict[str, Any] = {"documents": len(docs), "kinds": made, "generate_s": round(gen_s, 1),
                              "extraction_only_s": round(extract_s, 2),
                              "extraction_by_kind_s": {k: round(v, 2) for k, v in per_kind.items()}}
    if args.baseline:
        base_s, base_counts = through_watcher(docs, fresh_settings(work, "local"), "local", warm_copy)
        report.update(pipeline_without_prefect_s=round(base_s, 2), pipeline_counts=base_counts)
    inline = fresh_settings(work, "inline")
    from flows.server import prefect_api
    from tests.prefect_harness import free_port

    inline.prefect.local_server_port = free_port()
    with prefect_api(inline):  # one server for the watcher and its worker processes; start-up not timed
        server0 = server_cpu_seconds()
        e2e_s, counts = through_watcher(docs, inline, "inline", warm_copy)
        time.sleep(3)  # the server records task runs in batches flushed every second: count that work too
        server1 = server_cpu_seconds()
    server_s = server1 - server0 if server0 is not None and server1 is not None else None
    report.update(end_to_end_s=round(e2e_s, 2), end_to_end_counts=counts,
                  documents_per_minute=round(len(docs) / e2e_s * 60, 1),
                  overhead_ratio=round(e2e_s / extract_s, 3))
    if args.baseline:
        report["prefect_over_pipeline_ratio"] = round(e2e_s / report["pipeline_without_prefect_s"], 3)
    report["cpu_s"] = {"extraction_only": round(EXTRACT_CPU, 1), **{k: round(v, 1) for k, v in WATCH_CPU.items()}}
    report["cpu_overhead_ratio"] = round(WATCH_CPU["inline"] / EXTRACT_CPU, 3) if EXTRACT_CPU else None
    report["prefect_server_cpu_s"] = round(server_s, 1) if server_s is not None else None
    report["cpu_in_timed_window_s"] = {k: round(v, 1) for k, v in WINDOW_CPU.items()}
    report["load_average"] = os.getloadavg()
    report["cores"] = os.cpu_count()
    report["workers"] = args.workers or os.cpu_count()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{len(docs)} documents ({', '.join(f'{v} {k}' for k, v in made.items())}) on {os.cpu_count()} cores")
        print(f"extraction only (sum):      {extract_s:8.1f} s   " +
              ", ".join(f"{k} {v:.1f} s" for k, v in per_kind.items()))
        if args.baseline:
            print(f"pipeline without Prefect:   {report['pipeline_without_prefect_s']:8.1f} s")
        print(f"end to end (watch, Prefect):{e2e_s:8.1f} s   {report['documents_per_minute']} documents/minute")
        print(f"end to end / extraction:    {report['overhead_ratio']:8.3f}   (bar: 1.15)")
        if args.baseline:
            print(f"end to end / no-Prefect:    {report['prefect_over_pipeline_ratio']:8.3f}")
        if args.baseline:
            print(f"CPU seconds without Prefect: {WATCH_CPU['local']:.1f}")
        print(f"CPU seconds: extraction {EXTRACT_CPU:.1f}, end to end {WATCH_CPU['inline']:.1f} "
              f"(ratio {report['cpu_overhead_ratio']}; the Prefect server's own CPU not counted: "
              + (f"{server_s:.1f} s more" if server_s is not None else "not measured (remote server)") + ")")
        print("CPU seconds in the timed window only (no worker start-up or warm-up): "
              + ", ".join(f"{k} {v:.1f}" for k, v in WINDOW_CPU.items())
              + f"; ratio end to end / extraction {WINDOW_CPU['inline'] / EXTRACT_CPU:.3f}" if EXTRACT_CPU else "")
        print(f"load average while measuring: {', '.join(f'{x:.1f}' for x in os.getloadavg())} "
              "(wall times are only comparable on an otherwise idle machine)")
        print(f"outcomes: {counts}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
