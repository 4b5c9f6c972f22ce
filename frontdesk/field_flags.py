"""Check every field: normalise what was read, then apply the requiredness and insurance rules.

Flag messages use field labels, never values, so a flag can be logged or shown on a worklist safely.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from extractors.base import RawField
from frontdesk.fields import Vocabulary
from frontdesk.models import ExtractionResult, FieldResult, Flag, RowResult, Severity
from frontdesk.normalisers import NORMALISERS, Result, make_choice, make_relationship

# Types whose wrong value is an error (a person checks it) even on an optional field: a wrong NPI gets a
# referral or a claim refused.
REVIEW_IF_INVALID = frozenset({"npi"})


def normaliser_for(vocab: Vocabulary, ftype: str, key: str | None = None) -> Callable[[str | None], Result]:
    if ftype == "relationship":
        return make_relationship(vocab.relationships)
    if ftype == "choice":
        spec = vocab.fields.get(key) if key else None
        return make_choice(spec.choices if spec else ())
    return NORMALISERS[ftype]


def normalise_fields(
    raw_fields: Mapping[str, RawField], vocab: Vocabulary
) -> tuple[dict[str, FieldResult], list[Flag]]:
    """Normalise every field the document carries; a value that fails its format is kept and flagged."""
    fields: dict[str, FieldResult] = {}
    flags: list[Flag] = []
    for key, spec in vocab.fields.items():  # vocabulary order: stable output, sections together
        rf = raw_fields.get(key)
        if rf is None:
            continue
        value, problem = normaliser_for(vocab, spec.type, key)(rf.raw)
        raw = None if rf.raw is None or not str(rf.raw).strip() else str(rf.raw)
        fields[key] = FieldResult(value=value, raw=raw, confidence=rf.confidence, page=rf.page)
        if problem:
            severity: Severity = "error" if spec.required != "never" or spec.type in REVIEW_IF_INVALID else "warning"
            flags.append(Flag(code="invalid", severity=severity, field=key, message=f"{spec.label}: {problem}"))
    return fields, flags


def normalise_rows(raw_fields: Mapping[str, RawField], vocab: Vocabulary, *,
                   flagged: set[str] | None = None) -> tuple[dict[str, list[RowResult]], list[Flag]]:
    """The rows of every repeating group the document carries (boxes named ``<group>.<row>.<field>``).

    A row with nothing in it is skipped, unless a reader flagged one of its boxes (``flagged``: ink it
    could not read is not a blank). A used row that leaves a required box blank is kept and flagged
    ``row.incomplete`` for a person to look at. Messages name the group, the row number and the box's
    label, never a value."""
    cells: dict[str, dict[int, dict[str, RawField]]] = {}
    for key, rf in raw_fields.items():
        found = vocab.row_key(key)
        if found is not None:
            group, n, name = found
            cells.setdefault(group, {}).setdefault(n, {})[name] = rf
    flagged = flagged or set()
    rows: dict[str, list[RowResult]] = {}
    flags: list[Flag] = []
    for group, spec in vocab.groups.items():  # vocabulary order
        for n in sorted(cells.get(group, {})):
            row = RowResult(row=n)
            for name, fspec in spec.fields.items():
                cell = cells[group][n].get(name)
                if cell is None:
                    continue
                value, problem = normaliser_for(vocab, fspec.type)(cell.raw)
                raw = None if cell.raw is None or not str(cell.raw).strip() else str(cell.raw)
                row.fields[name] = FieldResult(value=value, raw=raw, confidence=cell.confidence, page=cell.page)
                if problem:
                    flags.append(Flag(code="invalid", severity="warning", field=f"{group}.{n}.{name}",
                                      message=f"{spec.label}, row {n}: {fspec.label}: {problem}"))
            used = any(not blank(fr.value) or fr.raw for fr in row.fields.values())
            if not used and not any(f"{group}.{n}.{name}" in flagged for name in spec.fields):
                continue  # a blank line of the table
            for name, fspec in spec.fields.items():
                fr = row.fields.get(name)
                if fspec.required == "always" and (fr is None or (blank(fr.value) and not fr.raw)):
                    flags.append(Flag(code="row.incomplete", severity="error", field=f"{group}.{n}.{name}",
                                      message=f"{spec.label}, row {n}: {fspec.label} is missing"))
            rows.setdefault(group, []).append(row)
    return rows, flags


def normalise_checklists(raw_fields: Mapping[str, RawField], vocab: Vocabulary) -> dict[str, list[str]]:
    """Each check list the document carries -> its ticked options, in the vocabulary's order."""
    ticked: dict[str, set[str]] = {}
    for key, rf in raw_fields.items():
        found = vocab.checklist_key(key)
        if found is None:
            continue
        value, _problem = NORMALISERS["checkbox"](rf.raw)
        ticked.setdefault(found[0], set())
        if value is True:
            ticked[found[0]].add(found[1])
    return {name: [o for o in spec.options if o in ticked[name]]
            for name, spec in vocab.checklists.items() if name in ticked}


def blank(value: object) -> bool:
    """Not filled in: nothing, an empty text, or a box left unticked (a required checkbox that is False
    is as missing as an empty line). One definition for checks, cards and records."""
    return value is None or value is False or (isinstance(value, str) and not value.strip())


def rule_flags(fields: Mapping[str, FieldResult], vocab: Vocabulary, *, present: set[str] | None = None) -> list[Flag]:
    """Requiredness and the missing-insurance rule over normalised fields.

    ``present`` names the fields the document's form has a box for (all when None); a required field the
    form does not ask for is not the patient's fault and is not flagged here.
    """
    flags: list[Flag] = []
    rule = vocab.missing_insurance
    self_pay = bool(rule.unless_checked and fields.get(rule.unless_checked, FieldResult()).value is True)

    for key, spec in vocab.fields.items():
        if present is not None and key not in present:
            continue
        if spec.required == "never" or (spec.required == "unless_self_pay" and self_pay):
            continue
        fr = fields.get(key)
        if fr is None or blank(fr.value):
            if fr is not None and fr.raw not in (None, "") and spec.type not in ("checkbox", "signature"):
                continue  # something is written but unreadable as its type: already flagged invalid
            flags.append(Flag(code="missing", severity="error", field=key, message=f"{spec.label} is missing"))

    if not self_pay:
        missing = [
            k for k in rule.fields
            if (present is None or k in present) and blank(fields.get(k, FieldResult()).value)
        ]
        if missing:
            labels = ", ".join(vocab.label(k) for k in missing)
            flags.append(Flag(code=rule.code, severity=rule.severity, field=None, message=f"{rule.message}: {labels}"))
    return flags


def validate(result: ExtractionResult, raw_fields: Mapping[str, RawField], vocab: Vocabulary,
             *, present: set[str] | None = None, low_confidence: float = 0.8) -> ExtractionResult:
    """Fill ``result.fields`` and append field and rule flags."""
    fields, flags = normalise_fields(raw_fields, vocab)
    result.fields = fields
    result.flags.extend(flags)
    result.flags.extend(rule_flags(fields, vocab, present=present))
    for key, fr in fields.items():
        if fr.confidence < low_confidence and not blank(fr.value):
            result.flags.append(Flag(code="low_confidence", severity="warning", field=key,
                                     message=f"{vocab.label(key)} was read with low confidence; please check it"))
    if vocab.groups:
        rows, row_flags = normalise_rows(raw_fields, vocab, flagged={f.field for f in result.flags if f.field})
        result.rows = rows
        result.flags.extend(row_flags)
        for group, group_rows in rows.items():
            spec = vocab.groups[group]
            for row in group_rows:
                for name, fr in row.fields.items():
                    if fr.confidence < low_confidence and not blank(fr.value):
                        result.flags.append(Flag(
                            code="low_confidence", severity="warning", field=f"{group}.{row.row}.{name}",
                            message=f"{spec.label}, row {row.row}: {spec.fields[name].label} was read with low "
                                    "confidence; please check it"))
    if vocab.checklists:
        result.checklists = normalise_checklists(raw_fields, vocab)
    return result


def missing_insurance_items(result: ExtractionResult, vocab: Vocabulary) -> list[str]:
    """Plain-language list of the insurance items a letter must ask the patient for."""
    rule = vocab.missing_insurance
    return [vocab.label(k) for k in rule.fields if blank(result.value(k))]
