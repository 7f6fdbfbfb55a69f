"""Builders of hand-made run evidence for the advisor's tests."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from helpers import T0

from monitor.core.analysis.results import (
    CATEGORIES,
    IdleBreakdown,
    KernelStat,
    LaunchStats,
    MemcpyStat,
    RankAnalysis,
    StepBreakdown,
    SyncStat,
    Temporal,
)
from monitor.core.run_records import RunInfo, StepRecord
from monitor.core.run_views import StepBreakdownRow

RUN = RunInfo("r1", "train", "h1", T0, gpu_uuids=("GPU-a",))


def steps(
    count: int,
    duration_us: float | Callable[[int], float] = 100_000.0,
    *,
    wait_us: float | None = None,
    pre_forward_us: float | None = None,
    peak_bytes: int | None = None,
    run_id: str = "r1",
) -> tuple[StepRecord, ...]:
    made = []
    start = T0
    for number in range(count):
        duration = duration_us(number) if callable(duration_us) else duration_us
        made.append(
            StepRecord(
                run_id,
                number,
                start,
                duration,
                dataloader_wait_us=wait_us,
                pre_forward_us=pre_forward_us,
                cuda_peak_bytes=peak_bytes,
            )
        )
        start += timedelta(microseconds=duration)
    return tuple(made)


def rows(
    count: int,
    duration_us: float = 100_000.0,
    *,
    busy_us: float = 90_000.0,
    shares: Mapping[str, float] | None = None,
    window: str = "w1",
) -> tuple[StepBreakdownRow, ...]:
    """Step breakdown rows; ``shares`` gives categories' fractions, the rest is cpu_exec."""
    parts = dict(shares or {"kernel": busy_us / duration_us})
    parts["other"] = max(0.0, 1.0 - sum(parts.values()))
    breakdown = {name: parts.get(name, 0.0) * duration_us for name in CATEGORIES}
    return tuple(
        StepBreakdownRow(window, 0, number, number * duration_us, duration_us, breakdown, busy_us)
        for number in range(count)
    )


def trace(**fields: Any) -> RankAnalysis:
    """A window summary (no steps or kernels, as the store keeps it)."""
    total = StepBreakdown(None, 0.0, 1.0, {}, 0.0)
    defaults: dict[str, Any] = {
        "rank": 0,
        "device": "NVIDIA H100",
        "device_index": 0,
        "compute_capability": "9.0",
        "device_memory_bytes": 80 * 1024**3,
        "temporal": Temporal(1_000_000.0, 100_000.0, 800_000.0, 100_000.0),
        "idle_breakdown_us": IdleBreakdown(80_000.0, 10_000.0, 10_000.0),
        "steps": (),
        "total": total,
        "kernels": (),
    }
    return RankAnalysis(**{**defaults, **fields})


def kernel(name: str, total_us: float, *, tensor_core: bool = False, count: int = 10) -> KernelStat:
    return KernelStat(
        name, "computation", count, total_us, total_us / count, 1.0, total_us, tensor_core
    )


def copies(*items: tuple[str, str, float, int]) -> tuple[MemcpyStat, ...]:
    return tuple(MemcpyStat(d, m, 10, us, nbytes) for d, m, us, nbytes in items)


def syncs(*items: tuple[str, str, int, float]) -> tuple[SyncStat, ...]:
    return tuple(SyncStat(name, kind, count, us) for name, kind, count, us in items)


def launch(launches: int, short: int, mean_launch_us: float = 5.0) -> LaunchStats:
    return LaunchStats(launches, launches, short, mean_launch_us, 10.0, 30.0)


def rules_of(findings: Sequence[Any]) -> list[str]:
    return [finding.rule for finding in findings]
