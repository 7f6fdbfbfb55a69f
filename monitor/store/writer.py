"""Writing records: one transaction per flush, batched, duplicate-safe.

Samples, processes and events are inserted with "on conflict do nothing" on their natural
primary keys, so a retried flush or a replayed spool never stores a row twice. Hosts and GPUs
are upserted (their facts may change, e.g. after a driver update).

The append-only tables take thousands of rows per flush, so they skip SQLAlchemy's per-row
parameter building (``bench/ingest.py`` measured it at about 4/5 of the write time):

- SQLite: one precompiled ``INSERT OR IGNORE`` run by the driver's ``executemany`` with tuples
  in column order; times become epoch seconds by :class:`UtcDateTime`'s own rule.
- Postgres: ``COPY`` into a session-local staging table (created once per connection, emptied
  at every commit), then one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from sqlalchemy import Connection, Integer, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, StatementError

from monitor.records import (
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


@dataclass(frozen=True, slots=True)
class _AppendPlan:
    """How one record type lands in its append-only table: columns, in the table's order."""

    table: Table
    columns: tuple[str, ...]
    values: attrgetter[Any]  # record -> tuple of column values
    time_positions: tuple[int, ...]  # columns of type UtcDateTime


def _append_plan(cls: type, table: Table) -> _AppendPlan:
    columns = tuple(column.name for column in table.columns)
    if set(columns) != set(_FIELDS[cls]):
        raise AssertionError(f"{cls.__name__} fields do not match the {table.name} columns")
    times = tuple(i for i, c in enumerate(table.columns) if isinstance(c.type, UtcDateTime))
    return _AppendPlan(table, columns, attrgetter(*columns), times)


_PLANS: dict[type, _AppendPlan] = {cls: _append_plan(cls, t) for cls, t in _APPEND_ONLY.items()}


def dialect_insert(dialect: str, table: Table) -> Any:
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


def _upsert(conn: Connection, table: Table, key: str, rows: list[Row]) -> None:
    statement = dialect_insert(conn.dialect.name, table)
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
        _upsert(conn, hosts, "host", _seen_rows(_last_per(by_type[HostInfo], "host"), HostInfo))
    if by_type[GpuInfo]:
        _upsert(conn, gpus, "uuid", _seen_rows(_last_per(by_type[GpuInfo], "uuid"), GpuInfo))
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


def _tuples(conn: Connection, plan: _AppendPlan, records: list[Any], sql: str) -> list[Any]:
    """Column values per record; times bound by :class:`UtcDateTime`'s rule (aware UTC only)."""
    rows: list[Any] = [plan.values(record) for record in records]
    dialect = conn.dialect
    try:
        for i in plan.time_positions:
            rows = [(*r[:i], _UTC.process_bind_param(r[i], dialect), *r[i + 1 :]) for r in rows]
    except ValueError as exc:  # a naive datetime: refused as SQLAlchemy's binding would
        raise StatementError(str(exc), sql, None, exc) from exc
    return rows


def _quoted(conn: Connection, names: Iterable[str]) -> str:
    quote = conn.dialect.identifier_preparer.quote
    return ", ".join(quote(name) for name in names)


def _insert_ignoring_duplicates(conn: Connection, plan: _AppendPlan, records: list[Any]) -> None:
    marks = ", ".join("?" * len(plan.columns))
    table = conn.dialect.identifier_preparer.quote(plan.table.name)
    sql = f"INSERT OR IGNORE INTO {table} ({_quoted(conn, plan.columns)}) VALUES ({marks})"
    conn.exec_driver_sql(sql, _tuples(conn, plan, records, sql))


def _staging_sql(conn: Connection, plan: _AppendPlan, stage: str) -> str:
    """The staging table: like the target, but integer columns are ``numeric`` so a float
    in an integer field is rounded on the way in, as a bound parameter would be."""
    quote = conn.dialect.identifier_preparer.quote
    columns = ", ".join(
        f"{quote(c.name)} "
        f"{'numeric' if isinstance(c.type, Integer) else c.type.compile(dialect=conn.dialect)}"
        for c in plan.table.columns
    )
    return f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ({columns}) ON COMMIT DELETE ROWS"


def _copy_ignoring_duplicates(conn: Connection, plan: _AppendPlan, records: list[Any]) -> None:
    quote = conn.dialect.identifier_preparer.quote
    stage = quote(f"gpulens_stage_{plan.table.name}")
    columns = _quoted(conn, plan.columns)
    # A temporary table lives as long as the session: IF NOT EXISTS makes this a catalog
    # lookup after the first flush on a pooled connection, and ON COMMIT DELETE ROWS empties
    # it cheaply (a truncate, not dead rows: autovacuum never visits temporary tables).
    conn.exec_driver_sql(_staging_sql(conn, plan, stage))
    copy_sql = f"COPY {stage} ({columns}) FROM STDIN"
    rows = _tuples(conn, plan, records, copy_sql)
    driver_connection = conn.connection.driver_connection
    assert driver_connection is not None
    try:
        with driver_connection.cursor() as cursor, cursor.copy(copy_sql) as copy:
            for row in rows:
                copy.write_row(row)
    except conn.dialect.loaded_dbapi.Error as exc:
        # Raised as SQLAlchemy would (OperationalError and so on), so the store's
        # "database unavailable" handling sees a lost connection during COPY too.
        raise DBAPIError.instance(
            copy_sql, None, exc, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect
        ) from exc
    conn.exec_driver_sql(
        f"INSERT INTO {quote(plan.table.name)} ({columns}) SELECT {columns} FROM {stage} "
        "ON CONFLICT DO NOTHING"
    )
