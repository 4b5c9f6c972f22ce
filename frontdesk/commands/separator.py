"""``frontdesk separator-sheet OUT.pdf``: print sheets that split a scanned stack into documents.

Staff who scan a pile of mixed paperwork in one go put one of these between documents; the reader starts
a new document after it and drops the sheet. Forms split on their own (a form's first page starts a
document), so the sheets are only needed between documents that are not forms, or by habit.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from frontdesk.commands.help import examples
from frontdesk.exceptions import ExitCode

BARCODES = ("qr", "code128")


def register(sub: Any) -> None:
    p = sub.add_parser("separator-sheet", help="write a printable separator sheet for scanned stacks",
                       **examples(
        ("frontdesk separator-sheet separator.pdf --copies 5", "five separator sheets to put between forms in a stack"),
        ("frontdesk separator-sheet separator-code128.pdf --barcode code128", "the same with a Code 128 barcode")))
    p.add_argument("out", type=Path, help="the PDF to write")
    p.add_argument("--copies", type=int, default=1, help="pages in the PDF (default 1)")
    p.add_argument("--barcode", choices=BARCODES, default="qr",
                   help="qr (default) or code128, a 1-D barcode like the sheets of scanner software")
    p.set_defaults(handler=run)


def write_separator_sheet(out: Path, code: str, *, practice: str = "", copies: int = 1,
                          barcode: str = "qr") -> Path:
    """A US Letter page with a large QR or Code 128 barcode reading ``code`` and a plain instruction.
    The bars are drawn wide enough (~3 pt a module) to survive a 204x98 dpi fax."""
    from reportlab.graphics import renderPDF
    from reportlab.graphics.barcode import code128, qr
    from reportlab.graphics.shapes import Drawing
    from reportlab.lib.pagesizes import letter
    from reportlab.pdfgen import canvas

    out.parent.mkdir(parents=True, exist_ok=True)
    w, h = letter
    c = canvas.Canvas(str(out), pagesize=letter, invariant=True)
    c.setTitle("Separator sheet")
    for _ in range(max(1, copies)):
        c.setFont("Helvetica-Bold", 28)
        c.drawCentredString(w / 2, h - 110, "SEPARATOR SHEET")
        c.setFont("Helvetica", 13)
        c.drawCentredString(w / 2, h - 140, "Place this page on top of each document in a stack you scan.")
        c.drawCentredString(w / 2, h - 158, "It starts a new document and is not filed. Print on one side only.")
        size = 3.2 * 72
        if barcode == "code128":
            size /= 2
            probe = code128.Code128(code, barWidth=1, humanReadable=False)
            modules = probe.width - probe.lquiet - probe.rquiet  # + 10 modules of quiet zone each side
            bars = code128.Code128(code, barWidth=min(3.0, (w - 72) / (modules + 20)), barHeight=size,
                                   humanReadable=False)
            bars.drawOn(c, (w - bars.width) / 2, h / 2 - size / 2 - 30)
        else:
            widget = qr.QrCodeWidget(code, barLevel="M")
            x0, y0, x1, y1 = widget.getBounds()
            d = Drawing(size, size, transform=[size / (x1 - x0), 0, 0, size / (y1 - y0), 0, 0])
            d.add(widget)
            renderPDF.draw(d, c, (w - size) / 2, h / 2 - size / 2 - 30)
        c.setFont("Helvetica", 11)
        c.drawCentredString(w / 2, h / 2 - size / 2 - 60, code)
        if practice:
            c.drawCentredString(w / 2, 60, practice)
        c.showPage()
    c.save()
    return out


def run(args: argparse.Namespace, ctx: Any) -> int:
    settings = ctx.settings
    codes = settings.extraction.separator_codes
    if not codes:
        print("frontdesk: extraction.separator_codes is empty: separator sheets are switched off")
        return ExitCode.config
    path = write_separator_sheet(args.out, codes[0], practice=settings.practice.name, copies=args.copies,
                                 barcode=args.barcode)
    print(f"wrote {path}: {args.copies} separator sheet(s), {args.barcode}, reading {codes[0]!r}")
    return ExitCode.ok
