"""Helpers for the end-to-end tests of the shipped flows.

Every test runs a flow from ``flows/`` (the settings point there) through the
platform's help-session machinery: ``do_start_session`` and
``do_advance_session`` with the platform's own ports. Nothing is stubbed;
the actions change the real database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from lotse.engine.runner import Cancel, Choose, Confirm, Continue, SessionState, Submit, UserInput
from lotse.engine.views import AnyView, ConfirmView, EndView, FormView, InfoView, QuestionView
from lotse.platform.actions import Services
from lotse.platform.help.actions import do_advance_session, do_start_session, flow_repository
from lotse.platform.help.models import HelpSession
from lotse.platform.permissions import Actor

#: One answer per step that waits for the person: (the step expected, the answer).
#: The answer is an option id, a mapping of form values, or "confirm" / "cancel".
Answer = tuple[str, Any]


@dataclass
class Walk:
    """Where a walk through a flow ended, and what it passed."""

    session: HelpSession
    view: AnyView
    steps: list[str] = field(default_factory=list)
    state: SessionState | None = None

    @property
    def outcome(self) -> str | None:
        return self.view.outcome.value if isinstance(self.view, EndView) else None


def _input(view: AnyView, answer: Any) -> UserInput:
    if isinstance(view, ConfirmView):
        assert answer in ("confirm", "cancel"), f"step '{view.step}' asks for confirm or cancel, not {answer!r}"
        return Confirm(view.step) if answer == "confirm" else Cancel(view.step)
    if isinstance(view, FormView):
        assert isinstance(answer, dict), f"step '{view.step}' is a form, not {answer!r}"
        return Submit(answer, view.step)
    assert isinstance(view, QuestionView), f"step '{view.step}' cannot take {answer!r}"
    assert answer in {o.id for o in view.options}, (
        f"step '{view.step}' offers {[o.id for o in view.options]}, not {answer!r}"
    )
    return Choose(answer, view.step)


class FlowDriver:
    """Start a shipped flow as someone and answer its steps, as the runner pages do."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc

    async def _skip_info(self, actor: Actor, walk: Walk) -> None:
        while isinstance(walk.view, InfoView):
            walk.steps.append(walk.view.step)
            walk.session, walk.state, walk.view = await do_advance_session(
                self.svc, actor, walk.session, Continue(walk.view.step))

    async def start(
        self, actor: Actor, flow_id: str, inputs: dict[str, Any], *, locale: str = "en",
        anonymous_key: str | None = None,
    ) -> Walk:
        flow = flow_repository(self.svc).published_flow(flow_id)
        assert flow is not None, f"the shipped flow '{flow_id}' does not load"
        session, view = await do_start_session(self.svc, actor, flow, inputs=inputs, locale=locale,
                                               anonymous_key=anonymous_key)
        walk = Walk(session, view)
        await self._skip_info(actor, walk)
        return walk

    async def answer(self, actor: Actor, walk: Walk, answers: Sequence[Answer]) -> Walk:
        for expected, answer in answers:
            assert not isinstance(walk.view, EndView), (
                f"the flow ended at '{walk.view.step}' before '{expected}': {walk.view.text}"
            )
            assert walk.view.step == expected, f"expected step '{expected}', the flow shows '{walk.view.step}'"
            assert not walk.view.problems, walk.view.problems
            walk.steps.append(walk.view.step)
            walk.session, walk.state, walk.view = await do_advance_session(
                self.svc, actor, walk.session, _input(walk.view, answer))
            await self._skip_info(actor, walk)
        return walk

    async def run(
        self, actor: Actor, flow_id: str, inputs: dict[str, Any], answers: Sequence[Answer], **start: Any
    ) -> Walk:
        walk = await self.start(actor, flow_id, inputs, **start)
        return await self.answer(actor, walk, answers)


@pytest.fixture
def driver(svc: Services) -> FlowDriver:
    return FlowDriver(svc)
