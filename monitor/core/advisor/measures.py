"""Figures over a run that several rules read, computed once per run (pure).

Shares are fractions of step time (0..1). Two sources, preferred in this order: the every-step
records (every step of the run, warm-up excluded) and the profiler windows' step breakdowns
(the traced steps only). ``traced_*`` figures come from the windows' analyses.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

from monitor.core.advisor.evidence import RunEvidence
from monitor.core.advisor.steps import StepSplit, mean, median, split_warmup
from monitor.core.advisor.thresholds import Thresholds
from monitor.core.analysis.results import CATEGORIES, LaunchStats, MemcpyStat, SyncStat
from monitor.core.run_views import StepBreakdownRow


@dataclass(frozen=True, slots=True)
class Measures:
    split: StepSplit
    mean_step_us: float  # steady steps (records), else traced steps
    median_step_us: float
    step_source: str  # "every-step records", "profiler windows" or "none"
    dataloader_fraction: float | None  # from records when measured there, else the breakdown
    dataloader_source: str | None
    pre_forward_fraction: float | None
    shares: dict[str, float] = field(default_factory=dict)  # breakdown category -> fraction
    gpu_busy_fraction: float | None = None  # traced steps, GPU busy / step wall time
    traced_steps: int = 0
    traced_us: float = 0.0  # wall time of the traced steps (or whole traces)
    memcpy: tuple[MemcpyStat, ...] = ()
    syncs: tuple[SyncStat, ...] = ()
    launch: LaunchStats | None = None
    idle_us: dict[str, float] = field(default_factory=dict)  # host_wait, kernel_wait, other
    communication_us: float = 0.0
    overlapped_us: float = 0.0

    @property
    def has_steps(self) -> bool:
        return self.step_source != "none"


def measure(evidence: RunEvidence, thresholds: Thresholds) -> Measures:
    split = split_warmup(evidence.steps, thresholds)
    rows = step_rows(evidence.breakdowns)
    traced_us = math.fsum(row.duration_us for row in rows)
    durations = split.durations_us or [row.duration_us for row in rows]
    shares = {
        name: math.fsum(row.breakdown_us.get(name, 0.0) for row in rows) / traced_us
        for name in CATEGORIES
        if traced_us > 0
    }
    busy = math.fsum(row.gpu_busy_us for row in rows) / traced_us if traced_us > 0 else None
    dataloader, source = _dataloader(split, shares)
    comm = [item.overlap for item in evidence.traces if item.overlap is not None]
    return Measures(
        split=split,
        mean_step_us=mean(durations),
        median_step_us=median(durations),
        step_source="every-step records"
        if split.steady
        else ("profiler windows" if rows else "none"),
        dataloader_fraction=dataloader,
        dataloader_source=source,
        pre_forward_fraction=_record_fraction(split, "pre_forward_us"),
        shares=shares,
        gpu_busy_fraction=busy if evidence.has_gpu_trace else None,
        traced_steps=len(rows),
        traced_us=traced_us,
        memcpy=_merge_copies(item for trace in evidence.traces for item in trace.memcpy),
        syncs=_merge_syncs(item for trace in evidence.traces for item in trace.syncs),
        launch=_merge_launch([t.launch for t in evidence.traces if t.launch is not None]),
        idle_us={
            "host_wait": math.fsum(t.idle_breakdown_us.host_wait for t in evidence.traces),
            "kernel_wait": math.fsum(t.idle_breakdown_us.kernel_wait for t in evidence.traces),
            "other": math.fsum(t.idle_breakdown_us.other for t in evidence.traces),
        },
        communication_us=math.fsum(item.communication_us for item in comm),
        overlapped_us=math.fsum(item.overlapped_us for item in comm),
    )


def step_rows(rows: Sequence[StepBreakdownRow]) -> list[StepBreakdownRow]:
    """ProfilerStep rows where there are any, else the whole-trace rows."""
    steps = [row for row in rows if row.step is not None]
    return steps or list(rows)


def _dataloader(split: StepSplit, shares: dict[str, float]) -> tuple[float | None, str | None]:
    from_records = _record_fraction(split, "dataloader_wait_us")
    if from_records is not None:
        return from_records, "every-step records"
    if "dataloader" in shares:
        return shares["dataloader"], "profiler windows"
    return None, None


def _record_fraction(split: StepSplit, name: str) -> float | None:
    measured = [step for step in split.steady if getattr(step, name) is not None]
    total = math.fsum(step.duration_us for step in measured)
    if not measured or total <= 0:
        return None
    return math.fsum(getattr(step, name) for step in measured) / total


_Stat = TypeVar("_Stat", MemcpyStat, SyncStat)


def _merged(
    items: Iterable[_Stat], key: Callable[[_Stat], tuple[str, str]], summed: tuple[str, ...]
) -> tuple[_Stat, ...]:
    """One item per ``key`` over every window, its ``summed`` fields added; most time first."""
    merged: dict[tuple[str, str], _Stat] = {}
    for item in items:
        old = merged.get(key(item))
        merged[key(item)] = (
            item
            if old is None
            else replace(old, **{name: getattr(old, name) + getattr(item, name) for name in summed})
        )
    return tuple(sorted(merged.values(), key=lambda stat: -stat.total_us))


def _merge_copies(items: Iterable[MemcpyStat]) -> tuple[MemcpyStat, ...]:
    return _merged(items, lambda c: (c.direction, c.memory), ("count", "total_us", "total_bytes"))


def _merge_syncs(items: Iterable[SyncStat]) -> tuple[SyncStat, ...]:
    return _merged(items, lambda s: (s.name, s.kind), ("count", "total_us"))


def _merge_launch(items: list[LaunchStats]) -> LaunchStats | None:
    if not items:
        return None
    launches = sum(item.launches for item in items)
    matched = sum(item.matched for item in items)

    def weighted(name: str) -> float:
        if matched == 0:
            return 0.0
        return math.fsum(getattr(item, name) * item.matched for item in items) / matched

    return LaunchStats(
        launches=launches,
        matched=matched,
        short_kernels=sum(item.short_kernels for item in items),
        mean_launch_us=weighted("mean_launch_us"),
        mean_delay_us=weighted("mean_delay_us"),
        p95_delay_us=max(item.p95_delay_us for item in items),
    )


__all__ = ["Measures", "measure", "step_rows"]
