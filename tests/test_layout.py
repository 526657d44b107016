"""The layout ARCHITECTURE.md fixes: the ``platform`` trap and the one-way dependencies.

``platform/`` must not become a regular package (it would shadow the
standard library's ``platform`` module whenever the repository root leads
``sys.path``), the engine stays free of the web stack and of the platform,
and media stays free of both platform and engine.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

FORBIDDEN: dict[str, tuple[str, ...]] = {
    "engine": ("lotse.platform", "lotse.media", "quart", "tortoise", "hypercorn"),
    "media": ("lotse.platform", "lotse.engine"),
}


def imported_modules(path: Path, root: Path = REPO) -> Iterator[tuple[int, str]]:
    """Yield ``(line, module)`` for every import in a file, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    # engine/sub/x.py and engine/sub/__init__.py both sit in the package lotse.engine.sub.
    package = ".".join(("lotse", *path.relative_to(root).parts[:-1]))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            yield node.lineno, module
            for alias in node.names:
                # ``from lotse import platform`` names the package in the alias.
                yield node.lineno, f"{module}.{alias.name}"
        elif isinstance(node, ast.Call) and _is_dynamic_import(node):
            argument = node.args[0]
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                yield node.lineno, argument.value


def _is_dynamic_import(node: ast.Call) -> bool:
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    return name in {"import_module", "__import__"} and bool(node.args)


def _matches(module: str, forbidden: str) -> bool:
    return module == forbidden or module.startswith(forbidden + ".")


def violations(folder: str, root: Path = REPO) -> list[str]:
    """Return ``file:line: imports x`` for every forbidden import under ``root/folder``."""
    found: list[str] = []
    for path in sorted((root / folder).rglob("*.py")):
        for line, module in sorted(imported_modules(path, root)):
            if any(_matches(module, forbidden) for forbidden in FORBIDDEN[folder]):
                found.append(f"{path.relative_to(root)}:{line}: imports {module}")
    return found


def test_platform_is_not_a_regular_package() -> None:
    assert (REPO / "platform").is_dir()
    assert not (REPO / "platform" / "__init__.py").exists()
    assert not list(REPO.glob("lotse/__init__.py"))


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_dependencies_point_one_way(folder: str) -> None:
    assert list((REPO / folder).rglob("*.py")), f"{folder}/ has no Python files to check"
    problems = violations(folder)
    assert not problems, "\n".join(problems)


def test_the_scan_would_notice_a_forbidden_import(tmp_path: Path) -> None:
    (tmp_path / "engine" / "sub").mkdir(parents=True)
    (tmp_path / "engine" / "sub" / "probe.py").write_text(
        "import quart\nfrom lotse.platform.i18n import _\nfrom lotse import media\n"
        "import importlib\nimportlib.import_module('tortoise.fields')\n"
        "from ... import platform\nfrom ..loader import load\nimport json\n"
    )
    assert violations("engine", tmp_path) == [
        "engine/sub/probe.py:1: imports quart",
        "engine/sub/probe.py:2: imports lotse.platform.i18n",
        "engine/sub/probe.py:2: imports lotse.platform.i18n._",
        "engine/sub/probe.py:3: imports lotse.media",
        "engine/sub/probe.py:5: imports tortoise.fields",
        "engine/sub/probe.py:6: imports lotse.platform",
    ]


def test_the_standard_platform_module_is_not_shadowed() -> None:
    code = "import platform, sys; print(platform.system()); print(platform.__file__)"
    for args in ([sys.executable, "-c", code], [sys.executable, "-m", "platform"]):
        result = subprocess.run(args, cwd=REPO, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    system, location = result.stdout.split()
    assert system
    assert not Path(location).resolve().is_relative_to(REPO)


def test_the_namespace_packages_import_from_the_repository_root() -> None:
    code = "import lotse.platform.app, lotse.engine, lotse.media; import platform; platform.system()"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
