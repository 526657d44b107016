"""Inserted values show literally; rendered HTML is sanitised."""

from __future__ import annotations

import html
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lotse.engine.expressions import Evaluator, escape_markdown
from lotse.engine.render import Renderer


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("**x**", "**x**"),
        ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)&gt;"),
        ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ("[click](javascript:alert(1))", "[click](javascript:alert(1))"),
        ("_a_ `b` # c 1. d", "_a_ `b` # c 1. d"),
        ("Tom & Jerry", "Tom &amp; Jerry"),
    ],
)
def test_inserted_values_show_as_written(name: str, shown: str) -> None:
    html = Renderer(Evaluator()).render("Hello **{{ inputs.name }}**!", {"inputs": {"name": name}})
    assert html == f"<p>Hello <strong>{shown}</strong>!</p>"


def test_editor_markdown_is_sanitised() -> None:
    html = Renderer(Evaluator()).render(
        "<script>alert(1)</script> [x](javascript:alert(1)) <b onclick='x()'>b</b> [ok](https://example.org)", {}
    )
    assert "<script" not in html
    assert "javascript:" not in html
    assert "onclick" not in html
    assert '<a href="https://example.org" rel="noopener noreferrer">ok</a>' in html


def test_inline_labels_have_no_paragraph() -> None:
    assert Renderer(Evaluator()).render("Yes, *really*", {}, inline=True) == "Yes, <em>really</em>"


def _escaped_in_full(value: object) -> str:
    # escape_markdown without its shortcut for letters, digits and spaces.
    text = html.escape(str(value), quote=True)
    text = re.sub(r"([\\`*_{}\[\]()#+\-.!])", r"\\\1", text)
    return re.sub(r"\s*\n\s*", " ", text)


@given(st.one_of(st.text(), st.text(alphabet="ab 1é_*\n<&"), st.integers(), st.floats(), st.booleans()))
def test_escaping_with_and_without_the_shortcut_agree(value: object) -> None:
    assert escape_markdown(value) == _escaped_in_full(value)


@pytest.mark.parametrize("value", ["Eva", "Eva Jansen", "Zoë 2", "x_y", "a.b", "a\nb", " "])
def test_escaping_plain_words(value: str) -> None:
    assert escape_markdown(value) == _escaped_in_full(value)
