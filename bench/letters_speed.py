"""Letters per minute: rendering + batched LibreOffice conversion versus one ``soffice`` call per letter.

    python bench/letters_speed.py                   # 200 letters, both ways, side by side
    python bench/letters_speed.py --count 500       # the issue's acceptance size
    python bench/letters_speed.py --baseline 50     # per-letter baseline on 50 letters, extrapolated (said so)

Both ways render the same letters (four kinds, seeded fictional recipients, each name unique) from the
shipped templates, then convert them to PDF:

* batched: :func:`frontdesk.convert.docx_to_pdf` (chunks of at most 50 per LibreOffice call,
  ``--workers`` calls side by side, each with its own profile);
* baseline: one ``soffice --headless --convert-to pdf`` process per letter, one after another, reusing
  one profile that is created before the clock starts (the most favourable case for the baseline).

The letters are split into rounds and each round runs both ways, one right after the other, so a
machine whose load changes during the run (a shared CI box) slows both alike; the per-round ratios are
printed to show how steady the comparison was. Every PDF of both runs is read back: the text in the
envelope's recipient window must be that letter's recipient, and the whole text must contain the name.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from frontdesk.convert import CHUNK_SIZE, default_workers, docx_to_pdf, soffice_binary  # noqa: E402
from frontdesk.letters.envelope import ENVELOPE  # noqa: E402
from frontdesk.letters.kinds import KINDS, sample_context  # noqa: E402
from frontdesk.rendering import render_docx  # noqa: E402

FIRST = ("Dana", "Luis", "Mei", "Omar", "Grace", "Tomasz", "Aisha", "Ravi", "Ellen", "Kofi", "Zoë", "José", "Inés",
         "Björn", "Siobhán", "D'Andre", "Noël", "Chloé", "Søren", "Thảo", "Amara", "Yusuf", "Hana", "Pedro",
         "Olga", "Malik", "Priya", "Sven", "Lucía", "Kenji")
LAST = ("Miller", "Garcia", "Chen", "Okafor", "Nowak", "Patel", "Smith", "Haddad", "Lindqvist", "Brown", "O'Neil",
        "Núñez", "D'Angelo", "Nguyễn", "Kowalski", "Schmidt", "Rossi", "Dubois", "Ivanova", "Yamamoto", "Kim",
        "Hernández", "Müller", "Silva", "Jensen", "Adeyemi", "Cohen", "Murphy", "Novák", "Torres")
STREETS = ("Linden Avenue", "Harbor Street", "Oak Street", "Maple Drive", "Lincoln Road", "Prairie Lane")
LETTER_KINDS = [k for k in KINDS if k != "patient_statement"]


def contexts(count: int, seed: int) -> list[tuple[str, dict[str, Any]]]:
    """``count`` letters of the four letter kinds, each to a different person."""
    rnd = random.Random(seed)
    pairs = [(f, last) for f in FIRST for last in LAST]
    rnd.shuffle(pairs)
    if count > len(pairs):
        raise SystemExit(f"at most {len(pairs)} distinct recipients")
    out = []
    for index in range(count):
        kind = LETTER_KINDS[index % len(LETTER_KINDS)]
        first, last = pairs[index]
        ctx = sample_context(kind)
        ctx["patient"] = {"full_name": f"{first} {last}", "first_name": first,
                          "address_lines": [f"{rnd.randrange(1, 9999)} {rnd.choice(STREETS)}",
                                            f"Springfield, IL 627{rnd.randrange(100):02d}"]}
        ctx["reference"] = f"BENCH-{index:04d}"
        out.append((kind, ctx))
    return out


def render_all(letters: list[tuple[str, dict[str, Any]]], folder: Path, start: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [render_docx(ROOT / "templates" / "letters" / KINDS[kind].template_name, ctx, folder / f"letter{i:04d}.docx")
            for i, (kind, ctx) in enumerate(letters, start=start)]


def per_letter(binary: str, docs: list[Path], out: Path, profile: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    pdfs = []
    for doc in docs:
        subprocess.run([binary, f"-env:UserInstallation={profile.as_uri()}", "--headless", "--convert-to", "pdf",
                        "--outdir", str(out), str(doc)], capture_output=True, check=False, timeout=300)
        pdfs.append(out / f"{doc.stem}.pdf")
    return pdfs


def wrong_recipients(pdfs: list[Path], letters: list[tuple[str, dict[str, Any]]]) -> int:
    """PDFs whose recipient window or text does not carry their own recipient's name."""
    import pdfplumber

    x0, top, x1, bottom = ENVELOPE.recipient_address.points()
    wrong = 0
    for pdf, (_, ctx) in zip(pdfs, letters, strict=True):
        name = ctx["patient"]["full_name"]
        try:
            with pdfplumber.open(pdf) as doc:
                window = doc.pages[0].crop((x0 - 2, top - 2, x1 + 2, bottom + 2)).extract_text() or ""
                text = "\n".join(page.extract_text() or "" for page in doc.pages)
        except Exception:
            wrong += 1
            continue
        if window.splitlines()[:1] != [name] or name not in text:
            wrong += 1
    return wrong


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="letters to render and convert (default 200)")
    parser.add_argument("--baseline", type=int, default=None,
                        help="per-letter soffice calls on only this many letters, extrapolated (default: all)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds of the side-by-side (default: count/100)")
    parser.add_argument("--workers", type=int, default=default_workers(), help="LibreOffice processes side by side")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--keep", type=Path, help="keep the letters and PDFs in this folder")
    args = parser.parse_args(argv)
    binary = soffice_binary()
    letters = contexts(args.count, args.seed)
    base_n = min(args.baseline or args.count, args.count)
    rounds = max(1, min(args.rounds or max(1, args.count // 100), base_n))
    work = Path(tempfile.mkdtemp(prefix="letters-speed-")) if args.keep is None else args.keep
    try:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"{args.count} letters ({', '.join(LETTER_KINDS)}), {os.cpu_count()} cores, load {load:.1f}, "
              f"{rounds} round(s), LibreOffice {binary}", flush=True)
        profile = work / "baseline-profile"
        warm = render_all(letters[:1], work / "warmup")
        per_letter(binary, warm, work / "warmup-pdf", profile)  # the profile exists before timing starts

        batched = baseline = render_time = 0.0
        pdfs: list[Path] = []
        base_pdfs: list[Path] = []
        ratios = []
        bounds = [round(i * args.count / rounds) for i in range(rounds + 1)]
        base_bounds = [round(i * base_n / rounds) for i in range(rounds + 1)]
        for r in range(rounds):
            part = letters[bounds[r]:bounds[r + 1]]
            started = time.monotonic()
            docs = render_all(part, work / "batched" / "docx", bounds[r])
            rendered = time.monotonic()
            pdfs += docx_to_pdf(docs, work / "batched" / "pdf", workers=args.workers)
            took = time.monotonic() - started
            batched += took
            render_time += rendered - started

            base_part = letters[base_bounds[r]:base_bounds[r + 1]]
            started = time.monotonic()
            base_docs = render_all(base_part, work / "baseline" / "docx", base_bounds[r])
            base_pdfs += per_letter(binary, base_docs, work / "baseline" / "pdf", profile)
            base_took = time.monotonic() - started
            baseline += base_took
            ratios.append((base_took / max(len(base_part), 1)) / (took / len(part)))
            print(f"  round {r + 1}: batched {len(part)} in {took:.1f} s, one call per letter {len(base_part)} in "
                  f"{base_took:.1f} s (x{ratios[-1]:.1f})", flush=True)

        projected = baseline * args.count / base_n
        note = "" if base_n == args.count else f"  (measured on {base_n} letters, extrapolated to {args.count})"
        print(f"batched:  {batched:7.1f} s  (render {render_time:.1f} s; chunks of at most {CHUNK_SIZE}, "
              f"{args.workers} worker(s))  {args.count / batched * 60:7.1f} letters/minute")
        print(f"baseline: {projected:7.1f} s  (one soffice call per letter, one after another)  "
              f"{args.count / projected * 60:7.1f} letters/minute{note}")
        print(f"speed-up: {projected / batched:.1f}x  (rounds from x{min(ratios):.1f} to x{max(ratios):.1f})")

        wrong = wrong_recipients(pdfs, letters)
        wrong_base = wrong_recipients(base_pdfs, letters[:base_n])
        print(f"read back: batched {args.count - wrong}/{args.count} PDFs show their own recipient in the window "
              f"and text; baseline {base_n - wrong_base}/{base_n}")
        return 0 if wrong == 0 and wrong_base == 0 else 1
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
