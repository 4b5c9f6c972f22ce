"""Running tesseract: one bounded subprocess per call, single-threaded, fed through stdin.

Why not pytesseract: every call here needs its own timeout, ``OMP_THREAD_LIMIT=1`` in the child's
environment only (OpenMP threads make tesseract several times slower on small machines; we run calls
side by side instead), no temporary files, and word boxes with confidences (TSV) in one go.

Why slim language data: the stock ``Latin`` model (every Latin-script letter: ü, ç, ë, ñ, ø, ł...) carries
an 89 MB word list that takes ~1 s to load per call; field values are names and numbers that no word list
helps with. The first use copies the recogniser without its word list into a cache folder (0.1 s to
load). Without ``Latin`` installed the stock ``eng`` model is used; it knows no diacritic but é, and
names read with it are never trusted (see ``LANG_KNOWS_DIACRITICS``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np

TESSERACT = "tesseract"


class OcrError(Exception):
    """Tesseract is missing, failed, or took longer than allowed. The message holds no document content."""


@dataclass(frozen=True)
class Word:
    text: str
    conf: float  # 0..100
    left: int
    top: int
    width: int
    height: int
    line: tuple[int, int, int]  # (block, paragraph, line) as tesseract grouped it

    @property
    def cy(self) -> float:
        return self.top + self.height / 2


@dataclass(frozen=True)
class OcrEngine:
    """Where the language data is and which language to read field values with."""

    tessdata: Path
    lang: str  # "Latin" when available, else "eng"
    alt_lang: str | None = None  # a second, independently trained model for second opinions
    name_lang: str | None = None  # names read again with this (Vietnamese first: stacked diacritics)

    @property
    def knows_diacritics(self) -> bool:
        return self.lang != "eng"


def _system_tessdata() -> Path | None:
    try:
        out = subprocess.run([TESSERACT, "--list-langs"], capture_output=True, text=True, timeout=20,
                             env=_env()).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r'"([^"]+)"', out)
    return Path(m.group(1)) if m else None


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["OMP_THREAD_LIMIT"] = "1"
    return env


def _slim(src: Path, dest: Path, lang: str) -> None:
    """Copy ``lang`` without its LSTM word list (the slow part to load)."""
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        prefix = Path(tmp) / f"{lang}."
        subprocess.run(["combine_tessdata", "-u", str(src), str(prefix)], capture_output=True, check=True,
                       timeout=120)
        for part in Path(tmp).glob(f"{lang}.*"):
            if part.name.endswith(("lstm-word-dawg", "word-dawg", "freq-dawg")):
                part.unlink()
        subprocess.run(["combine_tessdata", str(prefix)], capture_output=True, check=True, timeout=120)
        built = Path(tmp) / f"{lang}.traineddata"
        if not built.is_file():
            raise OcrError(f"could not build slim {lang} language data")
        os.replace(built, dest / f"{lang}.traineddata")


_engine_lock = threading.Lock()


@cache
def engine(cache_dir: Path | None = None) -> OcrEngine:
    """The OCR set-up, built once per process (and once per machine for the slim data)."""
    with _engine_lock:
        if shutil.which(TESSERACT) is None:
            raise OcrError("tesseract is not installed")
        system = _system_tessdata()
        if system is None:
            raise OcrError("tesseract has no language data")
        base = cache_dir or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "frontdesk"
        dest = base / "tessdata"
        langs = [lang for lang in ("Latin", "eng") if (system / f"{lang}.traineddata").is_file()]
        if not langs:
            raise OcrError("tesseract has neither Latin nor eng language data")
        # Vietnamese names (Nguyễn, Trần, Thảo) carry two marks on one letter, which the Latin model misreads
        # as other letters (å, ñ); the Vietnamese model, placed first, reads them and still knows Latin.
        vie = (system / "vie.traineddata").is_file() and langs[0] == "Latin"
        try:
            for lang in [*langs, *(["vie"] if vie else [])]:
                src = system / f"{lang}.traineddata"
                target = dest / f"{lang}.traineddata"
                stamp = dest / f"{lang}.source"
                want = f"{src.stat().st_size}:{src.stat().st_mtime_ns}"
                try:
                    ok = target.is_file() and stamp.read_text() == want
                except OSError:
                    ok = False
                if not ok:
                    dest.mkdir(parents=True, exist_ok=True)
                    _slim(src, dest, lang)
                    stamp.write_text(want)
            where = dest
        except (OSError, subprocess.SubprocessError, OcrError):
            # No writable cache or no combine_tessdata: the stock data works, it only starts slower.
            where = system
        return OcrEngine(where, langs[0], langs[1] if len(langs) > 1 else None,
                         name_lang="vie+Latin" if vie else None)


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


_width: int | None = None


def pool() -> ThreadPoolExecutor:
    """One pool per process, as wide as the machine (or :func:`set_width`): each worker drives one
    tesseract process."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=_width or max(1, os.cpu_count() or 1), thread_name_prefix="ocr")
        return _pool


def _forget_pool_in_child() -> None:
    """A forked process (one document's reader) has none of its parent's pool threads: start afresh."""
    global _pool, _pool_lock
    _pool = None
    _pool_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_pool_in_child)


def width() -> int:
    """Tesseract processes one page may use at once in this process (see :func:`set_width`)."""
    return _width or max(1, os.cpu_count() or 1)


def set_width(threads: int) -> None:
    """How many tesseract processes one page may use at once. A process that is one of several reading
    side by side (one per core) sets 1: its page is then read in one tesseract call instead of one per
    core, which saves a model load per page and does not oversubscribe the cores."""
    global _pool, _width
    with _pool_lock:
        _width = max(1, threads)
        if _pool is not None and _pool._max_workers != _width:
            _pool.shutdown(wait=True)
            _pool = None


def _encode(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise OcrError("could not encode an image for OCR")
    return buf.tobytes()


def run(img: np.ndarray, *, eng: OcrEngine, psm: int = 6, lang: str | None = None,
        whitelist: str | None = None, timeout: float = 60.0, dpi: int = 300) -> list[Word]:
    """Words that tesseract finds in ``img`` (grayscale), with boxes and confidences."""
    cmd = [TESSERACT, "stdin", "stdout", "--tessdata-dir", str(eng.tessdata), "-l", lang or eng.lang,
           "--psm", str(psm), "--dpi", str(dpi), "-c", "tessedit_create_tsv=1"]
    if whitelist:
        cmd += ["-c", f"tessedit_char_whitelist={whitelist}"]
    return parse_tsv(_tesseract(cmd, img, timeout))


def _tesseract(cmd: list[str], img: np.ndarray, timeout: float) -> str:
    """Run one bounded tesseract process on ``img`` (fed through stdin); its output as text."""
    try:
        proc = subprocess.run(cmd, input=_encode(img), capture_output=True, timeout=timeout, env=_env())
    except subprocess.TimeoutExpired:
        raise OcrError(f"tesseract took longer than {timeout:g} s") from None
    except OSError as exc:
        raise OcrError(f"tesseract could not be started ({exc.__class__.__name__})") from None
    if proc.returncode != 0:
        raise OcrError(f"tesseract failed (exit {proc.returncode})")
    return proc.stdout.decode("utf-8", "replace")


@dataclass(frozen=True)
class Glyph:
    """One recognised character and its box (pixels of the image read)."""

    text: str
    left: int
    top: int
    right: int
    bottom: int


_GLYPH = re.compile(r"x_bboxes (\d+) (\d+) (\d+) (\d+); x_conf [\d.]+'>([^<]+)<")


def run_glyphs(img: np.ndarray, *, eng: OcrEngine, psm: int = 7, lang: str | None = None,
               timeout: float = 60.0, dpi: int = 300) -> list[Glyph]:
    """Characters with their own boxes (hOCR), for checks that need a glyph's shape: where its bottom is."""
    cmd = [TESSERACT, "stdin", "stdout", "--tessdata-dir", str(eng.tessdata), "-l", lang or eng.lang,
           "--psm", str(psm), "--dpi", str(dpi), "-c", "hocr_char_boxes=1", "-c", "tessedit_create_hocr=1"]
    import html

    return [Glyph(html.unescape(m.group(5)), int(m.group(1)), int(m.group(2)), int(m.group(3)), int(m.group(4)))
            for m in _GLYPH.finditer(_tesseract(cmd, img, timeout))]


def parse_tsv(tsv: str) -> list[Word]:
    words: list[Word] = []
    for row in tsv.splitlines()[1:]:
        cols = row.split("\t")
        if len(cols) < 12 or cols[0] != "5":
            continue
        text = cols[11].strip()
        if not text:
            continue
        try:
            words.append(Word(text, float(cols[10]), int(cols[6]), int(cols[7]), int(cols[8]), int(cols[9]),
                              (int(cols[2]), int(cols[3]), int(cols[4]))))
        except ValueError:
            continue
    return words


# --------------------------------------------------------------------------------------------------
# The handwriting engine
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HandReading:
    """One line read by the handwriting engine: its text and its score (0..1)."""

    text: str
    score: float
    weakest: float = 0.0  # the least sure character's confidence (0..1)


class HandEngine:
    """A second, neural recogniser for handwriting: rapidocr's PP-OCR text recogniser on onnxruntime.

    Why a second engine: tesseract's LSTM was trained on print and reads about a quarter of handwritten field
    crops exactly; PP-OCR's recogniser, trained on far more varied text, reads about two thirds, and its
    mistakes are of another kind, so where the two agree the value is very likely right. Why only the
    recogniser: a field crop already holds one line, and the text detector upscales the crop and costs about
    2 s a field against ~0.03 s. The models ship inside the ``rapidocr`` wheel; nothing is downloaded.
    One thread (cores are shared out between reading processes, as for tesseract); switches are passed on
    every call, because rapidocr keeps those of its previous call."""

    name = "rapidocr"

    def __init__(self) -> None:
        import logging

        from rapidocr import RapidOCR

        self._ocr = RapidOCR(params={
            "Global.log_level": "error",
            "Global.text_score": 0.0,
            "Global.use_cls": False,
            "EngineConfig.onnxruntime.intra_op_num_threads": 1,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        })
        logging.getLogger("RapidOCR").setLevel(logging.ERROR)
        self._lock = threading.Lock()  # one onnxruntime session, used by one thread at a time

    def read(self, img: np.ndarray) -> HandReading:
        """One line of text in ``img`` (grayscale, white paper)."""
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        with self._lock:
            try:
                out = self._ocr(img, use_det=False, use_cls=False, use_rec=True, return_word_box=True)
            except Exception as exc:  # noqa: BLE001 - an engine failure is one unread field, never a crash
                raise OcrError(f"the handwriting engine failed ({exc.__class__.__name__})") from None
        txts = getattr(out, "txts", None) or ()
        scores = getattr(out, "scores", None) or ()
        if not txts:
            return HandReading("", 0.0)
        confs = [float(c) for w in (getattr(out, "word_results", None) or ()) for c in (getattr(w, "confs", None) or ())]
        score = float(min(scores)) if scores else 0.0
        return HandReading(" ".join(str(t) for t in txts).strip(), score, min(confs) if confs else score)


_hand: HandEngine | None = None
_hand_failed = False


def hand_engine() -> HandEngine | None:
    """The handwriting engine of this process, loaded on first use (about 0.2 s, ~60 MB); None where
    rapidocr is not installed or its models cannot load (tesseract then reads handwriting alone, and its
    doubtful readings go to review as before)."""
    global _hand, _hand_failed
    with _engine_lock:
        if _hand is None and not _hand_failed:
            try:
                _hand = HandEngine()
            except Exception:  # noqa: BLE001 - a missing optional engine must not stop reading
                _hand_failed = True
        return _hand
