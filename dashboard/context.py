"""What every page gets: the store, the clock, and the settings of this dashboard."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from monitor.store import Store


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class PageContext:
    """``store``: the only way pages reach data (its query functions; never SQL).
    ``now``: the clock (tests pass a fixed one). ``trace_roots``: the folders trace downloads
    may come from. ``live_interval_ms``: how often live pages refresh."""

    store: Store
    now: Callable[[], datetime] = utc_now
    trace_roots: tuple[Path, ...] = field(default_factory=tuple)
    live_interval_ms: int = 5_000
