"""Inserted values show literally; rendered HTML is sanitised."""

from __future__ import annotations

import pytest

from lotse.engine.expressions import Evaluator
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
