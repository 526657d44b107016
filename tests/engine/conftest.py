"""Shared fakes for the engine's tests: the example catalogue, flows and ports."""

from __future__ import annotations

import pytest

from lotse.engine.catalogue import FileCatalogue
from lotse.engine.local import DictFlows, FakeClock, RecordingExecutor, StaticFacts
from lotse.engine.ports import Ports
from tests.engine.support import HERE, load


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
