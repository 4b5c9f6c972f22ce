"""Is reading a scanned form cheaper than OCR of the whole page? Times both on the same page images.

For each of N generated one-page scans (default 20, tier ``scan300``), in the same run and interleaved so
that machine load hits both alike:

* ``read``: ``Reader.extract(scan)`` in a warm process (templates loaded), from the scan file to checked
  fields: page decoding, registration, zonal OCR, checkboxes, signature, validation;
* ``plain``: ``tesseract PAGE.png -`` on that scan's page image (300 dpi PNG), ``OMP_THREAD_LIMIT=1``.

Prints the medians and the ratio read/plain (median of per-form ratios). The goal is at most 0.5.

Run: ``python bench/ocr_speed.py [--n 20] [--tier scan300] [--seed 5]``.
"""

from __future__ import annotations

import argparse
import os
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


def plain_tesseract(png: Path) -> float:
    env = dict(os.environ, OMP_THREAD_LIMIT="1")
    t0 = time.perf_counter()
    subprocess.run(["tesseract", str(png), "-"], capture_output=True, check=True, env=env, timeout=300)
    return time.perf_counter() - t0


def measure(reader: Reader, n: int, tier: str, seed: int, folder: Path) -> tuple[list[float], list[float]]:
    cases = scans.generate_scans(folder, n, seed=seed, tiers=(tier,))
    reader.extract(cases[0].path)  # warm-up: templates rendered, OCR data prepared
    reads, plains = [], []
    for i, case in enumerate(cases):
        png = page_png(case.path, folder / f"page-{i:03d}.png")
        t0 = time.perf_counter()
        reader.extract(case.path)
        reads.append(time.perf_counter() - t0)
        plains.append(plain_tesseract(png))
    return reads, plains


def main(argv: list[str] | None = None) -> int:
    from frontdesk.settings import load_settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--tier", default="scan300", choices=scans.TIERS)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)
    reader = Reader(load_settings())
    with tempfile.TemporaryDirectory(prefix="frontdesk-speed-") as tmp:
        reads, plains = measure(reader, args.n, args.tier, args.seed, Path(tmp))
    ratios = [r / p for r, p in zip(reads, plains, strict=True)]
    print(f"forms: {len(reads)} ({args.tier}, one page each), cores: {os.cpu_count()}")
    print(f"read scanned form (median):      {statistics.median(reads):.2f} s")
    print(f"plain tesseract page (median):   {statistics.median(plains):.2f} s")
    print(f"ratio read/plain (median of per-form ratios): {statistics.median(ratios):.2f}  (goal <= 0.50)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
