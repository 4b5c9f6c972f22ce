"""Which template page is this scan page, and where does every point of the template fall on it?

Both questions are answered by image features (ORB keypoints + RANSAC), as ABBYY-style fixed-form readers
and OMRChecker do: keypoints of the blank template, rendered once, are matched to keypoints of the scan,
and an affine fit over the consistent matches maps scan pixels onto template pixels. ORB descriptors are
rotation-invariant, so a page fed sideways or upside down and a skew of a few degrees come out of the
same fit; no OCR pass is needed to recognise the form. Fits that are too weak or not close to a rigid
motion (a mirrored page, a strong shear) are rejected rather than trusted.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pypdfium2 as pdfium

from extractors.images import WORK_DPI
from extractors.templates import FormTemplate

REG_SCALE = 1 / 3  # features are found at 100 dpi: fast, and coarse enough to ignore paper noise
N_FEATURES = 1500
MIN_INLIERS = 60  # fewer consistent matches than this is not a recognised page
RATIO = 0.8


@dataclass
class TemplatePageView:
    """A template page as pixels: the blank rendering, its ink, and its keypoints."""

    form_id: str
    page: int
    gray: np.ndarray  # blank template at WORK_DPI
    ink: np.ndarray  # bool mask of printed ink at WORK_DPI
    keypoints: np.ndarray  # (n, 2) float32, at REG_SCALE
    descriptors: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        h, w = self.gray.shape
        return w, h


@dataclass
class PageMatch:
    view: TemplatePageView
    matrix: np.ndarray  # 2x3, scan pixels (WORK_DPI) -> template pixels (WORK_DPI)
    inliers: int
    good: int
    problem: str | None = None  # why the fit is not trusted, or None
    rivals: tuple[str, ...] = ()  # other forms this page could as well be: it is not recognised

    @property
    def rotation(self) -> float:
        """Degrees the scan is turned relative to the template (for reports)."""
        return float(np.degrees(np.arctan2(self.matrix[1, 0], self.matrix[0, 0])))


def _orb() -> cv2.ORB:
    return cv2.ORB_create(nfeatures=N_FEATURES, scaleFactor=1.2, nlevels=4,  # type: ignore[attr-defined]
                          edgeThreshold=15, patchSize=31, fastThreshold=10)


def features(gray_small: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    kp, des = _orb().detectAndCompute(gray_small, None)
    pts = np.array([k.pt for k in kp], np.float32) if kp else np.zeros((0, 2), np.float32)
    return pts, des


def small(gray: np.ndarray) -> np.ndarray:
    return cv2.resize(gray, None, fx=REG_SCALE, fy=REG_SCALE, interpolation=cv2.INTER_AREA)


def render_template(path: Path, dpi: int = WORK_DPI) -> list[np.ndarray]:
    """The blank template's pages (our own trusted file, so it is rendered in-process)."""
    pdf = pdfium.PdfDocument(str(path))
    try:
        return [np.asarray(pdf[i].render(scale=dpi / 72, grayscale=True, may_draw_forms=False).to_pil().convert("L"))
                for i in range(len(pdf))]
    finally:
        pdf.close()


_views: dict[tuple[Path, float], list[TemplatePageView]] = {}
_views_lock = threading.Lock()


def views(tpl: FormTemplate) -> list[TemplatePageView]:
    """Pixel views of every page of a template, computed once per template file version."""
    try:
        key = (tpl.path, tpl.path.stat().st_mtime)
    except OSError:
        key = (tpl.path, 0.0)
    with _views_lock:
        cached = _views.get(key)
        if cached is not None:
            return cached
        out: list[TemplatePageView] = []
        for i, gray in enumerate(render_template(tpl.path)):
            pts, des = features(small(gray))
            out.append(TemplatePageView(tpl.form_id, i, gray, gray < 200, pts,
                                        des if des is not None else np.zeros((0, 32), np.uint8)))
        _views[key] = out
        return out


_matcher = threading.local()


def _bf() -> cv2.BFMatcher:
    m = getattr(_matcher, "bf", None)
    if m is None:
        m = _matcher.bf = cv2.BFMatcher(cv2.NORM_HAMMING)
    return m


def match(scan_pts: np.ndarray, scan_des: np.ndarray | None, view: TemplatePageView) -> PageMatch | None:
    """Fit the scan page (features at REG_SCALE) to one template page; None when nothing fits."""
    if scan_des is None or len(scan_des) < 10 or len(view.descriptors) < 10:
        return None
    pairs = _bf().knnMatch(scan_des, view.descriptors, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < RATIO * p[1].distance]
    if len(good) < MIN_INLIERS // 2:
        return None
    src = scan_pts[[g.queryIdx for g in good]]
    dst = view.keypoints[[g.trainIdx for g in good]]
    # A similarity (turn, shift, one scale) is what a scanner does once the page is at square pixels; its
    # four parameters are harder to fool than a full affine fit. ``refine`` corrects what is left.
    m, inl = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=2.0, maxIters=3000,
                                         confidence=0.995, refineIters=10)
    if m is None or inl is None:
        return None
    inliers = int(inl.sum())
    # Refit on the inliers only (least squares), then express the fit at working resolution: the
    # scale cancels out for the linear part and multiplies the translation.
    keep = inl.ravel().astype(bool)
    if keep.sum() >= 6:
        refined, _ = cv2.estimateAffinePartial2D(src[keep], dst[keep], method=cv2.LMEDS)
        if refined is not None:
            m = refined
    return PageMatch(view, to_full(m), inliers, len(good), _fit_problem(to_full(m), inliers))


def to_full(m: np.ndarray, s: float = REG_SCALE) -> np.ndarray:
    """A fit between downscaled images as a fit between full-size ones. Pixel centres matter: full-size
    x maps to s*x + c with c = s/2 - 1/2, and on a turned page that half pixel does not cancel out."""
    a = m[:, :2].astype(np.float64)
    b = m[:, 2].astype(np.float64)
    c = np.array([s / 2 - 0.5, s / 2 - 0.5])
    full = np.zeros((2, 3))
    full[:, :2] = a
    full[:, 2] = (a @ c + b - c) / s
    return full


def _fit_problem(m: np.ndarray, inliers: int) -> str | None:
    """A fit is trusted only when it is close to what a scanner can do: turn, shift, scale a little."""
    if inliers < MIN_INLIERS:
        return "too few matching features"
    a = m[:, :2]
    det = float(np.linalg.det(a))
    if det <= 0:
        return "mirrored page"
    sv = np.linalg.svd(a, compute_uv=False)
    if not 0.7 <= float(np.sqrt(det)) <= 1.4:
        return "page scale far from the template's"
    if sv[0] / sv[1] > 1.08:
        return "page is stretched or sheared"
    return None


#: A second form whose fit has at least this share of the best fit's inliers is a rival: forms of one
#: practice share their header, identity rows and box style, and a damaged or faxed page can fit the
#: wrong one with as many inliers (medical history vs registration: 248 vs 247 on a fax).
RIVAL_SHARE = 0.5
#: Rivals are told apart by how much of each template's printed ink is on the page where the fit puts it
#: (its labels, lines and boxes): about 0.97 for the right form on clean to fax-quality scans, 0.35-0.45
#: for another form of the same practice. Below INK_FLOOR, or with less than INK_MARGIN between the two,
#: the page is not recognised and goes to a person; a wrong form is never read silently.
INK_FLOOR = 0.7
INK_MARGIN = 0.2
_INK_SLACK = cv2.getStructuringElement(cv2.MORPH_RECT, (7, 7))  # the feature fit is good to a few pixels


def ink_found(scan_gray: np.ndarray, m: PageMatch) -> float:
    """Share of the template page's printed ink that is dark on the scan where the fit ``m`` puts it."""
    dark = cv2.dilate((warp(scan_gray, m) < 170).astype(np.uint8), _INK_SLACK).astype(bool)
    ink = m.view.ink
    return float((ink & dark).sum()) / max(1, int(ink.sum()))


def best_match(scan_gray: np.ndarray, templates: list[FormTemplate]) -> tuple[PageMatch | None, int]:
    """The template page this scan page is, by consistent feature matches; also the number of keypoints
    found on the scan (few keypoints: a near-blank page). When pages of two forms fit about as well, the
    one whose printed ink is on the page wins; if neither clearly does, the match carries ``rivals``."""
    pts, des = features(small(scan_gray))
    best: PageMatch | None = None
    per_form: dict[str, PageMatch] = {}
    for tpl in templates:
        for view in views(tpl):
            m = match(pts, des, view)
            if m is None:
                continue
            if best is None or m.inliers > best.inliers:
                best = m
            if m.problem is None and (view.form_id not in per_form or m.inliers > per_form[view.form_id].inliers):
                per_form[view.form_id] = m
    if best is None or best.problem is not None:
        return best, len(pts)
    close = [m for m in per_form.values() if m.inliers >= RIVAL_SHARE * best.inliers]
    if len(close) < 2:
        return best, len(pts)
    scored = sorted(((ink_found(scan_gray, m), m) for m in close), key=lambda sm: sm[0], reverse=True)
    (top_ink, top), (next_ink, _) = scored[0], scored[1]
    if top_ink < INK_FLOOR or top_ink - next_ink < INK_MARGIN:
        top.rivals = tuple(m.view.form_id for ink, m in scored[1:] if top_ink - ink < INK_MARGIN
                           or top_ink < INK_FLOOR)
    return top, len(pts)


def _spread(points: list[tuple[float, float]], n: int) -> list[tuple[float, float]]:
    """Up to ``n`` of the points, far apart from each other (greedy farthest-point pick)."""
    if len(points) <= n:
        return points
    pts = np.array(points, np.float32)
    chosen = [0]
    dist = np.linalg.norm(pts - pts[0], axis=1)
    while len(chosen) < n:
        i = int(dist.argmax())
        chosen.append(i)
        dist = np.minimum(dist, np.linalg.norm(pts - pts[i], axis=1))
    return [points[i] for i in chosen]


def refine(scan_gray: np.ndarray, m: PageMatch, anchors: list[tuple[float, float]], win: int = 160,
           n_anchors: int = 14) -> np.ndarray:
    """The scan in the template's frame, with the fit polished to a fraction of a pixel.

    The feature fit is good to a few pixels; box edges are thinner than that. Around anchor points
    (corners of the widget boxes, where lines run both ways) small windows of the scan are warped and
    compared with the blank template by phase correlation, and an affine correction is fitted to the
    local shifts. Only the final page is warped whole."""
    t = m.view.gray
    h, w = t.shape
    src, dst = [], []
    hann = cv2.createHanningWindow((win, win), cv2.CV_32F)
    for x, y in _spread(anchors, n_anchors):
        x0, y0 = int(x - win / 2), int(y - win / 2)
        if x0 < 0 or y0 < 0 or x0 + win > w or y0 + win > h:
            continue
        a = t[y0:y0 + win, x0:x0 + win].astype(np.float32)
        if float(a.std()) < 8:
            continue
        local = m.matrix.copy()
        local[:, 2] -= (x0, y0)  # warp just this window of the template frame
        b = cv2.warpAffine(scan_gray, local, (win, win), flags=cv2.INTER_LINEAR, borderValue=255).astype(np.float32)
        if float(b.std()) < 8:
            continue
        (dx, dy), response = cv2.phaseCorrelate(a, b, hann)
        if response < 0.15 or abs(dx) > 12 or abs(dy) > 12:
            continue
        src.append((x + dx, y + dy))  # where the template's point sits in the warped scan
        dst.append((x, y))
    corr: np.ndarray | None = None
    if len(src) >= 4:
        corr, inl = cv2.estimateAffine2D(np.array(src, np.float32), np.array(dst, np.float32), method=cv2.RANSAC,
                                         ransacReprojThreshold=1.5)
        if inl is None or int(inl.sum()) < 4:
            corr = None
    elif src:
        d = np.median(np.array(dst, np.float32) - np.array(src, np.float32), axis=0)
        corr = np.array([[1, 0, d[0]], [0, 1, d[1]]], np.float64)
    if corr is not None:
        m.matrix = (np.vstack([corr, [0, 0, 1]]) @ np.vstack([m.matrix, [0, 0, 1]]))[:2]
    return warp(scan_gray, m)


def warp(scan_gray: np.ndarray, m: PageMatch) -> np.ndarray:
    """The scan page resampled into the template's frame: template coordinates index it directly."""
    w, h = m.view.size
    return cv2.warpAffine(scan_gray, m.matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=255)
