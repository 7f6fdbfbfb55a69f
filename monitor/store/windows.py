"""Profiler windows and their trace analyses in the store: writes and read queries.

Windows are upserted by ``window_id``. A window's analysis is written in one transaction that
replaces its step breakdowns and kernel statistics and stores the rest of the analysis as one
JSON summary. Kernel statistics are keyed by the SHA-1 of the kernel name (names run to
kilobytes); reads sum them over windows and ranks by name.

Every function takes a connection; the caller (:class:`monitor.store.Store`) owns the
transaction and turns connection failures into ``StoreUnavailable``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Integer, cast, delete, func, insert, select, update

from monitor.core.analysis.results import CATEGORIES, KernelStat, TraceAnalysis, to_json
from monitor.core.run_records import WindowRecord
from monitor.core.run_views import StepBreakdownRow
from monitor.store.runs import check_lengths
from monitor.store.schema import BREAKDOWN_COLUMNS, kernel_stats, profiler_windows, step_breakdowns
from monitor.store.writer import Row, upsert

WHOLE_TRACE_STEP = -1
"""``step`` of the breakdown row that stands for a whole trace without ProfilerStep markers."""

if tuple(f"{category}_us" for category in CATEGORIES) != BREAKDOWN_COLUMNS:
    raise AssertionError("step_breakdowns columns do not match the breakdown CATEGORIES")

_WINDOW_FIELDS = tuple(f.name for f in dataclasses.fields(WindowRecord))


# -- writing ---------------------------------------------------------------------------------


def save_window(conn: Connection, window: WindowRecord) -> None:
    row = {name: getattr(window, name) for name in _WINDOW_FIELDS}
    check_lengths(profiler_windows, [row])
    upsert(conn, profiler_windows, "window_id", [row])


def save_window_analysis(
    conn: Connection, window_id: str, analysis: TraceAnalysis, analyzed_at: datetime
) -> None:
    """Replace the window's breakdowns and kernel statistics, store its summary and mark it
    analyzed (the caller's transaction makes this all or nothing)."""
    windows = profiler_windows
    run_id = conn.execute(
        select(windows.c.run_id).where(windows.c.window_id == window_id).with_for_update()
    ).scalar()
    if run_id is None:
        raise ValueError(f"unknown profiler window {window_id!r}: save_window must come first")
    for table in (step_breakdowns, kernel_stats):
        conn.execute(delete(table).where(table.c.window_id == window_id))
    breakdowns = _breakdown_rows(window_id, run_id, analysis)
    if breakdowns:
        conn.execute(insert(step_breakdowns), breakdowns)
    kernels = _kernel_rows(window_id, run_id, analysis)
    check_lengths(kernel_stats, kernels)
    if kernels:
        conn.execute(insert(kernel_stats), kernels)
    conn.execute(
        update(windows)
        .where(windows.c.window_id == window_id)
        .values(summary=_summary(analysis), status="analyzed", error=None, analyzed_at=analyzed_at)
    )


def fail_window(conn: Connection, window_id: str, error: str) -> None:
    """Mark the window failed with ``error``; rows of an earlier analysis stay."""
    result = conn.execute(
        update(profiler_windows)
        .where(profiler_windows.c.window_id == window_id)
        .values(status="failed", error=error)
    )
    if result.rowcount == 0:
        raise ValueError(f"unknown profiler window {window_id!r}: save_window must come first")


def _summary(analysis: TraceAnalysis) -> dict[str, Any]:
    """The analysis's JSON form without per-step rows and kernels (which have their tables)."""
    document = to_json(analysis)
    for rank in document["ranks"]:
        del rank["steps"], rank["kernels"]
    finite: dict[str, Any] = _finite(document)
    return finite


def _finite(value: Any) -> Any:
    """NaN and infinities as ``None``: JSON has no such numbers and jsonb refuses them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def _breakdown_rows(window_id: str, run_id: str, analysis: TraceAnalysis) -> list[Row]:
    rows: dict[tuple[int, int], Row] = {}
    for item in analysis.ranks:
        is_whole_trace = not item.steps
        for breakdown in item.steps or (item.total,):
            step = breakdown.step
            step = WHOLE_TRACE_STEP if is_whole_trace or step is None else step
            rows[(item.rank, step)] = {
                "window_id": window_id,
                "rank": item.rank,
                "step": step,
                "run_id": run_id,
                "start_us": breakdown.start_us,
                "duration_us": breakdown.duration_us,
                **{
                    column: breakdown.breakdown_us.get(category, 0.0)
                    for category, column in zip(CATEGORIES, BREAKDOWN_COLUMNS, strict=True)
                },
                "gpu_busy_us": breakdown.gpu_busy_us,
            }
    return list(rows.values())


def _kernel_rows(window_id: str, run_id: str, analysis: TraceAnalysis) -> list[Row]:
    merged: dict[tuple[int, str], KernelStat] = {}
    for item in analysis.ranks:
        for kernel in item.kernels:
            key = (item.rank, hashlib.sha1(kernel.name.encode()).hexdigest())
            merged[key] = _merge(merged[key], kernel) if key in merged else kernel
    return [
        {
            "window_id": window_id,
            "rank": rank,
            "name_sha1": digest,
            "run_id": run_id,
            **dataclasses.asdict(kernel),
        }
        for (rank, digest), kernel in merged.items()
    ]


def _merge(a: KernelStat, b: KernelStat) -> KernelStat:
    """Two rows of one kernel name (the analyzer groups by name, so only hand-made input)."""
    count = a.count + b.count
    total = a.total_us + b.total_us
    return dataclasses.replace(
        a,
        count=count,
        total_us=total,
        mean_us=total / count if count else 0.0,
        min_us=min(a.min_us, b.min_us),
        max_us=max(a.max_us, b.max_us),
        tensor_core=a.tensor_core or b.tensor_core,
    )


# -- reading ---------------------------------------------------------------------------------


def list_windows(conn: Connection, run_id: str) -> list[WindowRecord]:
    query = (
        select(profiler_windows)
        .where(profiler_windows.c.run_id == run_id)
        .order_by(profiler_windows.c.started_at, profiler_windows.c.window_id)
    )
    return [
        WindowRecord(**{name: row._mapping[name] for name in _WINDOW_FIELDS})
        for row in conn.execute(query)
    ]


def window_summary(conn: Connection, window_id: str) -> dict[str, Any] | None:
    """The stored analysis summary (``to_json`` without steps and kernels), or ``None``."""
    query = select(profiler_windows.c.summary).where(profiler_windows.c.window_id == window_id)
    summary: dict[str, Any] | None = conn.execute(query).scalar()
    return summary


def list_step_breakdowns(
    conn: Connection, run_id: str, *, window_id: str | None = None
) -> list[StepBreakdownRow]:
    """Breakdowns of ``run_id`` in window order (oldest first), then rank and step."""
    table = step_breakdowns
    query = (
        select(table)
        .join(profiler_windows, profiler_windows.c.window_id == table.c.window_id)
        .where(table.c.run_id == run_id)
    )
    if window_id is not None:
        query = query.where(table.c.window_id == window_id)
    query = query.order_by(
        profiler_windows.c.started_at, table.c.window_id, table.c.rank, table.c.step
    )
    return [
        StepBreakdownRow(
            window_id=row.window_id,
            rank=row.rank,
            step=None if row.step == WHOLE_TRACE_STEP else row.step,
            start_us=row.start_us,
            duration_us=row.duration_us,
            breakdown_us={
                category: row._mapping[column]
                for category, column in zip(CATEGORIES, BREAKDOWN_COLUMNS, strict=True)
            },
            gpu_busy_us=row.gpu_busy_us,
        )
        for row in conn.execute(query)
    ]


def list_kernels(
    conn: Connection, run_id: str, *, window_id: str | None = None, limit: int = 200
) -> list[KernelStat]:
    """Kernels of ``run_id`` summed over windows and ranks by name, most total time first."""
    k = kernel_stats.c
    total = func.sum(k.total_us)
    query = select(
        func.min(k.name),
        func.min(k.category),
        func.sum(k["count"]),
        total,
        func.min(k.min_us),
        func.max(k.max_us),
        func.max(cast(k.tensor_core, Integer)),
    ).where(k.run_id == run_id)
    if window_id is not None:
        query = query.where(k.window_id == window_id)
    query = query.group_by(k.name_sha1).order_by(total.desc(), k.name_sha1).limit(limit)
    return [
        KernelStat(
            name=name,
            category=category,
            count=int(count),
            total_us=float(total_us),
            mean_us=float(total_us) / int(count) if count else 0.0,
            min_us=float(min_us),
            max_us=float(max_us),
            tensor_core=bool(tensor_core),
        )
        for name, category, count, total_us, min_us, max_us, tensor_core in conn.execute(query)
    ]
