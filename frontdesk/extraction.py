"""The extraction stage: read a document, normalise and check every field. No Prefect, no storage."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from extractors import (
    Limits,
    RawDocument,
    ScanOptions,
    TemplateRegistry,
    UnreadableDocument,
    read_documents,
    spacy_model,
)
from frontdesk.exceptions import ConfigError, EncryptedInputError, InputFileError
from frontdesk.field_flags import normaliser_for, validate
from frontdesk.fields import Vocabulary, load_vocabulary
from frontdesk.models import X12_TYPES, ExtractionResult, Flag
from frontdesk.settings import Settings


class Reader:
    """Templates and vocabulary, loaded once per process and shared by every document."""

    def __init__(self, settings: Settings, extra_forms_dirs: list[Path] | None = None) -> None:
        self.settings = settings
        self.forms_dirs = [*settings.forms_dirs, *(extra_forms_dirs or [])]
        try:  # what card and letter pipelines are built on (checked when settings load, too)
            spacy_model.use(settings.extraction.spacy_model)
        except spacy_model.ModelUnavailable as exc:
            raise ConfigError(str(exc)) from None

    @cached_property
    def registry(self) -> TemplateRegistry:
        return TemplateRegistry(self.forms_dirs)

    @cached_property
    def vocabulary(self) -> Vocabulary:
        return load_vocabulary(self.settings.fields_file)

    @cached_property
    def scan_options(self) -> ScanOptions:
        """What the scan reader needs from the vocabulary: each field's type and a format check, so a
        value that does not fit is read again before it is given up."""
        vocab = self.vocabulary
        ex = self.settings.extraction
        types = {key: spec.type for key, spec in vocab.fields.items()}

        def check(key: str, raw: str) -> bool:
            spec = vocab.fields.get(key)
            if spec is None:
                return True
            value, problem = normaliser_for(vocab, spec.type, key)(raw)
            return problem is None and value not in (None, "")

        return ScanOptions(
            types=types, check=check,
            limits=Limits(max_pages=ex.max_scan_pages, max_megapixels=ex.max_image_megapixels,
                          rasterise_timeout=ex.tesseract_timeout),
            tesseract_timeout=ex.tesseract_timeout, deadline=ex.read_timeout, page_seconds=ex.scan_page_seconds,
            tessdata_cache=ex.tessdata_cache,
            separator_codes=frozenset(ex.separator_codes), split_on_blank=ex.split_on_blank_pages,
        )

    def read_raw_all(self, path: Path) -> list[RawDocument]:
        """Every document in the file, read in a process of its own under the time and memory limits
        (see :mod:`frontdesk.reading_process`): a hostile file fails alone, whatever thread asked."""
        from frontdesk.reading_server import read_isolated

        extra = [p for p in self.forms_dirs if p not in self.settings.forms_dirs]
        try:
            self._refuse_oversized(path)  # before any reader opens it
            return read_isolated(path, self.settings, extra or None)
        except UnreadableDocument as exc:
            cls = EncryptedInputError if exc.encrypted else InputFileError
            raise cls(path, exc.reason) from None

    def read_here(self, path: Path) -> list[RawDocument]:
        """The read itself, in this process: only the reading process calls it (raises
        :class:`~extractors.UnreadableDocument`)."""
        return read_documents(
            path, self.registry,
            match_threshold=self.settings.extraction.template_match_threshold,
            timeout=self.settings.extraction.read_timeout,
            scan=self.scan_options,
        )

    def _refuse_oversized(self, path: Path) -> None:
        limit = self.settings.extraction.max_file_mb
        try:
            size = path.stat().st_size
        except OSError:
            return
        if limit and size > limit * 1024 * 1024:
            raise UnreadableDocument(f"file is {size / 1048576:.0f} MB, over the {limit:g} MB limit")

    def read_raw(self, path: Path) -> RawDocument:
        return self.read_raw_all(path)[0]

    def extract_all(self, path: Path) -> list[ExtractionResult]:
        """Every document in the file (a scanned stack holds several), each with the input pages it came
        from in ``source_pages``; raise InputFileError when the file cannot be read at all."""
        low = self.settings.extraction.low_confidence_threshold
        results = [to_result(raw, self.vocabulary, low) for raw in self.read_raw_all(path)]
        for r in results:
            if r.document_type in X12_TYPES:
                # The reading process checked the envelopes and the kind; what the response says is read
                # here, from the same bytes the pipeline files (a cheap, size-capped pass).
                from frontdesk.claims.responses import describe

                describe(path, r)
        return results

    def extract(self, path: Path) -> ExtractionResult:
        """Read and check one document (the first, when a scan holds several); raise InputFileError when it
        cannot be read at all."""
        return self.extract_all(path)[0]


def to_result(raw: RawDocument, vocab: Vocabulary, low_confidence: float) -> ExtractionResult:
    result = ExtractionResult(
        document_type=raw.document_type,  # type: ignore[arg-type]
        form=raw.form,
        method=raw.method,  # type: ignore[arg-type]
        pages=raw.pages,
        flags=[Flag(code=f.code, severity=f.severity, field=f.field, message=f.message) for f in raw.flags],  # type: ignore[arg-type]
        source_pages=raw.source_pages,
    )
    if raw.document_type == "unknown" or raw.document_type in X12_TYPES:
        return result
    return validate(result, raw.fields, vocab, present=raw.present, low_confidence=low_confidence)
