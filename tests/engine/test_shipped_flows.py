"""Every scenario case of the shipped flows (``flows/tests/*.yaml``) as a pytest case.

Passes with zero flows: the parameter list is then empty. The scenarios run
against the platform's catalogue (``lotse.platform.help.catalogue``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lotse.engine.local import DirectoryFlows
from lotse.engine.ports import Catalogue
from lotse.engine.testing import ScenarioCase, collect_cases, run_case_sync

SHIPPED = Path(__file__).resolve().parents[2] / "flows"
CASES = collect_cases(SHIPPED)


def shipped_catalogue() -> Catalogue:
    """The platform's real catalogue, so that a scenario cannot use an action or fact it lacks."""
    from lotse.platform.help.catalogue import platform_catalogue

    return platform_catalogue()


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_shipped_scenario(case: ScenarioCase) -> None:
    flows = DirectoryFlows(SHIPPED)
    flow = flows.load(case.flow_id)
    assert flow is not None, f"{case.file}:{case.line}: the flow '{case.flow_id}' does not load"
    result = run_case_sync(case, flow, catalogue=shipped_catalogue(), flows=flows)
    assert result.passed, f"{case.file}:{case.line}: {result.failure}"


def test_collection_works_on_the_shipped_directory() -> None:
    assert all(case.flow_id for case in CASES)


def test_the_scenarios_use_the_platforms_catalogue() -> None:
    catalogue = shipped_catalogue()
    assert catalogue.action("account.send_unblock_link") is not None
    assert catalogue.action("no.such_action") is None
