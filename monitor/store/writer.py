"""Writing records: one transaction per flush, batched, duplicate-safe.

Samples, processes and events are inserted with "on conflict do nothing" on their natural
primary keys, so a retried flush or a replayed spool never stores a row twice. Hosts and GPUs
are upserted (their facts may change, e.g. after a driver update).

The append-only tables take thousands of rows per flush, so they skip SQLAlchemy's per-row
parameter processing (about three quarters of the write time before, by ``bench/ingest.py``):

- SQLite: one ``INSERT ... ON CONFLICT DO NOTHING`` run by the driver's ``executemany`` with
  plain tuples; times become epoch seconds by :class:`UtcDateTime`'s rule.
- Postgres: ``COPY`` straight into the table inside a savepoint. Duplicates are rare (a
  retried flush, a replayed spool); when the COPY meets one it is rolled back to the savepoint
  and the batch goes through a session-local staging table and one
  ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``, which is also how a value COPY cannot parse
  (a float in an integer field) is cast as a bound parameter would be.
"""

from __future__ import annotations

import dataclasses
import keyword
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any

from sqlalchemy import Connection, Integer, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

from monitor.core.gpu_records import (
    Event,
    GpuInfo,
    GpuSample,
    HostInfo,
    ProcessSample,
    Record,
)
from monitor.store.schema import UtcDateTime, events, gpu_samples, gpus, hosts, process_samples

Row = dict[str, Any]

_APPEND_ONLY: dict[type, Table] = {
    GpuSample: gpu_samples,
    ProcessSample: process_samples,
    Event: events,
}
_FIELDS: dict[type, tuple[str, ...]] = {
    cls: tuple(f.name for f in dataclasses.fields(cls))
    for cls in (HostInfo, GpuInfo, GpuSample, ProcessSample, Event)
}
_UTC = UtcDateTime()
_TS = attrgetter("ts")

RowBuilder = Callable[[Any], tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class _AppendPlan:
    """How one record type lands in its append-only table (whose one time column is ``ts``)."""

    table: Table
    columns: tuple[str, ...]  # in the table's order
    values: RowBuilder  # record -> values of ``columns``
    epoch_values: RowBuilder  # the same, ``ts`` as epoch seconds (SQLite; aware times only)


def _row_builder(columns: tuple[str, ...], *, epoch_ts: bool) -> RowBuilder:
    """``lambda r: (r.uuid, r.ts, ...)``, compiled once per table as dataclasses and namedtuple
    compile their methods: plain attribute loads take half the time of ``operator.attrgetter``
    over ~40 names, which was a quarter of a SQLite write (``bench/ingest.py``)."""
    if not all(name.isidentifier() and not keyword.iskeyword(name) for name in columns):
        raise ValueError(f"column names must be Python identifiers: {columns}")
    items = [
        f"r.{name}.timestamp()" if epoch_ts and name == "ts" else f"r.{name}" for name in columns
    ]
    builder: RowBuilder = eval(f"lambda r: ({', '.join(items)},)", {})
    return builder


def _append_plan(cls: type, table: Table) -> _AppendPlan:
    columns = tuple(column.name for column in table.columns)
    times = [c.name for c in table.columns if isinstance(c.type, UtcDateTime)]
    if set(columns) != set(_FIELDS[cls]) or times != ["ts"]:
        raise AssertionError(f"{cls.__name__} fields do not match the {table.name} columns")
    return _AppendPlan(
        table,
        columns,
        _row_builder(columns, epoch_ts=False),
        _row_builder(columns, epoch_ts=True),
    )


_PLANS: dict[type, _AppendPlan] = {cls: _append_plan(cls, t) for cls, t in _APPEND_ONLY.items()}


def _dialect_insert(dialect: str, table: Table) -> Any:
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def _rows(records: Iterable[Record], cls: type) -> list[Row]:
    names = _FIELDS[cls]
    return [{name: getattr(record, name) for name in names} for record in records]


def _seen_rows(records: Iterable[HostInfo | GpuInfo], cls: type) -> list[Row]:
    rows = _rows(records, cls)
    for row in rows:
        ts = row.pop("ts")
        row["first_seen"] = ts
        row["last_seen"] = ts
    return rows


def upsert(conn: Connection, table: Table, key: str, rows: list[Row]) -> None:
    """Insert ``rows``, or update every column but ``key`` and ``first_seen`` where ``key``
    exists."""
    statement = _dialect_insert(conn.dialect.name, table)
    changing = [name for name in rows[0] if name not in (key, "first_seen")]
    statement = statement.on_conflict_do_update(
        index_elements=[key], set_={name: statement.excluded[name] for name in changing}
    )
    conn.execute(statement, rows)


def write_records(conn: Connection, records: Sequence[Record]) -> None:
    """Write ``records`` on ``conn`` (the caller owns the transaction)."""
    by_type: dict[type, list[Any]] = defaultdict(list)
    for record in records:
        by_type[type(record)].append(record)
    # Facts first, so a reader never sees a sample of a GPU it does not know.
    if by_type[HostInfo]:
        upsert(conn, hosts, "host", _seen_rows(_last_per(by_type[HostInfo], "host"), HostInfo))
    if by_type[GpuInfo]:
        upsert(conn, gpus, "uuid", _seen_rows(_last_per(by_type[GpuInfo], "uuid"), GpuInfo))
    for cls, plan in _PLANS.items():
        if by_type[cls]:
            if conn.dialect.name == "postgresql":
                _copy_ignoring_duplicates(conn, plan, by_type[cls])
            else:
                _insert_ignoring_duplicates(conn, plan, by_type[cls])


def _last_per(records: list[Any], key: str) -> list[Any]:
    """One record per key (the newest): an upsert must not touch the same row twice."""
    latest: dict[str, Any] = {}
    for record in records:
        latest[getattr(record, key)] = record
    return list(latest.values())


# -- append-only tables --------------------------------------------------------------------


def _all_aware(records: list[Any]) -> bool:
    """Whether every ``ts`` is an aware datetime: the usual case, checked in one fast pass."""
    return all(isinstance(ts, datetime) and ts.tzinfo is not None for ts in map(_TS, records))


def _bound_times(conn: Connection, records: list[Any], sql: str) -> list[Any]:
    """Each ``ts`` bound by :class:`UtcDateTime`'s rule, which refuses naive datetimes; raised
    as SQLAlchemy's own binding would."""
    try:
        return [_UTC.process_bind_param(record.ts, conn.dialect) for record in records]
    except ValueError as exc:
        raise StatementError(str(exc), sql, None, exc) from exc


def _insert_ignoring_duplicates(conn: Connection, plan: _AppendPlan, records: list[Any]) -> None:
    quote = conn.dialect.identifier_preparer.quote
    names = ", ".join(quote(name) for name in plan.columns)
    marks = ", ".join("?" * len(plan.columns))
    sql = f"INSERT INTO {quote(plan.table.name)} ({names}) VALUES ({marks}) ON CONFLICT DO NOTHING"
    if _all_aware(records):  # epoch seconds, as UtcDateTime stores them on SQLite
        rows = list(map(plan.epoch_values, records))
    else:
        at = plan.columns.index("ts")
        times = _bound_times(conn, records, sql)
        rows = [
            (*values[:at], ts, *values[at + 1 :])
            for values, ts in zip(map(plan.values, records), times, strict=True)
        ]
    conn.exec_driver_sql(sql, rows)


def _copy_ignoring_duplicates(conn: Connection, plan: _AppendPlan, records: list[Any]) -> None:
    """COPY straight into the table; if that fails on a duplicate key (a retried flush, a
    replayed spool) or a value COPY cannot parse, go through a staging table instead."""
    quote = conn.dialect.identifier_preparer.quote
    table = quote(plan.table.name)
    columns = ", ".join(quote(name) for name in plan.columns)
    if not _all_aware(records):
        _bound_times(conn, records, f"COPY {table}")  # psycopg sends aware datetimes as is
    rows = list(map(plan.values, records))
    try:
        with conn.begin_nested():  # a savepoint: a failed COPY leaves the transaction usable
            _copy(conn, f"COPY {table} ({columns}) FROM STDIN", rows)
        return
    except (IntegrityError, DataError):
        pass
    stage = quote(f"gpulens_stage_{plan.table.name}")
    conn.exec_driver_sql(_staging_sql(conn, plan, stage))
    _copy(conn, f"COPY {stage} ({columns}) FROM STDIN", rows)
    conn.exec_driver_sql(
        f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {stage} ON CONFLICT DO NOTHING"
    )


def _copy(conn: Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
    driver_connection = conn.connection.driver_connection
    assert driver_connection is not None
    error = conn.dialect.loaded_dbapi.Error
    try:
        with driver_connection.cursor() as cursor, cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)
    except error as exc:
        # Handled as SQLAlchemy handles driver errors: a lost connection is invalidated (not
        # handed back to the pool) and every error is raised as SQLAlchemy's (IntegrityError,
        # OperationalError, ...), so the store reads a lost connection as "unavailable".
        is_lost = conn.dialect.is_disconnect(exc, conn.connection.dbapi_connection, None)
        if is_lost:
            conn.invalidate(exc)
        raise DBAPIError.instance(
            sql, None, exc, error, connection_invalidated=is_lost, dialect=conn.dialect
        ) from exc


def _staging_sql(conn: Connection, plan: _AppendPlan, stage: str) -> str:
    """A session-local table like the target, without its keys; its integer columns are
    ``numeric`` so a float in an integer field is rounded on the way in, as a bound
    parameter is. Kept for the session (IF NOT EXISTS is a catalog lookup), emptied at every
    commit by a truncate (no dead rows: autovacuum never visits temporary tables)."""
    quote = conn.dialect.identifier_preparer.quote
    columns = ", ".join(
        f"{quote(c.name)} "
        f"{'numeric' if isinstance(c.type, Integer) else c.type.compile(dialect=conn.dialect)}"
        for c in plan.table.columns
    )
    return f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ({columns}) ON COMMIT DELETE ROWS"
