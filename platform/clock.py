"""The injectable clock.

Every time rule (7-day welcome links, 1-hour reset links, lock-outs, 24-hour
clean-up, 5-working-day deadlines) reads the time from the app's clock, so
tests move a ``FrozenClock`` instead of sleeping.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Return the current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        self._now += delta or timedelta(**kwargs)
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = moment
