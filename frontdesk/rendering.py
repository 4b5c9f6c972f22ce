"""Render .docx letter templates safely.

Letter templates are written by the practice (or its IT person) and filled with patient data, so two
things must never happen: a template reaching Python internals (docxtpl renders with a plain, unsandboxed
Jinja ``Template`` unless given an environment, docxtpl #632), and a value such as ``O'Neil & Sons <Jr>``
corrupting the document XML (docxtpl #105, #113, #594). Every render therefore goes through one
sandboxed, autoescaping, strict environment.

Error messages name the template file and the template variable, never a value: they end up in logs and
terminals that get shared.
"""

from __future__ import annotations

import functools
import operator
import os
import re
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import jinja2.sandbox
from docx import Document
from docx.shared import Mm
from docxtpl import DocxTemplate, InlineImage
from jinja2 import nodes
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
from lxml import etree
from markupsafe import Markup

from frontdesk.exceptions import TemplateError, TemplateSecurityError

__all__ = ["Picture", "check_template", "jinja_env", "render_docx", "template_variables"]

# Characters XML 1.0 forbids. OCR output carries form feeds (tesseract ends pages with \x0c); one of them
# in a value makes the whole .docx unreadable by Word, so they are dropped at output time.
_ILLEGAL_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

# The sandbox stops attribute and call abuse but not ``{{ 'x' * 10**10 }}``: cap what repetition and
# powers may produce so a template cannot exhaust a worker's memory.
_MAX_REPEAT_LEN = 100_000
_MAX_EXPONENT = 1_000
_MAX_POWER_BITS = 100_000

# Tag text left in the rendered output means a tag did not render (typically split across runs).
_LEFTOVER_TAG = re.compile(r"\{\{|\}\}|\{%|%\}|\{#|#\}")

_UNSAFE_ATTRIBUTE = re.compile(r"access to attribute '(\w+)' of '(\w+)' object is unsafe")

# A letterhead logo is a small picture; anything larger is a mistake in the settings, not a logo.
_MAX_PICTURE_BYTES = 5 * 1024 * 1024
_MAX_PICTURE_PIXELS = 25_000_000


@dataclass(frozen=True)
class Picture:
    """An image to place where the template prints the value (e.g. ``{{ practice.logo }}``).

    The context stays plain data (the file and the size wanted); the image is only bound to the document
    while it renders, because docxtpl needs the document being rendered to embed a picture. The picture
    keeps its aspect ratio: it is ``height_mm`` tall unless that would make it wider than ``max_width_mm``.
    """

    path: Path
    height_mm: float = 16.0
    max_width_mm: float = 60.0


class _MissingVariableError(TemplateError):
    """The data lacks a variable the template uses (kept apart so check_template does not repeat it)."""


class _MissingValueError(UndefinedError):
    """An undefined value was used; carries the name so the message can be built without any value."""

    def __init__(self, message: str, *, name: Any, has_parent: bool) -> None:
        super().__init__(message)
        self.name = name
        self.has_parent = has_parent


class _SafeStrictUndefined(jinja2.StrictUndefined):
    """StrictUndefined whose failure carries the missing name instead of a message built from the data."""

    def __init__(
        self,
        hint: str | None = None,
        obj: Any = jinja2.utils.missing,
        name: str | None = None,
        exc: type[jinja2.exceptions.TemplateRuntimeError] = UndefinedError,
    ) -> None:
        super().__init__(hint, obj, name, exc)
        if exc is UndefinedError and hint is None:
            # Jinja raises ``self._undefined_exception(message)``; a partial keeps the structured data.
            self._undefined_exception = functools.partial(  # type: ignore[assignment]
                _MissingValueError, name=name, has_parent=obj is not jinja2.utils.missing
            )


class _LetterSandbox(jinja2.sandbox.ImmutableSandboxedEnvironment):
    """Immutable sandbox (templates cannot alter the data shared by a batch) with size limits."""

    intercepted_binops = frozenset({"*", "**"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._compiled: dict[str, jinja2.Template] = {}
        self._compiled_lock = threading.Lock()

    def call_binop(self, context: jinja2.runtime.Context, operator_: str, left: Any, right: Any) -> Any:
        if operator_ == "**":
            too_big = isinstance(right, int | float) and abs(right) > _MAX_EXPONENT
            if isinstance(left, int) and isinstance(right, int) and right > 0:
                too_big = too_big or abs(left).bit_length() * right > _MAX_POWER_BITS
            if too_big:
                raise SecurityError("the template raises a number to a power that is too large")
            return operator.pow(left, right)
        for seq, count in ((left, right), (right, left)):
            if (
                isinstance(seq, str | list | tuple)
                and isinstance(count, int)
                and len(seq) * count > _MAX_REPEAT_LEN
            ):
                raise SecurityError("the template repeats a text or list to a size that is too large")
        return operator.mul(left, right)

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        """Templates cannot turn escaping off: ``{% autoescape false %}`` and the ``safe`` filter would let
        a patient's ``<`` or ``&`` (or a crafted value) break out into the document's XML."""
        tree = super()._parse(source, name, filename)
        refuse_unescaping(tree)
        return tree

    def from_string(self, source: Any, globals: Any = None, template_class: Any = None) -> jinja2.Template:
        """Compiled once per template text: a batch of letters from one .docx compiles the same XML parts
        for every letter otherwise (more than a third of the time a letter takes to render)."""
        if globals is not None or template_class is not None or not isinstance(source, str):
            return super().from_string(source, globals, template_class)
        with self._compiled_lock:
            compiled = self._compiled.get(source)
        if compiled is None:
            compiled = super().from_string(source)
            with self._compiled_lock:
                self._compiled[source] = compiled
                while len(self._compiled) > 64:  # templates edited all day must not grow it without end
                    self._compiled.pop(next(iter(self._compiled)))
        return compiled


def refuse_unescaping(tree: nodes.Template) -> None:
    """Raise SecurityError when a template would turn autoescaping off anywhere."""
    for node in tree.find_all((nodes.EvalContextModifier, nodes.Filter)):
        if isinstance(node, nodes.Filter) and node.name != "safe":
            continue
        if isinstance(node, nodes.EvalContextModifier) and not any(k.key == "autoescape" for k in node.options):
            continue
        raise SecurityError("the template turns escaping off (autoescape false or |safe); that is not allowed")


def _finalize(value: Any) -> Any:
    """Print ``None`` as nothing (not the word "None" in a patient letter) and drop XML-illegal chars."""
    if value is None:
        return ""
    if isinstance(value, str) and not isinstance(value, Markup):
        return _ILLEGAL_XML_CHARS.sub("", value)
    return value


@functools.cache
def jinja_env() -> jinja2.sandbox.SandboxedEnvironment:
    """The one environment every letter renders with: sandboxed, strict about missing data, XML-escaping.

    Built once because compiling the environment per letter is wasted work in a batch; it is never
    mutated after creation, so threads can share it.
    """
    return _LetterSandbox(
        undefined=_SafeStrictUndefined,
        autoescape=True,
        finalize=_finalize,
    )


def _open_template(template: Path) -> DocxTemplate:
    """Load the .docx now, so a missing or broken file is reported as such and not as a render failure."""
    template = Path(template)
    if not template.is_file():
        raise TemplateError(f"{template.name}: letter template not found")
    tpl = DocxTemplate(template)
    try:
        tpl.init_docx()
    except Exception as exc:  # zipfile, lxml and python-docx each raise their own kinds
        raise TemplateError(
            f"{template.name}: not a readable .docx file ({type(exc).__name__}); re-save it from Word"
        ) from None
    return tpl


def _template_sources(tpl: DocxTemplate) -> Iterator[str]:
    """The Jinja source docxtpl renders: the body, then headers and footers (same patching as docxtpl)."""
    yield tpl.patch_xml(tpl.get_xml())
    for uri in (tpl.HEADER_URI, tpl.FOOTER_URI):
        for _rel, part in tpl.get_headers_footers(uri):
            yield tpl.patch_xml(tpl.get_part_xml(part))


def _dotted(node: nodes.Node) -> list[Any] | None:
    """``patient.address.city`` as ['patient', 'address', 'city']; None for anything not a plain path."""
    if isinstance(node, nodes.Name):
        return [node.name]
    if isinstance(node, nodes.Getattr):
        base = _dotted(node.node)
        return None if base is None else [*base, node.attr]
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        base = _dotted(node.node)
        return None if base is None else [*base, node.arg.value]
    return None


def _lookup(value: Any, key: Any) -> Any:
    """One step of a Jinja path (item first for mappings, as Jinja does); raises LookupError if absent."""
    if isinstance(value, Mapping):
        if key in value:
            return value[key]
    elif isinstance(key, str) and hasattr(value, key):
        return getattr(value, key)
    elif isinstance(value, list | tuple) and isinstance(key, int) and -len(value) <= key < len(value):
        return value[key]
    raise LookupError(key)


def _missing_paths(tpl_path: Path, name: Any, context: Mapping[str, Any]) -> list[str]:
    """Which template paths end in the missing ``name``, preferring those the data really lacks.

    Only names written in the template itself are ever returned, so a key computed from patient data
    cannot leak into the message.
    """
    env = jinja_env()
    paths: set[tuple[Any, ...]] = set()
    try:
        for source in _template_sources(_open_template(tpl_path)):
            tree = env.parse(source)
            for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
                path = _dotted(node)
                if path and path[-1] == name:
                    paths.add(tuple(path))
    except Exception:  # best effort: the caller still reports the bare name
        return []

    def really_missing(path: tuple[Any, ...]) -> bool:
        value: Any = context
        for key in path[:-1]:
            try:
                value = _lookup(value, key)
            except LookupError:
                return False
        try:
            _lookup(value, path[-1])
        except LookupError:
            return True
        return False

    confirmed = [p for p in paths if really_missing(p)]
    chosen = confirmed or sorted(paths, key=str)
    return sorted(".".join(str(part) for part in p) for p in chosen)


def _names_in_template(tpl_path: Path) -> set[Any]:
    """Every variable, attribute and constant key the template spells out."""
    env = jinja_env()
    found: set[Any] = set()
    try:
        for source in _template_sources(_open_template(tpl_path)):
            tree = env.parse(source)
            found.update(n.name for n in tree.find_all(nodes.Name))
            found.update(n.attr for n in tree.find_all(nodes.Getattr))
            found.update(n.arg.value for n in tree.find_all(nodes.Getitem) if isinstance(n.arg, nodes.Const))
    except Exception:
        return set()
    return found


def _near_text(exc: BaseException, tpl: DocxTemplate) -> str:
    """The template text (never the data) on the line where rendering failed, to help the author."""
    lineno = exc.lineno if isinstance(exc, TemplateSyntaxError) else None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            lineno = tb.tb_lineno
        tb = tb.tb_next
    part = getattr(tpl, "current_rendering_part", None)
    if lineno is None or part is None:
        return ""
    try:
        fresh = DocxTemplate(tpl.template_file)
        fresh.init_docx()
        source = fresh.get_xml() if part is tpl.docx._part else fresh.get_part_xml(part)
    except Exception:
        return ""
    # docxtpl puts every paragraph on its own line before compiling; line numbers refer to that text.
    src_lines = re.sub(r"<w:p([ >])", r"\n<w:p\1", fresh.patch_xml(source)).splitlines()
    if not 1 <= lineno <= len(src_lines):
        return ""
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", src_lines[lineno - 1])).strip()
    if not text:
        return ""
    if len(text) > 120:
        text = text[:117] + "..."
    return f" near {text!r}"


def _translate(
    exc: Exception, template: Path, tpl: DocxTemplate, context: Mapping[str, Any]
) -> TemplateError:
    """Turn whatever rendering raised into our error, keeping values out of the message."""
    name = template.name
    if isinstance(exc, SecurityError):
        match = _UNSAFE_ATTRIBUTE.search(str(exc))
        if match:
            detail = f"access to attribute {match.group(1)!r} of a {match.group(2)!r} value is not allowed"
        elif str(exc).startswith("the template "):  # our own size limits, worded without values
            detail = str(exc)
        else:
            detail = "it uses an operation letter templates may not use"
        return TemplateSecurityError(
            f"{name}: rendering refused, the template tries to reach Python internals or unsafe operations: "
            f"{detail}"
        )
    if isinstance(exc, _MissingValueError):
        if not exc.has_parent:
            return _MissingVariableError(
                f"{name}: the template uses {exc.name!r}, which is not in the letter data"
            )
        if exc.name in _names_in_template(template):
            paths = _missing_paths(template, exc.name, context)
            shown = " or ".join(repr(p) for p in paths) if paths else repr(exc.name)
            return _MissingVariableError(
                f"{name}: the template uses {shown}, which is not in the letter data"
            )
        return _MissingVariableError(f"{name}: the template looks up a key that is not in the letter data")
    if isinstance(exc, UndefinedError):
        return TemplateError(f"{name}: the template uses a value that is not defined{_near_text(exc, tpl)}")
    if isinstance(exc, TemplateSyntaxError):
        return TemplateError(f"{name}: template syntax error: {exc.message}{_near_text(exc, tpl)}")
    if isinstance(exc, etree.XMLSyntaxError):
        line, column = exc.position
        return TemplateError(
            f"{name}: rendering produced broken document XML (line {line}, column {column}); "
            "check that {%p %}, {%tr %} and {%tc %} tags sit alone in their paragraph, row or cell"
        )
    # Any other error (a filter given the wrong type, ...) may quote a value in its message: keep only the type.
    return TemplateError(f"{name}: rendering failed ({type(exc).__name__}){_near_text(exc, tpl)}")


def _inline_image(tpl: DocxTemplate, picture: Picture, template_name: str) -> InlineImage:
    """Bind a Picture to the document being rendered, sized to keep its aspect ratio."""
    from PIL import Image, UnidentifiedImageError

    path = Path(picture.path)
    try:
        if path.stat().st_size > _MAX_PICTURE_BYTES:
            raise TemplateError(f"{template_name}: the image {path.name} is larger than 5 MB; use a smaller logo")
        with Image.open(path) as image:
            width, height = image.size
            image_format = image.format
    except TemplateError:
        raise
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError):
        raise TemplateError(f"{template_name}: the image {path.name} cannot be read (PNG or JPEG expected)") from None
    if image_format not in ("PNG", "JPEG", "GIF", "BMP") or width * height > _MAX_PICTURE_PIXELS or not width:
        raise TemplateError(f"{template_name}: the image {path.name} is not a PNG or JPEG of a sensible size")
    height_mm = picture.height_mm
    width_mm = height_mm * width / height
    if width_mm > picture.max_width_mm:
        width_mm, height_mm = picture.max_width_mm, picture.max_width_mm * height / width
    return InlineImage(tpl, str(path), width=Mm(width_mm), height=Mm(height_mm))


def _bind_pictures(value: Any, tpl: DocxTemplate, template_name: str) -> Any:
    """The context with every Picture (at any depth) turned into an image of this document."""
    if isinstance(value, Picture):
        return _inline_image(tpl, value, template_name)
    if isinstance(value, Mapping):
        return {key: _bind_pictures(item, tpl, template_name) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_bind_pictures(item, tpl, template_name) for item in value]
    return value


def render_docx(template: Path, context: Mapping[str, Any], out: Path) -> Path:
    """Fill ``template`` with ``context`` and write the letter to ``out`` (atomically, parents created).

    The file appears only once complete, so a watcher or the filing step never picks up half a letter.
    Values that are :class:`Picture` become images in the letter.
    """
    template = Path(template)
    out = Path(out)
    tpl = _open_template(template)
    data = _bind_pictures(context, tpl, template.name)
    try:
        tpl.render(data, jinja_env=jinja_env(), autoescape=True)
    except TemplateError:
        raise
    except Exception as exc:
        raise _translate(exc, template, tpl, context) from None

    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=out.parent, prefix=".render-", suffix=".docx")
    os.close(fd)
    try:
        tpl.save(tmp_name)
        os.replace(tmp_name, out)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return out


def template_variables(template: Path) -> set[str]:
    """Top-level variables the template needs, so a flow can check its data before rendering a batch."""
    template = Path(template)
    tpl = _open_template(template)
    try:
        return set(tpl.get_undeclared_template_variables(jinja_env=jinja_env()))
    except TemplateSyntaxError as exc:
        raise TemplateError(f"{template.name}: template syntax error: {exc.message}") from None


def _document_texts(path: Path) -> Iterator[str]:
    """Paragraph texts of the body (tables included), headers and footers."""
    doc = Document(str(path))

    def from_container(container: Any) -> Iterator[str]:
        for paragraph in container.paragraphs:
            yield paragraph.text
        for table in container.tables:
            for row in table.rows:
                for cell in row.cells:
                    yield from from_container(cell)

    yield from from_container(doc)
    for section in doc.sections:
        for part in (section.header, section.footer, section.first_page_header, section.first_page_footer):
            if not part.is_linked_to_previous:
                yield from from_container(part)


def check_template(template: Path, sample: Mapping[str, Any]) -> list[str]:
    """Problems a template author must fix, found by rendering ``sample``; empty when the template is fine.

    Meant for the moment a practice adds or edits a template, so mistakes show up before a batch of
    letters fails (or, worse, goes out with raw ``{{ tags }}`` in it).
    """
    template = Path(template)
    problems: list[str] = []
    try:
        variables = template_variables(template)
    except TemplateError as exc:
        return [str(exc)]
    for missing in sorted(variables - set(sample)):
        problems.append(
            f"{template.name}: the template uses {missing!r}, which the sample data does not provide"
        )

    with tempfile.TemporaryDirectory(prefix="frontdesk-check-") as tmp:
        out = Path(tmp) / "sample.docx"
        try:
            render_docx(template, sample, out)
        except TemplateError as exc:
            # A top-level variable missing from the sample is already listed above.
            if not (problems and isinstance(exc, _MissingVariableError)):
                problems.append(str(exc))
            return problems
        try:
            texts = list(_document_texts(out))
        except Exception as exc:
            problems.append(f"{template.name}: the rendered letter cannot be opened ({type(exc).__name__})")
            return problems
    leftovers = sum(1 for text in texts if _LEFTOVER_TAG.search(text))
    if leftovers:
        problems.append(
            f"{template.name}: {leftovers} paragraph(s) still show tag text such as '{{{{' after rendering; "
            "retype each tag in one go so Word keeps it in a single run"
        )
    return problems
