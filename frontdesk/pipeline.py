"""The intake pipeline as plain stage functions. ``flows/intake.py`` wraps the same stages in Prefect
tasks; tests and scripts can run them without Prefect.

Stages: collect inputs -> intake (hash, extract, check, file original and record) -> letters (render every
needed letter, convert the batch to PDF in one LibreOffice call, file them) -> outcomes.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from frontdesk.exceptions import InputFileError
from frontdesk.extraction import Reader
from frontdesk.models import ExtractionResult, ProcessOutcome, StoredObject
from frontdesk.settings import Settings
from frontdesk.storage import Storage, open_storage, sha256_file
from frontdesk.validation import missing_insurance_items

log = logging.getLogger("frontdesk.pipeline")

SUPPORTED_SUFFIXES = {".pdf", ".tif", ".tiff", ".jpg", ".jpeg", ".png"}
_IGNORED_PREFIXES = (".", "~$", "._")
MISSING_INSURANCE_CODE = "insurance.missing_info"


def collect_inputs(paths: Iterable[Path]) -> list[Path]:
    """Files named directly are taken as they are (even with an odd suffix: they are reported, not
    skipped silently); folders contribute their supported, non-hidden files, sorted."""
    found: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for child in sorted(p.rglob("*")):
                if (child.is_file() and child.suffix.lower() in SUPPORTED_SUFFIXES
                        and not child.name.startswith(_IGNORED_PREFIXES)):
                    found.append(child)
        else:
            found.append(p)
    seen: set[Path] = set()
    unique = []
    for p in found:
        rp = p.resolve()
        if rp not in seen:
            seen.add(rp)
            unique.append(p)
    return unique


def document_id(sha256: str) -> str:
    """Opaque and stable: the same file always gets the same id, so filing it again changes nothing."""
    return f"doc-{sha256[:16]}"


def _suffix(path: Path) -> str:
    s = path.suffix.lower()
    return s if s in SUPPORTED_SUFFIXES else ".bin"


@dataclass
class IntakeWork:
    """One input on its way through the pipeline. Holds patient data in memory only."""

    input: Path
    sha256: str | None = None
    document_id: str | None = None
    status: str = "failed"
    result: ExtractionResult | None = None
    stored: list[StoredObject] = field(default_factory=list)
    letters: list[StoredObject] = field(default_factory=list)
    error: str | None = None
    prefix: str = ""

    def outcome(self) -> ProcessOutcome:
        return ProcessOutcome(
            input=str(self.input),
            status=self.status,  # type: ignore[arg-type]
            record_id=self.document_id,
            document_type=self.result.document_type if self.result else None,
            stored=self.stored,
            letters=self.letters,
            flags=self.result.flags if self.result else [],
            error=self.error,
        )


class Pipeline:
    """Settings, templates, vocabulary and storage, built once and shared by all documents of a run."""

    def __init__(self, settings: Settings, *, storage: Storage | None = None,
                 extra_forms_dirs: list[Path] | None = None, today: date | None = None) -> None:
        self.settings = settings
        self.reader = Reader(settings, extra_forms_dirs)
        self.storage = storage or open_storage(settings)
        self.today = today

    def _prefix(self, area: str, doc_id: str) -> str:
        now = datetime.now(UTC)
        return f"{area}/{now:%Y}/{now:%m}/{doc_id}"

    def intake(self, path: Path) -> IntakeWork:
        """Hash, extract, check and file one input. Bad input is filed under ``failed/`` with a reason."""
        work = IntakeWork(input=Path(path))
        try:
            work.sha256 = sha256_file(work.input)
        except OSError as exc:
            work.error = f"{work.input}: cannot read file ({exc.strerror or exc.__class__.__name__})"
            log.warning("input could not be opened: %s", exc.__class__.__name__)
            return work
        work.document_id = document_id(work.sha256)
        try:
            work.result = self.reader.extract(work.input)
        except InputFileError as exc:
            work.error = str(exc)
            self._file_failed(work, exc.reason)
            return work
        work.prefix = self._prefix("documents", work.document_id)
        ctype = mimetypes.guess_type(f"x{_suffix(work.input)}")[0] or "application/octet-stream"
        work.stored.append(self.storage.put_file(work.input, f"{work.prefix}/original{_suffix(work.input)}",
                                                 content_type=ctype))
        record = {
            "document_id": work.document_id,
            "sha256": work.sha256,
            "received_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "source_name": work.input.name,
            "extraction": work.result.model_dump(mode="json"),
        }
        work.stored.append(self.storage.put_bytes(
            json.dumps(record, indent=2, ensure_ascii=False).encode("utf-8"),
            f"{work.prefix}/extraction.json", content_type="application/json"))
        work.status = "needs_review" if work.result.needs_review() else "filed"
        log.info("filed %s as %s (%d flags)", work.document_id, work.status, len(work.result.flags))
        return work

    def _file_failed(self, work: IntakeWork, reason: str) -> None:
        assert work.document_id is not None
        prefix = self._prefix("failed", work.document_id)
        work.stored.append(self.storage.put_file(work.input, f"{prefix}/original{_suffix(work.input)}"))
        note = f"{reason}\nsource file: {work.input.name}\nsha256: {work.sha256}\n"
        work.stored.append(self.storage.put_bytes(note.encode("utf-8"), f"{prefix}/reason.txt",
                                                  content_type="text/plain"))
        work.status = "failed"
        log.warning("document %s could not be read; filed under failed/", work.document_id)

    def needs_missing_insurance_letter(self, work: IntakeWork) -> bool:
        return bool(work.result and work.result.document_type == "intake_form"
                    and any(f.code == MISSING_INSURANCE_CODE for f in work.result.flags))

    def letter_context(self, work: IntakeWork) -> dict[str, object]:
        """What the missing-insurance letter needs. Patient data stays in memory."""
        assert work.result is not None and work.document_id is not None
        r = work.result

        def s(key: str) -> str:
            v = r.value(key)
            return v if isinstance(v, str) else ""

        first, last = s("patient.first_name"), s("patient.last_name")
        city_line = " ".join(x for x in (f"{s('patient.address.city')},", s("patient.address.state"),
                                         s("patient.address.zip")) if x.strip(","))
        today = self.today or date.today()
        practice = self.settings.practice
        return {
            "practice": {"name": practice.name, "address_lines": list(practice.address_lines),
                         "phone": practice.phone},
            "letter_date": f"{today:%B} {today.day}, {today:%Y}",
            "patient": {"full_name": " ".join(x for x in (first, last) if x), "first_name": first or "Patient",
                        "address_lines": [x for x in (s("patient.address.street"), city_line) if x]},
            "missing_items": missing_insurance_items(r, self.reader.vocabulary),
            "reference": work.document_id.upper(),
        }

    def send_letters(self, works: Sequence[IntakeWork]) -> list[IntakeWork]:
        """Render every needed letter, convert them in one LibreOffice batch, and file the PDFs."""
        from frontdesk.convert import docx_to_pdf
        from frontdesk.rendering import render_docx

        todo = [w for w in works if self.needs_missing_insurance_letter(w) and not w.letters]
        if not todo:
            return list(works)
        template = self.settings.letters_dir / "missing_insurance.docx"
        with tempfile.TemporaryDirectory(prefix="frontdesk-letters-") as tmp:
            tmpdir = Path(tmp)
            docs = []
            for w in todo:
                docs.append(render_docx(template, self.letter_context(w), tmpdir / f"{w.document_id}.docx"))
            pdfs = docx_to_pdf(docs, tmpdir / "pdf")
            for w, pdf in zip(todo, pdfs, strict=True):
                w.letters.append(self.storage.put_file(pdf, f"{w.prefix}/letters/missing_insurance.pdf",
                                                       content_type="application/pdf"))
        log.info("filed %d missing-insurance letters", len(todo))
        return list(works)


def process_batch(paths: Sequence[Path], pipeline: Pipeline) -> list[ProcessOutcome]:
    """All stages in order, without Prefect."""
    works = [pipeline.intake(p) for p in collect_inputs(paths)]
    works = pipeline.send_letters(works)
    return [w.outcome() for w in works]
