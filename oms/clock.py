"""Clocks the engine reads once per command: the wall clock, or a simulated one.

Pure core. Timestamps are UTC with millisecond precision. The simulated clock makes
notebooks and certification runs reproducible: it starts at a fixed instant and moves
by a fixed step on every reading.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol

SIMULATION_START = datetime(2026, 1, 5, 9, 15, tzinfo=UTC)
"""A Monday, 09:15 UTC: where every simulated session begins."""


class Clock(Protocol):
    def __call__(self) -> datetime: ...


def _to_ms(at: datetime) -> datetime:
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


class SystemClock:
    """The wall clock, in UTC, truncated to milliseconds."""

    def __call__(self) -> datetime:
        return _to_ms(datetime.now(UTC))

    def __repr__(self) -> str:
        return "SystemClock()"


class SimulatedClock:
    """Reads ``start``, ``start + step``, ``start + 2*step``, ... (thread-safe)."""

    def __init__(self, start: datetime = SIMULATION_START, step: timedelta = timedelta(seconds=1)) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware (UTC)")
        self.start, self.step = _to_ms(start.astimezone(UTC)), step
        self._ticks = 0
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            at = self.start + self._ticks * self.step
            self._ticks += 1
        return at

    def __repr__(self) -> str:
        return f"SimulatedClock(start={self.start.isoformat()}, step={self.step})"
