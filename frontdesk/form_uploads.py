"""A practice's form uploaded to the staff console to become a template (bring your own form, page).

The file a person uploads is untrusted input like any scan in the inbox, and it is checked the same way
intake checks files: refused over the size limit before it is kept (the smaller of
``extraction.max_file_mb`` and :data:`FORM_MAX_MB`), recognised by its first bytes (PDF, TIFF, JPEG or
PNG; the name it had on the person's computer is never used), and opened and read only in a process of
its own under the reading limits (``extraction.read_limit_seconds`` wall clock, ``read_memory_mb``
address space, ``max_image_megapixels``; at most :data:`MAX_FORM_PAGES` pages), so a hostile or broken
file fails alone with its reason and never hangs or bloats the console.

Where it is kept: a private folder of the console (0700, created for this console process and removed
when it stops), one sub-folder per upload named by an opaque id (``frm-`` and 16 hex digits); the
upload is removed when its template is written or the person discards it, and any upload older than
:data:`KEEP_HOURS` is swept. Nothing a request says names a path: an id that is not of that exact form
is simply not found.

What runs in the reading process is the core itself (:func:`frontdesk.onboarding.propose`,
:func:`~frontdesk.onboarding.apply_choices`, :func:`~frontdesk.onboarding.save_template`), the same
functions ``frontdesk forms add --accept --map`` calls; the answer comes back as plain JSON (the console
never unpickles what code that handled the upload wrote).
"""

from __future__ import annotations

import json
import os
import pickle
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from frontdesk.exceptions import ExitCode, FrontdeskError
from frontdesk.settings import Settings

FORM_MAX_MB = 20.0  # a blank form of a few pages is far smaller; intake's own limit applies when lower
MAX_FORM_PAGES = 10  # as for a scanned blank form in ``forms add``
KEEP_HOURS = 4.0  # an upload nobody accepted or discarded is removed after this long
PREVIEW_DPI = 110  # page images on the form page (about 940 px wide for a Letter page)
UPLOAD_ID = re.compile(r"frm-[0-9a-f]{16}")
KINDS = {"pdf": ".pdf", "tiff": ".tif", "jpeg": ".jpg", "png": ".png"}


class UploadRefused(FrontdeskError):
    """The uploaded form is refused or could not be read; the message says why in one line."""

    exit_code = ExitCode.bad_input


@dataclass(frozen=True)
class Upload:
    upload_id: str
    folder: Path

    @property
    def original(self) -> Path:
        return next((p for p in self.folder.glob("form.*") if p.suffix in KINDS.values()), self.folder / "form.pdf")

    @property
    def meta(self) -> dict[str, Any]:
        try:
            return dict(json.loads((self.folder / "meta.json").read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return {}

    def answer(self) -> dict[str, Any] | None:
        """The proposal as the reading process returned it (None before it has been read)."""
        try:
            return dict(json.loads((self.folder / "proposal.json").read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return None

    def page_image(self, page: int) -> Path | None:
        p = self.folder / f"page-{page}.png"
        return p if page >= 1 and p.is_file() else None


def limit_mb(settings: Settings) -> float:
    """The largest upload accepted: intake's per-file limit when it is lower than :data:`FORM_MAX_MB`."""
    mb = FORM_MAX_MB
    if settings.extraction.max_file_mb:
        mb = min(mb, settings.extraction.max_file_mb)
    return mb


def limit_bytes(settings: Settings) -> int:
    return int(limit_mb(settings) * 1024 * 1024)


def too_large(size: int, settings: Settings) -> str:
    return f"the file is {size / 1048576:.1f} MB, over the {limit_mb(settings):g} MB limit for a form"


class UploadArea:
    """The console's private folder for uploaded forms (0700; removed with :meth:`close`)."""

    def __init__(self, root: Path | None = None) -> None:
        if root is None:
            root = Path(tempfile.mkdtemp(prefix="frontdesk-console-forms-"))
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o700)
        self.root = root

    def keep(self, data: bytes, settings: Settings, **meta: Any) -> Upload:
        """Keep an uploaded file under a new opaque id, or refuse it (size, kind) and keep nothing."""
        self.sweep()
        if len(data) > limit_bytes(settings):
            raise UploadRefused(too_large(len(data), settings))
        upload_id = "frm-" + secrets.token_hex(8)
        folder = self.root / upload_id
        folder.mkdir(mode=0o700)
        probe = folder / "form.bin"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        from extractors.base import sniff

        kind = sniff(probe)
        if kind not in KINDS:
            shutil.rmtree(folder, ignore_errors=True)
            raise UploadRefused("the file is empty" if kind == "empty" else
                                "the file is not a PDF (or a TIFF, JPEG or PNG scan of the blank form)")
        probe.rename(folder / f"form{KINDS[kind]}")
        meta = {**meta, "kind": kind, "size": len(data), "at": time.time()}
        fd = os.open(folder / "meta.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(meta, fh)
        return Upload(upload_id, folder)

    def get(self, upload_id: str) -> Upload | None:
        if not UPLOAD_ID.fullmatch(upload_id):
            return None
        folder = self.root / upload_id
        return Upload(upload_id, folder) if folder.is_dir() else None

    def remove(self, upload_id: str) -> None:
        up = self.get(upload_id)
        if up is not None:
            shutil.rmtree(up.folder, ignore_errors=True)

    def sweep(self, older_than_hours: float = KEEP_HOURS) -> int:
        """Remove uploads nobody finished; returns how many."""
        cutoff = time.time() - older_than_hours * 3600
        n = 0
        for folder in self.root.glob("frm-*"):
            with suppress(OSError):
                if folder.stat().st_mtime < cutoff:
                    shutil.rmtree(folder, ignore_errors=True)
                    n += 1
        return n

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


# --------------------------------------------------------------------------------------------------
# The reading process
# --------------------------------------------------------------------------------------------------


def propose(upload: Upload, settings: Settings, form_id: str) -> dict[str, Any]:
    """Read the uploaded form and propose a key for every box (in a process of its own); the answer,
    with each page's size, is kept beside the upload together with a picture of every page."""
    answer = _run(settings, {"job": "propose", "path": str(upload.original), "form_id": form_id,
                             "folder": str(upload.folder)}, upload.folder)
    tmp = upload.folder / "proposal.json.part"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(answer, fh)
    tmp.replace(upload.folder / "proposal.json")
    return answer


def accept(upload: Upload, settings: Settings, form_id: str, choices: dict[str, str | None]) -> dict[str, Any]:
    """Write the template with a person's choices (box id -> key, or None to leave it out) to the first
    forms folder, as ``forms add FILE --id ID --map BOX=KEY ...`` does; returns the final proposal with
    ``template`` set."""
    return _run(settings, {"job": "accept", "path": str(upload.original), "form_id": form_id,
                           "choices": choices, "folder": str(upload.folder)}, upload.folder)


def _run(settings: Settings, job: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Run ``job`` in ``python -m frontdesk.form_uploads`` (a fresh interpreter in its own process group):
    the settings go in as a pickle (the console is trusted), the answer comes back as a JSON file."""
    answer = folder / f"answer-{secrets.token_hex(4)}.json"
    limit = settings.extraction.read_limit_seconds
    proc = subprocess.Popen([sys.executable, "-m", "frontdesk.form_uploads", str(answer)], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,  # a reader may quote the file
                            start_new_session=True)
    try:
        try:
            proc.communicate(pickle.dumps((settings, job)), timeout=limit)
        except subprocess.TimeoutExpired:
            raise UploadRefused(f"reading the form took longer than {limit:g} s and was stopped") from None
        try:
            data = json.loads(answer.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise UploadRefused(f"the form could not be read (the reading process ended with code {proc.returncode})") from None
    finally:
        if proc.poll() is None:
            with suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)  # the child and the tesseracts it started
            proc.wait(10)
        with suppress(OSError):
            answer.unlink()
    if not isinstance(data, dict):
        raise UploadRefused("the form could not be read")
    if "error" in data:
        raise UploadRefused(str(data["error"])[:300])
    return data


def _child(settings: Settings, job: dict[str, Any], answer: str) -> None:
    """In the reading process: do the job, write the answer as JSON."""
    from frontdesk.reading_process import _limit_memory, _limit_pixels

    result: dict[str, Any]
    try:
        _limit_memory(int(settings.extraction.read_memory_mb))
        _limit_pixels(settings.extraction.max_image_megapixels)
        result = _job(settings, job)
    except FrontdeskError as exc:
        name = Path(job["path"]).name  # our own name for the upload (form.pdf): the page says "the form"
        result = {"error": str(exc).replace(str(Path(job["path"]).parent) + "/", "").removeprefix(f"{name}: ")}
    except MemoryError:
        result = {"error": "the form needs more memory than a reading may use"}
    except Exception as exc:  # a damaged file can make any parser raise anything
        result = {"error": f"the form could not be read ({exc.__class__.__name__})"}
    fd = os.open(answer, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(result, fh)


def _job(settings: Settings, job: dict[str, Any]) -> dict[str, Any]:
    from frontdesk import onboarding
    from frontdesk.fields import load_vocabulary

    path = Path(job["path"])
    _check_pages(path)
    vocab = load_vocabulary(settings.fields_file)
    required = onboarding.required_keys(vocab, settings.fields_file)
    proposal = onboarding.propose(path, vocab, settings.fields_file, job["form_id"], required)
    if job["job"] == "propose":
        data = proposal.as_dict()
        data["page_sizes"] = [[round(p.width, 2), round(p.height, 2)] for p in proposal.pages]
        _pictures(proposal, Path(job["folder"]))
        return data
    if not settings.forms_dirs:
        raise UploadRefused("no forms folder is configured (forms_dirs)")
    onboarding.apply_choices(proposal, job["choices"], vocab)
    written = onboarding.save_template(proposal, Path(settings.forms_dirs[0]))
    data = proposal.as_dict()
    data["template"] = str(written)
    return data


def _check_pages(path: Path) -> None:
    from extractors.base import sniff

    if sniff(path) != "pdf":
        return  # images: the scan reader's own page limit (``forms add``) applies
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(str(path))
    except Exception:
        return  # the core's own check (open_pdf) says why, in its words
    try:
        if len(pdf) > MAX_FORM_PAGES:
            raise UploadRefused(f"the form has {len(pdf)} pages; a form may have at most {MAX_FORM_PAGES}")
    finally:
        pdf.close()


def _pictures(proposal: Any, folder: Path) -> None:
    """A PNG of every page as the person sees it, in the frame the boxes are measured in."""
    from PIL import Image

    scale = PREVIEW_DPI / 72
    if proposal.page_images is not None:  # a scan: the straightened page the boxes were found on
        images = []
        for gray, page in zip(proposal.page_images, proposal.pages, strict=True):
            im = Image.fromarray(gray)
            images.append(im.resize((max(1, round(page.width * scale)), max(1, round(page.height * scale))),
                                    Image.Resampling.LANCZOS))
    else:
        import pypdfium2 as pdfium

        pdf = pdfium.PdfDocument(str(proposal.source))
        try:
            images = [pdf[i].render(scale=scale, may_draw_forms=True).to_pil().convert("RGB") for i in range(len(pdf))]
        finally:
            pdf.close()
    for i, im in enumerate(images, start=1):
        fd = os.open(folder / f"page-{i}.png", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            im.save(fh, "PNG", optimize=True)


def main() -> int:
    """``python -m frontdesk.form_uploads ANSWER``: one job from stdin (pickled by the console)."""
    os.umask(0o077)
    settings, job = pickle.loads(sys.stdin.buffer.read())
    _child(settings, job, sys.argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
