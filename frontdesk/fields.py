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
class GroupSpec:
    """A repeating group (a table on a form): the boxes of one row. A form names each box
    ``<name>.<row>.<field>`` (rows from 1) and carries as many rows as it has room for."""

    name: str
    label: str
    fields: dict[str, FieldSpec]  # field name within the row -> its spec (key = the field name)


@dataclass(frozen=True)
class ChecklistSpec:
    """A grid of check boxes, one per option, each named ``<name>.<option>``."""

    name: str
    label: str
    options: dict[str, str]  # option -> label, in the order the form prints them


@dataclass(frozen=True)
class Vocabulary:
    fields: dict[str, FieldSpec]
    missing_insurance: InsuranceRule
    relationships: dict[str, str] = field(default_factory=dict)  # spelling (lower) -> normalised
    groups: dict[str, GroupSpec] = field(default_factory=dict)
    checklists: dict[str, ChecklistSpec] = field(default_factory=dict)

    def row_key(self, key: str) -> tuple[str, int, str] | None:
        """``(group, row, field)`` for a box of a repeating group (``medications.2.dose``), else None."""
        found = split_row_key(key)
        if found is None or found[0] not in self.groups or found[2] not in self.groups[found[0]].fields:
            return None
        return found

    def checklist_key(self, key: str) -> tuple[str, str] | None:
        """``(list, option)`` for a box of a check list (``condition_checklist.asthma``), else None."""
        name, _, option = key.partition(".")
        spec = self.checklists.get(name)
        return (name, option) if spec is not None and option in spec.options else None

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


def split_row_key(key: str) -> tuple[str, int, str] | None:
    """``<group>.<row>.<field>`` -> ``(group, row, field)``; None for any other key. The naming rule of
    row boxes, shared by the vocabulary and the records (which keep row boxes under these keys)."""
    parts = key.split(".")
    if len(parts) != 3 or not parts[1].isdigit() or int(parts[1]) < 1 or not parts[0] or not parts[2]:
        return None
    return parts[0], int(parts[1]), parts[2]


def _groups(path: Path, data: dict[str, object], specs: dict[str, FieldSpec]) -> dict[str, GroupSpec]:
    raw_groups = data.get("groups") or {}
    if not isinstance(raw_groups, dict):
        raise ConfigError(f"{path}: expected 'groups' to be a mapping")
    prefixes = {k.split(".")[0] for k in specs}
    groups: dict[str, GroupSpec] = {}
    for name, raw in raw_groups.items():
        if not isinstance(raw, dict) or not isinstance(raw.get("fields"), dict) or not raw["fields"]:
            raise ConfigError(f"{path}: group {name}: expected a mapping with 'fields'")
        if "." in str(name) or name in prefixes:
            raise ConfigError(f"{path}: group {name}: a group name has no dots and is no field's first part")
        row: dict[str, FieldSpec] = {}
        for fname, fraw in raw["fields"].items():
            if not isinstance(fraw, dict) or "." in str(fname) or str(fname).isdigit():
                raise ConfigError(f"{path}: group {name} field {fname}: expected a mapping under a plain name")
            ftype = fraw.get("type", "text")
            if ftype not in FIELD_TYPES:
                raise ConfigError(f"{path}: group {name} field {fname}: unknown type {ftype!r}")
            required = fraw.get("required", "never")
            if required not in ("always", "never"):
                raise ConfigError(f"{path}: group {name} field {fname}: requiredness is always or never")
            row[str(fname)] = FieldSpec(str(fname), ftype, str(fraw.get("label", fname)), required, str(name))
        groups[str(name)] = GroupSpec(str(name), str(raw.get("label", name)), row)
    return groups


def _checklists(path: Path, data: dict[str, object], specs: dict[str, FieldSpec],
                groups: dict[str, GroupSpec]) -> dict[str, ChecklistSpec]:
    raw_lists = data.get("checklists") or {}
    if not isinstance(raw_lists, dict):
        raise ConfigError(f"{path}: expected 'checklists' to be a mapping")
    prefixes = {k.split(".")[0] for k in specs} | set(groups)
    lists: dict[str, ChecklistSpec] = {}
    for name, raw in raw_lists.items():
        if not isinstance(raw, dict) or not isinstance(raw.get("options"), dict) or not raw["options"]:
            raise ConfigError(f"{path}: check list {name}: expected a mapping with 'options'")
        if "." in str(name) or name in prefixes:
            raise ConfigError(f"{path}: check list {name}: a list name has no dots and is no field's first part")
        options = {str(k): str(v) for k, v in raw["options"].items()}
        if any("." in k or k.isdigit() for k in options):
            raise ConfigError(f"{path}: check list {name}: an option is a plain name")
        lists[str(name)] = ChecklistSpec(str(name), str(raw.get("label", name)), options)
    return lists


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
        if split_row_key(key) is not None:
            raise ConfigError(f"{path}: field {key}: a part that is only digits is kept for rows of groups")
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
    groups = _groups(path, data, specs)
    return Vocabulary(specs, rule, relationships, groups, _checklists(path, data, specs, groups))
