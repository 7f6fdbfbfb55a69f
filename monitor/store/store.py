"""The store: the one object the collector, the CLI and the dashboard talk to.

``Store(engine)`` takes its engine as an argument (tests hand it a real SQLite file or a real
Postgres database); :meth:`Store.open` builds the production engine from a URL.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Engine

from monitor.errors import SchemaOutOfDate
from monitor.records import (
    CollectorStatus,
    Event,
    GpuInfo,
    LatestGpu,
    ProcessSample,
    Record,
)
from monitor.resolution import DEFAULT_MAX_POINTS, RetentionPolicy, Series
from monitor.store import maintenance, migrate, queries
from monitor.store.engine import create_store_engine, describe_url, translate_errors
from monitor.store.schema import collectors
from monitor.store.writer import upsert, write_records


class Store:
    """Telemetry storage on SQLite or Postgres (SQLAlchemy Core)."""

    def __init__(self, engine: Engine, *, retention: RetentionPolicy | None = None) -> None:
        self.engine = engine
        self.retention = retention or RetentionPolicy()

    @classmethod
    def open(
        cls, url: str, *, upgrade: bool = True, retention: RetentionPolicy | None = None
    ) -> Store:
        """Open the database at ``url``; upgrade its schema, or (``upgrade=False``) raise
        :class:`SchemaOutOfDate` with the command to run."""
        engine = create_store_engine(url)
        try:
            if upgrade:
                migrate.upgrade(engine)
            else:
                migrate.check(engine)
        except Exception:
            engine.dispose()
            raise
        return cls(engine, retention=retention)

    @property
    def url(self) -> str:
        """The database URL with any password hidden."""
        return describe_url(self.engine.url)

    def close(self) -> None:
        self.engine.dispose()

    # -- writing --------------------------------------------------------------------------

    def write(self, records: Sequence[Record]) -> None:
        """Write ``records`` in one transaction; raises ``StoreUnavailable`` when the
        database cannot be reached (nothing is written then)."""
        if not records:
            return
        with translate_errors(self.engine), self.engine.begin() as conn:
            write_records(conn, records)

    def heartbeat(self, status: CollectorStatus) -> None:
        """Record a collector's health (one row per host, replaced each time)."""
        with translate_errors(self.engine), self.engine.begin() as conn:
            upsert(conn, collectors, "host", [dataclasses.asdict(status)])

    def rollup(self, host: str, since: datetime, until: datetime) -> int:
        with translate_errors(self.engine):
            return maintenance.rollup(self.engine, host, since, until)

    def apply_retention(self, now: datetime) -> dict[str, int]:
        with translate_errors(self.engine):
            return maintenance.apply_retention(self.engine, self.retention, now)

    # -- reading --------------------------------------------------------------------------

    def gpus(self, host: str | None = None) -> list[GpuInfo]:
        with translate_errors(self.engine), self.engine.connect() as conn:
            return queries.list_gpus(conn, host)

    def latest(self, host: str | None = None) -> list[LatestGpu]:
        with translate_errors(self.engine), self.engine.connect() as conn:
            return queries.latest(conn, host)

    def series(
        self,
        uuid: str,
        metric: str,
        start: datetime,
        end: datetime,
        *,
        now: datetime,
        max_points: int = DEFAULT_MAX_POINTS,
    ) -> Series:
        with translate_errors(self.engine), self.engine.connect() as conn:
            return queries.series(
                conn,
                uuid,
                metric,
                start,
                end,
                now=now,
                retention=self.retention,
                max_points=max_points,
            )

    def events(
        self,
        start: datetime,
        end: datetime,
        *,
        uuid: str | None = None,
        kinds: Sequence[str] | None = None,
    ) -> list[Event]:
        with translate_errors(self.engine), self.engine.connect() as conn:
            return queries.list_events(conn, start, end, uuid=uuid, kinds=kinds)

    def processes_at(self, uuid: str, at: datetime) -> list[ProcessSample]:
        with translate_errors(self.engine), self.engine.connect() as conn:
            return queries.processes_at(conn, uuid, at)

    def collectors(self) -> list[CollectorStatus]:
        with translate_errors(self.engine), self.engine.connect() as conn:
            return queries.list_collectors(conn)


__all__ = ["LatestGpu", "SchemaOutOfDate", "Store"]
