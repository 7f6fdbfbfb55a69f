"""What a GPU source delivers, and the small interface every source implements.

Pure data and a :class:`typing.Protocol`. The NVML source (:mod:`monitor.collector.nvml`) and the
simulated source (:mod:`monitor.collector.simulated`) both implement :class:`GpuSource`; the sampler
(:mod:`monitor.collector.sampler`) turns their polls into records. Above a source, a metric the
device does not support is ``None`` data, never an exception.

These are not a second record family: a reading's ``metrics`` are keyed by the catalogue's
names (:data:`monitor.core.metrics.SOURCE_METRIC_NAMES`), and :class:`DeviceFacts` and
:class:`ProcessReading` are the fields of :class:`~monitor.core.gpu_records.GpuInfo` and
:class:`~monitor.core.gpu_records.ProcessSample` without the host and time the sampler adds
(checked when :mod:`monitor.core.gpu_records` is imported; the records are built by name).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from monitor.core.metrics import Number


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    """Static facts of one GPU or MIG instance, as the source sees it."""

    uuid: str
    index: int
    name: str
    pci_bus_id: str | None = None
    serial: str | None = None
    memory_total_bytes: int | None = None
    power_limit_watts: float | None = None
    compute_capability: str | None = None
    mig_mode: bool | None = None
    parent_uuid: str | None = None


@dataclass(frozen=True, slots=True)
class SystemFacts:
    """What :meth:`GpuSource.open` finds: driver versions and the devices."""

    devices: tuple[DeviceFacts, ...]
    driver_version: str | None = None
    nvml_version: str | None = None
    cuda_driver_version: str | None = None
    # Features the source found missing on this machine, said once at start
    # (for example "GPM metrics: not supported on NVIDIA A10").
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ProcessReading:
    """A process seen on a GPU. Fields the driver or ``/proc`` do not tell are ``None``."""

    pid: int
    name: str | None = None
    used_memory_bytes: int | None = None
    sm_percent: float | None = None
    memory_percent: float | None = None
    process_type: str | None = None  # "compute" or "graphics"
    container_id: str | None = None
    cgroup: str | None = None
    slurm_job_id: str | None = None


@dataclass(frozen=True, slots=True)
class GpuReading:
    """One poll of one device. ``metrics`` keys are names from :data:`monitor.core.metrics.METRICS`;
    a key that is absent or ``None`` means "not reported"."""

    uuid: str
    metrics: Mapping[str, Number]
    processes: tuple[ProcessReading, ...] = ()


@dataclass(frozen=True, slots=True)
class XidReading:
    """An XID error the driver reported for a device."""

    uuid: str
    xid: int
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Poll:
    """Everything one poll of a source saw.

    ``lost`` maps the UUID of each device that could not be read this time to the reason;
    ``reacquired`` lists devices that answer again after having been lost (found by UUID);
    ``error_count`` counts intermittent errors that were absorbed (the value became ``None``).
    """

    readings: tuple[GpuReading, ...]
    lost: Mapping[str, str] = field(default_factory=dict)
    xids: tuple[XidReading, ...] = ()
    reacquired: tuple[DeviceFacts, ...] = ()
    error_count: int = 0


class GpuSource(Protocol):
    """A source of GPU readings.

    ``open`` is called once (it raises :class:`monitor.core.errors.DriverUnavailable` when the
    source cannot work on this machine); ``poll`` is called every tick and never raises for a
    single device's trouble; ``close`` releases the library.
    """

    @property
    def is_simulated(self) -> bool: ...

    def open(self) -> SystemFacts: ...

    def poll(self) -> Poll: ...

    def close(self) -> None: ...
