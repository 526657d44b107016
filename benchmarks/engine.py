"""Engine benchmark: check time by flow size, and advance throughput.

Run: ``.venv/bin/python benchmarks/engine.py``

Generated flows of 50, 500 and 5,000 steps (questions, infos, branches with
conditions, actions with error mappings, ends) are loaded and checked from
their YAML text; 100 distinct flows of 50 steps are checked together; then
sessions walk the flows through ``Runner.advance`` with the state
serialised to JSON and back on every step, as the platform stores it.

Targets: 100 × 50-step flows checked in under 1 s; at least 20,000 steps/s;
check time growing no worse than linearly with flow size.
"""

from __future__ import annotations

import asyncio
import json
import time

from lotse.engine.catalogue import InMemoryCatalogue
from lotse.engine.checks import check_flow
from lotse.engine.expressions import Evaluator
from lotse.engine.loader import load_flow
from lotse.engine.local import DictFlows, FakeClock, RecordingExecutor, StaticFacts
from lotse.engine.model import Flow
from lotse.engine.ports import ActionSpec, FactSpec, Ports
from lotse.engine.runner import Choose, Confirm, Continue, Runner, SessionState, UserInput
from lotse.engine.views import AnyView, ConfirmView, EndView, InfoView, QuestionView

CATALOGUE = InMemoryCatalogue(
    [ActionSpec("account.touch", {"type": "object", "properties": {"n": {"type": "integer"}}}, errors=("not_permitted",), example_result={"ok": True})],
    [FactSpec("account.state", {"type": "object"}, example_result="recent")],
)


def generate(steps: int, seed: int = 0) -> str:
    """Return a flow of about ``steps`` steps in blocks of five: question, info, branch, action, end."""
    blocks = max(1, steps // 5)
    lines = [
        f"flow: generated-{steps}-{seed}", "version: 1", f"title: Generated flow {seed}", "audience: [servicedesk]",
        "inputs:", "  person: {type: account, label: Who?}",
        "facts:", "  state: {fact: account.state, args: {account: \"{{ inputs.person }}\"}}",
        "start: q0", "steps:",
    ]  # fmt: skip
    for b in range(blocks):
        nxt = f"q{b + 1}" if b + 1 < blocks else "done"
        lines += [
            f"  q{b}:",
            "    type: question",
            f"    text: Question {b} of flow {seed} about **{{{{ inputs.person.name }}}}**?",
            "    options:",
            f"      yes: {{label: \"Yes\", next: i{b}}}",
            f"      no: {{label: \"No ({b})\", next: b{b}}}",
            f"      stop: {{label: Stop, next: e{b}}}",
            f"  i{b}:",
            "    type: info",
            f"    text: Note {b} - the state is {{{{ facts.state }}}}.",
            f"    next: b{b}",
            f"  b{b}:",
            "    type: branch",
            "    next:",
            f"      - when: \"answers['q{b}'] == 'no' and facts.state == 'gone'\"",
            f"        goto: e{b}",
            f"      - goto: a{b}",
            f"  a{b}:",
            "    type: action",
            "    action: account.touch",
            f"    args: {{n: {b}}}",
            f"    confirm: Touch {b}?",
            f"    next: {nxt}",
            f"    on_error: {{not_permitted: e{b}, default: e{b}}}",
            f"  e{b}: {{type: end, outcome: escalated, text: Stopped at {b}.}}",
        ]
    lines.append("  done: {type: end, outcome: resolved, text: Done.}")
    return "\n".join(lines) + "\n"


def check_time(texts: list[str], evaluator: Evaluator) -> tuple[float, int]:
    started = time.perf_counter()
    problems = 0
    for i, text in enumerate(texts):
        result = load_flow(text, f"generated-{i}.yaml")
        problems += len([p for p in check_flow(result, catalogue=CATALOGUE, evaluator=evaluator) if p.code != "flow_id_mismatch"])
    return time.perf_counter() - started, problems


def answer(view: AnyView) -> UserInput:
    match view:
        case QuestionView():
            return Choose("yes" if view.visit % 4 else "no", view.step)
        case ConfirmView():
            return Confirm(view.step)
        case InfoView():
            return Continue(view.step)
    raise AssertionError(view)


async def throughput(flow: Flow, max_steps: int, seconds: float = 1.5) -> tuple[float, int]:
    """Walk sessions of at most ``max_steps`` steps; return steps/s (state through JSON each step)."""
    ports = Ports(RecordingExecutor(CATALOGUE), StaticFacts({}, CATALOGUE), DictFlows(), FakeClock())
    runner = Runner()
    steps = 0
    sessions = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        sessions += 1
        state, view = await runner.start(flow, ports, session_id=f"s{sessions}", inputs={"person": {"name": "Eva"}})
        walked = 0
        while not isinstance(view, EndView) and walked < max_steps:
            data = json.dumps(state.to_dict())
            state = SessionState.from_dict(json.loads(data))
            state, view = await runner.advance(flow, state, answer(view), ports)
            walked += 1
        steps += len(state.visits)
    return steps / (time.perf_counter() - started), sessions


def main() -> None:
    print("check (load + schema + all checks, YAML text in memory):")
    timings = {}
    for size in (50, 500, 5000):
        texts = [generate(size)]
        check_time(texts, Evaluator())  # warm-up of imports
        elapsed, problems = check_time(texts, Evaluator())
        timings[size] = elapsed
        print(f"  {size:>5} steps: {elapsed * 1000:8.1f} ms  ({problems} problems)")
    print(f"  growth 50→500: ×{timings[500] / timings[50]:.1f} for ×10 steps; 500→5000: ×{timings[5000] / timings[500]:.1f} for ×10 steps")
    texts = [generate(50, seed) for seed in range(100)]
    elapsed, problems = check_time(texts, Evaluator())
    print(f"  100 distinct flows of 50 steps: {elapsed * 1000:.0f} ms, fresh evaluator  ({problems} problems; target < 1000 ms)")
    print("advance (state to JSON and back on every step):")
    for size in (50, 500, 5000):
        result = load_flow(generate(size), f"generated-{size}-0.yaml")
        assert result.flow is not None
        rate, sessions = asyncio.run(throughput(result.flow, max_steps=200))
        print(f"  {size:>5} steps: {rate:10,.0f} steps/s  ({sessions} sessions of up to 200 answers; target ≥ 20,000)")


if __name__ == "__main__":
    main()
