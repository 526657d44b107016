"""The engine imports neither the platform, media, Quart, Tortoise nor Hypercorn."""

from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "engine"
FORBIDDEN = ("lotse.platform", "lotse.media", "quart", "tortoise", "hypercorn", "aiortc")


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_engine_imports_nothing_forbidden() -> None:
    files = sorted(ENGINE.rglob("*.py"))
    assert files
    for path in files:
        for module in imported_modules(path):
            assert not any(module == f or module.startswith(f + ".") for f in FORBIDDEN), f"{path.name} imports {module}"


def test_schema_ships_with_the_package() -> None:
    from lotse.engine.loader import flow_schema_text

    assert '"title": "Lotse support flow"' in flow_schema_text()
