"""The tables, in SQLAlchemy Core: the one place the database's shape is written down.

Column lists of the sample and rollup tables are generated from the metric catalogue
(:data:`monitor.core.metrics.METRICS`) so a metric is added in one place; Alembic migrations in
``migrations/versions`` freeze each version of this shape, and a test checks that the two agree.

Time is stored as UTC: ``timestamptz`` on Postgres, float seconds since the epoch on SQLite
(compact, indexable and cheap to bucket). :class:`UtcDateTime` hides the difference: Python
always sees aware UTC datetimes.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator, TypeEngine

from monitor.core.metrics import METRICS, ROLLUP_METRICS, rollup_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime; ``timestamptz`` on Postgres, epoch seconds (REAL) on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Float())
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: gpulens stores UTC-aware times only")
        if dialect.name == "sqlite":
            return value.timestamp()
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            return value.astimezone(timezone.utc)
        return datetime.fromtimestamp(float(value), timezone.utc)


def _metric_type(is_integer: bool) -> TypeEngine[Any]:
    return BigInteger() if is_integer else Float()


def _metric_columns() -> list[Column[Any]]:
    return [Column(spec.name, _metric_type(spec.is_integer)) for spec in METRICS]


def _rollup_columns() -> list[Column[Any]]:
    columns: list[Column[Any]] = []
    for spec in ROLLUP_METRICS:
        for aggregate in spec.aggregates:
            # Means of integer gauges are fractional; only min/max keep the integer type.
            is_integer = spec.is_integer and aggregate in ("min", "max")
            columns.append(Column(rollup_column(spec.name, aggregate), _metric_type(is_integer)))
    return columns


hosts = Table(
    "hosts",
    metadata,
    Column("host", String(255), primary_key=True),
    Column("is_simulated", Boolean, nullable=False),
    Column("driver_version", String(64)),
    Column("nvml_version", String(64)),
    Column("cuda_driver_version", String(64)),
    Column("collector_version", String(64)),
    Column("first_seen", UtcDateTime, nullable=False),
    Column("last_seen", UtcDateTime, nullable=False),
)

gpus = Table(
    "gpus",
    metadata,
    Column("uuid", String(96), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("index", Integer, nullable=False),
    Column("name", String(255), nullable=False),
    Column("is_simulated", Boolean, nullable=False),
    Column("pci_bus_id", String(64)),
    Column("serial", String(64)),
    Column("memory_total_bytes", BigInteger),
    Column("power_limit_watts", Float),
    Column("compute_capability", String(16)),
    Column("driver_version", String(64)),
    Column("cuda_driver_version", String(64)),
    Column("mig_mode", Boolean),
    Column("parent_uuid", String(96)),
    Column("first_seen", UtcDateTime, nullable=False),
    Column("last_seen", UtcDateTime, nullable=False),
    Index(None, "host"),
)

gpu_samples = Table(
    "gpu_samples",
    metadata,
    Column("uuid", String(96), primary_key=True),
    Column("ts", UtcDateTime, primary_key=True),
    Column("host", String(255), nullable=False),
    *_metric_columns(),
    Index(None, "ts"),
)


def _rollup_table(name: str) -> Table:
    return Table(
        name,
        metadata,
        Column("uuid", String(96), primary_key=True),
        Column("ts", UtcDateTime, primary_key=True),  # start of the bucket
        Column("host", String(255), nullable=False),
        Column("sample_count", Integer, nullable=False),
        *_rollup_columns(),
        Index(None, "ts"),
    )


gpu_rollups_1m = _rollup_table("gpu_rollups_1m")
gpu_rollups_1h = _rollup_table("gpu_rollups_1h")

process_samples = Table(
    "process_samples",
    metadata,
    Column("uuid", String(96), primary_key=True),
    Column("ts", UtcDateTime, primary_key=True),
    Column("pid", BigInteger, primary_key=True, autoincrement=False),
    Column("host", String(255), nullable=False),
    Column("name", String(255)),
    Column("used_memory_bytes", BigInteger),
    Column("sm_percent", Float),
    Column("memory_percent", Float),
    Column("process_type", String(16)),
    Column("container_id", String(128)),
    Column("cgroup", Text),
    Column("slurm_job_id", String(64)),
    Index(None, "ts"),
)

events = Table(
    "events",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("ts", UtcDateTime, nullable=False),
    Column("host", String(255), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("uuid", String(96)),
    Column("value", Float),
    Column("detail", Text),
    Index(None, "ts"),
    Index(None, "uuid", "ts"),
)

collectors = Table(
    "collectors",
    metadata,
    Column("host", String(255), primary_key=True),
    Column("pid", Integer, nullable=False),
    Column("state", String(16), nullable=False),  # running / stopped
    Column("is_simulated", Boolean, nullable=False),
    Column("version", String(64)),
    Column("interval_seconds", Float, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("heartbeat_at", UtcDateTime, nullable=False),
    Column("stale_since", UtcDateTime),
    Column("collected", BigInteger, nullable=False),
    Column("written", BigInteger, nullable=False),
    Column("dropped", BigInteger, nullable=False),
    Column("spooled", BigInteger, nullable=False),
    Column("pending", BigInteger, nullable=False),
    Column("poll_errors", BigInteger, nullable=False),
)

ROLLUP_TABLES: dict[str, Table] = {"1m": gpu_rollups_1m, "1h": gpu_rollups_1h}


# -- training runs (profiler_hooks) ---------------------------------------------------------
# Rows of :mod:`monitor.core.run_records` and of the trace analysis; written and read in
# :mod:`monitor.store.runs`. No foreign keys: steps may arrive before their run's row (a hook's
# buffer, an import), and SQLite would not enforce them anyway, so both backends behave alike.

JSON_DOCUMENT: TypeEngine[Any] = JSON(none_as_null=True).with_variant(
    JSONB(none_as_null=True), "postgresql"
)
"""A JSON value (``jsonb`` on Postgres, JSON text on SQLite); Python ``None`` is SQL NULL."""

BREAKDOWN_COLUMNS: tuple[str, ...] = (
    "kernel_us",
    "memcpy_us",
    "memset_us",
    "communication_us",
    "runtime_us",
    "dataloader_us",
    "cpu_exec_us",
    "other_us",
)
"""One column per step breakdown category, in :data:`CATEGORIES` order (checked in runs.py)."""

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("host", String(255), nullable=False),
    Column("gpu_uuids", JSON_DOCUMENT, nullable=False),  # a list of GPU UUIDs
    Column("rank", Integer, nullable=False),
    Column("world_size", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("ended_at", UtcDateTime),
    Column("config", JSON_DOCUMENT, nullable=False),
    Column("versions", JSON_DOCUMENT, nullable=False),
    Column("source", String(16), nullable=False),
    # When the stored findings were computed (since revision 0004); NULL: never, or evidence
    # arrived since (monitor.store.findings says when findings are stale).
    Column("findings_computed_at", UtcDateTime),
    Index(None, "name"),
    Index(None, "host"),
    Index(None, "started_at"),
)

run_steps = Table(
    "run_steps",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("step", BigInteger, primary_key=True, autoincrement=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("duration_us", Float, nullable=False),
    Column("dataloader_wait_us", Float),
    Column("cuda_allocated_bytes", BigInteger),
    Column("cuda_reserved_bytes", BigInteger),
    Column("cuda_peak_bytes", BigInteger),
    Column("samples", BigInteger),
    Column("tokens", BigInteger),
    Column("is_profiled", Boolean, nullable=False),
    Column("pre_forward_us", Float),  # since revision 0003
    Index(None, "run_id", "started_at"),
)

profiler_windows = Table(
    "profiler_windows",
    metadata,
    Column("window_id", String(64), primary_key=True),
    Column("run_id", String(32), nullable=False),
    Column("first_step", BigInteger, nullable=False),
    Column("last_step", BigInteger, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("trace_path", Text),
    Column("status", String(16), nullable=False),
    Column("error", Text),
    Column("trigger", String(16), nullable=False),
    Column("summary", JSON_DOCUMENT),  # the analysis without steps and kernels, per rank
    Column("analyzed_at", UtcDateTime),
    Index(None, "run_id", "started_at"),
)

step_breakdowns = Table(
    "step_breakdowns",
    metadata,
    Column("window_id", String(64), nullable=False),
    Column("rank", Integer, nullable=False),
    Column("step", BigInteger, nullable=False, autoincrement=False),  # -1: the whole trace
    Column("run_id", String(32), nullable=False),
    Column("start_us", Float, nullable=False),
    Column("duration_us", Float, nullable=False),
    *(Column(name, Float, nullable=False) for name in BREAKDOWN_COLUMNS),
    Column("gpu_busy_us", Float, nullable=False),
    PrimaryKeyConstraint("window_id", "rank", "step"),
    Index(None, "run_id"),
)

kernel_stats = Table(
    "kernel_stats",
    metadata,
    Column("window_id", String(64), nullable=False),
    Column("rank", Integer, nullable=False),
    # Kernel names run to kilobytes (C++ templates), past what a btree entry may hold on
    # Postgres: the key is the SHA-1 (hex) of the name, the name itself is plain text.
    Column("name_sha1", String(40), nullable=False),
    Column("run_id", String(32), nullable=False),
    Column("name", Text, nullable=False),
    Column("category", String(16), nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("total_us", Float, nullable=False),
    Column("mean_us", Float, nullable=False),
    Column("min_us", Float, nullable=False),
    Column("max_us", Float, nullable=False),
    Column("tensor_core", Boolean, nullable=False),
    PrimaryKeyConstraint("window_id", "rank", "name_sha1"),
    Index(None, "run_id"),
)


# -- advisor findings ------------------------------------------------------------------------
# Written and read in :mod:`monitor.store.findings`. A finding of a run has its ``run_id``; a
# fleet finding (idle GPUs, a host's throttling) has none. The whole finding is ``document``
# (``finding_to_json``); the other columns are what queries filter and rank on.

findings = Table(
    "findings",
    metadata,
    Column("finding_id", String(40), primary_key=True),  # SHA-1 hex, see findings.finding_id
    Column("run_id", String(32)),
    Column("rank", Integer),
    Column("host", String(255)),
    Column("gpu_uuid", String(96)),
    Column("rule", String(64), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("title", String(500), nullable=False),
    Column("time_fraction", Float, nullable=False),
    Column("wasted_gpu_hours", Float),
    Column("status", String(16), nullable=False),  # open / resolved
    Column("document", JSON_DOCUMENT, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index(None, "run_id"),
    Index(None, "status", "wasted_gpu_hours"),
)
