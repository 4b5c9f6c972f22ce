"""Is reading a scanned form cheaper than OCR of the whole page? Times both on the same page images.

For each of N generated one-page scans (default 20, tier ``scan300``), in the same run and interleaved so
that machine load hits both alike:

* ``read``: ``Reader.extract(scan)`` in a warm process (templates loaded), from the scan file to checked
  fields: page decoding, registration, zonal OCR, checkboxes, signature, validation;
* ``plain``: ``tesseract PAGE.png -`` on that scan's page image (300 dpi PNG), ``OMP_THREAD_LIMIT=1``.

Prints the medians and the ratio read/plain (median of per-form ratios). The goal is at most 0.5 in
wall-clock time. CPU seconds (this process plus its tesseract children) are printed too: on a machine
that other work keeps busy, wall-clock time of a reader that runs two tesseract processes side by side
suffers more than that of one process, and CPU time shows the work each side does regardless.

Run: ``python bench/ocr_speed.py [--n 20] [--tier scan300] [--seed 5]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import cv2  # noqa: E402

from extractors.images import Limits, iter_image_pages, iter_pdf_pages  # noqa: E402
from extractors.pdf import open_pdf  # noqa: E402
from frontdesk.extraction import Reader  # noqa: E402
from tests.fixtures import scans  # noqa: E402


def page_png(scan: Path, out: Path) -> Path:
    """The scan's first page as the 300 dpi grayscale image tesseract would be given."""
    if scan.suffix == ".pdf":
        page = next(iter_pdf_pages(scan, open_pdf(scan), Limits()))
    else:
        page = next(iter_image_pages(scan, Limits()))
    cv2.imwrite(str(out), page.gray)
    return out


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def plain_tesseract(png: Path) -> tuple[float, float]:
    env = dict(os.environ, OMP_THREAD_LIMIT="1")
    t0, c0 = time.perf_counter(), _cpu()
    subprocess.run(["tesseract", str(png), "-"], capture_output=True, check=True, env=env, timeout=300)
    return time.perf_counter() - t0, _cpu() - c0


def measure(reader: Reader, n: int, tier: str, seed: int, folder: Path) -> dict[str, list[float]]:
    cases = scans.generate_scans(folder, n, seed=seed, tiers=(tier,))
    reader.extract(cases[0].path)  # warm-up: templates rendered, OCR data prepared
    out: dict[str, list[float]] = {"read": [], "plain": [], "read_cpu": [], "plain_cpu": []}
    for i, case in enumerate(cases):
        png = page_png(case.path, folder / f"page-{i:03d}.png")
        t0, c0 = time.perf_counter(), _cpu()
        reader.extract(case.path)
        out["read"].append(time.perf_counter() - t0)
        out["read_cpu"].append(_cpu() - c0)
        wall, cpu = plain_tesseract(png)
        out["plain"].append(wall)
        out["plain_cpu"].append(cpu)
    return out


def main(argv: list[str] | None = None) -> int:
    from frontdesk.settings import load_settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--tier", default="scan300", choices=scans.TIERS)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)
    reader = Reader(load_settings())
    with tempfile.TemporaryDirectory(prefix="frontdesk-speed-") as tmp:
        m = measure(reader, args.n, args.tier, args.seed, Path(tmp))
    ratios = [r / p for r, p in zip(m["read"], m["plain"], strict=True)]
    cpu_ratios = [r / p for r, p in zip(m["read_cpu"], m["plain_cpu"], strict=True)]
    load = os.getloadavg()[0]
    print(f"forms: {len(ratios)} ({args.tier}, one page each), cores: {os.cpu_count()}, load average {load:.1f}")
    print(f"read scanned form (median):      {statistics.median(m['read']):.2f} s wall, "
          f"{statistics.median(m['read_cpu']):.2f} s CPU")
    print(f"plain tesseract page (median):   {statistics.median(m['plain']):.2f} s wall, "
          f"{statistics.median(m['plain_cpu']):.2f} s CPU")
    print(f"ratio read/plain (median of per-form ratios): {statistics.median(ratios):.2f} wall  (goal <= 0.50), "
          f"{statistics.median(cpu_ratios):.2f} CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
