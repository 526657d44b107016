"""JSON text for the engine's state: ``orjson`` when it is installed, the standard library otherwise.

The platform keeps a session's state in a JSON column and encodes and
decodes it on every step, so the codec is on the hot path. ``orjson`` is
about ten times faster at encoding and twice as fast at decoding; it is
optional, and the text is the same JSON either way (compact, UTF-8, no
ASCII escaping). Values ``orjson`` refuses (keys that are not strings,
integers beyond 64 bits) fall back to the standard library.
"""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - depends on the installation
    FAST = False
else:
    FAST = True


def _tuple_subclass(value: Any) -> Any:
    # orjson encodes tuples but not their subclasses (named tuples); the standard library encodes both as arrays.
    if isinstance(value, tuple):
        return list(value)
    raise TypeError


def dumps(value: Any) -> str:
    """Return ``value`` as compact JSON text (tuples, named tuples included, as arrays)."""
    if FAST:
        try:
            return orjson.dumps(value, default=_tuple_subclass).decode()
        except TypeError:
            pass
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def loads(text: str | bytes) -> Any:
    """Return the value of JSON text."""
    if FAST:
        return orjson.loads(text)
    return json.loads(text)
