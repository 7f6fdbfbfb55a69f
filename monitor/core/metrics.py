"""The catalogue of per-GPU metrics: one entry per column of the raw samples table.

Pure data. The schema, the rollups, the Prometheus exporter and the status output are all
generated from :data:`METRICS`, so a metric is added in one place. Units live in the names.
A metric the device does not report is ``None`` (SQL ``NULL``), never 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["gauge", "counter", "delta", "bitmask"]
Aggregate = Literal["min", "mean", "max", "sum"]


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One per-GPU metric.

    ``kind``: ``gauge`` (a level; rolled up as min/mean/max), ``counter`` (monotonic since
    driver load; rolled up as max), ``delta`` (an amount used during the tick; rolled up as a
    sum) or ``bitmask`` (not rolled up; changes are recorded as events instead).
    """

    name: str
    kind: Kind
    help: str
    is_integer: bool = False

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


def _gauge(name: str, help_text: str, *, is_integer: bool = False) -> MetricSpec:
    return MetricSpec(name, "gauge", help_text, is_integer)


METRICS: tuple[MetricSpec, ...] = (
    _gauge("utilization_gpu_percent", "Mean GPU (SM) utilization over the tick"),
    _gauge("utilization_gpu_max_percent", "Peak GPU utilization seen in the driver's samples"),
    _gauge("utilization_memory_percent", "Mean memory-controller utilization over the tick"),
    _gauge("utilization_memory_max_percent", "Peak memory-controller utilization in the tick"),
    _gauge("memory_used_bytes", "Device memory in use", is_integer=True),
    _gauge("memory_free_bytes", "Device memory free", is_integer=True),
    _gauge("memory_reserved_bytes", "Device memory reserved by the driver", is_integer=True),
    _gauge("memory_total_bytes", "Device memory in total", is_integer=True),
    _gauge("power_watts", "Mean board power over the tick"),
    _gauge("power_max_watts", "Peak board power seen in the driver's samples"),
    _gauge("power_instant_watts", "Instantaneous board power, where the device reports it"),
    _gauge("power_limit_watts", "Enforced power limit"),
    MetricSpec("energy_joules", "counter", "Total energy counter since the driver loaded"),
    MetricSpec("energy_used_joules", "delta", "Energy used since the previous sample"),
    _gauge("temperature_celsius", "GPU core temperature"),
    _gauge("temperature_memory_celsius", "Memory (HBM) temperature"),
    _gauge("sm_clock_mhz", "SM clock"),
    _gauge("memory_clock_mhz", "Memory clock"),
    _gauge("graphics_clock_mhz", "Graphics clock"),
    _gauge("fan_speed_percent", "Fan speed as a share of its maximum"),
    _gauge("performance_state", "P-state (0 is the fastest, 15 the slowest)", is_integer=True),
    _gauge("pcie_tx_bytes_per_second", "PCIe transmit throughput"),
    _gauge("pcie_rx_bytes_per_second", "PCIe receive throughput"),
    MetricSpec(
        "clock_event_reasons",
        "bitmask",
        "NVML clock event (throttle) reasons, as the driver's bitmask",
        is_integer=True,
    ),
    MetricSpec("ecc_corrected_volatile_count", "counter", "Corrected ECC errors", True),
    MetricSpec("ecc_uncorrected_volatile_count", "counter", "Uncorrected ECC errors", True),
    MetricSpec("retired_pages_count", "counter", "Pages retired for ECC errors", True),
    MetricSpec("retired_pages_pending_count", "counter", "Page retirements awaiting reboot", True),
    MetricSpec("remapped_rows_correctable_count", "counter", "Rows remapped (correctable)", True),
    MetricSpec(
        "remapped_rows_uncorrectable_count", "counter", "Rows remapped (uncorrectable)", True
    ),
    MetricSpec("remapped_rows_pending_count", "counter", "Row remappings awaiting reset", True),
    _gauge("gpm_sm_active_percent", "GPM: share of time SMs had a warp resident"),
    _gauge("gpm_sm_occupancy_percent", "GPM: resident warps as a share of the maximum"),
    _gauge("gpm_tensor_active_percent", "GPM: tensor core pipe activity"),
    _gauge("gpm_dram_bandwidth_percent", "GPM: DRAM bandwidth as a share of the peak"),
)

METRIC_NAMES: tuple[str, ...] = tuple(spec.name for spec in METRICS)
METRICS_BY_NAME: dict[str, MetricSpec] = {spec.name: spec for spec in METRICS}
ROLLUP_METRICS: tuple[MetricSpec, ...] = tuple(spec for spec in METRICS if spec.aggregates)


def rollup_column(metric: str, aggregate: Aggregate) -> str:
    """Name of the rollup column holding ``aggregate`` of ``metric``."""
    return f"{metric}_{aggregate}"
