"""The store: the one object the collector, the CLI and the dashboard talk to.

``Store(engine)`` takes its engine as an argument (tests hand it a real SQLite file or a real
Postgres database); :meth:`Store.open` builds the production engine from a URL.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from monitor.core.advisor.findings import Finding
from monitor.core.analysis.results import KernelStat, TraceAnalysis
from monitor.core.errors import SchemaOutOfDate, StoreError, StoreFileReplaced
from monitor.core.gpu_records import (
    CollectorStatus,
    Event,
    GpuInfo,
    GpuSample,
    LatestGpu,
    ProcessSample,
    Record,
)
from monitor.core.resolution import DEFAULT_MAX_POINTS, RetentionPolicy, Series
from monitor.core.run_records import AnalyzedRun, RunInfo, RunStatus, StepRecord, WindowRecord
from monitor.core.run_views import RunSummary, StepBreakdownRow, StoredFinding
from monitor.store import findings as finding_sql
from monitor.store import maintenance, migrate, queries
from monitor.store import runs as run_sql
from monitor.store import windows as window_sql
from monitor.store.engine import (
    create_store_engine,
    describe_url,
    file_identity,
    sqlite_file,
    translate_errors,
)
from monitor.store.findings import FindingsState
from monitor.store.schema import collectors
from monitor.store.writer import upsert, write_records


class Store:
    """Telemetry storage on SQLite or Postgres (SQLAlchemy Core)."""

    def __init__(self, engine: Engine, *, retention: RetentionPolicy | None = None) -> None:
        self.engine = engine
        self.retention = retention or RetentionPolicy()
        self.file = sqlite_file(engine.url)
        """The SQLite file (``None`` for Postgres and in-memory SQLite)."""
        # Which file that was when the store opened it (None: not created yet, see write).
        self._identity = None if self.file is None else file_identity(self.file)

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
        database cannot be reached (nothing is written then), and ``StoreFileReplaced`` when
        the SQLite file was deleted or replaced (they went to a file nobody will read)."""
        if not records:
            return
        with translate_errors(self.engine), self.engine.begin() as conn:
            write_records(conn, records)
        self._check_file()

    def _check_file(self) -> None:
        """After a commit (one ``stat``): the file written is still the one at the path, so
        what the commit wrote is where every reader looks."""
        if self.file is None:
            return
        now = file_identity(self.file)
        if self._identity is None:
            self._identity = now  # the first connection created it
        if now is None or now != self._identity:
            raise StoreFileReplaced(
                f"the SQLite file {self.file} was deleted or replaced while it was open"
            )

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

    def ping(self) -> None:
        """Raise ``StoreUnavailable`` unless the database answers (the dashboard's banner)."""
        with translate_errors(self.engine), self.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    def collectors(self) -> list[CollectorStatus]:
        with translate_errors(self.engine), self.engine.connect() as conn:
            return queries.list_collectors(conn)

    def samples(
        self, uuid: str, start: datetime, end: datetime, *, limit: int = 50_000
    ) -> list[GpuSample]:
        """Raw samples of GPU ``uuid`` with ``start <= ts < end`` in time order; where more
        match, ``limit`` of them spread evenly over the range."""
        with translate_errors(self.engine), self.engine.connect() as conn:
            return queries.list_samples(conn, uuid, start, end, limit=limit)

    def process_spans(self, uuid: str, start: datetime, end: datetime) -> list[ProcessSample]:
        """One sample per pid seen on GPU ``uuid`` in ``[start, end)``: its peak-memory sample
        with ``ts`` set to the last time the pid was seen; most memory first."""
        with translate_errors(self.engine), self.engine.connect() as conn:
            return queries.process_spans(conn, uuid, start, end)

    # -- training runs (SQL in monitor.store.runs) ------------------------------------------
    # Writes raise ``StoreUnavailable`` when the database cannot be reached and ``ValueError``
    # for an unknown run or window id, or a string longer than its column.

    def start_run(self, info: RunInfo) -> None:
        """Insert the run, or replace every field of the run with the same ``run_id``."""
        with translate_errors(self.engine), self.engine.begin() as conn:
            run_sql.start_run(conn, info)

    def end_run(self, run_id: str, ended_at: datetime, status: RunStatus) -> None:
        with translate_errors(self.engine), self.engine.begin() as conn:
            run_sql.end_run(conn, run_id, ended_at, status)

    def write_steps(self, steps: Sequence[StepRecord]) -> int:
        """Upsert steps on ``(run_id, step)`` in one statement (a replayed batch never doubles
        rows); returns the number of distinct steps written."""
        with translate_errors(self.engine), self.engine.begin() as conn:
            return run_sql.write_steps(conn, steps)

    def save_window(self, window: WindowRecord) -> None:
        """Insert the profiler window, or replace its fields (not its analysis)."""
        with translate_errors(self.engine), self.engine.begin() as conn:
            window_sql.save_window(conn, window)

    def save_window_analysis(
        self, window_id: str, analysis: TraceAnalysis, *, analyzed_at: datetime | None = None
    ) -> None:
        """In one transaction: replace the window's step breakdowns and kernel statistics,
        store the summary and mark it ``analyzed`` (at ``analyzed_at``, default now)."""
        when = analyzed_at or datetime.now(timezone.utc)
        with translate_errors(self.engine), self.engine.begin() as conn:
            window_sql.save_window_analysis(conn, window_id, analysis, when)
            finding_sql.forget_window_findings(conn, window_id)

    def save_analyzed_runs(self, analyzed: Sequence[AnalyzedRun], *, analyzed_at: datetime) -> None:
        """In one transaction, every run with its steps, its window and the window's analysis
        (marked analyzed at ``analyzed_at``): all of them are stored or none. Raises
        :class:`StoreError` (nothing stored) when the database refuses a row."""
        try:
            with translate_errors(self.engine), self.engine.begin() as conn:
                for item in analyzed:
                    run_sql.start_run(conn, item.info)
                    run_sql.write_steps(conn, item.steps)
                    window_sql.save_window(conn, item.window)
                    window_id = item.window.window_id
                    window_sql.save_window_analysis(conn, window_id, item.analysis, analyzed_at)
                    finding_sql.forget_window_findings(conn, window_id)
        except DBAPIError as exc:  # a constraint, trigger or value the database refuses
            reason = (str(exc.orig).strip().splitlines() or [type(exc.orig).__name__])[0]
            raise StoreError(
                f"{describe_url(self.engine.url)} refused the runs ({reason}); nothing was stored"
            ) from exc

    def fail_window(self, window_id: str, error: str) -> None:
        with translate_errors(self.engine), self.engine.begin() as conn:
            window_sql.fail_window(conn, window_id, error)

    def runs(
        self,
        *,
        name_like: str | None = None,
        host: str | None = None,
        status: str | None = None,
        limit: int = 500,
    ) -> list[RunSummary]:
        """Runs newest first with step and window figures; ``name_like`` is a case-insensitive
        LIKE pattern, matched anywhere in the name when it holds no ``%``."""
        with translate_errors(self.engine), self.engine.connect() as conn:
            return run_sql.list_runs(
                conn, name_like=name_like, host=host, status=status, limit=limit
            )

    def run(self, ref: str) -> RunInfo | None:
        """The run with id ``ref``, else the newest run named ``ref``."""
        with translate_errors(self.engine), self.engine.connect() as conn:
            return run_sql.find_run(conn, ref)

    def steps(
        self, run_id: str, *, first_step: int | None = None, last_step: int | None = None
    ) -> list[StepRecord]:
        with translate_errors(self.engine), self.engine.connect() as conn:
            return run_sql.list_steps(conn, run_id, first_step=first_step, last_step=last_step)

    def windows(self, run_id: str) -> list[WindowRecord]:
        with translate_errors(self.engine), self.engine.connect() as conn:
            return window_sql.list_windows(conn, run_id)

    def window_summary(self, window_id: str) -> dict[str, Any] | None:
        with translate_errors(self.engine), self.engine.connect() as conn:
            return window_sql.window_summary(conn, window_id)

    def step_breakdowns(
        self, run_id: str, *, window_id: str | None = None
    ) -> list[StepBreakdownRow]:
        with translate_errors(self.engine), self.engine.connect() as conn:
            return window_sql.list_step_breakdowns(conn, run_id, window_id=window_id)

    def kernels(
        self, run_id: str, *, window_id: str | None = None, limit: int = 200
    ) -> list[KernelStat]:
        """Kernels summed over windows and ranks by name, most total time first."""
        with translate_errors(self.engine), self.engine.connect() as conn:
            return window_sql.list_kernels(conn, run_id, window_id=window_id, limit=limit)

    def runs_on_gpu(self, uuid: str, start: datetime, end: datetime) -> list[RunInfo]:
        """Runs listing GPU ``uuid`` that overlap ``[start, end)`` (no ``ended_at``: running)."""
        with translate_errors(self.engine), self.engine.connect() as conn:
            return run_sql.runs_on_gpu(conn, uuid, start, end)

    # -- advisor findings (SQL in monitor.store.findings) -------------------------------------

    def save_findings(
        self,
        run_id: str | None,
        findings: Sequence[Finding],
        *,
        at: datetime,
        host: str | None = None,
    ) -> None:
        """In one transaction, replace every finding of run ``run_id`` (``None``: every fleet
        finding of ``host``, or of all hosts when ``host`` is ``None``) with ``findings``.

        Saved findings are ``open`` and updated ``at``; one saved again (same run, rank, rule,
        GPU and place among its likes) keeps its id and ``created_at``. A run's findings count
        as computed ``at`` (:meth:`findings_state`). NaN and infinities in
        the JSON document are stored as null. Raises ``ValueError`` for a string longer than
        its column or a finding whose scope names another run or host.
        """
        with translate_errors(self.engine), self.engine.begin() as conn:
            finding_sql.save_findings(conn, run_id, findings, at=at, host=host)

    def findings(
        self,
        *,
        run_id: str | None = None,
        status: str | None = "open",
        min_severity: str | None = None,
        limit: int = 500,
    ) -> list[StoredFinding]:
        """With ``run_id``: that run's findings, critical first, then the larger share of step
        time. Without: every finding (runs and fleet) by wasted GPU hours (unknown last), then
        severity and share of step time. ``status=None`` and ``min_severity=None`` filter
        nothing."""
        with translate_errors(self.engine), self.engine.connect() as conn:
            return finding_sql.list_findings(
                conn, run_id=run_id, status=status, min_severity=min_severity, limit=limit
            )

    def findings_state(self, run_id: str) -> FindingsState | None:
        """When run ``run_id``'s findings were computed and its newest evidence arrived
        (``None`` for an unknown run); ``.is_stale`` says whether to compute them again."""
        with translate_errors(self.engine), self.engine.connect() as conn:
            return finding_sql.findings_states(conn, [run_id]).get(run_id)

    def stale_runs(self, *, limit: int = 50) -> list[str]:
        """Ids of the ended runs, among the ``limit`` newest, whose findings are stale."""
        with translate_errors(self.engine), self.engine.connect() as conn:
            return finding_sql.stale_run_ids(conn, limit=limit)


__all__ = ["FindingsState", "LatestGpu", "SchemaOutOfDate", "Store"]
