"""The extraction stage: read a document, normalise and check every field. No Prefect, no storage."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from extractors import RawDocument, TemplateRegistry, UnreadableDocument, read_document
from frontdesk.exceptions import EncryptedInputError, InputFileError
from frontdesk.fields import Vocabulary, load_vocabulary
from frontdesk.models import ExtractionResult, Flag
from frontdesk.settings import Settings
from frontdesk.validation import validate


class Reader:
    """Templates and vocabulary, loaded once per process and shared by every document."""

    def __init__(self, settings: Settings, extra_forms_dirs: list[Path] | None = None) -> None:
        self.settings = settings
        self.forms_dirs = [*settings.forms_dirs, *(extra_forms_dirs or [])]

    @cached_property
    def registry(self) -> TemplateRegistry:
        return TemplateRegistry(self.forms_dirs)

    @cached_property
    def vocabulary(self) -> Vocabulary:
        return load_vocabulary(self.settings.fields_file)

    def read_raw(self, path: Path) -> RawDocument:
        try:
            return read_document(
                path, self.registry,
                match_threshold=self.settings.extraction.template_match_threshold,
                timeout=self.settings.extraction.read_timeout,
            )
        except UnreadableDocument as exc:
            cls = EncryptedInputError if exc.encrypted else InputFileError
            raise cls(path, exc.reason) from None

    def extract(self, path: Path) -> ExtractionResult:
        """Read and check one document; raise InputFileError when it cannot be read at all."""
        raw = self.read_raw(path)
        return to_result(raw, self.vocabulary, self.settings.extraction.low_confidence_threshold)


def to_result(raw: RawDocument, vocab: Vocabulary, low_confidence: float) -> ExtractionResult:
    result = ExtractionResult(
        document_type=raw.document_type,  # type: ignore[arg-type]
        form=raw.form,
        method=raw.method,  # type: ignore[arg-type]
        pages=raw.pages,
        flags=[Flag(code=f.code, severity=f.severity, field=f.field, message=f.message) for f in raw.flags],  # type: ignore[arg-type]
    )
    if raw.document_type == "unknown":
        return result
    return validate(result, raw.fields, vocab, present=raw.present, low_confidence=low_confidence)
