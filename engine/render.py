"""Markdown text → safe HTML.

Order matters, and is the whole point of this module:

1. the template is evaluated with every inserted value escaped for Markdown
   *and* HTML (:func:`lotse.engine.expressions.escape_markdown`), so that a
   client called ``**x**`` or ``<img src=x onerror=alert(1)>`` shows exactly as
   written;
2. the resulting Markdown is converted to HTML (the ``markdown`` package);
3. the HTML is sanitised with nh3, which removes anything an editor's own
   Markdown could smuggle in (raw ``<script>``, ``javascript:`` links).

Rendered HTML is cached by its Markdown source: most steps show the same
sentence with the same values many times, and Markdown conversion is the
costliest part of a step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import markdown
import nh3

from lotse.engine.expressions import Evaluator, escape_markdown

__all__ = ["Renderer", "escape_markdown"]

_ALLOWED_TAGS = {
    "p", "br", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li",
    "a", "h1", "h2", "h3", "h4", "hr",
}  # fmt: skip


class Renderer:
    """Render flow text (Markdown with ``{{ }}`` insertions) to sanitised HTML."""

    def __init__(self, evaluator: Evaluator, max_cache: int = 10_000) -> None:
        self._evaluator = evaluator
        self._markdown = markdown.Markdown(extensions=[], output_format="html")
        self._cache: dict[tuple[str, bool], str] = {}
        self._max_cache = max_cache

    def markdown_source(self, template: str, context: Mapping[str, Any]) -> str:
        """Evaluate a text template with escaped insertions; the result is Markdown."""
        return self._evaluator.text(template, context, markdown=True)

    def html(self, source: str, *, inline: bool = False) -> str:
        """Convert Markdown to sanitised HTML; ``inline`` drops the surrounding paragraph."""
        key = (source, inline)
        found = self._cache.get(key)
        if found is not None:
            return found
        self._markdown.reset()
        converted = self._markdown.convert(source)
        if inline and converted.startswith("<p>") and converted.endswith("</p>") and converted.count("<p>") == 1:
            converted = converted[3:-4]
        cleaned = nh3.clean(
            converted,
            tags=_ALLOWED_TAGS,
            attributes={"a": {"href", "title"}},
            url_schemes={"http", "https", "mailto"},
            link_rel="noopener noreferrer",
        )
        if len(self._cache) >= self._max_cache:
            self._cache.clear()
        self._cache[key] = cleaned
        return cleaned

    def render(self, template: str, context: Mapping[str, Any], *, inline: bool = False) -> str:
        """Evaluate and render a text template to sanitised HTML."""
        if "{{" not in template and "{%" not in template:
            return self.html(template, inline=inline)  # plain text: nothing to evaluate
        return self.html(self.markdown_source(template, context), inline=inline)
