"""Letter rendering: escaping, strict variables, the sandbox, and the shipped missing-insurance template."""

from __future__ import annotations

import importlib.util
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from docx import Document

from frontdesk.exceptions import TemplateError, TemplateSecurityError
from frontdesk.rendering import check_template, jinja_env, render_docx, template_variables

ROOT = Path(__file__).resolve().parent.parent
MISSING_INSURANCE = ROOT / "templates" / "letters" / "missing_insurance.docx"

HOSTILE = 'O\'Neil & Sons <Jr> "the 3rd"'


def make_docx(path: Path, *paragraphs: str | list[str], header: str | None = None) -> Path:
    """A .docx whose paragraphs are given as text (one run) or as a list of runs."""
    doc = Document()
    for paragraph in paragraphs:
        p = doc.add_paragraph()
        for run in [paragraph] if isinstance(paragraph, str) else paragraph:
            p.add_run(run)
    if header is not None:
        doc.sections[0].header.paragraphs[0].text = header
    doc.save(str(path))
    return path


def texts(path: Path) -> list[str]:
    return [p.text for p in Document(str(path)).paragraphs]


def letter_context(**overrides: Any) -> dict[str, Any]:
    context: dict[str, Any] = {
        "practice": {
            "name": "Harbor & Main <Clinic>",
            "address_lines": ["1 Main St", "Springfield, IL 62704"],
            "phone": "(217) 555-0142",
        },
        "letter_date": "November 29, 2026",
        "patient": {
            "full_name": HOSTILE,
            "first_name": "O'Neil",
            "address_lines": ["48 Linden Ave & Co", "Apt <3B>", "Springfield, IL 62702"],
        },
        "missing_items": ["Member ID", "Name of the insurance company"],
        "reference": "FD-3K9QX2",
    }
    context.update(overrides)
    return context


# --- escaping and values -------------------------------------------------------------------------


def test_xml_special_characters_render_verbatim(tmp_path: Path) -> None:
    template = make_docx(
        tmp_path / "t.docx", ["Dear ", "{{ name }}", ","], "{{ company }}", header="{{ name }}"
    )
    out = render_docx(template, {"name": HOSTILE, "company": "A & B <C> 'D'"}, tmp_path / "out.docx")
    assert texts(out) == [f"Dear {HOSTILE},", "A & B <C> 'D'"]
    assert Document(str(out)).sections[0].header.paragraphs[0].text == HOSTILE


def test_xml_illegal_characters_are_dropped_and_none_prints_nothing(tmp_path: Path) -> None:
    template = make_docx(tmp_path / "t.docx", "[{{ ocr }}]", "[{{ nothing }}]")
    out = render_docx(template, {"ocr": "Smith\x0c\x00\x1b", "nothing": None}, tmp_path / "out.docx")
    assert texts(out) == ["[Smith]", "[]"]


def test_output_parents_are_created_and_no_temp_files_remain(tmp_path: Path) -> None:
    template = make_docx(tmp_path / "t.docx", "{{ x }}")
    out = render_docx(template, {"x": "1"}, tmp_path / "a" / "b" / "letter.docx")
    assert out.is_file()
    assert sorted(p.name for p in out.parent.iterdir()) == ["letter.docx"]


# --- missing variables ---------------------------------------------------------------------------


def test_missing_top_level_variable_names_file_and_variable_not_values(tmp_path: Path) -> None:
    template = make_docx(tmp_path / "welcome.docx", "{{ patient.first_name }} {{ reference }}")
    out = tmp_path / "out.docx"
    with pytest.raises(TemplateError) as caught:
        render_docx(template, {"patient": {"first_name": "Zelda Secretname"}}, out)
    message = str(caught.value)
    assert "welcome.docx" in message
    assert "'reference'" in message
    assert "Secretname" not in message
    assert not out.exists()


def test_missing_nested_variable_is_named_by_its_path(tmp_path: Path) -> None:
    template = make_docx(
        tmp_path / "welcome.docx",
        "{{ practice.name }}",
        "Dear {{ patient.first_name }}",
        "{{ patient.last_name }}",
    )
    context = {"practice": {"name": "Secret Practice"}, "patient": {"first_name": "Zelda"}}
    with pytest.raises(TemplateError) as caught:
        render_docx(template, context, tmp_path / "out.docx")
    message = str(caught.value)
    assert "welcome.docx" in message
    assert "'patient.last_name'" in message
    assert "Zelda" not in message and "Secret" not in message


def test_missing_key_computed_from_data_is_not_echoed(tmp_path: Path) -> None:
    template = make_docx(tmp_path / "t.docx", "{{ table[patient_name] }}")
    with pytest.raises(TemplateError) as caught:
        render_docx(template, {"table": {}, "patient_name": "Zelda Roe"}, tmp_path / "out.docx")
    assert "Zelda" not in str(caught.value)
    assert "t.docx" in str(caught.value)


def test_errors_from_values_keep_only_the_exception_type(tmp_path: Path) -> None:
    class Exploding:
        def __str__(self) -> str:
            raise ValueError("Zelda Roe, DOB 1980-01-01")

    template = make_docx(tmp_path / "t.docx", "Intro", "{{ thing }}")
    with pytest.raises(TemplateError) as caught:
        render_docx(template, {"thing": Exploding()}, tmp_path / "out.docx")
    message = str(caught.value)
    assert "ValueError" in message and "{{ thing }}" in message  # type and the template line only
    assert "Zelda" not in message and "1980" not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_syntax_error_names_file_and_template_text(tmp_path: Path) -> None:
    template = make_docx(tmp_path / "broken.docx", "fine", "{% for x in %}oops{% endfor %}")
    with pytest.raises(TemplateError) as caught:
        render_docx(template, {}, tmp_path / "out.docx")
    assert "broken.docx" in str(caught.value)
    assert "syntax" in str(caught.value)


@pytest.mark.parametrize(
    "content", [b"", b"not a zip file", b"PK\x03\x04 truncated zip"], ids=["empty", "text", "truncated"]
)
def test_corrupt_docx_is_a_template_error(tmp_path: Path, content: bytes) -> None:
    template = tmp_path / "corrupt.docx"
    template.write_bytes(content)
    for call in (
        lambda: render_docx(template, {}, tmp_path / "out.docx"),
        lambda: template_variables(template),
    ):
        with pytest.raises(TemplateError, match="corrupt.docx"):
            call()
    assert check_template(template, {}) and "corrupt.docx" in check_template(template, {})[0]


def test_missing_template_file(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="nowhere.docx"):
        render_docx(tmp_path / "nowhere.docx", {}, tmp_path / "out.docx")


# --- sandbox -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tag",
    [
        "{{ cycler.__init__.__globals__ }}",
        "{{ cycler.__init__.__globals__.os.popen('touch pwned').read() }}",
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{% if ''.__class__ %}x{% endif %}",
        "{{ lipsum.__globals__ }}",
        "{{ joiner|attr('__init__') }}",
        "{{ namespace.__init__.__globals__ }}",
        "{{ items.append('x') }}",
        "{{ 'x' * 1000000000 }}",
        "{{ items * 1000000000 }}",
        "{{ 2 ** 10000000 }}",
        "{{ (9 ** 999) ** 999 }}",
    ],
)
def test_sandbox_refuses_internals_mutation_and_blowups(
    tmp_path: Path, tag: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # where a successful popen('touch pwned') would leave its mark
    template = make_docx(tmp_path / "hostile.docx", "Dear patient,", tag)
    items = ["Member ID"]
    out = tmp_path / "out.docx"
    with pytest.raises(TemplateSecurityError) as caught:
        render_docx(template, {"items": items}, out)
    assert "hostile.docx" in str(caught.value)
    assert items == ["Member ID"]
    assert not out.exists()
    assert not (tmp_path / "pwned").exists()


def test_sandbox_still_allows_ordinary_template_logic(tmp_path: Path) -> None:
    template = make_docx(
        tmp_path / "t.docx",
        "{{ items|join(', ') }}|{{ items|length }}|{{ 'ab' * 2 }}|{{ 2 ** 10 }}|{{ name|upper }}",
        "{% if flag %}yes{% else %}no{% endif %}",
    )
    out = render_docx(template, {"items": ["a", "b"], "name": "o'neil", "flag": False}, tmp_path / "o.docx")
    assert texts(out) == ["a, b|2|abab|1024|O'NEIL", "no"]


def test_environment_is_built_once_and_configured() -> None:
    env = jinja_env()
    assert env is jinja_env()
    assert env.sandboxed and env.autoescape is True
    with pytest.raises(Exception, match="undefined"):
        env.from_string("{{ nope }}").render()


# --- template_variables and check_template --------------------------------------------------------


def test_template_variables_cover_body_and_header(tmp_path: Path) -> None:
    template = make_docx(
        tmp_path / "t.docx",
        "{{ a.b }}",
        "{%p for item in things %}",
        "{{ item }}",
        "{%p endfor %}",
        header="{{ h }}",
    )
    assert template_variables(template) == {"a", "things", "h"}


def test_check_template_reports_problems(tmp_path: Path) -> None:
    template = make_docx(tmp_path / "t.docx", "Dear {{ patient.first_name }}", "{{ reference }}")
    assert check_template(template, {"patient": {"first_name": "A"}, "reference": "R"}) == []

    problems = check_template(template, {"patient": {"first_name": "A"}})
    assert len(problems) == 1 and "'reference'" in problems[0]

    problems = check_template(template, {"patient": {}, "reference": "R"})
    assert len(problems) == 1 and "'patient.first_name'" in problems[0]

    hostile = make_docx(tmp_path / "h.docx", "{{ ''.__class__ }}")
    assert "refused" in check_template(hostile, {})[0]

    leftover = make_docx(tmp_path / "raw.docx", "{% raw %}{{ patient.first_name }}{% endraw %}")
    problems = check_template(leftover, {})
    assert len(problems) == 1 and "tag text" in problems[0]


# --- the shipped letter --------------------------------------------------------------------------


def test_missing_insurance_variables() -> None:
    assert template_variables(MISSING_INSURANCE) == {
        "practice",
        "letter_date",
        "patient",
        "missing_items",
        "reference",
    }


def test_missing_insurance_tags_each_sit_in_one_run() -> None:
    doc = Document(str(MISSING_INSURANCE))
    tag_runs = 0
    for paragraph in doc.paragraphs:
        for run in paragraph.runs:
            opened = re.findall(r"\{\{|\{%", run.text)
            closed = re.findall(r"\}\}|%\}", run.text)
            assert len(opened) == len(closed), f"split tag in run {run.text!r}"
            tag_runs += bool(opened)
    assert tag_runs >= 10


def all_texts(path: Path) -> list[str]:
    """Every paragraph of the letter, table cells included (the window block is a table)."""
    from frontdesk.rendering import _document_texts

    return list(_document_texts(path))


def test_missing_insurance_renders_hostile_values(tmp_path: Path) -> None:
    context = letter_context()
    out = render_docx(MISSING_INSURANCE, context, tmp_path / "letter.docx")
    lines = all_texts(out)
    body = "\n".join(lines)
    assert "Harbor & Main <Clinic>" in lines
    assert HOSTILE in lines
    assert "Apt <3B>" in lines and "48 Linden Ave & Co" in lines
    assert "Dear O'Neil," in lines
    assert "November 29, 2026" in lines
    assert "Front Desk, Harbor & Main <Clinic>" in lines
    assert "Reference: FD-3K9QX2" in lines
    assert "1 Main St, Springfield, IL 62704" in body  # mailing instructions use the practice address
    assert body.count("(217) 555-0142") >= 2
    assert "not affected" in body
    bullets = [p.text for p in Document(str(out)).paragraphs if p.style.name == "List Bullet"]
    assert bullets[:2] == ["Member ID", "Name of the insurance company"]
    assert "{" not in body and "}" not in body
    assert check_template(MISSING_INSURANCE, context) == []


def test_pictures_keep_their_aspect_ratio_and_bad_images_are_named(tmp_path: Path) -> None:
    from PIL import Image

    from frontdesk.rendering import Picture

    wide = tmp_path / "wide-logo.png"
    Image.new("RGB", (400, 100), "teal").save(wide)
    template = make_docx(tmp_path / "t.docx", "{{ practice.logo }}", "{{ practice.name }}")
    out = render_docx(template, {"practice": {"logo": Picture(wide, height_mm=10, max_width_mm=30),
                                              "name": "A & B"}}, tmp_path / "out.docx")
    doc = Document(str(out))
    (shape,) = doc.inline_shapes
    assert abs(shape.width / shape.height - 4.0) < 0.01  # the image is 4:1, and stays so
    assert abs(shape.height.mm - 7.5) < 0.1  # 30 mm wide at most: 30 x 7.5 mm, not 40 x 10
    assert abs(shape.width.mm - 30) < 0.1
    assert texts(out)[1] == "A & B"

    not_an_image = tmp_path / "logo.png"
    not_an_image.write_bytes(b"<svg>not a png</svg>")
    with pytest.raises(TemplateError, match=r"t\.docx: the image logo\.png cannot be read"):
        render_docx(template, {"practice": {"logo": Picture(not_an_image), "name": "x"}}, tmp_path / "o.docx")
    with pytest.raises(TemplateError, match="logo.png"):
        render_docx(template, {"practice": {"logo": Picture(tmp_path / "missing" / "logo.png"), "name": "x"}},
                    tmp_path / "o.docx")


def test_missing_insurance_requires_every_variable(tmp_path: Path) -> None:
    for key in ("practice", "letter_date", "patient", "missing_items", "reference"):
        context = letter_context()
        del context[key]
        with pytest.raises(TemplateError, match=rf"missing_insurance\.docx.*'{key}"):
            render_docx(MISSING_INSURANCE, context, tmp_path / "out.docx")
    context = letter_context()
    del context["patient"]["first_name"]
    with pytest.raises(TemplateError, match=r"'patient\.first_name'"):
        render_docx(MISSING_INSURANCE, context, tmp_path / "out.docx")


def test_committed_templates_match_build_script(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("build_letters", ROOT / "scripts" / "build_letters.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    first = module.build_all(tmp_path / "a")
    second = module.build_all(tmp_path / "b")
    letters = ROOT / "templates" / "letters"
    assert {p.relative_to(tmp_path / "a") for p in first} == {p.relative_to(letters) for p in letters.rglob("*.docx")}
    assert (tmp_path / "a" / "logo.png").read_bytes() == (ROOT / "templates" / "letters" / "logo.png").read_bytes()
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), f"the build of {a.name} is not deterministic"
        with zipfile.ZipFile(a) as built, zipfile.ZipFile(letters / a.relative_to(tmp_path / "a")) as committed:
            assert built.namelist() == committed.namelist()
            for name in built.namelist():
                assert built.read(name) == committed.read(name), f"{a.name}: {name} differs: rerun build_letters.py"
