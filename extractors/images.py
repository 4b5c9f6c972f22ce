"""Turn any scanned input into grayscale page images at one working resolution, one page at a time.

Why one page at a time: a stack of forms can hold a hundred pages; only the pages of the document being
read are kept in memory. Why one resolution (300 dpi, square pixels): zone geometry, ink thresholds and
tesseract all behave alike whatever the device was (a 204x98 dpi fax included).

Hostile input is bounded here: an image's size is checked against a pixel limit before it is decoded
(Pillow's own decompression-bomb guard is a warning below twice its limit), the page count is capped,
and ``pdftoppm`` runs as a subprocess with a timeout in a scratch folder that is always removed.
"""

from __future__ import annotations

import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageSequence

WORK_DPI = 300
LETTER_SHORT_IN = 8.5
MAX_ASPECT = 6.0  # a long side more than six times the short one is no page (and slow to decode if damaged)


class UnreadableImage(Exception):
    """The pages cannot be decoded; ``reason`` is one line without document content."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class PageImage:
    index: int  # 0-based page of the input file
    gray: np.ndarray  # uint8, WORK_DPI, square pixels (empty for a PDF page that holds no image)
    source_dpi: float | None = None  # the coarser of the scan's own resolutions, when it said
    bilevel: bool = False  # black and white only, no grey: a fax (or a scanner set to "black & white")

    @property
    def drawn(self) -> bool:
        """False for a PDF page without any image: not a scan, so there is nothing to read by OCR."""
        return self.gray.size > 0


@dataclass(frozen=True)
class Limits:
    max_pages: int = 100
    max_megapixels: float = 60.0
    rasterise_timeout: float = 30.0


def _plausible_dpi(dpi: object) -> float | None:
    try:
        v = float(dpi)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return v if 90 <= v <= 1250 else None


def _to_work(gray: np.ndarray, xdpi: float | None, ydpi: float | None) -> np.ndarray:
    """Resample to WORK_DPI with square pixels. Without a believable resolution the page is taken to be
    letter-sized across its short side (registration absorbs what is left of the error)."""
    h, w = gray.shape[:2]
    if xdpi is None or ydpi is None:
        guess = min(w, h) / LETTER_SHORT_IN
        xdpi = ydpi = guess
    fx, fy = WORK_DPI / xdpi, WORK_DPI / ydpi
    if abs(fx - 1) < 0.01 and abs(fy - 1) < 0.01:
        return np.ascontiguousarray(gray)
    interp = cv2.INTER_AREA if fx * fy < 1 else cv2.INTER_LINEAR
    nw, nh = max(1, round(w * fx)), max(1, round(h * fy))
    if nw * nh > 200_000_000:
        raise UnreadableImage("page is too large once brought to 300 dpi")
    return cv2.resize(gray, (nw, nh), interpolation=interp)


def _pil_gray(im: Image.Image) -> np.ndarray:
    if im.mode == "1":
        return np.asarray(im.convert("L"))
    if im.mode in ("I;16", "I;16B", "I", "F"):
        a = np.asarray(im, dtype=np.float32)
        lo, hi = float(a.min()), float(a.max())
        return ((a - lo) / max(1.0, hi - lo) * 255).astype(np.uint8)
    if im.mode in ("RGBA", "LA", "P", "PA"):
        im = im.convert("RGBA")
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, im)
    return np.asarray(im.convert("L"))


def _check_size(w: int, h: int, limits: Limits) -> None:
    if w <= 0 or h <= 0:
        raise UnreadableImage("image has no pixels")
    if max(w, h) > MAX_ASPECT * min(w, h):
        raise UnreadableImage(f"image is {w} x {h} pixels: not the shape of a page, card or photo")
    if w * h > limits.max_megapixels * 1e6:
        raise UnreadableImage(f"image too large ({w * h / 1e6:.0f} megapixels, limit {limits.max_megapixels:g})")


def _open_image(path: Path, limits: Limits) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UnreadableImage("image too large (over the decompression-bomb limit)") from None
    except Exception as exc:
        raise UnreadableImage(f"damaged image ({exc.__class__.__name__})") from None
    _check_size(*im.size, limits)
    return im


def _bilevel(gray: np.ndarray) -> bool:
    """Only pure black and pure white, as the scan came (before any resampling)."""
    return bool(gray.size) and bool(np.all((gray == 0) | (gray == 255)))


def iter_image_pages(path: Path, limits: Limits) -> Iterator[PageImage]:
    """Pages of a TIFF (every frame), JPEG or PNG."""
    im = _open_image(path, limits)
    try:
        n = getattr(im, "n_frames", 1)
        if n > limits.max_pages:
            raise UnreadableImage(f"too many pages ({n}, limit {limits.max_pages}); please split the scan")
        for i, frame in enumerate(ImageSequence.Iterator(im)):
            _check_size(*frame.size, limits)
            dpi = frame.info.get("dpi") or (None, None)
            xdpi, ydpi = (_plausible_dpi(dpi[0]), _plausible_dpi(dpi[1])) if isinstance(dpi, tuple) else (None, None)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error", Image.DecompressionBombWarning)
                    frame.load()  # bounded by the reading process's time and memory limits
                    gray = _pil_gray(frame)
            except (Image.DecompressionBombError, Image.DecompressionBombWarning):
                raise UnreadableImage("image too large (over the decompression-bomb limit)") from None
            except (OSError, ValueError, SyntaxError, EOFError) as exc:
                raise UnreadableImage(f"damaged or truncated image on page {i + 1} ({exc.__class__.__name__})") from None
            if xdpi is not None and ydpi is None:
                ydpi = xdpi
            coarse = min(xdpi, ydpi) if xdpi is not None and ydpi is not None else None
            yield PageImage(i, _to_work(gray, xdpi, ydpi), coarse, bilevel=_bilevel(gray))
    finally:
        im.close()


def _pdf_page_image(page: object, limits: Limits) -> np.ndarray | None:
    """The page's single full-page image, decoded without rendering (fast, and exact pixels); None when the
    page is anything else (several images, vector content, an unsupported filter)."""
    try:
        resources = page["/Resources"]  # type: ignore[index]
        xobjects = resources.get("/XObject") if resources is not None else None
        if xobjects is None:
            return None
        xobjects = xobjects.get_object()
        images = [xobjects[k].get_object() for k in xobjects]
        images = [x for x in images if x.get("/Subtype") == "/Image"]
        if len(images) != 1:
            return None
        w, h = int(images[0].get("/Width", 0)), int(images[0].get("/Height", 0))
        _check_size(w, h, limits)
        filters = images[0].get("/Filter")
        names = [str(f) for f in filters] if isinstance(filters, list) else [str(filters)]
        if any(f in ("/JBIG2Decode", "/JPXDecode") for f in names):
            return None  # let poppler handle these
        if "/DCTDecode" in names:
            # The JPEG's own header, not the PDF's /Width and /Height, says how large it decodes: a 1 KB
            # file can declare 100 x 100 and hold 40,000 x 40,000. Checked before anything decodes it.
            _check_size(*_jpeg_size(images[0]), limits)
        if names == ["/DCTDecode"] and int(images[0].get("/BitsPerComponent", 8)) == 8:
            # A scanner's JPEG: libjpeg-turbo through OpenCV decodes it several times faster than Pillow.
            data = images[0].get_data()
            gray = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
            if gray is not None and gray.shape == (h, w) and "/Decode" not in images[0]:
                return gray
        files = page.images  # type: ignore[attr-defined]
        if len(files) != 1:
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = files[0].image
        gray = _pil_gray(im)
        if bool(images[0].get("/ImageMask", False)) or (im.mode == "1" and "/Decode" in images[0]):
            return None  # inverted or stencil images: poppler gets polarity right
        return gray
    except UnreadableImage:
        raise
    except Exception:
        return None


def _jpeg_size(xobject: object) -> tuple[int, int]:
    """Width and height from a PDF image's JPEG header (its frame marker), read without decoding."""
    import io

    try:
        raw = xobject.get_data()  # type: ignore[attr-defined]  # DCTDecode data is the JPEG file itself
        with Image.open(io.BytesIO(raw)) as im:
            return im.size
    except Image.DecompressionBombError:
        raise UnreadableImage("image too large (over the decompression-bomb limit)") from None
    except Exception:
        raise UnreadableImage("damaged JPEG image inside the PDF") from None


def _has_images(page: object, depth: int = 0) -> bool:
    """Does the page draw any image (directly or inside a form XObject)? Unknown structure counts as yes."""
    try:
        resources = page["/Resources"] if depth == 0 else page.get("/Resources")  # type: ignore[index,attr-defined]
        xobjects = resources.get_object().get("/XObject") if resources is not None else None
        if xobjects is None:
            return False
        xobjects = xobjects.get_object()
        for key in xobjects:
            x = xobjects[key].get_object()
            sub = x.get("/Subtype")
            if sub == "/Image" or (sub == "/Form" and depth < 3 and _has_images(x, depth + 1)):
                return True
        return False
    except Exception:
        return True


def _rasterise(path: Path, page_no: int, limits: Limits, scratch: Path) -> np.ndarray:
    """One page through poppler, in a subprocess with a timeout (a hostile PDF can loop or explode)."""
    out = scratch / f"p{page_no}"
    try:
        subprocess.run(["pdftoppm", "-r", str(WORK_DPI), "-gray", "-f", str(page_no), "-l", str(page_no),
                        "-singlefile", str(path), str(out)], capture_output=True,
                       timeout=limits.rasterise_timeout, check=False)
    except subprocess.TimeoutExpired:
        raise UnreadableImage(f"page {page_no} took longer than {limits.rasterise_timeout:g} s to draw") from None
    except OSError:
        raise UnreadableImage("pdftoppm (poppler-utils) is not installed") from None
    pgm = out.with_suffix(".pgm")
    if not pgm.is_file():
        raise UnreadableImage(f"page {page_no} cannot be drawn")
    img = cv2.imread(str(pgm), cv2.IMREAD_GRAYSCALE)
    pgm.unlink(missing_ok=True)
    if img is None:
        raise UnreadableImage(f"page {page_no} cannot be drawn")
    return img


def iter_pdf_pages(path: Path, reader: object, limits: Limits) -> Iterator[PageImage]:
    """Pages of an image-only PDF: the embedded scan when a page is one image, else poppler's rendering."""
    pages = reader.pages  # type: ignore[attr-defined]
    n = len(pages)
    if n > limits.max_pages:
        raise UnreadableImage(f"too many pages ({n}, limit {limits.max_pages}); please split the scan")
    with tempfile.TemporaryDirectory(prefix="frontdesk-") as tmp:
        for i, page in enumerate(pages):
            try:
                w_pt, h_pt = float(page.mediabox.width), float(page.mediabox.height)
            except Exception:
                w_pt = h_pt = 0.0
            if (w_pt * WORK_DPI / 72) * (h_pt * WORK_DPI / 72) > limits.max_megapixels * 1e6:
                raise UnreadableImage(f"page {i + 1} is too large to draw at {WORK_DPI} dpi")
            if not _has_images(page):
                # Text or drawings whose text cannot be extracted (broken fonts, outlines): not a scan.
                # Rendering it would cost time on what is most often a damaged file.
                yield PageImage(i, np.zeros((0, 0), np.uint8))
                continue
            gray = _pdf_page_image(page, limits)
            if gray is not None and w_pt > 0 and h_pt > 0:
                # The image must fill the page (a scanner's output), else render to keep the layout. Its
                # orientation does not matter: registration finds any rotation.
                ih, iw = gray.shape
                for pw, ph in ((w_pt, h_pt), (h_pt, w_pt)):
                    if abs(iw / ih - pw / ph) < 0.03:
                        yield PageImage(i, _to_work(gray, iw / (pw / 72), ih / (ph / 72)), bilevel=_bilevel(gray))
                        break
                else:
                    yield PageImage(i, _rasterise(path, i + 1, limits, Path(tmp)))
                continue
            yield PageImage(i, _rasterise(path, i + 1, limits, Path(tmp)))
