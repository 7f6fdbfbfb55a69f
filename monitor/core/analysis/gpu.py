"""GPU-side views (pure): Holistic Trace Analysis's temporal and idle-time breakdowns, kernel
launch statistics and communication/computation overlap."""

from __future__ import annotations

import numpy as np

from monitor.core.analysis.columns import ALL_GPU_KINDS, Columns
from monitor.core.analysis.events import COMMUNICATION, COMPUTE, MEMCPY, MEMSET
from monitor.core.analysis.intervals import Ints, length, overlap
from monitor.core.analysis.results import IdleBreakdown, LaunchStats, Overlap, Temporal

# HTA's ``consecutive_kernel_delay`` default: a gap shorter than this between two kernels on a
# stream, with the second already enqueued, is launch overhead ("kernel wait").
KERNEL_WAIT_THRESHOLD_NS = 30_000


def temporal(cols: Columns, scope: Ints) -> Temporal:
    """span = first to last GPU activity; idle = span - busy; compute = computation kernels;
    non_compute = the rest of the busy time (communication and memory)."""
    keep = scope.astype(bool)
    if not keep.any():
        return Temporal(0.0, 0.0, 0.0, 0.0)
    span = int(cols.gpu_end[keep].max() - cols.gpu_ts[keep].min())
    busy = length(cols.gpu_union(ALL_GPU_KINDS, keep))
    compute = length(cols.gpu_union((COMPUTE,), keep))
    return Temporal(
        span_us=span / 1000,
        idle_us=(span - busy) / 1000,
        compute_us=compute / 1000,
        non_compute_us=(busy - compute) / 1000,
    )


def idle_breakdown(cols: Columns, scope: Ints) -> IdleBreakdown:
    """Gaps between consecutive GPU events on each stream, by cause, summed over streams.

    host wait: the next event's host call started after the stream went idle (the host was
    late); kernel wait: it was already enqueued and the gap is under 30 µs (launch overhead);
    other: the rest (e.g. waiting for an event from another stream).
    """
    keep = np.flatnonzero(scope.astype(bool))
    if len(keep) < 2:
        return IdleBreakdown(0.0, 0.0, 0.0)
    order = keep[np.lexsort((cols.gpu_ts[keep], cols.gpu_stream[keep]))]
    stream, ts, end = cols.gpu_stream[order], cols.gpu_ts[order], cols.gpu_end[order]
    launch = cols.launch_ts[order]
    same = stream[1:] == stream[:-1]
    prev_end = end[:-1]
    gap = np.maximum(ts[1:] - prev_end, 0)
    host = same & (launch[1:] >= 0) & (launch[1:] > prev_end)
    kernel = same & ~host & (gap < KERNEL_WAIT_THRESHOLD_NS)
    other = same & ~host & ~kernel
    return IdleBreakdown(
        host_wait=int(gap[host].sum()) / 1000,
        kernel_wait=int(gap[kernel].sum()) / 1000,
        other=int(gap[other].sum()) / 1000,
    )


def launch_stats(cols: Columns) -> LaunchStats | None:
    """Launch cost and launch-to-start delay of kernels matched to their launch call."""
    launches = int(cols.runtime_is_launch.sum())
    is_kernel = ~np.isin(cols.gpu_kind, (MEMCPY, MEMSET))
    matched = is_kernel & (cols.launch_is_kernel_launch == 1)
    if launches == 0 and not matched.any():
        return None
    launch_cost = (cols.launch_end - cols.launch_ts)[matched]
    delay = (cols.gpu_ts - cols.launch_ts)[matched]
    duration = (cols.gpu_end - cols.gpu_ts)[matched]
    all_costs = (cols.runtime_end - cols.runtime_ts)[cols.runtime_is_launch == 1]
    return LaunchStats(
        launches=launches,
        matched=int(matched.sum()),
        short_kernels=int((duration < launch_cost).sum()),
        mean_launch_us=float(all_costs.mean()) / 1000 if len(all_costs) else 0.0,
        mean_delay_us=float(delay.mean()) / 1000 if len(delay) else 0.0,
        p95_delay_us=float(np.percentile(delay, 95)) / 1000 if len(delay) else 0.0,
    )


def comm_overlap(cols: Columns) -> Overlap | None:
    """Communication kernel time that ran while computation kernels ran."""
    comm = cols.gpu_union((COMMUNICATION,))
    comm_ns = length(comm)
    if comm_ns == 0:
        return None
    both = overlap(comm, cols.gpu_union((COMPUTE,)))
    return Overlap(comm_ns / 1000, both / 1000, 100.0 * both / comm_ns)
