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
from operator import attrgetter
from typing import Any, Literal, TypeAlias

from monitor.core.metrics import GpuSample, Number
from monitor.core.source import DeviceFacts, ProcessReading


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


# -- built by name from what a source tells ----------------------------------------------
# A source tells a device's facts and the processes on it (monitor.core.source); the sampler
# adds where and when. The other fields are the same, in the same order and of the same types:
# checked at import, so a field added on one side only fails at once, not in a store write.

_GPU_INFO_STAMP: tuple[str, ...] = (
    "host",
    "ts",
    "is_simulated",
    "driver_version",
    "cuda_driver_version",
)
_PROCESS_STAMP: tuple[str, ...] = ("uuid", "host", "ts")


def _told_fields(told: type, record: type, stamp: tuple[str, ...]) -> tuple[str, ...]:
    """The fields ``record`` takes from ``told`` (all of its fields but ``stamp``)."""
    source_side = [(f.name, f.type) for f in dataclasses.fields(told)]
    record_side = [(f.name, f.type) for f in dataclasses.fields(record) if f.name not in stamp]
    if source_side != record_side:
        raise TypeError(
            f"{told.__name__} must have the fields of {record.__name__} but {stamp}, "
            f"in order: {source_side} != {record_side}"
        )
    return tuple(name for name, _ in source_side)


_DEVICE_FIELDS = _told_fields(DeviceFacts, GpuInfo, _GPU_INFO_STAMP)
_PROCESS_FIELDS = _told_fields(ProcessReading, ProcessSample, _PROCESS_STAMP)
if tuple(f.name for f in dataclasses.fields(ProcessSample))[: len(_PROCESS_STAMP)] != (
    _PROCESS_STAMP
):
    raise TypeError(f"ProcessSample must start with {_PROCESS_STAMP}")
# The told values in ProcessSample's order (checked above): one call per process per tick.
_PROCESS_VALUES = attrgetter(*_PROCESS_FIELDS)


def gpu_info(
    device: DeviceFacts,
    *,
    host: str,
    ts: datetime,
    is_simulated: bool,
    driver_version: str | None,
    cuda_driver_version: str | None,
) -> GpuInfo:
    """The ``gpus`` row of a device a source found, with the host's driver versions."""
    told = {name: getattr(device, name) for name in _DEVICE_FIELDS}
    return GpuInfo(
        host=host,
        ts=ts,
        is_simulated=is_simulated,
        driver_version=driver_version,
        cuda_driver_version=cuda_driver_version,
        **told,
    )


def process_sample(process: ProcessReading, *, uuid: str, host: str, ts: datetime) -> ProcessSample:
    """The ``process_samples`` row of a process a source saw on GPU ``uuid``."""
    # By position, as the checks above allow: keywords cost a tenth of a sampler tick.
    return ProcessSample(uuid, host, ts, *_PROCESS_VALUES(process))


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
    "Number",
    "ProcessSample",
    "Record",
    "gpu_info",
    "process_sample",
    "record_from_dict",
    "record_to_dict",
]
