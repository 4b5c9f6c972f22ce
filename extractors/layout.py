"""Find the answer areas of a printed blank form: boxes, underlines, check boxes and signature lines.

A practice that only has a paper form (or a flattened PDF of it) has no widgets to tell us where the
answers go. People find them by the printed furniture: a rectangle to write in, a rule to write on, a
small square to tick. This module finds the same furniture in the page image (300 dpi gray) with line
morphology, so the form can become a template whose widgets sit where a person writes. It knows nothing
about what a box means; the words around it (the labels) are read by the caller.

Coordinates returned are points with a top-left origin (pdfplumber's), like template widgets.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from extractors.images import WORK_DPI

PT = WORK_DPI / 72  # pixels per point
INK = 160  # darker than this (after stretching paper to white) is printed ink
TEXT_BOX_MIN_H, TEXT_BOX_MAX_H = 11.0, 48.0  # points: a box one writes a line of text in
TEXT_BOX_MIN_W = 28.0
CHECK_MIN, CHECK_MAX = 6.5, 20.0  # points: the side of a check box
UNDERLINE_MIN_W = 30.0  # points: a rule shorter than this is a dash or an underlined word
WRITE_HEIGHT = 18.0  # points above an underline where the answer is written
MAX_LINE_THICKNESS = 4.0  # points: thicker horizontal ink is a shaded band, not a rule


@dataclass(frozen=True)
class AnswerArea:
    """One place where a person writes or ticks. ``kind``: "text" (a box or a line), "checkbox"."""

    page: int
    rect: tuple[float, float, float, float]  # x0, top, x1, bottom in points
    kind: str
    drawn_as: str  # "box" | "underline" | "checkbox": how the form shows it (for the proposal's reason)


def _ink(gray: np.ndarray) -> np.ndarray:
    sample = gray[::5, ::5]
    paper = float(np.percentile(sample, 90))
    dark = float(np.percentile(sample, 1))
    if paper - dark < 40:
        return np.zeros(gray.shape, np.uint8)
    level = dark + (paper - dark) * (INK / 255.0)
    return ((gray < level) * 255).astype(np.uint8)


def _segments(mask: np.ndarray, horizontal: bool, min_len_px: int) -> list[tuple[int, int, int, int]]:
    """Straight strokes at least ``min_len_px`` long: (x0, y0, x1, y1) boxes of their components."""
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (min_len_px, 1) if horizontal else (1, min_len_px))
    lines = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
    # Bridge breaks of a scanned rule (noise, a faint toner line) shorter than a few pixels.
    bridge = cv2.getStructuringElement(cv2.MORPH_RECT, (7, 1) if horizontal else (1, 7))
    lines = cv2.morphologyEx(lines, cv2.MORPH_CLOSE, bridge)
    n, _labels, stats, _c = cv2.connectedComponentsWithStats(lines, connectivity=8)
    out = []
    for i in range(1, n):
        x, y, w, h, _area = (int(v) for v in stats[i])
        out.append((x, y, x + w, y + h))
    return out


def _boxes(hmask: np.ndarray, vmask: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Rectangles closed on four sides: the holes of the rule mask, as pixel boxes of their insides."""
    grid = cv2.bitwise_or(hmask, vmask)
    grid = cv2.dilate(grid, np.ones((3, 3), np.uint8))
    contours, hierarchy = cv2.findContours(grid, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    found: list[tuple[int, int, int, int]] = []
    if hierarchy is None:
        return found
    for i, cnt in enumerate(contours):
        if hierarchy[0][i][3] < 0:  # an outer contour: the rules themselves; holes are the insides
            continue
        x, y, w, h = cv2.boundingRect(cnt)
        if w * h <= 0:
            continue
        fill = cv2.contourArea(cnt) / float(w * h)
        if fill < 0.85:  # not a rectangle (a letter's counter, a crossing of rules)
            continue
        found.append((x - 1, y - 1, x + w + 1, y + h + 1))
    return found


def _overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Share of ``a``'s area that ``b`` covers."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    return w * h / max(1e-6, (a[2] - a[0]) * (a[3] - a[1]))


def detect_areas(gray: np.ndarray, page: int, words: list[tuple[float, float, float, float]]) -> list[AnswerArea]:
    """Answer areas of one blank page (``gray`` at WORK_DPI). ``words`` are the printed words' boxes in
    points: a rectangle with printed text inside is a frame around text (a notice), not a place to write,
    and a rule under printed words underlines them."""
    mask = _ink(gray)
    hmask = cv2.morphologyEx(mask, cv2.MORPH_OPEN,
                             cv2.getStructuringElement(cv2.MORPH_RECT, (max(8, int(CHECK_MIN * PT * 0.8)), 1)))
    vmask = cv2.morphologyEx(mask, cv2.MORPH_OPEN,
                             cv2.getStructuringElement(cv2.MORPH_RECT, (1, max(8, int(CHECK_MIN * PT * 0.8)))))
    areas: list[AnswerArea] = []
    taken: list[tuple[float, float, float, float]] = []

    def has_words(rect: tuple[float, float, float, float], share: float = 0.5) -> bool:
        return any(_overlaps(w, rect) >= share for w in words)

    for x0, y0, x1, y1 in sorted(_boxes(hmask, vmask), key=lambda b: (b[1], b[0])):
        r = (x0 / PT, y0 / PT, x1 / PT, y1 / PT)
        w, h = r[2] - r[0], r[3] - r[1]
        if CHECK_MIN <= w <= CHECK_MAX and CHECK_MIN <= h <= CHECK_MAX and 0.75 <= w / h <= 1.33:
            kind, drawn = "checkbox", "checkbox"
        elif TEXT_BOX_MIN_H <= h <= TEXT_BOX_MAX_H and w >= TEXT_BOX_MIN_W:
            kind, drawn = "text", "box"
        else:
            continue
        if has_words(r) or any(_overlaps(r, t) > 0.3 for t in taken):
            continue
        areas.append(AnswerArea(page, r, kind, drawn))
        taken.append(r)

    min_len = int(UNDERLINE_MIN_W * PT)
    for x0, y0, x1, y1 in _segments(hmask, True, min_len):
        if (y1 - y0) > MAX_LINE_THICKNESS * PT:
            continue
        line = (x0 / PT, y0 / PT, x1 / PT, y1 / PT)
        # A rule that is the edge of a box found above is part of that box.
        near_box = any(line[1] >= t[1] - 3 and line[3] <= t[3] + 3 and min(line[2], t[2]) - max(line[0], t[0])
                       > 0.5 * (line[2] - line[0]) for t in taken)
        if near_box:
            continue
        rect = (line[0], line[1] - WRITE_HEIGHT, line[2], line[1] - 0.5)
        if has_words(rect, 0.35):  # printed text sits on it: an underlined heading or a table rule
            continue
        # Vertical rules rising from the line mean a table or a box we could not close: leave it.
        if any(_overlaps(rect, t) > 0.3 for t in taken):
            continue
        areas.append(AnswerArea(page, rect, "text", "underline"))
        taken.append(rect)
    return sorted(areas, key=lambda a: (a.page, round(a.rect[1] / 6), a.rect[0]))
