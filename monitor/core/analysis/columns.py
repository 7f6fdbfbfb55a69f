"""The event table as numpy columns, with each GPU event joined to the host call that launched it
(pure)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monitor.core.analysis.events import (
    COMMUNICATION,
    COMPUTE,
    MEMCPY,
    MEMSET,
    OTHER_KERNEL,
    EventTable,
)
from monitor.core.analysis.intervals import Intervals, Ints, merge


@dataclass(frozen=True, slots=True)
class Columns:
    """numpy views of an :class:`EventTable` (int64 ns), GPU rows joined to their launch."""

    gpu_ts: Ints
    gpu_end: Ints
    gpu_stream: Ints
    gpu_kind: Ints
    gpu_corr: Ints
    launch_ts: Ints  # start of the host call that launched each GPU event, -1 if none
    launch_end: Ints
    launch_is_kernel_launch: Ints  # 1 when that call was a cudaLaunchKernel-like call
    runtime_ts: Ints
    runtime_end: Ints
    runtime_is_launch: Ints
    cpu_ts: Ints
    cpu_end: Ints

    @property
    def gpu_count(self) -> int:
        return len(self.gpu_ts)

    def gpu_union(
        self, kinds: tuple[int, ...] | None = None, mask: Ints | None = None
    ) -> Intervals:
        """Merged GPU activity, optionally only of some kinds and rows."""
        keep = np.ones(self.gpu_count, dtype=bool) if mask is None else mask.astype(bool)
        if kinds is not None:
            keep &= np.isin(self.gpu_kind, kinds)
        return merge(self.gpu_ts[keep], self.gpu_end[keep])


ALL_GPU_KINDS = (COMPUTE, COMMUNICATION, MEMCPY, MEMSET, OTHER_KERNEL)
KERNEL_KINDS = (COMPUTE, OTHER_KERNEL)


def columns(table: EventTable) -> Columns:
    """Views of the table's arrays (no copies of the large columns)."""
    gpu_corr = _ints(table.gpu_corr)
    runtime_ts = _ints(table.runtime_ts)
    runtime_end = _ints(table.runtime_end)
    runtime_is_launch = np.frombuffer(table.runtime_is_launch, dtype=np.int8).astype(np.int64)
    index = _launch_index(gpu_corr, _ints(table.runtime_corr))
    matched = index >= 0
    safe = np.where(matched, index, 0)
    if len(runtime_ts):
        launch_ts = np.where(matched, runtime_ts[safe], -1)
        launch_end = np.where(matched, runtime_end[safe], -1)
        is_launch = np.where(matched, runtime_is_launch[safe], 0)
    else:
        launch_ts = launch_end = np.full(len(gpu_corr), -1, dtype=np.int64)
        is_launch = np.zeros(len(gpu_corr), dtype=np.int64)
    return Columns(
        gpu_ts=_ints(table.gpu_ts),
        gpu_end=_ints(table.gpu_end),
        gpu_stream=_ints(table.gpu_stream),
        gpu_kind=np.frombuffer(table.gpu_kind, dtype=np.int8).astype(np.int64),
        gpu_corr=gpu_corr,
        launch_ts=launch_ts,
        launch_end=launch_end,
        launch_is_kernel_launch=is_launch,
        runtime_ts=runtime_ts,
        runtime_end=runtime_end,
        runtime_is_launch=runtime_is_launch,
        cpu_ts=_ints(table.cpu_ts),
        cpu_end=_ints(table.cpu_end),
    )


def _launch_index(gpu_corr: Ints, runtime_corr: Ints) -> Ints:
    """For each GPU event, the row of the host call with the same correlation id, or -1."""
    if len(runtime_corr) == 0 or len(gpu_corr) == 0:
        return np.full(len(gpu_corr), -1, dtype=np.int64)
    order = np.argsort(runtime_corr, kind="stable")
    ordered = runtime_corr[order]
    pos = np.searchsorted(ordered, gpu_corr)
    pos_safe = np.minimum(pos, len(ordered) - 1)
    found = (ordered[pos_safe] == gpu_corr) & (gpu_corr >= 0)
    return np.where(found, order[pos_safe], -1).astype(np.int64)


def _ints(values: object) -> Ints:
    return np.frombuffer(values, dtype=np.int64)  # type: ignore[call-overload,no-any-return]
