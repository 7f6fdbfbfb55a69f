"""Writing records: one transaction per flush, batched, duplicate-safe.

Samples, processes and events are inserted with "on conflict do nothing" on their natural
primary keys, so a retried flush or a replayed spool never stores a row twice. Hosts and GPUs
are upserted (their facts may change, e.g. after a driver update).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite

from monitor.records import (
    Event,
    GpuInfo,
    GpuSample,
    HostInfo,
    ProcessSample,
    Record,
)
from monitor.store.schema import events, gpu_samples, gpus, hosts, process_samples

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
    for cls, table in _APPEND_ONLY.items():
        if by_type[cls]:
            statement = dialect_insert(conn.dialect.name, table).on_conflict_do_nothing()
            conn.execute(statement, _rows(by_type[cls], cls))


def _last_per(records: list[Any], key: str) -> list[Any]:
    """One record per key (the newest): an upsert must not touch the same row twice."""
    latest: dict[str, Any] = {}
    for record in records:
        latest[getattr(record, key)] = record
    return list(latest.values())
