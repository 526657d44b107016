"""Shared fakes for the engine's tests: the example catalogue, flows and ports."""

from __future__ import annotations

from pathlib import Path

import pytest

from lotse.engine.catalogue import FileCatalogue
from lotse.engine.loader import load_flow_file
from lotse.engine.local import DictFlows, FakeClock, RecordingExecutor, StaticFacts
from lotse.engine.model import Flow
from lotse.engine.ports import Ports

HERE = Path(__file__).parent
FLOWS = HERE / "flows"
BROKEN = FLOWS / "broken"


def load(name: str) -> Flow:
    """Load one of the example flows; it must load without problems."""
    result = load_flow_file(str(FLOWS / f"{name}.yaml"))
    assert result.flow is not None, result.problems
    assert result.schema_valid, result.problems
    return result.flow


@pytest.fixture
def catalogue() -> FileCatalogue:
    return FileCatalogue.from_path(HERE / "catalogue.yaml")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def executor(catalogue: FileCatalogue) -> RecordingExecutor:
    return RecordingExecutor(catalogue)


@pytest.fixture
def ports(executor: RecordingExecutor, clock: FakeClock) -> Ports:
    flows = DictFlows({name: load(name) for name in ("login-help",)})
    return Ports(executor, StaticFacts({"account.state": "deactivated"}), flows, clock)
