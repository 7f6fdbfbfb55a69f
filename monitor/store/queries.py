"""Read queries for the CLI, the exporter's status and the dashboard.

No caller above the store writes SQL; these functions are the read API. Every series query
returns at most ``max_points`` points, from raw samples or a rollup as
:func:`monitor.core.resolution.plan_series` decides.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from monitor.core.gpu_records import (
    CollectorStatus,
    Event,
    GpuInfo,
    GpuSample,
    LatestGpu,
    ProcessSample,
)
from monitor.core.metrics import METRICS_BY_NAME, MetricSpec, rollup_column
from monitor.core.resolution import RetentionPolicy, Series, SeriesPlan, SeriesPoint, plan_series
from monitor.store.buckets import bucket_start, weighted_mean
from monitor.store.schema import (
    ROLLUP_TABLES,
    collectors,
    events,
    gpu_samples,
    gpus,
    process_samples,
)


def _record(cls: type, row: Any, **renames: str) -> Any:
    mapping = row._mapping
    values = {}
    for field in dataclasses.fields(cls):
        values[field.name] = mapping[renames.get(field.name, field.name)]
    return cls(**values)


def list_gpus(conn: Connection, host: str | None = None) -> list[GpuInfo]:
    query = select(gpus).order_by(gpus.c.host, gpus.c.index, gpus.c.uuid)
    if host is not None:
        query = query.where(gpus.c.host == host)
    return [_record(GpuInfo, row, ts="last_seen") for row in conn.execute(query)]


def latest(conn: Connection, host: str | None = None) -> list[LatestGpu]:
    """Every known GPU with its newest raw sample (one indexed lookup per GPU)."""
    result = []
    for gpu in list_gpus(conn, host):
        row = conn.execute(
            select(gpu_samples)
            .where(gpu_samples.c.uuid == gpu.uuid)
            .order_by(gpu_samples.c.ts.desc())
            .limit(1)
        ).first()
        result.append(LatestGpu(gpu, None if row is None else _record(GpuSample, row)))
    return result


def _aggregates(spec: MetricSpec, table_name: str, table: Any) -> list[ColumnElement[Any]]:
    """(mean, min, max) expressions for one bucket of ``spec``, from raw rows or a rollup."""
    if spec.kind == "bitmask":
        raise ValueError(f"{spec.name} is a bitmask: read its changes as events instead")
    if table_name == "raw":
        column = table.c[spec.name]
        if spec.kind == "delta":
            total = func.sum(column)
            return [total, total, total]
        if spec.kind == "counter":
            peak = func.max(column)
            return [peak, func.min(column), peak]
        return [func.avg(column), func.min(column), func.max(column)]
    if spec.kind == "delta":
        total = func.sum(table.c[rollup_column(spec.name, "sum")])
        return [total, total, total]
    if spec.kind == "counter":
        peak = func.max(table.c[rollup_column(spec.name, "max")])
        return [peak, peak, peak]
    mean = table.c[rollup_column(spec.name, "mean")]
    return [
        weighted_mean(mean, table.c.sample_count),
        func.min(table.c[rollup_column(spec.name, "min")]),
        func.max(table.c[rollup_column(spec.name, "max")]),
    ]


def series(
    conn: Connection,
    uuid: str,
    metric: str,
    start: datetime,
    end: datetime,
    *,
    now: datetime,
    retention: RetentionPolicy,
    max_points: int,
) -> Series:
    """``metric`` of GPU ``uuid`` over ``[start, end)``, at most ``max_points`` buckets."""
    spec = METRICS_BY_NAME.get(metric)
    if spec is None:
        raise ValueError(f"unknown metric {metric!r}")
    plan = plan_series(start, end, now, retention, max_points)
    return Series(
        uuid, metric, plan.source, plan.bucket_seconds, _points(conn, uuid, spec, plan, start, end)
    )


def _points(
    conn: Connection,
    uuid: str,
    spec: MetricSpec,
    plan: SeriesPlan,
    start: datetime,
    end: datetime,
) -> tuple[SeriesPoint, ...]:
    table = gpu_samples if plan.source == "raw" else ROLLUP_TABLES[plan.source]
    bucket = bucket_start(table.c.ts, plan.bucket_seconds, conn.dialect.name).label("bucket")
    query = (
        select(bucket, *_aggregates(spec, plan.source, table))
        .where(and_(table.c.uuid == uuid, table.c.ts >= start, table.c.ts < end))
        .group_by(bucket)
        .order_by(bucket)
    )
    return tuple(
        SeriesPoint(row[0], _float(row[1]), _float(row[2]), _float(row[3]))
        for row in conn.execute(query)
    )


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def list_events(
    conn: Connection,
    start: datetime,
    end: datetime,
    *,
    uuid: str | None = None,
    kinds: Sequence[str] | None = None,
    limit: int = 10_000,
) -> list[Event]:
    query = select(events).where(and_(events.c.ts >= start, events.c.ts < end))
    if uuid is not None:
        query = query.where(events.c.uuid == uuid)
    if kinds:
        query = query.where(events.c.kind.in_(list(kinds)))
    query = query.order_by(events.c.ts, events.c.event_id).limit(limit)
    return [_record(Event, row) for row in conn.execute(query)]


def processes_at(
    conn: Connection, uuid: str, at: datetime, *, window: timedelta = timedelta(minutes=1)
) -> list[ProcessSample]:
    """The processes of the newest process sample of ``uuid`` no later than ``at``."""
    newest = conn.execute(
        select(func.max(process_samples.c.ts)).where(
            and_(
                process_samples.c.uuid == uuid,
                process_samples.c.ts <= at,
                process_samples.c.ts > at - window,
            )
        )
    ).scalar()
    if newest is None:
        return []
    rows = conn.execute(
        select(process_samples)
        .where(and_(process_samples.c.uuid == uuid, process_samples.c.ts == newest))
        .order_by(process_samples.c.pid)
    )
    return [_record(ProcessSample, row) for row in rows]


def list_collectors(conn: Connection) -> list[CollectorStatus]:
    rows = conn.execute(select(collectors).order_by(collectors.c.host))
    return [_record(CollectorStatus, row) for row in rows]


def list_samples(
    conn: Connection, uuid: str, start: datetime, end: datetime, *, limit: int = 50_000
) -> list[GpuSample]:
    """Raw samples of ``uuid`` with ``start <= ts < end`` in time order; where more than
    ``limit`` match, exactly ``limit`` of them spread evenly over the matches (the first
    included), chosen in SQL."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    table = gpu_samples
    ranked = (
        select(
            table,
            (func.row_number().over(order_by=table.c.ts) - 1).label("position"),
            func.count().over().label("matches"),
        )
        .where(and_(table.c.uuid == uuid, table.c.ts >= start, table.c.ts < end))
        .subquery()
    )
    # Row i is kept when floor(i * limit / n) steps up at i: exactly `limit` rows, evenly
    # spaced, in integer arithmetic both backends do alike.
    kept = or_(
        ranked.c.matches <= limit,
        (ranked.c.position * limit) % ranked.c.matches < limit,
    )
    query = select(ranked).where(kept).order_by(ranked.c.ts)
    return [_record(GpuSample, row) for row in conn.execute(query)]


def process_spans(
    conn: Connection, uuid: str, start: datetime, end: datetime
) -> list[ProcessSample]:
    """One row per pid seen on ``uuid`` in ``[start, end)``: its sample with the most used
    memory (the latest of equals), with ``ts`` the last time the pid was seen; most memory
    first (unknown memory last), then pid."""
    table = process_samples
    ranked = (
        select(
            table,
            func.row_number()
            .over(
                partition_by=table.c.pid,
                order_by=(table.c.used_memory_bytes.desc().nulls_last(), table.c.ts.desc()),
            )
            .label("position"),
            func.max(table.c.ts).over(partition_by=table.c.pid).label("last_seen"),
        )
        .where(and_(table.c.uuid == uuid, table.c.ts >= start, table.c.ts < end))
        .subquery()
    )
    query = (
        select(ranked)
        .where(ranked.c.position == 1)
        .order_by(ranked.c.used_memory_bytes.desc().nulls_last(), ranked.c.pid)
    )
    return [_record(ProcessSample, row, ts="last_seen") for row in conn.execute(query)]
