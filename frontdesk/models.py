"""The data that crosses stage boundaries. ``ExtractionResult`` is the documented output contract of
``frontdesk extract --json``: change it only additively."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

DocumentType = Literal["intake_form", "insurance_card", "correspondence", "unknown",
                       # a clearinghouse's responses (issue 19): eligibility, acknowledgment, claim acknowledgment
                       "x12_271", "x12_999", "x12_277"]
X12_TYPES = frozenset({"x12_271", "x12_999", "x12_277"})
Method = Literal["acroform", "text", "ocr"]
Severity = Literal["error", "warning", "info"]
Status = Literal["filed", "needs_review", "failed", "duplicate"]
FieldValue = str | bool | None


class FieldResult(BaseModel):
    value: FieldValue = None
    raw: str | None = None
    confidence: float = Field(default=1.0, ge=0.0, le=1.0)
    page: int | None = None


class RowResult(BaseModel):
    """One used row of a repeating group (a line of a table on the form): its 1-based row number on the
    form and its boxes by field name (``drug``, ``dose``...)."""

    row: int
    fields: dict[str, FieldResult] = Field(default_factory=dict)

    def value(self, name: str) -> FieldValue:
        fr = self.fields.get(name)
        return fr.value if fr else None


class Flag(BaseModel):
    code: str
    severity: Severity
    field: str | None = None
    message: str


class ExtractionResult(BaseModel):
    document_type: DocumentType = "unknown"
    form: str | None = None
    method: Method = "text"
    pages: int = 0
    fields: dict[str, FieldResult] = Field(default_factory=dict)
    flags: list[Flag] = Field(default_factory=list)
    source_pages: list[int] | None = None  # 1-based pages of the input file (a scan may hold several forms)
    # An X12 response (document types x12_*): what it says, in plain words (frontdesk.claims.responses).
    x12: dict[str, Any] | None = None
    # Repeating groups (config/fields.yaml ``groups``): group -> the rows that hold anything, in row order.
    rows: dict[str, list[RowResult]] = Field(default_factory=dict)
    # Check lists (``checklists``): list -> the ticked options, in the vocabulary's order.
    checklists: dict[str, list[str]] = Field(default_factory=dict)

    def value(self, key: str) -> FieldValue:
        fr = self.fields.get(key)
        return fr.value if fr else None

    def has_errors(self) -> bool:
        return any(f.severity == "error" for f in self.flags)

    def needs_review(self) -> bool:
        return self.document_type == "unknown" or any(
            f.severity == "error" or f.code == "low_confidence" for f in self.flags
        )


class StoredObject(BaseModel):
    """Where a filed file lives: an opaque key and its SHA-256, never a patient name."""

    key: str
    uri: str
    sha256: str
    size: int


class ProcessOutcome(BaseModel):
    """One line of ``frontdesk process --json``."""

    input: str
    status: Status
    record_id: str | None = None
    document_type: DocumentType | None = None
    stored: list[StoredObject] = Field(default_factory=list)
    letters: list[StoredObject] = Field(default_factory=list)
    flags: list[Flag] = Field(default_factory=list)
    error: str | None = None
    # A scanned stack: the input is filed whole (this record) and each form in it as its own document.
    source_pages: list[int] | None = None  # a part's 1-based pages of the input
    parent_record_id: str | None = None  # a part's stack
    parts: list[ProcessOutcome] = Field(default_factory=list)
