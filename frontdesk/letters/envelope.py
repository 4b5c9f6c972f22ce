"""Where the addresses go so that a tri-folded US Letter sheet shows them through a #10 double-window
envelope, and what must stay blank around them.

The placement follows one published print-and-mail specification, named here so it can be checked:
PostalMethods' Developer's Guide, "How To Place Content In The Document"
(https://www.postalmethods.com/resources/developers-guide/), for their standard #10 double-window
envelope and a letter-size sheet folded in three:

* return address (top window): a rectangle whose top-left corner is 0.5" from the left and 0.5" from
  the top of the page, at most 3.5" wide and 0.792" high;
* recipient address (bottom window): top-left corner 0.5" from the left and 2.042" from the top, at
  most 3.5" wide and 0.875" high;
* the body of the letter starts 3 3/8" (3.375") from the top; content stays 0.5" from the top, left
  and bottom edges and 0.6" from the right.

Their measurements assume the sheet sits at the bottom of the envelope; if it moves up, the lower lines
(street, city, ZIP) stay in view. Because the sheet can also slide sideways (an 8.5" sheet in a 9.5"
envelope) and up (a 3.67" panel in a 4.125" envelope), anything within the top 3.375" and the left 4.75"
of the first page could show through a window: that area must hold the two address blocks and nothing
else. 4.75" also covers Lob's #10 double-window envelope (windows 3.25" x 0.875" and 4" x 1", both 0.625"
from the envelope's left edge; https://help.lob.com/print-and-mail/designing-mail/mail-piece-design-specs/
letter-envelopes), so a letter laid out here fits either service's envelopes.
A #10 envelope takes up to 6 tri-folded sheets; thicker pieces need a flat envelope.
"""

from __future__ import annotations

from dataclasses import dataclass

POINTS_PER_INCH = 72.0


@dataclass(frozen=True)
class Rect:
    """A rectangle on the page in inches, measured from the page's top-left corner (as a ruler is)."""

    left: float
    top: float
    width: float
    height: float

    @property
    def right(self) -> float:
        return self.left + self.width

    @property
    def bottom(self) -> float:
        return self.top + self.height

    def points(self) -> tuple[float, float, float, float]:
        """(x0, top, x1, bottom) in PDF points from the top-left corner, as pdfplumber measures."""
        k = POINTS_PER_INCH
        return (self.left * k, self.top * k, self.right * k, self.bottom * k)

    def pixels(self, dpi: float) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) in pixels of a page rendered at ``dpi``."""
        return (round(self.left * dpi), round(self.top * dpi), round(self.right * dpi), round(self.bottom * dpi))


@dataclass(frozen=True)
class WindowEnvelope:
    """An envelope with two windows and the page layout that fills them."""

    name: str
    source: str
    page_width: float
    page_height: float
    return_address: Rect
    recipient_address: Rect
    keep_clear: Rect
    body_top: float
    margin: float
    max_sheets: int


POSTALMETHODS_10_DOUBLE_WINDOW = WindowEnvelope(
    name="PostalMethods #10 double-window envelope, US Letter tri-folded",
    source="https://www.postalmethods.com/resources/developers-guide/ (How To Place Content In The Document)",
    page_width=8.5,
    page_height=11.0,
    return_address=Rect(left=0.5, top=0.5, width=3.5, height=0.792),
    recipient_address=Rect(left=0.5, top=2.042, width=3.5, height=0.875),
    keep_clear=Rect(left=0.0, top=0.0, width=4.75, height=3.375),
    body_top=3.375,
    margin=0.5,
    max_sheets=6,
)

#: The envelope every Frontdesk letter and statement is laid out for.
ENVELOPE = POSTALMETHODS_10_DOUBLE_WINDOW
