"""Event-loop lag and CPU: how a forwarding process knows it keeps up.

Forwarding is a real-time job on one event loop; a pause (a full garbage
collection paused a 12-person room for 70–90 ms in the prototype) delays
every stream at once. The monitor samples how late a periodic wake-up runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LagSummary:
    samples: int
    p50_ms: float
    p99_ms: float
    max_ms: float


class LoopLagMonitor:
    """Measure how late the event loop runs a callback scheduled every ``interval`` seconds."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self._lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def reset(self) -> None:
        self._lags.clear()

    def summary(self) -> LagSummary:
        lags = sorted(self._lags)
        if not lags:
            return LagSummary(0, 0.0, 0.0, 0.0)

        def pick(q: float) -> float:
            return lags[min(len(lags) - 1, int(q * len(lags)))] * 1000

        return LagSummary(len(lags), pick(0.5), pick(0.99), lags[-1] * 1000)

    async def _run(self) -> None:
        while True:
            due = time.monotonic() + self.interval
            await asyncio.sleep(self.interval)
            self._lags.append(max(0.0, time.monotonic() - due))


def process_cpu_seconds() -> float:
    """Return user + system CPU time of this process."""
    times = os.times()
    return times.user + times.system


class GcPauseMonitor:
    """Time the cyclic garbage collector's pauses (``gc.callbacks``), per generation.

    A full collection walks every tracked object; with the RTP packet
    histories of a 12-person room (about 34,000 packets kept for
    retransmission) that is a pause every stream feels at once.
    """

    def __init__(self) -> None:
        self._started = 0.0
        self.reset()

    def start(self) -> None:
        gc.callbacks.append(self._callback)

    def stop(self) -> None:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._callback)

    def reset(self) -> None:
        self.count = [0, 0, 0]
        self.total = [0.0, 0.0, 0.0]
        self.longest = [0.0, 0.0, 0.0]

    def summary(self) -> dict[str, list[float]]:
        return {
            "count": list(self.count),
            "total_ms": [round(t * 1000, 2) for t in self.total],
            "max_ms": [round(t * 1000, 2) for t in self.longest],
        }

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        generation = info.get("generation", 0)
        took = time.perf_counter() - self._started
        self.count[generation] += 1
        self.total[generation] += took
        if took > self.longest[generation]:
            self.longest[generation] = took
