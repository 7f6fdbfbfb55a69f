"""The catalogue of per-GPU metrics, declared once as the fields of :class:`GpuSample`.

Pure data. Each metric is one typed field of the raw sample record, whose default says its kind
and help text (``power_watts: float | None = gauge("Mean board power over the tick")``); the
field's type says whether it is an integer. :data:`METRICS` is read from those fields, and the
schema, the rollups, the sources, the store writer, the Prometheus exporter and the status
output are all generated from (or checked against) :data:`METRICS`. So adding a metric is one
field here, one Alembic migration, and the source code that reads it. Units live in the names.
A metric the device does not report is ``None`` (SQL ``NULL``), never 0.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeAlias

Kind = Literal["gauge", "counter", "delta", "bitmask"]
Aggregate = Literal["min", "mean", "max", "sum"]
Number: TypeAlias = "float | int | None"

# The fields of GpuSample that are not metrics: its key in the gpu_samples table.
SAMPLE_KEY: tuple[str, ...] = ("uuid", "host", "ts")
_SPEC_KEY = "gpulens_metric"
# Field annotation -> is_integer. Annotations are strings (``from __future__ import annotations``).
_METRIC_TYPES: dict[str, bool] = {"int | None": True, "float | None": False}


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One per-GPU metric.

    ``kind``: ``gauge`` (a level; rolled up as min/mean/max), ``counter`` (monotonic since
    driver load; rolled up as max), ``delta`` (an amount used during the tick; rolled up as a
    sum) or ``bitmask`` (not rolled up; changes are recorded as events instead).
    ``is_derived``: computed by the sampler from successive samples; no source reads it.
    """

    name: str
    kind: Kind
    help: str
    is_integer: bool = False
    is_derived: bool = False

    @property
    def aggregates(self) -> tuple[Aggregate, ...]:
        """The rollup columns kept for this metric (``name_min``, ``name_mean``, ...)."""
        if self.kind == "gauge":
            return ("min", "mean", "max")
        if self.kind == "counter":
            return ("max",)
        if self.kind == "delta":
            return ("sum",)
        return ()


def _metric(kind: Kind, help_text: str, *, is_derived: bool = False) -> Any:
    # Any: a dataclasses.Field used as a default, which mypy takes for "has a default".
    return dataclasses.field(default=None, metadata={_SPEC_KEY: (kind, help_text, is_derived)})


def gauge(help_text: str) -> Any:
    """A catalogue entry: a level (rolled up as min/mean/max)."""
    return _metric("gauge", help_text)


def counter(help_text: str) -> Any:
    """A catalogue entry: monotonic since the driver loaded (rolled up as max)."""
    return _metric("counter", help_text)


def delta(help_text: str, *, is_derived: bool = False) -> Any:
    """A catalogue entry: an amount used during the tick (rolled up as a sum)."""
    return _metric("delta", help_text, is_derived=is_derived)


def bitmask(help_text: str) -> Any:
    """A catalogue entry: a bit set, not rolled up (its changes become events)."""
    return _metric("bitmask", help_text)


@dataclass(frozen=True, slots=True)
class GpuSample:
    """One tick of one GPU (row of ``gpu_samples``). Every field after ``ts`` is a metric of the
    catalogue, in the order of the table's columns."""

    uuid: str
    host: str
    ts: datetime
    utilization_gpu_percent: float | None = gauge("Mean GPU (SM) utilization over the tick")
    utilization_gpu_max_percent: float | None = gauge(
        "Peak GPU utilization seen in the driver's samples"
    )
    utilization_memory_percent: float | None = gauge(
        "Mean memory-controller utilization over the tick"
    )
    utilization_memory_max_percent: float | None = gauge(
        "Peak memory-controller utilization in the tick"
    )
    memory_used_bytes: int | None = gauge("Device memory in use")
    memory_free_bytes: int | None = gauge("Device memory free")
    memory_reserved_bytes: int | None = gauge("Device memory reserved by the driver")
    memory_total_bytes: int | None = gauge("Device memory in total")
    power_watts: float | None = gauge("Mean board power over the tick")
    power_max_watts: float | None = gauge("Peak board power seen in the driver's samples")
    power_instant_watts: float | None = gauge(
        "Instantaneous board power, where the device reports it"
    )
    power_limit_watts: float | None = gauge("Enforced power limit")
    energy_joules: float | None = counter("Total energy counter since the driver loaded")
    energy_used_joules: float | None = delta(
        "Energy used since the previous sample", is_derived=True
    )
    temperature_celsius: float | None = gauge("GPU core temperature")
    temperature_memory_celsius: float | None = gauge("Memory (HBM) temperature")
    sm_clock_mhz: float | None = gauge("SM clock")
    memory_clock_mhz: float | None = gauge("Memory clock")
    graphics_clock_mhz: float | None = gauge("Graphics clock")
    fan_speed_percent: float | None = gauge("Fan speed as a share of its maximum")
    performance_state: int | None = gauge("P-state (0 is the fastest, 15 the slowest)")
    pcie_tx_bytes_per_second: float | None = gauge("PCIe transmit throughput")
    pcie_rx_bytes_per_second: float | None = gauge("PCIe receive throughput")
    clock_event_reasons: int | None = bitmask(
        "NVML clock event (throttle) reasons, as the driver's bitmask"
    )
    ecc_corrected_volatile_count: int | None = counter("Corrected ECC errors")
    ecc_uncorrected_volatile_count: int | None = counter("Uncorrected ECC errors")
    retired_pages_count: int | None = counter("Pages retired for ECC errors")
    retired_pages_pending_count: int | None = counter("Page retirements awaiting reboot")
    remapped_rows_correctable_count: int | None = counter("Rows remapped (correctable)")
    remapped_rows_uncorrectable_count: int | None = counter("Rows remapped (uncorrectable)")
    remapped_rows_pending_count: int | None = counter("Row remappings awaiting reset")
    gpm_sm_active_percent: float | None = gauge("GPM: share of time SMs had a warp resident")
    gpm_sm_occupancy_percent: float | None = gauge("GPM: resident warps as a share of the maximum")
    gpm_tensor_active_percent: float | None = gauge("GPM: tensor core pipe activity")
    gpm_dram_bandwidth_percent: float | None = gauge("GPM: DRAM bandwidth as a share of the peak")

    @classmethod
    def from_metrics(
        cls, uuid: str, host: str, ts: datetime, metrics: Mapping[str, Number]
    ) -> GpuSample:
        """Build a sample from a metric mapping; unknown keys are an error, missing are None."""
        unknown = metrics.keys() - _NAME_SET
        if unknown:
            raise ValueError(f"unknown metric names: {sorted(unknown)}")
        return cls(uuid, host, ts, **metrics)  # type: ignore[arg-type]

    def metrics(self) -> dict[str, Number]:
        """The metric values by name (``None`` where the device does not report one)."""
        return {name: getattr(self, name) for name in METRIC_NAMES}


def _spec(record: type, f: dataclasses.Field[Any]) -> MetricSpec:
    entry = f.metadata.get(_SPEC_KEY)
    is_integer = _METRIC_TYPES.get(str(f.type))
    if entry is None or is_integer is None:
        raise TypeError(
            f"{record.__name__}.{f.name}: a metric field is `int | None` or `float | None` "
            "with gauge(), counter(), delta() or bitmask() as its default"
        )
    kind, help_text, is_derived = entry
    return MetricSpec(f.name, kind, help_text, is_integer, is_derived)


def _catalogue(record: type) -> tuple[MetricSpec, ...]:
    """The metrics declared by the fields of ``record`` after its key (run at import)."""
    fields = dataclasses.fields(record)
    if tuple(f.name for f in fields[: len(SAMPLE_KEY)]) != SAMPLE_KEY:
        raise TypeError(f"{record.__name__} must start with its key {SAMPLE_KEY}")
    return tuple(_spec(record, f) for f in fields[len(SAMPLE_KEY) :])


METRICS: tuple[MetricSpec, ...] = _catalogue(GpuSample)
METRIC_NAMES: tuple[str, ...] = tuple(spec.name for spec in METRICS)
METRICS_BY_NAME: dict[str, MetricSpec] = {spec.name: spec for spec in METRICS}
ROLLUP_METRICS: tuple[MetricSpec, ...] = tuple(spec for spec in METRICS if spec.aggregates)
# What a source reads from a device: everything but the metrics the sampler derives.
SOURCE_METRIC_NAMES: tuple[str, ...] = tuple(s.name for s in METRICS if not s.is_derived)
_NAME_SET = frozenset(METRIC_NAMES)


def rollup_column(metric: str, aggregate: Aggregate) -> str:
    """Name of the rollup column holding ``aggregate`` of ``metric``."""
    return f"{metric}_{aggregate}"
