"""Engine benchmark: check time by flow size, and advance throughput.

Run: ``.venv/bin/python benchmarks/engine.py``

Generated flows of 50, 500 and 5,000 steps (questions, infos, branches with
conditions, actions with error mappings, ends) are loaded and checked from
their YAML text; 100 distinct flows of 50 steps are checked together; then
sessions walk the flows through ``Runner.advance``. Steps are visits (steps
shown or passed, branches included), as ``len(state.visits)`` counts them.

The figure the target is about is ``json`` per CPU second: steps (visits)
divided by the process's CPU time (``time.process_time()``, which a loaded,
shared machine disturbs less than wall time), with the state encoded to JSON
text and decoded back on every step, as the platform does: the same work per
step as the platform's (advance + encode + decode), nothing cached between
steps but the runner's compiled templates, rendered text and shared
back-history entries. Four ways of
walking are measured, so that the cost of keeping the state is visible next
to the runner's own:

* ``json`` — the state encoded to JSON text and back on every step, as the
  platform stores it: ``SessionState.to_json``/``from_json`` (``to_dict``,
  then ``orjson`` when installed — the codec Tortoise's ``JSONField`` uses
  too when ``orjson`` is installed — or compact ``json.dumps``);
* ``stdlib`` — the same with the standard library's ``json`` (what the
  platform's ``JSONField`` does without ``orjson``);
* ``dict`` — through ``to_dict``/``from_dict`` without the JSON text;
* ``memory`` — the state object handed from one step to the next.

Every figure is measured several times (machines are shared and noisy);
best and median are printed with the ratio against the target.

Targets: 100 × 50-step flows checked in under 1 s; at least 20,000 steps/s;
check time growing no worse than linearly with flow size.

``--count N`` only walks N sessions of the 50-step flow, JSON each step,
after 3 warm-up sessions on the same runner, and prints the steps: run it
under ``valgrind --tool=callgrind`` with N and with 0 and divide the
difference of the instruction counts by the steps (load-independent).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from collections.abc import Callable

from lotse.engine import jsontext
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


def _json_text(state: SessionState) -> SessionState:
    return SessionState.from_json(state.to_json())


def _stdlib_json(state: SessionState) -> SessionState:
    return SessionState.from_dict(json.loads(json.dumps(state.to_dict(), separators=(",", ":"))))


def _plain_data(state: SessionState) -> SessionState:
    return SessionState.from_dict(state.to_dict())


def _kept(state: SessionState) -> SessionState:
    return state


KEEPING = {"json": _json_text, "stdlib": _stdlib_json, "dict": _plain_data, "memory": _kept}


async def walk(runner: Runner, flow: Flow, sessions: int, keep: str = "json", max_steps: int = 200) -> int:
    """Walk ``sessions`` sessions of ``flow`` as :func:`throughput` does; return the steps."""
    through = KEEPING[keep]
    ports = Ports(RecordingExecutor(CATALOGUE), StaticFacts({}, CATALOGUE), DictFlows(), FakeClock())
    steps = 0
    for number in range(sessions):
        steps += await walk_session(runner, flow, ports, through, f"c{number}", max_steps)
    return steps


async def walk_session(runner: Runner, flow: Flow, ports: Ports, through: Callable[[SessionState], SessionState],
                       session_id: str, max_steps: int) -> int:
    """Walk one session of at most ``max_steps`` answers, the state kept ``through`` each step; return its steps."""
    state, view = await runner.start(flow, ports, session_id=session_id, inputs={"person": {"name": "Eva"}})
    walked = 0
    while not isinstance(view, EndView) and walked < max_steps:
        state = through(state)
        state, view = await runner.advance(flow, state, answer(view), ports)
        walked += 1
    return len(state.visits)


async def throughput(flow: Flow, max_steps: int, seconds: float = 1.5, keep: str = "json") -> tuple[float, float]:
    """Walk sessions of at most ``max_steps`` answers; return steps per wall second and per CPU second."""
    through = KEEPING[keep]
    ports = Ports(RecordingExecutor(CATALOGUE), StaticFacts({}, CATALOGUE), DictFlows(), FakeClock())
    runner = Runner()
    steps = 0
    sessions = 0
    started = time.perf_counter()
    cpu = time.process_time()
    while time.perf_counter() - started < seconds:
        sessions += 1
        steps += await walk_session(runner, flow, ports, through, f"s{sessions}", max_steps)
    return steps / (time.perf_counter() - started), steps / max(time.process_time() - cpu, 1e-9)


def _stats(values: list[float]) -> tuple[float, float]:
    return min(values), statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="measurements per figure (default 3)")
    parser.add_argument("--seconds", type=float, default=1.0, help="seconds per throughput measurement (default 1.0)")
    parser.add_argument("--max-answers", type=int, default=200, help="answers per session at most (default 200)")
    parser.add_argument("--count", type=int, default=None, metavar="N",
                        help="only walk N sessions (50-step flow, JSON each step) for counting instructions")
    args = parser.parse_args()
    if args.count is not None:
        result = load_flow(generate(50), "generated-50-0.yaml")
        assert result.flow is not None
        runner = Runner()
        asyncio.run(walk(runner, result.flow, 3))  # warm-up: compiled templates, rendered text
        print(f"steps {asyncio.run(walk(runner, result.flow, args.count))}")
        return
    repeat = max(1, args.repeat)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; best and median of {repeat} runs")
    print("check (load + schema + all checks, YAML text in memory):")
    timings = {}
    for size in (50, 500, 5000):
        texts = [generate(size)]
        check_time(texts, Evaluator())  # warm-up of imports
        runs = [check_time(texts, Evaluator()) for _ in range(repeat)]
        best, median = _stats([elapsed for elapsed, _ in runs])
        timings[size] = best
        print(f"  {size:>5} steps: best {best * 1000:8.1f} ms, median {median * 1000:8.1f} ms  ({runs[0][1]} problems)")
    print(f"  growth (best) 50→500: ×{timings[500] / timings[50]:.1f} for ×10 steps; "
          f"500→5000: ×{timings[5000] / timings[500]:.1f} for ×10 steps (linear: ×10)")  # fmt: skip
    texts = [generate(50, seed) for seed in range(100)]
    runs = [check_time(texts, Evaluator()) for _ in range(repeat)]
    best, median = _stats([elapsed for elapsed, _ in runs])
    print(f"  100 distinct flows of 50 steps, fresh evaluator: best {best * 1000:.0f} ms, median {median * 1000:.0f} ms"
          f"  ({runs[0][1]} problems; target < 1000 ms: {1000 / (median * 1000):.2f}× the target's speed)")  # fmt: skip
    print(f"advance (sessions of up to {args.max_answers} answers; steps/s, target ≥ 20,000 per core;"
          f" JSON codec: {'orjson' if jsontext.FAST else 'json'}):")  # fmt: skip
    print("  (per CPU second: steps over the process's own CPU time, which a loaded machine disturbs less)")
    headline = 0.0
    for size in (50, 500, 5000):
        result = load_flow(generate(size), f"generated-{size}-0.yaml")
        assert result.flow is not None
        for keep in ("json", "stdlib", "dict", "memory"):
            runs = [asyncio.run(throughput(result.flow, args.max_answers, args.seconds, keep)) for _ in range(repeat)]
            walls, cpus = [wall for wall, _ in runs], [cpu for _, cpu in runs]
            print(f"  {size:>5} steps, state kept as {keep:<6}: wall best {max(walls):8,.0f} median {statistics.median(walls):8,.0f};"
                  f" per CPU second best {max(cpus):8,.0f} median {statistics.median(cpus):8,.0f}"
                  f"  ({statistics.median(cpus) / 20_000:.2f}× target)")  # fmt: skip
            if size == 50 and keep == "json":
                headline = statistics.median(cpus)
    print(f"headline (target ≥ 20,000 steps per CPU second, 50-step flow, JSON each step): median {headline:,.0f}"
          f" ({headline / 20_000:.2f}× target)")  # fmt: skip
    print(f"load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
