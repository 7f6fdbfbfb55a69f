"""Choosing the resolution of a time series: raw samples or a rollup, and the bucket width.

Pure: no I/O, no clock reads (``now`` is an argument). The store runs the query this
plan describes; the dashboard never asks for more than ``max_points`` points per series.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

Source = Literal["raw", "1m", "1h"]
NATIVE_SECONDS: dict[Source, int] = {"raw": 1, "1m": 60, "1h": 3600}
DEFAULT_MAX_POINTS = 2000


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long each resolution is kept; ``None`` keeps it forever."""

    raw_days: float | None = 7
    rollup_1m_days: float | None = 90
    rollup_1h_days: float | None = None
    events_days: float | None = None

    def keeps_since(self, source: Source, now: datetime) -> datetime | None:
        """The oldest time ``source`` still holds, or ``None`` when it is kept forever."""
        days = {"raw": self.raw_days, "1m": self.rollup_1m_days, "1h": self.rollup_1h_days}[source]
        return None if days is None else now - timedelta(days=days)


@dataclass(frozen=True, slots=True)
class SeriesPlan:
    source: Source
    bucket_seconds: int


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    ts: datetime  # start of the bucket
    mean: float | None
    min: float | None
    max: float | None


@dataclass(frozen=True, slots=True)
class Series:
    """A metric over time for one GPU, at the resolution :func:`plan_series` chose."""

    uuid: str
    metric: str
    source: Source
    bucket_seconds: int
    points: tuple[SeriesPoint, ...]


def plan_series(
    start: datetime,
    end: datetime,
    now: datetime,
    retention: RetentionPolicy,
    max_points: int = DEFAULT_MAX_POINTS,
) -> SeriesPlan:
    """The finest source that still has data for ``start`` and gives at most ``max_points``.

    The bucket is a whole multiple of the source's native resolution, so rollup buckets are
    never split.
    """
    if end <= start:
        raise ValueError(f"empty time range: {start.isoformat()} .. {end.isoformat()}")
    if max_points < 2:
        raise ValueError("max_points must be at least 2")
    span = (end - start).total_seconds()
    # One bucket more than span/width can straddle the edges; leave room for it.
    wanted = max(1, math.ceil(span / (max_points - 1)))
    source: Source = "1h"
    candidates: tuple[tuple[Source, Source], ...] = (("raw", "1m"), ("1m", "1h"))
    for candidate, coarser in candidates:
        kept_since = retention.keeps_since(candidate, now)
        has_data = kept_since is None or start >= kept_since
        if has_data and wanted < NATIVE_SECONDS[coarser]:
            source = candidate
            break
    native = NATIVE_SECONDS[source]
    return SeriesPlan(source, native * math.ceil(wanted / native))
