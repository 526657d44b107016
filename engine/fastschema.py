"""A fast yes/no check for the JSON Schema subset the flow format uses.

``jsonschema`` builds a validator object per keyword and per level and
resolves ``$ref`` through its registry every time; for a flow of 50 steps
that is most of the time ``lotse flows check`` takes. Nearly every flow that
is checked is valid, so the loader first asks a predicate compiled here
("is this instance valid?") and asks ``jsonschema`` for the actual errors
only when the answer is no.

The predicate is exact: it says yes exactly when ``jsonschema`` finds no
error (same type rules: ``1.0`` is an integer, ``true`` is not a number;
``pattern`` searches; lengths count code points). Where that would be hard
to guarantee it answers no, which only costs the slow path. A schema using a
keyword outside the subset is not compiled at all (:func:`compile_schema`
returns ``None``) and the caller keeps using ``jsonschema`` alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Predicate = Callable[[Any], bool]

#: Keywords that never affect validity.
_ANNOTATIONS = frozenset({"$schema", "$id", "$defs", "$comment", "title", "description", "examples", "default"})


class _Unsupported(Exception):
    pass


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and value.is_integer()


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_TYPES: dict[str, Predicate] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": _is_integer,
    "number": _is_number,
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def _plain(value: Any) -> bool:
    """Values whose JSON Schema equality is Python's ``==`` with the type compared too."""
    return isinstance(value, str) or value is None


def _true(_value: Any) -> bool:
    return True


class _Compiler:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self.refs: dict[str, Predicate] = {}
        self.strict = 0

    def ref(self, target: str) -> Predicate:
        if not target.startswith("#/$defs/") or "/" in target[len("#/$defs/"):]:
            raise _Unsupported(target)
        name = target[len("#/$defs/"):]
        defs = self.root.get("$defs")
        if not isinstance(defs, Mapping) or name not in defs:
            raise _Unsupported(target)
        if target not in self.refs:
            compiled: list[Predicate] = []
            # Recursive references resolve lazily, through the list.
            self.refs[target] = lambda v: compiled[0](v)
            compiled.append(self.compile(defs[name]))
            self.refs[target] = compiled[0]
        return self.refs[target]

    def compile(self, schema: Any) -> Predicate:
        if schema is True or schema == {}:
            return _true
        if schema is False:
            return _false
        if not isinstance(schema, Mapping):
            raise _Unsupported(repr(schema))
        checks: list[Predicate] = []
        object_checks: list[Predicate] = []
        string_checks: list[Predicate] = []
        for keyword, argument in schema.items():
            if keyword in _ANNOTATIONS or keyword in ("then", "else"):
                continue  # "then"/"else" are compiled with "if"; alone they mean nothing
            if keyword == "type":
                checks.insert(0, _type(argument))
            elif keyword in _SIMPLE:
                checks.append(_SIMPLE[keyword](argument))
            elif keyword in _STRING:
                string_checks.append(_STRING[keyword](argument))
            elif keyword in _OBJECT:
                object_checks.append(_OBJECT[keyword](argument))
            elif keyword == "uniqueItems":
                if argument:
                    if self.strict:
                        raise _Unsupported(keyword)  # an 'if' needs an exact answer
                    checks.append(_unique)
            elif keyword == "items":
                checks.append(_items(self.compile(argument)))
            elif keyword == "propertyNames":
                object_checks.append(_property_names(self.compile(argument)))
            elif keyword == "properties":
                object_checks.append(_properties({name: self.compile(sub) for name, sub in argument.items()}))
            elif keyword == "additionalProperties":
                if "patternProperties" in schema:
                    raise _Unsupported(keyword)
                known = frozenset(schema.get("properties", {}))
                extra = None if argument is False else self.compile(argument)
                object_checks.append(_additional(known, extra))
            elif keyword == "allOf":
                checks.append(_all_of(tuple(self.compile(sub) for sub in argument)))
            elif keyword == "anyOf":
                checks.append(_any_of(tuple(self.compile(sub) for sub in argument)))
            elif keyword == "if":
                self.strict += 1
                try:
                    condition = self.compile(argument)
                finally:
                    self.strict -= 1
                then = self.compile(schema["then"]) if "then" in schema else _true
                otherwise = self.compile(schema["else"]) if "else" in schema else _true
                checks.append(_if(condition, then, otherwise))
            elif keyword == "$ref":
                checks.append(self.ref(argument))
            else:
                raise _Unsupported(keyword)
        if object_checks:
            checks.append(_when(dict, tuple(object_checks)))
        if string_checks:
            checks.append(_when(str, tuple(string_checks)))
        if not checks:
            return _true
        return checks[0] if len(checks) == 1 else _all_of(tuple(checks))


# -- one small factory per keyword (closures, so that each check is one call) --


def _false(_value: Any) -> bool:
    return False


def _type(argument: Any) -> Predicate:
    names = argument if isinstance(argument, list) else [argument]
    if not names or not all(isinstance(n, str) and n in _TYPES for n in names):
        raise _Unsupported("type")
    tests = tuple(_TYPES[n] for n in names)
    if len(tests) == 1:
        return tests[0]
    return lambda v: any(f(v) for f in tests)


def _enum(values: Any) -> Predicate:
    if not isinstance(values, list) or not all(_plain(x) for x in values):
        raise _Unsupported("enum")
    strings = frozenset(x for x in values if isinstance(x, str))
    allow_none = any(x is None for x in values)
    return lambda v: (isinstance(v, str) and v in strings) or (allow_none and v is None)


def _const(value: Any) -> Predicate:
    return _enum([value])


def _minimum(bound: Any) -> Predicate:
    return lambda v: not _is_number(v) or v >= bound


def _maximum(bound: Any) -> Predicate:
    return lambda v: not _is_number(v) or v <= bound


def _min_items(count: Any) -> Predicate:
    return lambda v: not isinstance(v, list) or len(v) >= count


def _pattern(argument: Any) -> Predicate:
    search = re.compile(argument).search
    return lambda v: search(v) is not None


def _min_length(count: Any) -> Predicate:
    return lambda v: len(v) >= count


def _min_properties(count: Any) -> Predicate:
    return lambda v: len(v) >= count


def _required(argument: Any) -> Predicate:
    names = tuple(argument)
    return lambda v: all(k in v for k in names)


def _unique(value: Any) -> bool:
    # Exact for texts; anything else answers no and takes the slow path.
    return not isinstance(value, list) or (all(isinstance(x, str) for x in value) and len(set(value)) == len(value))


def _items(item: Predicate) -> Predicate:
    return lambda v: not isinstance(v, list) or all(item(x) for x in v)


def _property_names(key: Predicate) -> Predicate:
    return lambda v: all(key(k) for k in v)


def _properties(props: dict[str, Predicate]) -> Predicate:
    pairs = tuple(props.items())
    return lambda v: all(f(v[k]) for k, f in pairs if k in v)


def _additional(known: frozenset[str], extra: Predicate | None) -> Predicate:
    if extra is None:
        return lambda v: all(name in known for name in v)
    return lambda v: all(extra(item) for name, item in v.items() if name not in known)


def _all_of(parts: tuple[Predicate, ...]) -> Predicate:
    return lambda v: all(f(v) for f in parts)


def _any_of(parts: tuple[Predicate, ...]) -> Predicate:
    return lambda v: any(f(v) for f in parts)


def _if(condition: Predicate, then: Predicate, otherwise: Predicate) -> Predicate:
    return lambda v: then(v) if condition(v) else otherwise(v)


def _when(kind: type, parts: tuple[Predicate, ...]) -> Predicate:
    return lambda v: not isinstance(v, kind) or all(f(v) for f in parts)


_SIMPLE: dict[str, Callable[[Any], Predicate]] = {
    "enum": _enum, "const": _const, "minimum": _minimum, "maximum": _maximum, "minItems": _min_items,
}  # fmt: skip
_STRING: dict[str, Callable[[Any], Predicate]] = {"pattern": _pattern, "minLength": _min_length}
_OBJECT: dict[str, Callable[[Any], Predicate]] = {"minProperties": _min_properties, "required": _required}


def compile_schema(schema: Mapping[str, Any], root: Mapping[str, Any] | None = None) -> Predicate | None:
    """Return a predicate telling whether an instance is valid, or ``None`` when the schema is outside the subset.

    ``root`` is the document ``$ref`` pointers (``#/$defs/...``) resolve in; by
    default the schema itself.
    """
    try:
        return _Compiler(root if root is not None else schema).compile(schema)
    except (_Unsupported, re.error, TypeError, AttributeError):
        return None
