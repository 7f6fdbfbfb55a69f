"""The kernel, memcpy and synchronization tables (pure)."""

from __future__ import annotations

from monitor.core.analysis.events import (
    COMMUNICATION,
    MEMCPY,
    MEMSET,
    EventTable,
    is_tensor_core_kernel,
)
from monitor.core.analysis.results import KernelCategory, KernelStat, MemcpyStat, SyncStat


def kernel_table(table: EventTable) -> tuple[KernelStat, ...]:
    """Kernels, copies and memsets grouped by name, the most total time first."""
    rows = []
    for name, agg in table.kernels.items():
        category = kernel_category(agg.kind)
        rows.append(
            KernelStat(
                name=name,
                category=category,
                count=agg.count,
                total_us=agg.total_ns / 1000,
                mean_us=agg.total_ns / agg.count / 1000,
                min_us=agg.min_ns / 1000,
                max_us=agg.max_ns / 1000,
                tensor_core=category == "computation" and is_tensor_core_kernel(name),
            )
        )
    rows.sort(key=lambda row: (-row.total_us, row.name))
    return tuple(rows)


def kernel_category(kind: int) -> KernelCategory:
    if kind == COMMUNICATION:
        return "communication"
    if kind in (MEMCPY, MEMSET):
        return "memory"
    return "computation"


def memcpy_table(table: EventTable) -> tuple[MemcpyStat, ...]:
    rows = [
        MemcpyStat(direction, memory, agg.count, agg.total_ns / 1000, agg.total_bytes)
        for (direction, memory), agg in table.copies.items()
    ]
    rows.sort(key=lambda row: -row.total_us)
    return tuple(rows)


def sync_table(table: EventTable) -> tuple[SyncStat, ...]:
    rows = [
        SyncStat(name, kind, agg.count, agg.total_ns / 1000)
        for (name, kind), agg in table.syncs.items()
    ]
    rows.sort(key=lambda row: -row.total_us)
    return tuple(rows)
