"""What the store answers about training runs: pure data for the CLI, dashboard and advisor.

The rows themselves are :mod:`monitor.core.run_records` (runs, steps, windows) and
:class:`monitor.core.analysis.results.KernelStat`; the types here add what only a query over
many rows can say. Durations are microseconds (``_us``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from monitor.core.advisor.findings import Finding
from monitor.core.run_records import RunInfo


@dataclass(frozen=True, slots=True)
class RunSummary(RunInfo):
    """A run (every :class:`RunInfo` field) with figures over its steps and profiler windows.

    ``gpu_busy_percent`` is the sum of ``gpu_busy_us`` over the sum of ``duration_us`` of the
    run's stored step breakdowns (``None`` until a window has been analyzed).
    """

    steps: int = 0
    mean_step_us: float | None = None
    median_step_us: float | None = None
    gpu_busy_percent: float | None = None
    windows: int = 0


@dataclass(frozen=True, slots=True)
class StepBreakdownRow:
    """One stored step breakdown: a ProfilerStep of one rank in one window, or (``step`` is
    ``None``) the whole trace of a window that had no ProfilerStep markers."""

    window_id: str
    rank: int
    step: int | None
    start_us: float
    duration_us: float
    breakdown_us: Mapping[str, float]  # over monitor.core.analysis.results.CATEGORIES
    gpu_busy_us: float


@dataclass(frozen=True, slots=True)
class StoredFinding:
    """An advisor finding as the store keeps it (row of ``findings``).

    ``run_id`` and ``run_name`` are ``None`` for a fleet finding (one not tied to a run);
    ``run_name`` is also ``None`` when the run's row is missing. ``created_at`` is when the
    finding was first saved, ``updated_at`` when it was last saved again; ``status`` is
    ``"open"`` or ``"resolved"``.
    """

    finding_id: str
    run_id: str | None
    run_name: str | None
    created_at: datetime
    updated_at: datetime
    status: str
    finding: Finding


__all__ = ["RunSummary", "StepBreakdownRow", "StoredFinding"]
