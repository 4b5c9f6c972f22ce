"""The field vocabulary, loaded from ``config/fields.yaml``: the one place a field's meaning lives."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml

from frontdesk.exceptions import ConfigError

FieldType = Literal[
    "text", "name", "date", "phone", "email", "state", "zip", "id", "sex", "relationship", "checkbox", "signature",
    "npi", "choice",
]
FIELD_TYPES: frozenset[str] = frozenset(FieldType.__args__)  # type: ignore[attr-defined]
REQUIREDNESS = frozenset({"always", "never", "unless_self_pay"})


@dataclass(frozen=True)
class FieldSpec:
    key: str
    type: str
    label: str
    required: str = "never"
    section: str = ""
    form: str | None = None  # the form that carries the key when it is not the registration form
    choices: tuple[str, ...] = ()  # type choice: the answers the form offers


@dataclass(frozen=True)
class InsuranceRule:
    code: str
    severity: Literal["error", "warning", "info"]
    fields: tuple[str, ...]
    unless_checked: str | None
    message: str


@dataclass(frozen=True)
class Vocabulary:
    fields: dict[str, FieldSpec]
    missing_insurance: InsuranceRule
    relationships: dict[str, str] = field(default_factory=dict)  # spelling (lower) -> normalised

    def __contains__(self, key: object) -> bool:
        return key in self.fields

    @property
    def forms(self) -> frozenset[str]:
        """Ids of the forms besides registration that the vocabulary names (``form:``): their documents
        are not the patient's intake form (a HIPAA acknowledgment is no new-patient form)."""
        return frozenset(s.form for s in self.fields.values() if s.form)

    def is_other_form(self, form: str | None) -> bool:
        return form is not None and form in self.forms

    def label(self, key: str) -> str:
        spec = self.fields.get(key)
        return spec.label if spec else key


@lru_cache(maxsize=8)
def load_vocabulary(path: Path) -> Vocabulary:
    """Parse and check the vocabulary; a typo here would silently drop a field, so it is an error."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read field vocabulary ({exc.__class__.__name__})") from None
    if not isinstance(data, dict) or not isinstance(data.get("fields"), dict):
        raise ConfigError(f"{path}: expected a 'fields' mapping")
    specs: dict[str, FieldSpec] = {}
    for key, raw in data["fields"].items():
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: field {key}: expected a mapping")
        ftype = raw.get("type", "text")
        if ftype not in FIELD_TYPES:
            raise ConfigError(f"{path}: field {key}: unknown type {ftype!r}")
        required = raw.get("required", "never")
        if required not in REQUIREDNESS:
            raise ConfigError(f"{path}: field {key}: unknown requiredness {required!r}")
        form = raw.get("form")
        if form is not None and (not isinstance(form, str) or not form.strip()):
            raise ConfigError(f"{path}: field {key}: form must be a form id")
        choices = raw.get("choices") or []
        if ftype == "choice" and (not isinstance(choices, list) or not choices):
            raise ConfigError(f"{path}: field {key}: type choice needs a list of choices")
        specs[key] = FieldSpec(key, ftype, str(raw.get("label", key)), required, str(raw.get("section", "")),
                               form=form, choices=tuple(str(c) for c in choices))
    rules = data.get("rules", {}) or {}
    mi = rules.get("missing_insurance") or {}
    rule = InsuranceRule(
        code=mi.get("code", "insurance.missing_info"),
        severity=mi.get("severity", "error"),
        fields=tuple(mi.get("fields", [])),
        unless_checked=mi.get("unless_checked"),
        message=mi.get("message", "Primary insurance information is incomplete"),
    )
    if rule.severity not in ("error", "warning", "info"):
        raise ConfigError(f"{path}: rule missing_insurance: unknown severity {rule.severity!r}")
    for key in (*rule.fields, *([rule.unless_checked] if rule.unless_checked else [])):
        if key not in specs:
            raise ConfigError(f"{path}: rule missing_insurance names unknown field {key}")
    relationships: dict[str, str] = {}
    for norm, spellings in (data.get("relationships") or {}).items():
        relationships[str(norm).lower()] = str(norm)
        for s in spellings or []:
            relationships[str(s).lower()] = str(norm)
    return Vocabulary(specs, rule, relationships)
