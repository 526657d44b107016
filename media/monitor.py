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


class FrozenHeap:
    """Keep the long-lived objects of a call out of the cyclic collector's passes.

    A participant's peer connection, transceivers and DTLS/ICE state live as
    long as the call; every full collection walks them all (in a 12-person
    room a pause of 100 ms or more, felt by every stream at once). A while
    after each join (once the connection is up) everything is frozen
    (``gc.freeze()``); a leave unfreezes, collects what the departed
    participant left behind (one full collection, at the leave rather than
    every few seconds during the call) and freezes again.
    """

    def __init__(self, delay: float = 5.0) -> None:
        self.delay = delay
        self._pending: asyncio.Handle | None = None
        self.freezes = 0
        self.collections = 0

    def joined(self) -> None:
        """A participant joined: freeze once its connection has had time to come up."""
        if self._pending is not None:
            self._pending.cancel()
        self._pending = asyncio.get_running_loop().call_later(self.delay, self._freeze)

    def left(self) -> None:
        """A participant left: collect what it left behind, then freeze the rest again."""
        if self._pending is not None:
            self._pending.cancel()
        self._pending = asyncio.get_running_loop().call_soon(self._collect)

    def close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None

    def _freeze(self) -> None:
        self._pending = None
        gc.freeze()
        self.freezes += 1

    def _collect(self) -> None:
        self._pending = None
        gc.unfreeze()
        gc.collect()
        self.collections += 1
        gc.freeze()
        self.freezes += 1
