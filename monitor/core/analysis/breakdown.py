"""The 8-category step breakdown (pure), as the TensorBoard profiler plugin defined it.

A step is the host's ``ProfilerStep#N`` range, stretched to the end of the GPU work its host
calls launched and never starting before the previous step ended (the plugin's
``_update_steps_duration``). Within a step every moment belongs to the first category active
then, in the order kernel > memcpy > memset > communication > runtime > dataloader > cpu_exec;
``other`` is what is left, so the categories sum to the step's wall time exactly.
"""

from __future__ import annotations

import numpy as np

from monitor.core.analysis.columns import ALL_GPU_KINDS, KERNEL_KINDS, Columns
from monitor.core.analysis.events import COMMUNICATION, MEMCPY, MEMSET, EventTable
from monitor.core.analysis.intervals import EMPTY, Intervals, clip, length, merge, new_time
from monitor.core.analysis.results import CATEGORIES, StepBreakdown

Window = tuple[int | None, int, int]  # (step number or None, start ns, end ns)


def role_intervals(table: EventTable, cols: Columns) -> dict[str, Intervals]:
    """Merged intervals of each category except ``other``, over the whole trace."""
    comm_gpu = cols.gpu_union((COMMUNICATION,))
    comm_cpu = _pairs(table.comm_cpu)
    return {
        "kernel": cols.gpu_union(KERNEL_KINDS),
        "memcpy": cols.gpu_union((MEMCPY,)),
        "memset": cols.gpu_union((MEMSET,)),
        "communication": merge(
            np.concatenate([comm_gpu[0], comm_cpu[0]]), np.concatenate([comm_gpu[1], comm_cpu[1]])
        ),
        "runtime": merge(cols.runtime_ts, cols.runtime_end),
        "dataloader": _pairs(table.dataloader),
        "cpu_exec": merge(cols.cpu_ts, cols.cpu_end),
    }


def step_windows(table: EventTable, cols: Columns) -> list[Window]:
    """Each ProfilerStep's [start, end] in ns; one whole-trace window when there are none."""
    steps = _unique_steps(table.steps)
    if not steps:
        bounds = table.bounds()
        return [] if bounds is None else [(None, *bounds)]
    device_end = _device_end_per_step(steps, cols)
    windows: list[Window] = []
    previous_end = steps[0][1]
    for (number, cpu_start, cpu_end), gpu_end in zip(steps, device_end, strict=True):
        start = max(previous_end, cpu_start)
        end = max(cpu_end, gpu_end, start)
        windows.append((number, start, end))
        previous_end = end
    return windows


def breakdown(
    windows: list[Window], roles: dict[str, Intervals], busy: Intervals
) -> list[StepBreakdown]:
    """The category times of each window (µs)."""
    result = []
    for number, start, end in windows:
        covered = EMPTY
        times: dict[str, float] = {}
        for name in CATEGORIES[:-1]:
            gained, covered = new_time(clip(roles[name], start, end), covered)
            times[name] = gained / 1000
        times["other"] = (end - start - length(covered)) / 1000
        result.append(
            StepBreakdown(
                step=number,
                start_us=start / 1000,
                duration_us=(end - start) / 1000,
                breakdown_us=times,
                gpu_busy_us=length(clip(busy, start, end)) / 1000,
            )
        )
    return result


def total(steps: list[StepBreakdown]) -> StepBreakdown:
    """All steps added up (the whole trace when the trace has no ProfilerStep)."""
    if not steps:
        return StepBreakdown(None, 0.0, 0.0, dict.fromkeys(CATEGORIES, 0.0), 0.0)
    if len(steps) == 1 and steps[0].step is None:
        return steps[0]
    sums = {name: sum(step.breakdown_us[name] for step in steps) for name in CATEGORIES}
    return StepBreakdown(
        step=None,
        start_us=steps[0].start_us,
        duration_us=sum(step.duration_us for step in steps),
        breakdown_us=sums,
        gpu_busy_us=sum(step.gpu_busy_us for step in steps),
    )


def gpu_busy(cols: Columns) -> Intervals:
    return cols.gpu_union(ALL_GPU_KINDS)


def _unique_steps(steps: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Steps by start time, one per number (a step annotated on two threads counts once)."""
    seen: dict[int, tuple[int, int, int]] = {}
    for step in sorted(steps, key=lambda item: item[1]):
        seen.setdefault(step[0], step)
    return sorted(seen.values(), key=lambda item: item[1])


def _device_end_per_step(steps: list[tuple[int, int, int]], cols: Columns) -> list[int]:
    """The end of the last GPU event launched from inside each step's host range."""
    launched = cols.launch_ts >= 0
    launch_ts = cols.launch_ts[launched]
    gpu_end = cols.gpu_end[launched]
    starts = np.asarray([step[1] for step in steps], dtype=np.int64)
    cpu_ends = np.asarray([step[2] for step in steps], dtype=np.int64)
    owner = np.searchsorted(starts, launch_ts, side="right") - 1
    inside = (owner >= 0) & (launch_ts <= cpu_ends[np.maximum(owner, 0)])
    ends = np.zeros(len(steps), dtype=np.int64)
    np.maximum.at(ends, owner[inside], gpu_end[inside])
    return [int(value) for value in ends]


def _pairs(pairs: list[tuple[int, int]]) -> Intervals:
    if not pairs:
        return EMPTY
    values = np.asarray(pairs, dtype=np.int64)
    return merge(values[:, 0].copy(), values[:, 1].copy())
