"""The Run page's tables: the kernel table, copies and synchronizing calls (pure shaping of
stored rows into DataTable rows with units)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from dash import html
from dash.dash_table.DataTable import DataTable

from dashboard import ids
from monitor.core.analysis.results import KernelStat, RankAnalysis

KERNEL_ROWS = 200
NO_WINDOW = (
    "no profiler window analyzed yet: windows trace 5 steps every 300 "
    "(GPULENS_PROFILE_SCHEDULE), or `gpulens import TRACE` stores a trace you already have"
)


def empty_note(element_id: str, text: str) -> html.P:
    return html.P(text, id=element_id, className="gl-empty")


def numeric_column(column_id: str, name: str, decimals: int) -> dict[str, Any]:
    """A DataTable column of numbers shown grouped with fixed decimals (and sorted as numbers)."""
    return {
        "id": column_id,
        "name": name,
        "type": "numeric",
        "format": {"specifier": f",.{decimals}f"},  # d3-format: grouped, fixed decimals
    }


KERNEL_COLUMNS: list[dict[str, Any]] = [
    {"id": "name", "name": "kernel"},
    {"id": "category", "name": "category"},
    numeric_column("count", "calls", 0),
    numeric_column("total_ms", "total (ms)", 3),
    numeric_column("mean_us", "mean (µs)", 1),
    numeric_column("share_percent", "share of kernel time (%)", 1),
    {"id": "tensor_core", "name": "tensor cores"},
]


def kernel_rows(kernels: Sequence[KernelStat], limit: int = KERNEL_ROWS) -> list[dict[str, Any]]:
    """Kernel table rows, most total time first, at most ``limit``."""
    total_us = math.fsum(kernel.total_us for kernel in kernels)
    ordered = sorted(kernels, key=lambda kernel: kernel.total_us, reverse=True)[:limit]
    return [
        {
            "name": kernel.name,
            "category": kernel.category,
            "count": kernel.count,
            "total_ms": kernel.total_us / 1e3,
            "mean_us": kernel.mean_us,
            "share_percent": 100.0 * kernel.total_us / total_us if total_us > 0 else None,
            "tensor_core": "yes" if kernel.tensor_core else "no",
        }
        for kernel in ordered
    ]


def table(
    table_id: str, columns: Sequence[Any], rows: Sequence[Any], *, page_size: int = 25
) -> Any:
    """A sortable table; cells are plain text (never markdown or HTML)."""
    return DataTable(
        id=table_id,
        columns=columns,
        data=rows,
        sort_action="native",
        page_size=page_size,
        style_table={"overflowX": "auto"},
        style_cell={"textAlign": "left", "maxWidth": "40rem", "whiteSpace": "normal"},
    )


def table_or_note(
    table_id: str, columns: Sequence[Any], rows: Sequence[Any], empty: str, *, page_size: int = 25
) -> Any:
    """:func:`table` of ``rows``, or where there is none the note ``empty``, under the same id."""
    if not rows:
        return empty_note(table_id, empty)
    return table(table_id, columns, rows, page_size=page_size)


def kernel_table(kernels: Sequence[KernelStat]) -> Any:
    empty = f"no kernels: {NO_WINDOW}; a CPU-only trace has no GPU kernels"
    return table_or_note(ids.RUN_KERNELS, KERNEL_COLUMNS, kernel_rows(kernels), empty)


COPY_COLUMNS: list[dict[str, Any]] = [
    {"id": "direction", "name": "direction"},
    {"id": "memory", "name": "host memory"},
    numeric_column("count", "copies", 0),
    numeric_column("total_ms", "time (ms)", 3),
    numeric_column("mib", "data (MiB)", 3),
]
SYNC_COLUMNS: list[dict[str, Any]] = [
    {"id": "name", "name": "call"},
    {"id": "kind", "name": "kind"},
    numeric_column("count", "calls", 0),
    numeric_column("total_ms", "time (ms)", 3),
]


def _summed(
    items: Iterable[Any], key: Callable[[Any], tuple[str, str]], fields: tuple[str, ...]
) -> list[tuple[tuple[str, str], list[float]]]:
    """``fields`` of ``items`` summed by ``key``, the largest second field (time) first."""
    sums: dict[tuple[str, str], list[float]] = {}
    for item in items:
        row = sums.setdefault(key(item), [0.0] * len(fields))
        for index, name in enumerate(fields):
            row[index] += getattr(item, name)
    return sorted(sums.items(), key=lambda pair: pair[1][1], reverse=True)


def copy_rows(traces: Sequence[RankAnalysis]) -> list[dict[str, Any]]:
    """Copies summed over the analyzed windows per direction and memory kind, most time first."""
    copies = (copy for trace in traces for copy in trace.memcpy)
    summed = _summed(
        copies, lambda c: (c.direction, c.memory), ("count", "total_us", "total_bytes")
    )
    return [
        {"direction": direction, "memory": memory, "count": int(count),
         "total_ms": total_us / 1e3, "mib": nbytes / 2**20}
        for (direction, memory), (count, total_us, nbytes) in summed
    ]  # fmt: skip


def sync_rows(traces: Sequence[RankAnalysis]) -> list[dict[str, Any]]:
    """Synchronizing calls summed over the analyzed windows by name, most time first."""
    syncs = (sync for trace in traces for sync in trace.syncs)
    return [
        {"name": name, "kind": kind, "count": int(count), "total_ms": total_us / 1e3}
        for (name, kind), (count, total_us) in _summed(
            syncs, lambda s: (s.name, s.kind), ("count", "total_us")
        )
    ]


def copy_tables(traces: Sequence[RankAnalysis]) -> list[Any]:
    if not traces:
        return [empty_note(ids.RUN_COPIES, NO_WINDOW)]
    copies, syncs = copy_rows(traces), sync_rows(traces)
    return [
        html.H3("Memory copies"),
        table_or_note(
            ids.RUN_COPIES, COPY_COLUMNS, copies, "no memory copies in the analyzed windows"
        ),
        html.H3("Synchronizing calls"),
        table_or_note(
            ids.RUN_SYNCS, SYNC_COLUMNS, syncs, "no synchronizing calls in the analyzed windows"
        ),
    ]
