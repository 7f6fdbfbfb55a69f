"""Training run tables: runs, steps, profiler windows, step breakdowns, kernel statistics.

Times are timestamptz on Postgres and epoch seconds (REAL) on SQLite, as
monitor.store.schema.UtcDateTime maps them; JSON documents are jsonb on Postgres and JSON text
on SQLite. Frozen here so later schema edits never change what this revision creates.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 10:12:05.118402

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

TIMESTAMP = sa.DateTime(timezone=True).with_variant(sa.Float(), "sqlite")
JSON_DOCUMENT = sa.JSON(none_as_null=True).with_variant(
    postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
)
BREAKDOWN_COLUMNS = (
    "kernel_us",
    "memcpy_us",
    "memset_us",
    "communication_us",
    "runtime_us",
    "dataloader_us",
    "cpu_exec_us",
    "other_us",
)


# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("gpu_uuids", JSON_DOCUMENT, nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("world_size", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("ended_at", TIMESTAMP, nullable=True),
        sa.Column("config", JSON_DOCUMENT, nullable=False),
        sa.Column("versions", JSON_DOCUMENT, nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_runs")),
    )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_runs_name"), ["name"], unique=False)
        batch_op.create_index(batch_op.f("ix_runs_host"), ["host"], unique=False)
        batch_op.create_index(batch_op.f("ix_runs_started_at"), ["started_at"], unique=False)

    op.create_table(
        "run_steps",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("step", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("duration_us", sa.Float(), nullable=False),
        sa.Column("dataloader_wait_us", sa.Float(), nullable=True),
        sa.Column("cuda_allocated_bytes", sa.BigInteger(), nullable=True),
        sa.Column("cuda_reserved_bytes", sa.BigInteger(), nullable=True),
        sa.Column("cuda_peak_bytes", sa.BigInteger(), nullable=True),
        sa.Column("samples", sa.BigInteger(), nullable=True),
        sa.Column("tokens", sa.BigInteger(), nullable=True),
        sa.Column("is_profiled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "step", name=op.f("pk_run_steps")),
    )
    with op.batch_alter_table("run_steps", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_run_steps_run_id_started_at"), ["run_id", "started_at"], unique=False
        )

    op.create_table(
        "profiler_windows",
        sa.Column("window_id", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("first_step", sa.BigInteger(), nullable=False),
        sa.Column("last_step", sa.BigInteger(), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("trace_path", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("summary", JSON_DOCUMENT, nullable=True),
        sa.Column("analysed_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("window_id", name=op.f("pk_profiler_windows")),
    )
    with op.batch_alter_table("profiler_windows", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_profiler_windows_run_id_started_at"),
            ["run_id", "started_at"],
            unique=False,
        )

    op.create_table(
        "step_breakdowns",
        sa.Column("window_id", sa.String(length=64), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("step", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("start_us", sa.Float(), nullable=False),
        sa.Column("duration_us", sa.Float(), nullable=False),
        *(sa.Column(name, sa.Float(), nullable=False) for name in BREAKDOWN_COLUMNS),
        sa.Column("gpu_busy_us", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("window_id", "rank", "step", name=op.f("pk_step_breakdowns")),
    )
    with op.batch_alter_table("step_breakdowns", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_step_breakdowns_run_id"), ["run_id"], unique=False)

    op.create_table(
        "kernel_stats",
        sa.Column("window_id", sa.String(length=64), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("name_sha1", sa.String(length=40), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("total_us", sa.Float(), nullable=False),
        sa.Column("mean_us", sa.Float(), nullable=False),
        sa.Column("min_us", sa.Float(), nullable=False),
        sa.Column("max_us", sa.Float(), nullable=False),
        sa.Column("tensor_core", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("window_id", "rank", "name_sha1", name=op.f("pk_kernel_stats")),
    )
    with op.batch_alter_table("kernel_stats", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kernel_stats_run_id"), ["run_id"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    for table, indexes in (
        ("kernel_stats", ["ix_kernel_stats_run_id"]),
        ("step_breakdowns", ["ix_step_breakdowns_run_id"]),
        ("profiler_windows", ["ix_profiler_windows_run_id_started_at"]),
        ("run_steps", ["ix_run_steps_run_id_started_at"]),
        ("runs", ["ix_runs_started_at", "ix_runs_host", "ix_runs_name"]),
    ):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for index in indexes:
                batch_op.drop_index(batch_op.f(index))
        op.drop_table(table)
