"""One rank's analysis from its event table, and the comparison across ranks (pure)."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from monitor.core.analysis import breakdown, gpu, tables
from monitor.core.analysis.columns import Columns, columns
from monitor.core.analysis.events import EventTable
from monitor.core.analysis.intervals import Ints
from monitor.core.analysis.results import RankAnalysis, Straggler, TraceAnalysis

# A rank whose mean step time is this much above the median of the other ranks' is a straggler.
STRAGGLER_THRESHOLD = 0.10


def analyze_rank(
    table: EventTable, metadata: Mapping[str, Any], *, default_rank: int, source: str | None
) -> RankAnalysis:
    """Everything the analyzer reports for one rank's events and the file's metadata."""
    cols = columns(table)
    windows = breakdown.step_windows(table, cols)
    steps = breakdown.breakdown(
        windows, breakdown.role_intervals(table, cols), breakdown.gpu_busy(cols)
    )
    scope = hta_scope(table, cols)
    device_index = _main_device(table)
    device = _device_properties(metadata, device_index)
    return RankAnalysis(
        rank=_rank(metadata, default_rank),
        device=_str_or_none(device.get("name")),
        device_index=device_index,
        compute_capability=_capability(device),
        device_memory_bytes=_int_or_none(device.get("totalGlobalMem")),
        temporal=gpu.temporal(cols, scope),
        idle_breakdown_us=gpu.idle_breakdown(cols, scope),
        steps=tuple(step for step in steps if step.step is not None),
        total=breakdown.total(steps),
        kernels=tables.kernel_table(table),
        memcpy=tables.memcpy_table(table),
        syncs=tables.sync_table(table),
        launch=gpu.launch_stats(cols),
        overlap=gpu.comm_overlap(cols),
        peak_memory_bytes=table.peak_allocated_bytes,
        source=source,
        events=table.events,
        distributed_backend=_distributed(metadata, "backend", str),
        world_size=_distributed(metadata, "world_size", int),
    )


def hta_scope(table: EventTable, cols: Columns) -> Ints:
    """The GPU events Holistic Trace Analysis's temporal breakdown counts: with two or more
    ProfilerSteps, those launched by a host call that started before the last step began (the
    last step may be cut short by the profiler); otherwise all of them."""
    starts = sorted({number: ts for number, ts, _ in table.steps}.values())
    if len(starts) < 2:
        return np.ones(cols.gpu_count, dtype=np.int64)
    keep = (cols.launch_ts >= 0) & (cols.launch_ts < starts[-1])
    return keep.astype(np.int64)


def combine(ranks: Sequence[RankAnalysis], notes: Sequence[str] = ()) -> TraceAnalysis:
    """Ranks in order, with stragglers flagged when there are several."""
    ordered = tuple(sorted(ranks, key=lambda item: item.rank))
    return TraceAnalysis(ranks=ordered, stragglers=stragglers(ordered), notes=tuple(notes))


def stragglers(ranks: Sequence[RankAnalysis]) -> tuple[Straggler, ...]:
    """Ranks whose mean step time is over the median of the other ranks' by the threshold."""
    means = {
        item.rank: statistics.fmean(step.duration_us for step in item.steps)
        for item in ranks
        if item.steps
    }
    found = []
    for rank, mean in sorted(means.items()):
        others = [value for key, value in means.items() if key != rank]
        median = statistics.median(others) if others else 0.0
        if median > 0 and mean > median * (1 + STRAGGLER_THRESHOLD):
            found.append(Straggler(rank, mean, median, 100.0 * (mean / median - 1)))
    return tuple(found)


def _main_device(table: EventTable) -> int | None:
    devices = {key: count for key, count in table.gpu_device.items() if key >= 0}
    return max(devices, key=lambda key: devices[key]) if devices else None


def _device_properties(metadata: Mapping[str, Any], index: int | None) -> Mapping[str, Any]:
    props = metadata.get("deviceProperties")
    if index is None or not isinstance(props, list):
        return {}
    for item in props:
        if isinstance(item, dict) and item.get("id") == index:
            return item
    return {}


def _rank(metadata: Mapping[str, Any], default: int) -> int:
    info = metadata.get("distributedInfo")
    if isinstance(info, dict):
        rank = _int_or_none(info.get("rank"))
        if rank is not None:
            return rank
    return default


def _distributed(metadata: Mapping[str, Any], key: str, kind: type) -> Any:
    info = metadata.get("distributedInfo")
    value = info.get(key) if isinstance(info, dict) else None
    return value if isinstance(value, kind) and not isinstance(value, bool) else None


def _capability(device: Mapping[str, Any]) -> str | None:
    major, minor = device.get("computeMajor"), device.get("computeMinor")
    if isinstance(major, int) and isinstance(minor, int):
        return f"{major}.{minor}"
    return None


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
