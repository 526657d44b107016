"""Sandboxed expressions and templates, and their static analysis.

Flows are written by content editors and run with the rights of whoever runs
the session, so an expression must not be able to reach anything but its
read-only context, and must finish quickly whatever it says. Jinja2's
immutable sandbox is the base; on top of it:

* **Only data.** Attribute access on a mapping reads its keys, never its
  methods (``answers.items`` is the answer of a step called ``items``);
  private names are refused; the only callables are the engine's helpers.
* **Bounded by construction.** Templates may use ``{{ }}`` and ``{% if %}``
  and nothing else: no loops, macros, ``set`` or includes, so evaluation time
  is linear in the size of the expression and its data. ``range`` and the
  other Jinja globals are gone; repetition (``'a' * n``), powers and
  ``%``-formatting are checked before they run; the filter set is a list of
  ones that cannot blow up; sources are limited in length.
* **Static analysis.** :meth:`Evaluator.analyse` reports syntax errors,
  forbidden constructs and every name an expression uses, so that
  ``lotse flows check`` can reject names outside the context
  (``inputs``, ``answers``, ``results``, ``facts``, ``user``, ``org`` and the
  helpers) before anyone runs the flow.

Values: a template that is exactly one ``{{ expression }}`` yields the value
itself (an account, a number, an option id); anything else is text.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import ChainableUndefined, Template, TemplateSyntaxError, nodes
from jinja2.environment import TemplateExpression
from jinja2.exceptions import SecurityError, TemplateError, UndefinedError
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

#: The names every expression may use, besides the helpers.
CONTEXT_ROOTS = frozenset({"inputs", "answers", "results", "facts", "user", "org"})

MAX_EXPRESSION_LENGTH = 2_000
MAX_TEMPLATE_LENGTH = 20_000
MAX_SEQUENCE = 10_000
MAX_POWER_BITS = 4_096

SAFE_FILTERS = frozenset(
    {
        "abs", "capitalize", "count", "default", "d", "first", "float", "int", "join", "last",
        "length", "list", "lower", "map", "max", "min", "reject", "rejectattr", "round",
        "select", "selectattr", "sort", "string", "sum", "title", "trim", "unique", "upper",
        "items", "dictsort", "batch", "slice",
    }
)  # fmt: skip

_ALLOWED_NODES: tuple[type[nodes.Node], ...] = (
    nodes.Template, nodes.Output, nodes.TemplateData, nodes.If, nodes.Name, nodes.Const,
    nodes.Getattr, nodes.Getitem, nodes.Slice, nodes.Compare, nodes.Operand, nodes.And,
    nodes.Or, nodes.Not, nodes.Neg, nodes.Pos, nodes.Add, nodes.Sub, nodes.Mul, nodes.Div,
    nodes.FloorDiv, nodes.Mod, nodes.Pow, nodes.Concat, nodes.CondExpr, nodes.Filter,
    nodes.Test, nodes.Call, nodes.List, nodes.Tuple, nodes.Dict, nodes.Pair, nodes.Keyword,
)  # fmt: skip

_WHOLE = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\{\{|\}\}|\{%|%\}).)*)\}\}\s*$", re.DOTALL)


class ExpressionError(Exception):
    """An expression that does not parse, is forbidden, or failed while running."""

    def __init__(self, message: str, line: int = 1, *, syntax: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.syntax = syntax


def _length(value: Any) -> int:
    return len(value) if isinstance(value, str | list | tuple) else 0


def helpers() -> dict[str, Callable[..., Any]]:
    """Return the engine's helpers: the only functions an expression may call."""
    return {
        "len": len,
        "min": min,
        "max": max,
        "abs": abs,
        "round": round,
        "str": str,
        "int": int,
        "float": float,
        "bool": bool,
    }


_PLAIN_VALUES = frozenset({int, float, bool, type(None)})
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!])")
_LINE_BREAK = re.compile(r"\s*\n\s*")


def escape_markdown(value: Any) -> str:
    """Escape a value inserted into Markdown so that it shows exactly as written."""
    if value is None or isinstance(value, Undefined):
        return ""
    text = str(value)
    if text.isalnum() or text.replace(" ", "").isalnum():
        return text  # letters, digits and spaces: nothing to escape (the common case of a name or a word)
    text = html.escape(text, quote=True)
    # Exactly the characters the markdown package lets a backslash escape.
    text = _MARKDOWN_SPECIAL.sub(r"\\\1", text)
    return _LINE_BREAK.sub(" ", text) if "\n" in text else text


def _shown(value: Any, markdown: bool) -> str:
    """Return an inserted value as the sandbox writes it: ``str(finalize(value))``; undefined is empty."""
    if value is _MISSING:
        return ""
    return escape_markdown(value) if markdown else str(value)


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%", "//"})

    def __init__(self, *, markdown: bool) -> None:
        super().__init__(
            undefined=ChainableUndefined,
            autoescape=False,
            finalize=escape_markdown if markdown else None,
            cache_size=0,
        )
        self.globals.clear()
        self.globals.update(helpers())
        self.filters = {name: f for name, f in self.filters.items() if name in SAFE_FILTERS}
        self._helper_ids = frozenset(id(f) for f in helpers().values())

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        return not callable(value) and super().is_safe_attribute(obj, attr, value)

    def getattr(self, obj: Any, attribute: str) -> Any:
        if attribute.startswith("_"):
            raise SecurityError(f"access to private name '{attribute}' is not allowed")
        if isinstance(obj, Mapping):
            if attribute in obj:
                return obj[attribute]
            return self.undefined(obj=obj, name=attribute)
        if isinstance(obj, Undefined):
            return obj
        value = super().getattr(obj, attribute)
        if callable(value) and not isinstance(value, Undefined):
            return self.undefined(obj=obj, name=attribute)
        return value

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(argument, str) and argument.startswith("_"):
            raise SecurityError(f"access to private name '{argument}' is not allowed")
        if isinstance(obj, Undefined):
            return obj
        if isinstance(obj, Mapping):
            if argument in obj:
                return obj[argument]
            return self.undefined(obj=obj, name=argument)
        value = super().getitem(obj, argument)
        if callable(value):
            return self.undefined(obj=obj, name=str(argument))
        return value

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        if id(__obj) not in __self._helper_ids:
            raise SecurityError("only the engine's helpers can be called")
        return __obj(*args, **kwargs)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "%":
            if isinstance(left, str):
                raise SecurityError("'%' string formatting is not allowed")
            return left % right
        if operator == "//":
            return left // right
        if operator == "**":
            if isinstance(left, int | float) and isinstance(right, int | float):
                base = abs(float(left))
                if abs(right) > MAX_POWER_BITS or (base > 1 and right * math.log2(base) > MAX_POWER_BITS):
                    raise SecurityError("the power is too large")
            return left**right
        # '*': sequence repetition is checked before it runs.
        for seq, count in ((left, right), (right, left)):
            if _length(seq) and isinstance(count, int) and _length(seq) * count > MAX_SEQUENCE:
                raise SecurityError("the repetition is too long")
        if isinstance(left, int) and isinstance(right, int) and (left.bit_length() + right.bit_length()) > MAX_POWER_BITS:
            raise SecurityError("the number is too large")
        return left * right


def _flatten_globals(template: Template) -> None:
    """Give a compiled template its globals as one plain dict (the same names and values).

    Jinja keeps a template's globals as a ``ChainMap`` over the environment's,
    and copies it into a new dict on every evaluation; iterating a
    ``ChainMap`` is Python code, and was a good part of each evaluation.
    The environment's globals never change after the sandbox is set up.
    """
    template.globals = dict(template.globals)


class _Fallback(Exception):
    """The direct evaluation does not cover this value: evaluate through the sandbox instead."""


_MISSING: Any = object()  # what the sandbox would give as undefined
_Direct = Callable[[Mapping[str, Any]], Any]


def _direct(node: nodes.Node) -> _Direct | None:
    """Return a plain function computing ``node`` exactly as the sandbox would, for the simplest forms, or None.

    Covered: constants, the context's roots, ``.key`` and ``['key']`` on a
    ``dict`` (the sandbox reads a mapping's keys, never its attributes),
    ``==``/``!=``, ``and``, ``or``, ``not``. At run time anything else (a
    value that is not a plain dict, an undefined value inside a comparison)
    raises :class:`_Fallback`, and the sandbox evaluates the whole
    expression, so the result, undefined and errors included, is always
    the sandbox's. Analysis still runs first: only allowed sources get here.
    """
    if isinstance(node, nodes.Const):
        value = node.value
        return lambda context: value
    if isinstance(node, nodes.Name) and node.ctx == "load" and node.name in CONTEXT_ROOTS:
        name = node.name
        return lambda context: context.get(name, _MISSING)
    if isinstance(node, nodes.Getattr | nodes.Getitem):
        key = node.attr if isinstance(node, nodes.Getattr) else (
            node.arg.value if isinstance(node.arg, nodes.Const) else None
        )  # fmt: skip
        inner = _direct(node.node)
        if not isinstance(key, str) or key.startswith("_") or inner is None:
            return None

        def item(context: Mapping[str, Any], inner: _Direct = inner, key: str = key) -> Any:
            obj = inner(context)
            if obj is _MISSING:
                return _MISSING
            if type(obj) is not dict:
                raise _Fallback
            return obj.get(key, _MISSING)

        return item
    if isinstance(node, nodes.Compare) and len(node.ops) == 1 and node.ops[0].op in ("eq", "ne"):
        left, right = _direct(node.expr), _direct(node.ops[0].expr)
        if left is None or right is None:
            return None
        equal = node.ops[0].op == "eq"

        def compare(context: Mapping[str, Any], left: _Direct = left, right: _Direct = right) -> bool:
            a, b = left(context), right(context)
            if a is _MISSING or b is _MISSING:
                raise _Fallback
            return bool(a == b) if equal else bool(a != b)

        return compare
    if isinstance(node, nodes.And | nodes.Or):
        left, right = _direct(node.left), _direct(node.right)
        if left is None or right is None:
            return None
        if isinstance(node, nodes.And):
            return lambda context: _truth(left(context)) and right(context)
        return lambda context: _truth(left(context)) or right(context)
    if isinstance(node, nodes.Not):
        operand = _direct(node.node)
        if operand is None:
            return None
        return lambda context: not _truth(operand(context))
    return None


def _truth(value: Any) -> Any:
    if value is _MISSING:
        raise _Fallback
    return value


@dataclass(frozen=True, slots=True)
class Reference:
    """A use of ``root.key`` or ``root['key']`` with a literal key."""

    root: str
    key: str


@dataclass(frozen=True, slots=True)
class Analysis:
    """What an expression or template uses, or why it cannot be used."""

    names: frozenset[str]
    references: tuple[Reference, ...]
    dynamic_roots: frozenset[str]
    error: ExpressionError | None = None

    def facts_used(self, declared: frozenset[str]) -> frozenset[str]:
        """Return the declared facts this needs resolved (all of them when used dynamically)."""
        if "facts" in self.dynamic_roots:
            return declared
        return frozenset(r.key for r in self.references if r.root == "facts") & declared


def _analyse_tree(tree: nodes.Node, allowed_calls: frozenset[str]) -> Analysis:
    names: set[str] = set()
    references: list[Reference] = []
    dynamic: set[str] = set()
    stack: list[nodes.Node] = [tree]
    while stack:
        node = stack.pop()
        if not isinstance(node, _ALLOWED_NODES):
            kind = type(node).__name__
            raise ExpressionError(
                f"'{kind}' is not allowed here: text may use {{{{ expressions }}}} and {{% if %}} only",
                getattr(node, "lineno", 1),
            )
        if isinstance(node, nodes.Name):
            names.add(node.name)
        elif isinstance(node, nodes.Getattr | nodes.Getitem):
            key = node.attr if isinstance(node, nodes.Getattr) else (
                node.arg.value if isinstance(node.arg, nodes.Const) else None
            )
            if isinstance(key, str) and key.startswith("_"):
                raise ExpressionError(f"access to private name '{key}' is not allowed", node.lineno)
            if isinstance(node.node, nodes.Name):
                if isinstance(key, str | int):
                    references.append(Reference(node.node.name, str(key)))
                else:
                    dynamic.add(node.node.name)
        elif isinstance(node, nodes.Call):
            if not (isinstance(node.node, nodes.Name) and node.node.name in allowed_calls):
                raise ExpressionError(
                    f"only these functions can be called: {', '.join(sorted(allowed_calls))}", node.lineno
                )
            if node.dyn_args is not None or node.dyn_kwargs is not None:
                raise ExpressionError("'*' and '**' arguments are not allowed", node.lineno)
        elif isinstance(node, nodes.Filter) and node.name not in SAFE_FILTERS:
            raise ExpressionError(f"the filter '{node.name}' is not allowed", node.lineno)
        stack.extend(node.iter_child_nodes())
    return Analysis(frozenset(names), tuple(references), frozenset(dynamic))


class Evaluator:
    """Compile, analyse and evaluate expressions and templates; caches what it compiled.

    One instance serves any number of flows and sessions; it holds no state but
    its caches, which only ever hold what the same source compiles to.
    """

    def __init__(self, max_cache: int = 20_000) -> None:
        self._plain = _Sandbox(markdown=False)
        self._markdown = _Sandbox(markdown=True)
        self._allowed_calls = frozenset(helpers())
        self._max_cache = max_cache
        self._expressions: dict[str, TemplateExpression | ExpressionError] = {}
        self._templates: dict[tuple[str, bool], Template | ExpressionError] = {}
        self._analyses: dict[tuple[str, bool], Analysis] = {}
        # Direct evaluation of the simplest expressions and templates (see _direct), by source.
        self._direct_expressions: dict[str, _Direct | None] = {}
        self._direct_templates: dict[tuple[str, bool], tuple[str | _Direct, ...] | None] = {}

    # -- static analysis -------------------------------------------------

    def analyse(self, source: str, *, template: bool) -> Analysis:
        """Return what ``source`` uses; ``error`` says why it cannot be used at all."""
        key = (source, template)
        found = self._analyses.get(key)
        if found is None:
            found = self._analyse(source, template)
            self._remember(self._analyses, key, found)
        return found

    def _analyse(self, source: str, template: bool) -> Analysis:
        limit = MAX_TEMPLATE_LENGTH if template else MAX_EXPRESSION_LENGTH
        empty = Analysis(frozenset(), (), frozenset())
        if len(source) > limit:
            return Analysis(frozenset(), (), frozenset(), ExpressionError(f"longer than {limit} characters"))
        try:
            if template:
                tree: nodes.Node = self._plain.parse(source)
            else:
                tree = self._plain.parse("{{ " + source + " }}")
                body = tree.body if isinstance(tree, nodes.Template) else []
                if len(body) != 1 or not isinstance(body[0], nodes.Output) or len(body[0].nodes) != 1 or isinstance(
                    body[0].nodes[0], nodes.TemplateData
                ):
                    return Analysis(frozenset(), (), frozenset(), ExpressionError("not a single expression", syntax=True))
            return _analyse_tree(tree, self._allowed_calls)
        except TemplateSyntaxError as error:
            return Analysis(frozenset(), (), frozenset(), ExpressionError(error.message or "syntax error", error.lineno, syntax=True))
        except ExpressionError as error:
            return Analysis(empty.names, (), frozenset(), error)
        except (RecursionError, MemoryError):
            return Analysis(frozenset(), (), frozenset(), ExpressionError("nested too deeply", syntax=True))

    def analyse_value(self, value: Any) -> Iterator[tuple[tuple[str | int, ...], Analysis]]:
        """Analyse every template inside a nested value (``args``, ``inputs``), with its path."""
        if isinstance(value, str):
            if "{{" in value or "{%" in value:
                yield (), self.analyse(value, template=True)
        elif isinstance(value, Mapping):
            for key, item in value.items():
                for path, analysis in self.analyse_value(item):
                    yield (str(key), *path), analysis
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                for path, analysis in self.analyse_value(item):
                    yield (index, *path), analysis

    # -- evaluation ------------------------------------------------------

    def _remember(self, cache: dict[Any, Any], key: Any, value: Any) -> None:
        if len(cache) >= self._max_cache:
            cache.clear()
        cache[key] = value

    def _compiled_expression(self, source: str) -> TemplateExpression:
        found = self._expressions.get(source)
        if found is None:
            analysis = self.analyse(source, template=False)
            if analysis.error is not None:
                found = analysis.error
            else:
                try:
                    found = self._plain.compile_expression(source, undefined_to_none=False)
                    _flatten_globals(found._template)
                except TemplateError as error:  # pragma: no cover - analysis parses first
                    found = ExpressionError(str(error))
            self._remember(self._expressions, source, found)
        if isinstance(found, ExpressionError):
            raise found
        return found

    def _compiled_template(self, source: str, markdown: bool) -> Template:
        key = (source, markdown)
        found = self._templates.get(key)
        if found is None:
            analysis = self.analyse(source, template=True)
            if analysis.error is not None:
                found = analysis.error
            else:
                env = self._markdown if markdown else self._plain
                try:
                    found = env.from_string(source)
                    _flatten_globals(found)
                except TemplateError as error:  # pragma: no cover - analysis parses first
                    found = ExpressionError(str(error))
            self._remember(self._templates, key, found)
        if isinstance(found, ExpressionError):
            raise found
        return found

    def _direct_expression(self, source: str) -> _Direct | None:
        found = self._direct_expressions.get(source, _MISSING)
        if found is _MISSING:
            self._compiled_expression(source)  # analysed and allowed (raises otherwise)
            tree = self._plain.parse("{{ " + source + " }}")
            output = tree.body[0]
            found = _direct(output.nodes[0]) if isinstance(output, nodes.Output) else None
            self._remember(self._direct_expressions, source, found)
        return found  # type: ignore[no-any-return]

    def _direct_template(self, source: str, markdown: bool) -> tuple[str | _Direct, ...] | None:
        key = (source, markdown)
        found = self._direct_templates.get(key, _MISSING)
        if found is _MISSING:
            self._compiled_template(source, markdown)  # analysed and allowed (raises otherwise)
            parts: list[str | _Direct] | None = []
            for output in self._plain.parse(source).body:
                if not isinstance(output, nodes.Output) or parts is None:
                    parts = None
                    break
                for child in output.nodes:
                    part = child.data if isinstance(child, nodes.TemplateData) else _direct(child)
                    if part is None:
                        parts = None
                        break
                    parts.append(part)
            found = tuple(parts) if parts is not None else None
            self._remember(self._direct_templates, key, found)
        return found  # type: ignore[no-any-return]

    def evaluate(self, source: str, context: Mapping[str, Any]) -> Any:
        """Evaluate a bare expression and return its value (``None`` when undefined)."""
        direct = self._direct_expression(source)
        if direct is not None:
            try:
                value = direct(context)
            except _Fallback:
                pass
            else:
                return None if value is _MISSING else value
        expression = self._compiled_expression(source)
        try:
            result: Any = expression(context)
        except (TemplateError, SecurityError, UndefinedError) as error:
            raise ExpressionError(str(error)) from None
        except (ArithmeticError, TypeError, ValueError, LookupError, RecursionError, MemoryError) as error:
            raise ExpressionError(f"{type(error).__name__}: {error}") from None
        return None if isinstance(result, Undefined) else result

    def condition(self, source: str, context: Mapping[str, Any]) -> bool:
        """Evaluate a ``when`` condition; undefined is false."""
        return bool(self.evaluate(source, context))

    def value(self, source: Any, context: Mapping[str, Any]) -> Any:
        """Resolve a template value: one whole ``{{ x }}`` yields x's value; nested data recurses."""
        if isinstance(source, str):
            if "{{" not in source and "{%" not in source:
                return source
            whole = _WHOLE.match(source)
            if whole is not None:
                return self.evaluate(whole.group("expr").strip(), context)
            return self.text(source, context, markdown=False)
        if type(source) in _PLAIN_VALUES:
            return source  # (before the ABC check below, which is slow for a value that is no mapping)
        if type(source) is dict or isinstance(source, Mapping):
            return {key: self.value(item, context) for key, item in source.items()}
        if isinstance(source, list | tuple):
            return [self.value(item, context) for item in source]
        return source

    def text(self, source: str, context: Mapping[str, Any], *, markdown: bool) -> str:
        """Render a text template; with ``markdown`` every inserted value is escaped."""
        if "{{" not in source and "{%" not in source:
            return source
        parts = self._direct_template(source, markdown)
        if parts is not None:
            try:
                return "".join([part if type(part) is str else _shown(part(context), markdown) for part in parts])  # type: ignore[operator]
            except _Fallback:
                pass
        template = self._compiled_template(source, markdown)
        try:
            return template.render(context)
        except (TemplateError, SecurityError) as error:
            raise ExpressionError(str(error)) from None
        except (ArithmeticError, TypeError, ValueError, LookupError, RecursionError, MemoryError) as error:
            raise ExpressionError(f"{type(error).__name__}: {error}") from None
