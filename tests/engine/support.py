"""Paths and loaders shared by the engine's tests (imported as ``tests.engine.support``)."""

from __future__ import annotations

from pathlib import Path

from lotse.engine.loader import load_flow_file
from lotse.engine.model import Flow

HERE = Path(__file__).parent
FLOWS = HERE / "flows"
BROKEN = FLOWS / "broken"


def load(name: str) -> Flow:
    """Load one of the example flows; it must load without problems."""
    result = load_flow_file(str(FLOWS / f"{name}.yaml"))
    assert result.flow is not None, result.problems
    assert result.schema_valid, result.problems
    return result.flow
