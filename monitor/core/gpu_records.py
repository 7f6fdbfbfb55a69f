"""Records that flow from a source through the buffer into the store.

Pure data: frozen, slotted dataclasses whose fields mirror the table columns
(:mod:`monitor.store.schema`). Time is always an aware UTC :class:`~datetime.datetime`.
Every record that comes from a host carries the host name and, where it concerns a GPU, the
GPU's UUID (indices change across reboots; UUIDs do not).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeAlias

from monitor.core.metrics import METRIC_NAMES

Number: TypeAlias = "float | int | None"


@dataclass(frozen=True, slots=True)
class HostInfo:
    """A host running a collector (row of ``hosts``)."""

    host: str
    ts: datetime
    is_simulated: bool
    driver_version: str | None = None
    nvml_version: str | None = None
    cuda_driver_version: str | None = None
    collector_version: str | None = None


@dataclass(frozen=True, slots=True)
class GpuInfo:
    """Static facts of one GPU or MIG instance (row of ``gpus``, keyed by UUID)."""

    uuid: str
    host: str
    ts: datetime
    index: int
    name: str
    is_simulated: bool
    pci_bus_id: str | None = None
    serial: str | None = None
    memory_total_bytes: int | None = None
    power_limit_watts: float | None = None
    compute_capability: str | None = None
    driver_version: str | None = None
    cuda_driver_version: str | None = None
    mig_mode: bool | None = None
    parent_uuid: str | None = None


@dataclass(frozen=True, slots=True)
class GpuSample:
    """One tick of one GPU (row of ``gpu_samples``); metric fields follow :data:`METRICS`."""

    uuid: str
    host: str
    ts: datetime
    utilization_gpu_percent: float | None = None
    utilization_gpu_max_percent: float | None = None
    utilization_memory_percent: float | None = None
    utilization_memory_max_percent: float | None = None
    memory_used_bytes: int | None = None
    memory_free_bytes: int | None = None
    memory_reserved_bytes: int | None = None
    memory_total_bytes: int | None = None
    power_watts: float | None = None
    power_max_watts: float | None = None
    power_instant_watts: float | None = None
    power_limit_watts: float | None = None
    energy_joules: float | None = None
    energy_used_joules: float | None = None
    temperature_celsius: float | None = None
    temperature_memory_celsius: float | None = None
    sm_clock_mhz: float | None = None
    memory_clock_mhz: float | None = None
    graphics_clock_mhz: float | None = None
    fan_speed_percent: float | None = None
    performance_state: int | None = None
    pcie_tx_bytes_per_second: float | None = None
    pcie_rx_bytes_per_second: float | None = None
    clock_event_reasons: int | None = None
    ecc_corrected_volatile_count: int | None = None
    ecc_uncorrected_volatile_count: int | None = None
    retired_pages_count: int | None = None
    retired_pages_pending_count: int | None = None
    remapped_rows_correctable_count: int | None = None
    remapped_rows_uncorrectable_count: int | None = None
    remapped_rows_pending_count: int | None = None
    gpm_sm_active_percent: float | None = None
    gpm_sm_occupancy_percent: float | None = None
    gpm_tensor_active_percent: float | None = None
    gpm_dram_bandwidth_percent: float | None = None

    @classmethod
    def from_metrics(
        cls, uuid: str, host: str, ts: datetime, metrics: Mapping[str, Number]
    ) -> GpuSample:
        """Build a sample from a metric mapping; unknown keys are an error, missing are None."""
        unknown = set(metrics) - set(METRIC_NAMES)
        if unknown:
            raise ValueError(f"unknown metric names: {sorted(unknown)}")
        return cls(uuid, host, ts, **metrics)  # type: ignore[arg-type]

    def metrics(self) -> dict[str, Number]:
        """The metric values by name (``None`` where the device does not report one)."""
        return {name: getattr(self, name) for name in METRIC_NAMES}


@dataclass(frozen=True, slots=True)
class ProcessSample:
    """A process using a GPU at one tick (row of ``process_samples``)."""

    uuid: str
    host: str
    ts: datetime
    pid: int
    name: str | None = None
    used_memory_bytes: int | None = None
    sm_percent: float | None = None
    memory_percent: float | None = None
    process_type: str | None = None  # "compute" or "graphics"
    container_id: str | None = None
    cgroup: str | None = None
    slurm_job_id: str | None = None


EventKind = Literal[
    "collector_start",
    "collector_stop",
    "throttle_start",
    "throttle_end",
    "xid",
    "ecc",
    "gpu_lost",
    "gpu_back",
    "clock_jump",
    "collection_stale",
    "collection_recovered",
]
EVENT_KINDS: tuple[str, ...] = EventKind.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened at one moment (row of ``events``).

    ``event_id`` is chosen when the event is created, so a flush that is retried or a spool
    that is replayed never stores the same event twice.
    """

    event_id: str
    ts: datetime
    host: str
    kind: str
    uuid: str | None = None
    value: float | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class CollectorStatus:
    """Health of one collector (row of ``collectors``), written with every flush.

    The counters obey ``collected == written + dropped + pending`` at all times.
    """

    host: str
    pid: int
    state: str  # "running" or "stopped"
    is_simulated: bool
    version: str | None
    interval_seconds: float
    started_at: datetime
    heartbeat_at: datetime
    stale_since: datetime | None
    collected: int
    written: int
    dropped: int
    spooled: int
    pending: int
    poll_errors: int


@dataclass(frozen=True, slots=True)
class LatestGpu:
    """A GPU's facts with its newest sample (``None`` before the first)."""

    gpu: GpuInfo
    sample: GpuSample | None


Record: TypeAlias = "HostInfo | GpuInfo | GpuSample | ProcessSample | Event"
RECORD_TYPES: tuple[type, ...] = (HostInfo, GpuInfo, GpuSample, ProcessSample, Event)
_RECORD_BY_NAME: dict[str, type] = {cls.__name__: cls for cls in RECORD_TYPES}


def record_to_dict(record: Record) -> dict[str, Any]:
    """A JSON-ready dict of ``record`` with its type under ``"type"`` (for the spool file)."""
    row: dict[str, Any] = {"type": type(record).__name__}
    for f in dataclasses.fields(record):
        value = getattr(record, f.name)
        row[f.name] = value.isoformat() if isinstance(value, datetime) else value
    return row


def record_from_dict(row: Mapping[str, Any]) -> Record:
    """Inverse of :func:`record_to_dict`; raises ``ValueError`` on a malformed row."""
    try:
        cls = _RECORD_BY_NAME[row["type"]]
        kwargs = {k: v for k, v in row.items() if k != "type"}
        kwargs["ts"] = datetime.fromisoformat(kwargs["ts"])
        record: Record = cls(**kwargs)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a gpulens record: {exc}") from exc
    return record


__all__ = [
    "EVENT_KINDS",
    "RECORD_TYPES",
    "CollectorStatus",
    "Event",
    "GpuInfo",
    "GpuSample",
    "HostInfo",
    "LatestGpu",
    "ProcessSample",
    "Record",
    "record_from_dict",
    "record_to_dict",
]
