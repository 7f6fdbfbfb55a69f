"""Rollups (raw → 1 min → 1 h) and retention, in short transactions.

Rollups are recomputed per bucket (delete the buckets, insert them again from the finer table
in one transaction), so a late row (a replayed spool, a slow host) is folded in by rolling the
range up again. Retention deletes in time slices, one transaction each, so no lock is held long.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Connection, Engine, Table, and_, delete, func, insert, select
from sqlalchemy.sql.elements import ColumnElement

from monitor.core.metrics import ROLLUP_METRICS, rollup_column
from monitor.core.resolution import RetentionPolicy
from monitor.store.buckets import bucket_start, weighted_mean
from monitor.store.schema import (
    events,
    gpu_rollups_1h,
    gpu_rollups_1m,
    gpu_samples,
    process_samples,
)

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def floor_time(ts: datetime, seconds: int) -> datetime:
    """``ts`` rounded down to a multiple of ``seconds`` since the epoch."""
    offset = (ts - EPOCH).total_seconds()
    return EPOCH + timedelta(seconds=offset - offset % seconds)


def _aggregate(name: str, column: Any) -> ColumnElement[Any]:
    functions: dict[str, Any] = {
        "min": func.min,
        "mean": func.avg,
        "max": func.max,
        "sum": func.sum,
    }
    result: ColumnElement[Any] = functions[name](column)
    return result


def _from_raw() -> list[ColumnElement[Any]]:
    return [
        _aggregate(agg, gpu_samples.c[spec.name])
        for spec in ROLLUP_METRICS
        for agg in spec.aggregates
    ]


def _from_minutes() -> list[ColumnElement[Any]]:
    table = gpu_rollups_1m
    columns: list[ColumnElement[Any]] = []
    for spec in ROLLUP_METRICS:
        for agg in spec.aggregates:
            source = table.c[rollup_column(spec.name, agg)]
            if agg == "mean":
                columns.append(weighted_mean(source, table.c.sample_count))
            else:
                columns.append(_aggregate(agg, source))
    return columns


def _rollup_columns() -> list[str]:
    return [rollup_column(s.name, a) for s in ROLLUP_METRICS for a in s.aggregates]


def _rebuild(
    conn: Connection,
    target: Table,
    source: Table,
    aggregates: list[ColumnElement[Any]],
    count: ColumnElement[Any],
    width: int,
    host: str,
    since: datetime,
    until: datetime,
) -> int:
    in_range = and_(target.c.host == host, target.c.ts >= since, target.c.ts < until)
    conn.execute(delete(target).where(in_range))
    bucket = bucket_start(source.c.ts, width, conn.dialect.name)
    query = (
        select(source.c.uuid, bucket, source.c.host, count, *aggregates)
        .where(and_(source.c.host == host, source.c.ts >= since, source.c.ts < until))
        .group_by(source.c.uuid, bucket, source.c.host)
    )
    names = ["uuid", "ts", "host", "sample_count", *_rollup_columns()]
    conn.execute(insert(target).from_select(names, query))
    # Counted, not taken from rowcount: psycopg reports 0 for INSERT ... SELECT here.
    return int(conn.execute(select(func.count()).select_from(target).where(in_range)).scalar_one())


def rollup(engine: Engine, host: str, since: datetime, until: datetime) -> int:
    """Recompute ``host``'s 1-min rollups for whole minutes in ``[since, until)`` and the
    1-h rollups of the hours they touch. Returns the number of 1-min buckets written."""
    since, until = floor_time(since, 60), floor_time(until, 60)
    if until <= since:
        return 0
    hour_from, hour_to = floor_time(since, 3600), floor_time(until - timedelta(seconds=1), 3600)
    with engine.begin() as conn:
        minutes = _rebuild(
            conn,
            gpu_rollups_1m,
            gpu_samples,
            _from_raw(),
            func.count(),
            60,
            host,
            since,
            until,
        )
        _rebuild(
            conn,
            gpu_rollups_1h,
            gpu_rollups_1m,
            _from_minutes(),
            func.sum(gpu_rollups_1m.c.sample_count),
            3600,
            host,
            hour_from,
            hour_to + timedelta(hours=1),
        )
    return minutes


def _expire(engine: Engine, table: Table, cutoff: datetime, slice_: timedelta) -> int:
    with engine.connect() as conn:
        oldest = conn.execute(select(func.min(table.c.ts))).scalar()
    deleted = 0
    while oldest is not None and oldest < cutoff:
        upper = min(oldest + slice_, cutoff)
        with engine.begin() as conn:
            result = conn.execute(delete(table).where(table.c.ts < upper))
            deleted += max(result.rowcount, 0)
        oldest = upper
    return deleted


def apply_retention(
    engine: Engine,
    policy: RetentionPolicy,
    now: datetime,
    *,
    slice_: timedelta = timedelta(hours=1),
) -> dict[str, int]:
    """Delete what ``policy`` no longer keeps, one time slice per transaction."""
    plan: list[tuple[Table, float | None]] = [
        (gpu_samples, policy.raw_days),
        (process_samples, policy.raw_days),
        (gpu_rollups_1m, policy.rollup_1m_days),
        (gpu_rollups_1h, policy.rollup_1h_days),
        (events, policy.events_days),
    ]
    deleted: dict[str, int] = {}
    for table, days in plan:
        if days is not None:
            deleted[table.name] = _expire(engine, table, now - timedelta(days=days), slice_)
    return deleted
