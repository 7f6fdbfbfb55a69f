"""Per-metric NVML readers: one device's metrics for one poll, in the units of their names.

:class:`MetricReader` receives the pynvml module (``lib``) and a :class:`CallGuard`; every
NVML call goes through the guard, so an unsupported metric comes back as ``None`` (never 0)
and a lost device surfaces as :class:`monitor.collector.nvml_guard.DeviceLost`. Only
:mod:`monitor.collector.nvml` imports pynvml.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from monitor.collector.nvml_guard import CallGuard
from monitor.core.metrics import Number
from monitor.core.source import DeviceFacts

__all__ = ["MetricReader", "TrackedDevice", "sample_value"]

# The sample buffers NVML keeps per device, and the metrics each feeds (mean, max, scale).
# Power samples are in milliwatts; utilization samples are percent.
_SAMPLE_BUFFERS: tuple[tuple[str, str, str, float], ...] = (
    ("NVML_GPU_UTILIZATION_SAMPLES", "utilization_gpu_percent", "utilization_gpu_max_percent", 1),
    (
        "NVML_MEMORY_UTILIZATION_SAMPLES",
        "utilization_memory_percent",
        "utilization_memory_max_percent",
        1,
    ),
    ("NVML_TOTAL_POWER_SAMPLES", "power_watts", "power_max_watts", 1e-3),
)

# Field values: (metric, constant name, scale). NVML_FI_DEV_POWER_INSTANT is mW and newer
# than many bindings, hence looked up by name.
_FIELDS: tuple[tuple[str, str, float], ...] = (
    ("power_instant_watts", "NVML_FI_DEV_POWER_INSTANT", 1e-3),
    ("temperature_memory_celsius", "NVML_FI_DEV_MEMORY_TEMP", 1),
)

# The c_nvmlValue_t union member that holds each NVML_VALUE_TYPE_*.
_UNION_MEMBERS: dict[str, str] = {
    "NVML_VALUE_TYPE_DOUBLE": "dVal",
    "NVML_VALUE_TYPE_UNSIGNED_INT": "uiVal",
    "NVML_VALUE_TYPE_UNSIGNED_LONG": "ulVal",
    "NVML_VALUE_TYPE_UNSIGNED_LONG_LONG": "ullVal",
    "NVML_VALUE_TYPE_SIGNED_LONG_LONG": "sllVal",
    "NVML_VALUE_TYPE_SIGNED_INT": "siVal",
    "NVML_VALUE_TYPE_UNSIGNED_SHORT": "usVal",
}

_GPM_METRICS: tuple[tuple[str, str], ...] = (
    ("gpm_sm_active_percent", "NVML_GPM_METRIC_SM_UTIL"),
    ("gpm_sm_occupancy_percent", "NVML_GPM_METRIC_SM_OCCUPANCY"),
    ("gpm_tensor_active_percent", "NVML_GPM_METRIC_ANY_TENSOR_UTIL"),
    ("gpm_dram_bandwidth_percent", "NVML_GPM_METRIC_DRAM_BW_UTIL"),
)

_MILLI = 1e-3
_KIB = 1024  # NVML's PCIe throughput is in KB/s, where a KB is 1024 bytes

# One-number readings: (metric, functions to try in order, pynvml constants passed after the
# handle, scale). Power is reported in mW, energy in mJ.
_SCALARS: tuple[tuple[str, tuple[str, ...], tuple[str, ...], float], ...] = (
    ("power_limit_watts", ("nvmlDeviceGetEnforcedPowerLimit",), (), _MILLI),
    ("energy_joules", ("nvmlDeviceGetTotalEnergyConsumption",), (), _MILLI),
    ("temperature_celsius", ("nvmlDeviceGetTemperature",), ("NVML_TEMPERATURE_GPU",), 1),
    ("sm_clock_mhz", ("nvmlDeviceGetClockInfo",), ("NVML_CLOCK_SM",), 1),
    ("memory_clock_mhz", ("nvmlDeviceGetClockInfo",), ("NVML_CLOCK_MEM",), 1),
    ("graphics_clock_mhz", ("nvmlDeviceGetClockInfo",), ("NVML_CLOCK_GRAPHICS",), 1),
    ("fan_speed_percent", ("nvmlDeviceGetFanSpeed",), (), 1),
    # "Throttle" reasons were renamed "event" reasons in R535 drivers; older ones lack the name.
    (
        "clock_event_reasons",
        ("nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons"),
        (),
        1,
    ),
    (
        "pcie_tx_bytes_per_second",
        ("nvmlDeviceGetPcieThroughput",),
        ("NVML_PCIE_UTIL_TX_BYTES",),
        _KIB,
    ),
    (
        "pcie_rx_bytes_per_second",
        ("nvmlDeviceGetPcieThroughput",),
        ("NVML_PCIE_UTIL_RX_BYTES",),
        _KIB,
    ),
    (
        "ecc_corrected_volatile_count",
        ("nvmlDeviceGetTotalEccErrors",),
        ("NVML_MEMORY_ERROR_TYPE_CORRECTED", "NVML_VOLATILE_ECC"),
        1,
    ),
    (
        "ecc_uncorrected_volatile_count",
        ("nvmlDeviceGetTotalEccErrors",),
        ("NVML_MEMORY_ERROR_TYPE_UNCORRECTED", "NVML_VOLATILE_ECC"),
        1,
    ),
    ("retired_pages_pending_count", ("nvmlDeviceGetRetiredPagesPendingStatus",), (), 1),
)


@dataclass(eq=False)
class TrackedDevice:
    """One GPU or MIG instance as the NVML source follows it across polls."""

    facts: DeviceFacts
    handle: Any
    lost_reason: str | None = None
    sample_timestamps: dict[int, int] = field(default_factory=dict)
    process_timestamp: int = 0
    gpm_supported: bool = False
    gpm_samples: list[Any] = field(default_factory=list)  # [previous, current] buffers
    has_gpm_baseline: bool = False

    @property
    def uuid(self) -> str:
        return self.facts.uuid

    @property
    def is_mig(self) -> bool:
        return self.facts.parent_uuid is not None


def sample_value(lib: Any, value_type: int, value: Any) -> float | int | None:
    """The number in a ``c_nvmlValue_t`` union, read through the member ``value_type`` names."""
    for type_name, member in _UNION_MEMBERS.items():
        if getattr(lib, type_name, None) == value_type:
            number: float | int = getattr(value, member)
            return number
    return None


def _scaled(value: Any, scale: float) -> Number:
    if value is None:
        return None
    scaled: Number = value * scale if scale != 1 else value
    return scaled


class MetricReader:
    """Reads every metric of :data:`monitor.core.metrics.SOURCE_METRIC_NAMES` for a device.

    The catalogue's derived metrics (``energy_used_joules``) are the sampler's, not read here.
    """

    def __init__(self, lib: Any, guard: CallGuard) -> None:
        self._lib = lib
        self._guard = guard
        self._scalars = tuple(
            (metric, functions, tuple(getattr(lib, name) for name in arg_names), scale)
            for metric, functions, arg_names, scale in _SCALARS
        )

    def read(self, device: TrackedDevice) -> dict[str, Number]:
        """All metrics of ``device`` (``None`` where not reported). May raise DeviceLost."""
        if device.is_mig:
            # A MIG instance answers only memory questions; asking the rest would only log
            # a line per metric per instance.
            return dict(self._memory(device))
        metrics: dict[str, Number] = {}
        for buffer_name, mean_name, max_name, scale in _SAMPLE_BUFFERS:
            metrics.update(self._sampled(device, buffer_name, mean_name, max_name, scale))
        metrics.update(self._memory(device))
        metrics.update(self._field_values(device))
        for metric, functions, args, scale in self._scalars:
            attempts = [(name, device.handle, *args) for name in functions]
            metrics[metric] = _scaled(self._guard.call(device.uuid, metric, *attempts), scale)
        metrics["performance_state"] = self._performance_state(device)
        metrics["retired_pages_count"] = self._retired_pages(device)
        metrics.update(self._remapped_rows(device))
        metrics.update(self.gpm(device))
        return metrics

    def _sampled(
        self, device: TrackedDevice, buffer_name: str, mean_name: str, max_name: str, scale: float
    ) -> dict[str, Number]:
        """Mean and max over the samples the driver took since the last poll."""
        sample_type = getattr(self._lib, buffer_name)
        last_seen = device.sample_timestamps.get(sample_type, 0)
        # NOT_FOUND here means "no sample newer than last_seen": the guard returns None then.
        attempt = ("nvmlDeviceGetSamples", device.handle, sample_type, last_seen)
        result = self._guard.call(device.uuid, f"{mean_name} samples", attempt)
        values: list[float] = []
        if result is not None:
            value_type, samples = result
            for sample in samples:
                if sample.timeStamp <= last_seen:
                    continue  # the driver's buffer is circular; keep only what is new
                value = sample_value(self._lib, value_type, sample.sampleValue)
                if value is not None:
                    values.append(value * scale)
                last_seen = max(last_seen, sample.timeStamp)
            device.sample_timestamps[sample_type] = last_seen
        if values:
            return {mean_name: sum(values) / len(values), max_name: max(values)}
        instant = self._instant(device, buffer_name)
        return {mean_name: _scaled(instant, scale), max_name: _scaled(instant, scale)}

    def _instant(self, device: TrackedDevice, buffer_name: str) -> Any:
        """The driver's current value, for when its sample buffer has nothing new."""
        if buffer_name == "NVML_TOTAL_POWER_SAMPLES":
            return self._guard.call(
                device.uuid, "power_watts", ("nvmlDeviceGetPowerUsage", device.handle)
            )
        rates = self._guard.call(
            device.uuid, "utilization_rates", ("nvmlDeviceGetUtilizationRates", device.handle)
        )
        if rates is None:
            return None
        return rates.gpu if buffer_name == "NVML_GPU_UTILIZATION_SAMPLES" else rates.memory

    def _memory(self, device: TrackedDevice) -> dict[str, Number]:
        # The v2 struct adds "reserved" (driver-reserved memory); drivers before R510 lack it.
        version = getattr(self._lib, "nvmlMemory_v2", None)
        attempts: list[tuple[Any, ...]] = [("nvmlDeviceGetMemoryInfo", device.handle)]
        if version is not None:
            attempts.insert(0, ("nvmlDeviceGetMemoryInfo", device.handle, version))
        info = self._guard.call(device.uuid, "memory", *attempts)
        if info is None:
            return {}
        return {
            "memory_used_bytes": info.used,
            "memory_free_bytes": info.free,
            "memory_reserved_bytes": getattr(info, "reserved", None),
            "memory_total_bytes": info.total,
        }

    def _field_values(self, device: TrackedDevice) -> dict[str, Number]:
        """Instant power and memory temperature, asked in one field-values call."""
        wanted = [
            (metric, getattr(self._lib, constant), scale)
            for metric, constant, scale in _FIELDS
            if hasattr(self._lib, constant) and not self._guard.is_unsupported(device.uuid, metric)
        ]
        if not wanted:
            return {}
        ids = [field_id for _, field_id, _ in wanted]
        values = self._guard.call(
            device.uuid, "field_values", ("nvmlDeviceGetFieldValues", device.handle, ids)
        )
        if values is None:
            return {}
        metrics: dict[str, Number] = {}
        for (metric, _, scale), value in zip(wanted, values, strict=False):
            # Each field carries its own return code: one unsupported field is not an error.
            if value.nvmlReturn == self._lib.NVML_SUCCESS:
                number = sample_value(self._lib, value.valueType, value.value)
                metrics[metric] = _scaled(number, scale)
            elif value.nvmlReturn == self._lib.NVML_ERROR_NOT_SUPPORTED:
                self._guard.mark_unsupported(device.uuid, metric, "field not supported")
        return metrics

    def _performance_state(self, device: TrackedDevice) -> Number:
        state = self._guard.call(
            device.uuid,
            "performance_state",
            ("nvmlDeviceGetPerformanceState", device.handle),
            ("nvmlDeviceGetPowerState", device.handle),
        )
        # NVML_PSTATE_UNKNOWN (32) means the driver does not know it.
        return None if state is None or state == self._lib.NVML_PSTATE_UNKNOWN else state

    def _retired_pages(self, device: TrackedDevice) -> Number:
        total = 0
        for cause in (
            self._lib.NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS,
            self._lib.NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR,
        ):
            pages = self._guard.call(
                device.uuid, "retired_pages", ("nvmlDeviceGetRetiredPages", device.handle, cause)
            )
            if pages is None:
                return None
            total += len(pages)
        return total

    def _remapped_rows(self, device: TrackedDevice) -> dict[str, Number]:
        # (correctable, uncorrectable, pending, failure); only Ampere and newer remap rows.
        rows = self._guard.call(
            device.uuid, "remapped_rows", ("nvmlDeviceGetRemappedRows", device.handle)
        )
        if rows is None:
            return {}
        correctable, uncorrectable, pending, _failure = rows
        return {
            "remapped_rows_correctable_count": correctable,
            "remapped_rows_uncorrectable_count": uncorrectable,
            "remapped_rows_pending_count": int(pending),
        }

    def gpm(self, device: TrackedDevice) -> dict[str, Number]:
        """GPM metrics between the previous poll's sample and a new one (none on the first)."""
        if not device.gpm_supported:
            return {}
        if not device.gpm_samples:
            first = self._guard.call(device.uuid, "gpm", ("nvmlGpmSampleAlloc",))
            second = self._guard.call(device.uuid, "gpm", ("nvmlGpmSampleAlloc",))
            if first is None or second is None:
                return {}
            device.gpm_samples = [first, second]
        previous, current = device.gpm_samples
        taken = self._guard.call(device.uuid, "gpm", ("nvmlGpmSampleGet", device.handle, current))
        if taken is None:
            device.has_gpm_baseline = False
            return {}
        device.gpm_samples = [current, previous]  # this sample is the next poll's baseline
        if not device.has_gpm_baseline:
            device.has_gpm_baseline = True
            return {}
        return self._gpm_metrics(device, previous, current)

    def _gpm_metrics(self, device: TrackedDevice, previous: Any, current: Any) -> dict[str, Number]:
        request = self._lib.c_nvmlGpmMetricsGet_t()
        request.version = self._lib.NVML_GPM_METRICS_GET_VERSION
        request.numMetrics = len(_GPM_METRICS)
        request.sample1 = previous
        request.sample2 = current
        for i, (_, constant) in enumerate(_GPM_METRICS):
            request.metrics[i].metricId = getattr(self._lib, constant)
        result = self._guard.call(device.uuid, "gpm", ("nvmlGpmMetricsGet", request))
        if result is None:
            return {}
        metrics: dict[str, Number] = {}
        for i, (metric, _) in enumerate(_GPM_METRICS):
            entry = result.metrics[i]
            metrics[metric] = entry.value if entry.nvmlReturn == self._lib.NVML_SUCCESS else None
        return metrics

    def free_gpm(self, device: TrackedDevice) -> None:
        """Free the device's GPM sample buffers (at close)."""
        for sample in device.gpm_samples:
            with contextlib.suppress(self._lib.NVMLError):  # NVML is shutting down anyway
                self._lib.nvmlGpmSampleFree(sample)
        device.gpm_samples = []
        device.has_gpm_baseline = False
