"""The two clocks the collector reads: UTC wall time for timestamps, monotonic for cadence.

An argument with a production default (``Sampler(source, clock)``); tests pass a
:class:`ManualClock` and jump its wall time to check that nothing bursts or stalls.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Protocol

# A wall-clock step larger than this between two readings (beyond what the monotonic clock
# saw) is a clock jump: NTP stepping the clock, a suspended VM, an admin's `date -s`.
CLOCK_JUMP_SECONDS = 2.0


class Clock(Protocol):
    def wall(self) -> datetime: ...

    def monotonic(self) -> float: ...


class SystemClock:
    """The real clocks."""

    def wall(self) -> datetime:
        return datetime.now(timezone.utc)

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock tests move by hand; ``jump`` moves wall time alone, as NTP or an admin would."""

    def __init__(self, start: datetime, monotonic: float = 1000.0) -> None:
        self._wall = start
        self._monotonic = monotonic

    def wall(self) -> datetime:
        return self._wall

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        self._wall += timedelta(seconds=seconds)
        self._monotonic += seconds

    def jump(self, seconds: float) -> None:
        self._wall += timedelta(seconds=seconds)


class ClockWatch:
    """Notices wall-clock jumps by comparing wall and monotonic time between checks."""

    def __init__(self, clock: Clock, threshold_seconds: float = CLOCK_JUMP_SECONDS) -> None:
        self.clock = clock
        self.threshold_seconds = threshold_seconds
        self._last = (clock.wall(), clock.monotonic())

    def check(self) -> float | None:
        """The jump in seconds since the last check, or ``None`` if the clocks agree."""
        wall, monotonic = self.clock.wall(), self.clock.monotonic()
        drift = (wall - self._last[0]).total_seconds() - (monotonic - self._last[1])
        self._last = (wall, monotonic)
        return drift if abs(drift) > self.threshold_seconds else None
