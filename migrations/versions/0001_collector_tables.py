"""Collector tables: hosts, GPUs, raw samples, rollups, processes, events, collectors.

Times are timestamptz on Postgres and epoch seconds (REAL) on SQLite, as
monitor.store.schema.UtcDateTime maps them; frozen here so later schema edits never change
what this revision creates.

Revision ID: 0001
Revises:
Create Date: 2026-11-22 14:57:38.280640

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

TIMESTAMP = sa.DateTime(timezone=True).with_variant(sa.Float(), "sqlite")


# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "collectors",
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("is_simulated", sa.Boolean(), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=True),
        sa.Column("interval_seconds", sa.Float(), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("heartbeat_at", TIMESTAMP, nullable=False),
        sa.Column("stale_since", TIMESTAMP, nullable=True),
        sa.Column("collected", sa.BigInteger(), nullable=False),
        sa.Column("written", sa.BigInteger(), nullable=False),
        sa.Column("dropped", sa.BigInteger(), nullable=False),
        sa.Column("spooled", sa.BigInteger(), nullable=False),
        sa.Column("pending", sa.BigInteger(), nullable=False),
        sa.Column("poll_errors", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("host", name=op.f("pk_collectors")),
    )
    op.create_table(
        "events",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("ts", TIMESTAMP, nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("uuid", sa.String(length=96), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_events")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_events_ts"), ["ts"], unique=False)
        batch_op.create_index(batch_op.f("ix_events_uuid_ts"), ["uuid", "ts"], unique=False)

    op.create_table(
        "gpu_rollups_1h",
        sa.Column("uuid", sa.String(length=96), nullable=False),
        sa.Column("ts", TIMESTAMP, nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("sample_count", sa.Integer(), nullable=False),
        sa.Column("utilization_gpu_percent_min", sa.Float(), nullable=True),
        sa.Column("utilization_gpu_percent_mean", sa.Float(), nullable=True),
        sa.Column("utilization_gpu_percent_max", sa.Float(), nullable=True),
        sa.Column("utilization_gpu_max_percent_min", sa.Float(), nullable=True),
        sa.Column("utilization_gpu_max_percent_mean", sa.Float(), nullable=True),
        sa.Column("utilization_gpu_max_percent_max", sa.Float(), nullable=True),
        sa.Column("utilization_memory_percent_min", sa.Float(), nullable=True),
        sa.Column("utilization_memory_percent_mean", sa.Float(), nullable=True),
        sa.Column("utilization_memory_percent_max", sa.Float(), nullable=True),
        sa.Column("utilization_memory_max_percent_min", sa.Float(), nullable=True),
        sa.Column("utilization_memory_max_percent_mean", sa.Float(), nullable=True),
        sa.Column("utilization_memory_max_percent_max", sa.Float(), nullable=True),
        sa.Column("memory_used_bytes_min", sa.BigInteger(), nullable=True),
        sa.Column("memory_used_bytes_mean", sa.Float(), nullable=True),
        sa.Column("memory_used_bytes_max", sa.BigInteger(), nullable=True),
        sa.Column("memory_free_bytes_min", sa.BigInteger(), nullable=True),
        sa.Column("memory_free_bytes_mean", sa.Float(), nullable=True),
        sa.Column("memory_free_bytes_max", sa.BigInteger(), nullable=True),
        sa.Column("memory_reserved_bytes_min", sa.BigInteger(), nullable=True),
        sa.Column("memory_reserved_bytes_mean", sa.Float(), nullable=True),
        sa.Column("memory_reserved_bytes_max", sa.BigInteger(), nullable=True),
        sa.Column("memory_total_bytes_min", sa.BigInteger(), nullable=True),
        sa.Column("memory_total_bytes_mean", sa.Float(), nullable=True),
        sa.Column("memory_total_bytes_max", sa.BigInteger(), nullable=True),
        sa.Column("power_watts_min", sa.Float(), nullable=True),
        sa.Column("power_watts_mean", sa.Float(), nullable=True),
        sa.Column("power_watts_max", sa.Float(), nullable=True),
        sa.Column("power_max_watts_min", sa.Float(), nullable=True),
        sa.Column("power_max_watts_mean", sa.Float(), nullable=True),
        sa.Column("power_max_watts_max", sa.Float(), nullable=True),
        sa.Column("power_instant_watts_min", sa.Float(), nullable=True),
        sa.Column("power_instant_watts_mean", sa.Float(), nullable=True),
        sa.Column("power_instant_watts_max", sa.Float(), nullable=True),
        sa.Column("power_limit_watts_min", sa.Float(), nullable=True),
        sa.Column("power_limit_watts_mean", sa.Float(), nullable=True),
        sa.Column("power_limit_watts_max", sa.Float(), nullable=True),
        sa.Column("energy_joules_max", sa.Float(), nullable=True),
        sa.Column("energy_used_joules_sum", sa.Float(), nullable=True),
        sa.Column("temperature_celsius_min", sa.Float(), nullable=True),
        sa.Column("temperature_celsius_mean", sa.Float(), nullable=True),
        sa.Column("temperature_celsius_max", sa.Float(), nullable=True),
        sa.Column("temperature_memory_celsius_min", sa.Float(), nullable=True),
        sa.Column("temperature_memory_celsius_mean", sa.Float(), nullable=True),
        sa.Column("temperature_memory_celsius_max", sa.Float(), nullable=True),
        sa.Column("sm_clock_mhz_min", sa.Float(), nullable=True),
        sa.Column("sm_clock_mhz_mean", sa.Float(), nullable=True),
        sa.Column("sm_clock_mhz_max", sa.Float(), nullable=True),
        sa.Column("memory_clock_mhz_min", sa.Float(), nullable=True),
        sa.Column("memory_clock_mhz_mean", sa.Float(), nullable=True),
        sa.Column("memory_clock_mhz_max", sa.Float(), nullable=True),
        sa.Column("graphics_clock_mhz_min", sa.Float(), nullable=True),
        sa.Column("graphics_clock_mhz_mean", sa.Float(), nullable=True),
        sa.Column("graphics_clock_mhz_max", sa.Float(), nullable=True),
        sa.Column("fan_speed_percent_min", sa.Float(), nullable=True),
        sa.Column("fan_speed_percent_mean", sa.Float(), nullable=True),
        sa.Column("fan_speed_percent_max", sa.Float(), nullable=True),
        sa.Column("performance_state_min", sa.BigInteger(), nullable=True),
        sa.Column("performance_state_mean", sa.Float(), nullable=True),
        sa.Column("performance_state_max", sa.BigInteger(), nullable=True),
        sa.Column("pcie_tx_bytes_per_second_min", sa.Float(), nullable=True),
        sa.Column("pcie_tx_bytes_per_second_mean", sa.Float(), nullable=True),
        sa.Column("pcie_tx_bytes_per_second_max", sa.Float(), nullable=True),
        sa.Column("pcie_rx_bytes_per_second_min", sa.Float(), nullable=True),
        sa.Column("pcie_rx_bytes_per_second_mean", sa.Float(), nullable=True),
        sa.Column("pcie_rx_bytes_per_second_max", sa.Float(), nullable=True),
        sa.Column("ecc_corrected_volatile_count_max", sa.BigInteger(), nullable=True),
        sa.Column("ecc_uncorrected_volatile_count_max", sa.BigInteger(), nullable=True),
        sa.Column("retired_pages_count_max", sa.BigInteger(), nullable=True),
        sa.Column("retired_pages_pending_count_max", sa.BigInteger(), nullable=True),
        sa.Column("remapped_rows_correctable_count_max", sa.BigInteger(), nullable=True),
        sa.Column("remapped_rows_uncorrectable_count_max", sa.BigInteger(), nullable=True),
        sa.Column("remapped_rows_pending_count_max", sa.BigInteger(), nullable=True),
        sa.Column("gpm_sm_active_percent_min", sa.Float(), nullable=True),
        sa.Column("gpm_sm_active_percent_mean", sa.Float(), nullable=True),
        sa.Column("gpm_sm_active_percent_max", sa.Float(), nullable=True),
        sa.Column("gpm_sm_occupancy_percent_min", sa.Float(), nullable=True),
        sa.Column("gpm_sm_occupancy_percent_mean", sa.Float(), nullable=True),
        sa.Column("gpm_sm_occupancy_percent_max", sa.Float(), nullable=True),
        sa.Column("gpm_tensor_active_percent_min", sa.Float(), nullable=True),
        sa.Column("gpm_tensor_active_percent_mean", sa.Float(), nullable=True),
        sa.Column("gpm_tensor_active_percent_max", sa.Float(), nullable=True),
        sa.Column("gpm_dram_bandwidth_percent_min", sa.Float(), nullable=True),
        sa.Column("gpm_dram_bandwidth_percent_mean", sa.Float(), nullable=True),
        sa.Column("gpm_dram_bandwidth_percent_max", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("uuid", "ts", name=op.f("pk_gpu_rollups_1h")),
    )
    with op.batch_alter_table("gpu_rollups_1h", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_gpu_rollups_1h_ts"), ["ts"], unique=False)

    op.create_table(
        "gpu_rollups_1m",
        sa.Column("uuid", sa.String(length=96), nullable=False),
        sa.Column("ts", TIMESTAMP, nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("sample_count", sa.Integer(), nullable=False),
        sa.Column("utilization_gpu_percent_min", sa.Float(), nullable=True),
        sa.Column("utilization_gpu_percent_mean", sa.Float(), nullable=True),
        sa.Column("utilization_gpu_percent_max", sa.Float(), nullable=True),
        sa.Column("utilization_gpu_max_percent_min", sa.Float(), nullable=True),
        sa.Column("utilization_gpu_max_percent_mean", sa.Float(), nullable=True),
        sa.Column("utilization_gpu_max_percent_max", sa.Float(), nullable=True),
        sa.Column("utilization_memory_percent_min", sa.Float(), nullable=True),
        sa.Column("utilization_memory_percent_mean", sa.Float(), nullable=True),
        sa.Column("utilization_memory_percent_max", sa.Float(), nullable=True),
        sa.Column("utilization_memory_max_percent_min", sa.Float(), nullable=True),
        sa.Column("utilization_memory_max_percent_mean", sa.Float(), nullable=True),
        sa.Column("utilization_memory_max_percent_max", sa.Float(), nullable=True),
        sa.Column("memory_used_bytes_min", sa.BigInteger(), nullable=True),
        sa.Column("memory_used_bytes_mean", sa.Float(), nullable=True),
        sa.Column("memory_used_bytes_max", sa.BigInteger(), nullable=True),
        sa.Column("memory_free_bytes_min", sa.BigInteger(), nullable=True),
        sa.Column("memory_free_bytes_mean", sa.Float(), nullable=True),
        sa.Column("memory_free_bytes_max", sa.BigInteger(), nullable=True),
        sa.Column("memory_reserved_bytes_min", sa.BigInteger(), nullable=True),
        sa.Column("memory_reserved_bytes_mean", sa.Float(), nullable=True),
        sa.Column("memory_reserved_bytes_max", sa.BigInteger(), nullable=True),
        sa.Column("memory_total_bytes_min", sa.BigInteger(), nullable=True),
        sa.Column("memory_total_bytes_mean", sa.Float(), nullable=True),
        sa.Column("memory_total_bytes_max", sa.BigInteger(), nullable=True),
        sa.Column("power_watts_min", sa.Float(), nullable=True),
        sa.Column("power_watts_mean", sa.Float(), nullable=True),
        sa.Column("power_watts_max", sa.Float(), nullable=True),
        sa.Column("power_max_watts_min", sa.Float(), nullable=True),
        sa.Column("power_max_watts_mean", sa.Float(), nullable=True),
        sa.Column("power_max_watts_max", sa.Float(), nullable=True),
        sa.Column("power_instant_watts_min", sa.Float(), nullable=True),
        sa.Column("power_instant_watts_mean", sa.Float(), nullable=True),
        sa.Column("power_instant_watts_max", sa.Float(), nullable=True),
        sa.Column("power_limit_watts_min", sa.Float(), nullable=True),
        sa.Column("power_limit_watts_mean", sa.Float(), nullable=True),
        sa.Column("power_limit_watts_max", sa.Float(), nullable=True),
        sa.Column("energy_joules_max", sa.Float(), nullable=True),
        sa.Column("energy_used_joules_sum", sa.Float(), nullable=True),
        sa.Column("temperature_celsius_min", sa.Float(), nullable=True),
        sa.Column("temperature_celsius_mean", sa.Float(), nullable=True),
        sa.Column("temperature_celsius_max", sa.Float(), nullable=True),
        sa.Column("temperature_memory_celsius_min", sa.Float(), nullable=True),
        sa.Column("temperature_memory_celsius_mean", sa.Float(), nullable=True),
        sa.Column("temperature_memory_celsius_max", sa.Float(), nullable=True),
        sa.Column("sm_clock_mhz_min", sa.Float(), nullable=True),
        sa.Column("sm_clock_mhz_mean", sa.Float(), nullable=True),
        sa.Column("sm_clock_mhz_max", sa.Float(), nullable=True),
        sa.Column("memory_clock_mhz_min", sa.Float(), nullable=True),
        sa.Column("memory_clock_mhz_mean", sa.Float(), nullable=True),
        sa.Column("memory_clock_mhz_max", sa.Float(), nullable=True),
        sa.Column("graphics_clock_mhz_min", sa.Float(), nullable=True),
        sa.Column("graphics_clock_mhz_mean", sa.Float(), nullable=True),
        sa.Column("graphics_clock_mhz_max", sa.Float(), nullable=True),
        sa.Column("fan_speed_percent_min", sa.Float(), nullable=True),
        sa.Column("fan_speed_percent_mean", sa.Float(), nullable=True),
        sa.Column("fan_speed_percent_max", sa.Float(), nullable=True),
        sa.Column("performance_state_min", sa.BigInteger(), nullable=True),
        sa.Column("performance_state_mean", sa.Float(), nullable=True),
        sa.Column("performance_state_max", sa.BigInteger(), nullable=True),
        sa.Column("pcie_tx_bytes_per_second_min", sa.Float(), nullable=True),
        sa.Column("pcie_tx_bytes_per_second_mean", sa.Float(), nullable=True),
        sa.Column("pcie_tx_bytes_per_second_max", sa.Float(), nullable=True),
        sa.Column("pcie_rx_bytes_per_second_min", sa.Float(), nullable=True),
        sa.Column("pcie_rx_bytes_per_second_mean", sa.Float(), nullable=True),
        sa.Column("pcie_rx_bytes_per_second_max", sa.Float(), nullable=True),
        sa.Column("ecc_corrected_volatile_count_max", sa.BigInteger(), nullable=True),
        sa.Column("ecc_uncorrected_volatile_count_max", sa.BigInteger(), nullable=True),
        sa.Column("retired_pages_count_max", sa.BigInteger(), nullable=True),
        sa.Column("retired_pages_pending_count_max", sa.BigInteger(), nullable=True),
        sa.Column("remapped_rows_correctable_count_max", sa.BigInteger(), nullable=True),
        sa.Column("remapped_rows_uncorrectable_count_max", sa.BigInteger(), nullable=True),
        sa.Column("remapped_rows_pending_count_max", sa.BigInteger(), nullable=True),
        sa.Column("gpm_sm_active_percent_min", sa.Float(), nullable=True),
        sa.Column("gpm_sm_active_percent_mean", sa.Float(), nullable=True),
        sa.Column("gpm_sm_active_percent_max", sa.Float(), nullable=True),
        sa.Column("gpm_sm_occupancy_percent_min", sa.Float(), nullable=True),
        sa.Column("gpm_sm_occupancy_percent_mean", sa.Float(), nullable=True),
        sa.Column("gpm_sm_occupancy_percent_max", sa.Float(), nullable=True),
        sa.Column("gpm_tensor_active_percent_min", sa.Float(), nullable=True),
        sa.Column("gpm_tensor_active_percent_mean", sa.Float(), nullable=True),
        sa.Column("gpm_tensor_active_percent_max", sa.Float(), nullable=True),
        sa.Column("gpm_dram_bandwidth_percent_min", sa.Float(), nullable=True),
        sa.Column("gpm_dram_bandwidth_percent_mean", sa.Float(), nullable=True),
        sa.Column("gpm_dram_bandwidth_percent_max", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("uuid", "ts", name=op.f("pk_gpu_rollups_1m")),
    )
    with op.batch_alter_table("gpu_rollups_1m", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_gpu_rollups_1m_ts"), ["ts"], unique=False)

    op.create_table(
        "gpu_samples",
        sa.Column("uuid", sa.String(length=96), nullable=False),
        sa.Column("ts", TIMESTAMP, nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("utilization_gpu_percent", sa.Float(), nullable=True),
        sa.Column("utilization_gpu_max_percent", sa.Float(), nullable=True),
        sa.Column("utilization_memory_percent", sa.Float(), nullable=True),
        sa.Column("utilization_memory_max_percent", sa.Float(), nullable=True),
        sa.Column("memory_used_bytes", sa.BigInteger(), nullable=True),
        sa.Column("memory_free_bytes", sa.BigInteger(), nullable=True),
        sa.Column("memory_reserved_bytes", sa.BigInteger(), nullable=True),
        sa.Column("memory_total_bytes", sa.BigInteger(), nullable=True),
        sa.Column("power_watts", sa.Float(), nullable=True),
        sa.Column("power_max_watts", sa.Float(), nullable=True),
        sa.Column("power_instant_watts", sa.Float(), nullable=True),
        sa.Column("power_limit_watts", sa.Float(), nullable=True),
        sa.Column("energy_joules", sa.Float(), nullable=True),
        sa.Column("energy_used_joules", sa.Float(), nullable=True),
        sa.Column("temperature_celsius", sa.Float(), nullable=True),
        sa.Column("temperature_memory_celsius", sa.Float(), nullable=True),
        sa.Column("sm_clock_mhz", sa.Float(), nullable=True),
        sa.Column("memory_clock_mhz", sa.Float(), nullable=True),
        sa.Column("graphics_clock_mhz", sa.Float(), nullable=True),
        sa.Column("fan_speed_percent", sa.Float(), nullable=True),
        sa.Column("performance_state", sa.BigInteger(), nullable=True),
        sa.Column("pcie_tx_bytes_per_second", sa.Float(), nullable=True),
        sa.Column("pcie_rx_bytes_per_second", sa.Float(), nullable=True),
        sa.Column("clock_event_reasons", sa.BigInteger(), nullable=True),
        sa.Column("ecc_corrected_volatile_count", sa.BigInteger(), nullable=True),
        sa.Column("ecc_uncorrected_volatile_count", sa.BigInteger(), nullable=True),
        sa.Column("retired_pages_count", sa.BigInteger(), nullable=True),
        sa.Column("retired_pages_pending_count", sa.BigInteger(), nullable=True),
        sa.Column("remapped_rows_correctable_count", sa.BigInteger(), nullable=True),
        sa.Column("remapped_rows_uncorrectable_count", sa.BigInteger(), nullable=True),
        sa.Column("remapped_rows_pending_count", sa.BigInteger(), nullable=True),
        sa.Column("gpm_sm_active_percent", sa.Float(), nullable=True),
        sa.Column("gpm_sm_occupancy_percent", sa.Float(), nullable=True),
        sa.Column("gpm_tensor_active_percent", sa.Float(), nullable=True),
        sa.Column("gpm_dram_bandwidth_percent", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("uuid", "ts", name=op.f("pk_gpu_samples")),
    )
    with op.batch_alter_table("gpu_samples", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_gpu_samples_ts"), ["ts"], unique=False)

    op.create_table(
        "gpus",
        sa.Column("uuid", sa.String(length=96), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("is_simulated", sa.Boolean(), nullable=False),
        sa.Column("pci_bus_id", sa.String(length=64), nullable=True),
        sa.Column("serial", sa.String(length=64), nullable=True),
        sa.Column("memory_total_bytes", sa.BigInteger(), nullable=True),
        sa.Column("power_limit_watts", sa.Float(), nullable=True),
        sa.Column("compute_capability", sa.String(length=16), nullable=True),
        sa.Column("driver_version", sa.String(length=64), nullable=True),
        sa.Column("cuda_driver_version", sa.String(length=64), nullable=True),
        sa.Column("mig_mode", sa.Boolean(), nullable=True),
        sa.Column("parent_uuid", sa.String(length=96), nullable=True),
        sa.Column("first_seen", TIMESTAMP, nullable=False),
        sa.Column("last_seen", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_gpus")),
    )
    with op.batch_alter_table("gpus", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_gpus_host"), ["host"], unique=False)

    op.create_table(
        "hosts",
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("is_simulated", sa.Boolean(), nullable=False),
        sa.Column("driver_version", sa.String(length=64), nullable=True),
        sa.Column("nvml_version", sa.String(length=64), nullable=True),
        sa.Column("cuda_driver_version", sa.String(length=64), nullable=True),
        sa.Column("collector_version", sa.String(length=64), nullable=True),
        sa.Column("first_seen", TIMESTAMP, nullable=False),
        sa.Column("last_seen", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("host", name=op.f("pk_hosts")),
    )
    op.create_table(
        "process_samples",
        sa.Column("uuid", sa.String(length=96), nullable=False),
        sa.Column("ts", TIMESTAMP, nullable=False),
        sa.Column("pid", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("used_memory_bytes", sa.BigInteger(), nullable=True),
        sa.Column("sm_percent", sa.Float(), nullable=True),
        sa.Column("memory_percent", sa.Float(), nullable=True),
        sa.Column("process_type", sa.String(length=16), nullable=True),
        sa.Column("container_id", sa.String(length=128), nullable=True),
        sa.Column("cgroup", sa.Text(), nullable=True),
        sa.Column("slurm_job_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("uuid", "ts", "pid", name=op.f("pk_process_samples")),
    )
    with op.batch_alter_table("process_samples", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_process_samples_ts"), ["ts"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("process_samples", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_process_samples_ts"))

    op.drop_table("process_samples")
    op.drop_table("hosts")
    with op.batch_alter_table("gpus", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gpus_host"))

    op.drop_table("gpus")
    with op.batch_alter_table("gpu_samples", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gpu_samples_ts"))

    op.drop_table("gpu_samples")
    with op.batch_alter_table("gpu_rollups_1m", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gpu_rollups_1m_ts"))

    op.drop_table("gpu_rollups_1m")
    with op.batch_alter_table("gpu_rollups_1h", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gpu_rollups_1h_ts"))

    op.drop_table("gpu_rollups_1h")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_uuid_ts"))
        batch_op.drop_index(batch_op.f("ix_events_ts"))

    op.drop_table("events")
    op.drop_table("collectors")
