"""Hostile input: every file of ../shared/corpora/hostile-pdfs plus generated decompression bombs, taken by
``frontdesk watch --once`` (the default path a practice runs), with the peak memory of the whole process
tree and the longest time one document took to read.

    python bench/hostile.py [--limit 20] [--memory-mb 1536]

Prints a table: files, filed, failed, lost, exit code, tracebacks, peak memory of the run, and the slowest
reads (each document read alone through the same reading process, timed), against the configured limit.
The plain tool side by side: ``pdfinfo`` (poppler) over the same files with the same limit, so the table
shows what one well-known reader does with them. Files are read from the corpus folder; only the watch
run works on a throw-away copy (it moves what it takes).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpora" / "hostile-pdfs"
sys.path.insert(0, str(ROOT))


def png_bomb(path: Path, width: int, height: int, rows: int = 64) -> None:
    """A PNG whose header says width x height; only a few rows are stored (the header is what matters)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    comp = zlib.compressobj(9)
    row = b"\x00" + b"\x00" * width
    idat = b"".join(comp.compress(row) for _ in range(rows)) + comp.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def bombs(folder: Path) -> list[Path]:
    from tests.test_hardening import pdf_with_lying_jpeg

    folder.mkdir(parents=True, exist_ok=True)
    png_bomb(folder / "bomb-50000x50000.png", 50000, 50000)
    pdf_with_lying_jpeg(folder / "bomb-lying-jpeg.pdf")
    sparse = folder / "bomb-sparse-2gb.pdf"
    with open(sparse, "wb") as fh:
        fh.write(b"%PDF-1.4\n")
        fh.truncate(2 * 1024 ** 3)
    return sorted(folder.iterdir())


class TreePeak(threading.Thread):
    """Peak resident memory of a process and all its descendants, sampled every 50 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                root = psutil.Process(self.pid)
                total = 0
                for p in [root, *root.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        total += p.memory_info().rss
                self.peak = max(self.peak, total)
            except psutil.Error:
                pass
            time.sleep(0.05)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=float, default=20.0)
    ap.add_argument("--memory-mb", type=int, default=1536)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="frontdesk-hostile-"))
    try:
        files = sorted(CORPUS.rglob("*.pdf")) + bombs(tmp / "bombs")
        env = dict(os.environ)
        env.update({
            "FRONTDESK_STORAGE__ROOT": str(tmp / "storage"), "FRONTDESK_STORAGE__SPOOL": str(tmp / "spool"),
            "FRONTDESK_DATABASE_URL": f"sqlite:///{tmp / 'frontdesk.db'}", "FRONTDESK_INBOX": str(tmp / "inbox"),
            "FRONTDESK_WATCH__LEDGER": str(tmp / "ledger.sqlite"), "FRONTDESK_PREFECT__REVIEW": "false",
            "FRONTDESK_EXTRACTION__READ_LIMIT_SECONDS": str(args.limit),
            "FRONTDESK_EXTRACTION__READ_MEMORY_MB": str(args.memory_mb), "FRONTDESK_WATCH__MAX_ATTEMPTS": "2",
        })
        # 1. each document alone, timed, through the same reading process the pipeline uses
        os.environ.update(env)
        from frontdesk.exceptions import InputFileError
        from frontdesk.extraction import Reader
        from frontdesk.settings import load_settings

        reader = Reader(load_settings())
        times: list[tuple[float, str, str]] = []
        for f in files:
            t = time.monotonic()
            try:
                reader.read_raw_all(f)
                what = "read"
            except InputFileError as exc:
                what = exc.reason
            times.append((time.monotonic() - t, f.name, what))
        times.sort(reverse=True)
        # 2. the plain tool, side by side: pdfinfo with the same wall-clock limit
        plain: list[float] = []
        for f in files:
            t = time.monotonic()
            with contextlib.suppress(subprocess.TimeoutExpired):
                subprocess.run(["pdfinfo", str(f)], capture_output=True, timeout=args.limit, check=False)
            plain.append(time.monotonic() - t)
        # 3. the whole corpus through `frontdesk watch --once`
        inbox = tmp / "inbox"
        inbox.mkdir()
        for f in files:
            if f.stat().st_size > 300 * 1024 * 1024:
                os.rename(f, inbox / f.name)  # the sparse bomb: ours, in the same temp folder
            else:
                shutil.copyfile(f, inbox / f"{f.parent.name}-{f.name}")
        t = time.monotonic()
        proc = subprocess.Popen([str(Path(sys.executable).with_name("frontdesk")), "watch", str(inbox), "--dispatch",
                                 "local", "--once", "--stable", "0.5", "--json"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        peak = TreePeak(proc.pid)
        peak.start()
        out, err = proc.communicate(timeout=3600)
        peak.stop.set()
        wall = time.monotonic() - t
        finished = json.loads(out.strip().splitlines()[-1])["finished"] if out.strip() else {}
        archived = sum(1 for p in (tmp / "archive").rglob("*") if p.is_file())
        failed = sum(1 for d in (tmp / "failed").iterdir() if d.is_dir()) if (tmp / "failed").is_dir() else 0
        left = sum(1 for p in inbox.iterdir()) + sum(1 for p in (tmp / "processing").iterdir() if p.is_file())
        print("| files | filed/archived | failed | left behind | exit code | tracebacks | peak memory (tree) | run wall |")
        print("|---|---|---|---|---|---|---|---|")
        print(f"| {len(files)} | {archived} | {failed} | {left} | {proc.returncode} | {err.count('Traceback')} | "
              f"{peak.peak / 2**20:.0f} MB | {wall:.0f} s |")
        print(f"\nwatch --once finished: {finished}")
        print(f"\n| slowest reads (limit {args.limit:g} s) | s | outcome |\n|---|---|---|")
        for sec, name, what in times[:8]:
            print(f"| {name} | {sec:.1f} | {what[:70]} |")
        ours, theirs = sum(s for s, _, _ in times), sum(plain)
        print(f"\nreading every file: frontdesk {ours:.1f} s, pdfinfo {theirs:.1f} s (ratio {ours / max(theirs, 1e-9):.1f})")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
