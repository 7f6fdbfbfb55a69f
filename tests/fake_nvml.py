"""A fake ``pynvml`` module for tests: shaped like the real one, with scripted devices.

:class:`FakeNvml` re-exports the real pynvml's constants, error classes and ctypes structs,
so an error is raised the real way (``pynvml.NVMLError(code)`` gives the subclass) and a
returned struct has the real attribute names. The functions :mod:`monitor.collector.nvml` calls are
implemented over :class:`FakeDevice` objects; any other ``nvml*`` function raises
``NVMLError_FunctionNotFound``, as with an old driver.

A device's handle is the :class:`FakeDevice` itself.
"""

from __future__ import annotations

import ctypes
from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pynvml

_EXPORTED_PREFIXES = ("NVML", "nvmlEventType", "nvmlClocks", "nvmlMemory_v", "c_nvml", "nvmlPci")


def nvml_error(code: int) -> pynvml.NVMLError:
    """The exception the real pynvml raises for ``code`` (an ``NVMLError_*`` subclass)."""
    return pynvml.NVMLError(code)


@dataclass(eq=False)
class FakeDevice:
    """One scripted GPU (or MIG instance). Units are NVML's own: mW, mJ, KB/s."""

    uuid: str
    index: int = 0
    name: str = "NVIDIA H100 80GB HBM3"
    pci_bus_id: str = "00000000:01:00.0"
    serial: str = "1650123456789"
    memory_total: int = 80 * 2**30
    memory_used: int = 10 * 2**30
    memory_reserved: int = 2**29
    power_limit_mw: int = 700_000
    power_usage_mw: int = 250_000
    power_instant_mw: int | None = 260_500
    energy_mj: int = 5_000_000
    temperature: int = 45
    memory_temperature: int | None = 50
    clocks_mhz: dict[int, int] = field(
        default_factory=lambda: {
            pynvml.NVML_CLOCK_SM: 1980,
            pynvml.NVML_CLOCK_MEM: 2619,
            pynvml.NVML_CLOCK_GRAPHICS: 1980,
        }
    )
    fan_percent: int = 30
    pstate: int = 0
    pcie_kb_per_second: dict[int, int] = field(
        default_factory=lambda: {
            pynvml.NVML_PCIE_UTIL_TX_BYTES: 100,
            pynvml.NVML_PCIE_UTIL_RX_BYTES: 200,
        }
    )
    utilization: tuple[int, int] = (70, 40)  # (gpu, memory) percent, the "instant" rates
    clock_event_reasons: int = pynvml.nvmlClocksEventReasonSwPowerCap
    ecc_corrected: int = 3
    ecc_uncorrected: int = 0
    retired_pages: dict[int, list[int]] = field(default_factory=dict)
    retired_pending: int = 0
    remapped_rows: tuple[int, int, int, int] = (2, 0, 1, 0)
    compute_capability: tuple[int, int] = (9, 0)
    mig_mode: int | None = None  # None: MIG not supported
    mig_slots: list[FakeDevice | None] = field(default_factory=list)
    compute_processes: list[tuple[int, int | None]] = field(default_factory=list)
    graphics_processes: list[tuple[int, int | None]] = field(default_factory=list)
    process_samples: list[tuple[int, int, int, int]] = field(default_factory=list)  # pid,ts,sm,mem
    # sample type -> [(timestamp_us, value)], and the value type the driver reports them in
    samples: dict[int, list[tuple[int, float]]] = field(default_factory=dict)
    sample_value_type: int = pynvml.NVML_VALUE_TYPE_UNSIGNED_INT
    gpm_supported: bool = True
    gpm_values: dict[int, float] = field(default_factory=dict)  # metric id -> next value
    unsupported: set[str] = field(default_factory=set)  # functions answering NOT_SUPPORTED
    missing: set[str] = field(default_factory=set)  # functions answering FUNCTION_NOT_FOUND
    lost: bool = False  # every call answers GPU_IS_LOST until revived
    unknown_every: int = 0  # every Nth call of a function answers UNKNOWN
    calls: Counter[str] = field(default_factory=Counter)
    sample_requests: list[tuple[int, int]] = field(default_factory=list)  # (type, since)

    def add_samples(self, sample_type: int, *points: tuple[int, float]) -> None:
        """Append ``(timestamp_us, value)`` samples to the driver's buffer."""
        self.samples.setdefault(sample_type, []).extend(points)

    def enter(self, function: str) -> None:
        """Bookkeeping and scripted failures for one call on this device."""
        self.calls[function] += 1
        if self.lost:
            raise nvml_error(pynvml.NVML_ERROR_GPU_IS_LOST)
        if function in self.missing:
            raise nvml_error(pynvml.NVML_ERROR_FUNCTION_NOT_FOUND)
        if function in self.unsupported:
            raise nvml_error(pynvml.NVML_ERROR_NOT_SUPPORTED)
        if self.unknown_every and self.calls[function] % self.unknown_every == 0:
            raise nvml_error(pynvml.NVML_ERROR_UNKNOWN)


class FakeNvml:
    """A pynvml look-alike over scripted devices.

    ``init_error``: an ``NVML_ERROR_*`` code that ``nvmlInit`` raises (library missing, driver
    not loaded, version mismatch, ...). ``init_count``/``shutdown_count`` count the calls.
    """

    def __init__(self, devices: list[FakeDevice] | None = None, *, init_error: int | None = None):
        for name in dir(pynvml):
            if name.startswith(_EXPORTED_PREFIXES):
                setattr(self, name, getattr(pynvml, name))
        self.NVMLLibraryMismatchError = pynvml.NVMLLibraryMismatchError
        self.nvmlFriendlyObject = pynvml.nvmlFriendlyObject
        self.devices = list(devices or [])
        self.init_error = init_error
        self.init_count = 0
        self.shutdown_count = 0
        self.initialised = False
        self.events: list[tuple[FakeDevice, int]] = []  # queued (device, xid)
        self.event_sets_created = 0
        self.event_sets_freed = 0
        self.registered: list[FakeDevice] = []
        self.event_wait_timeouts: list[int] = []
        self.driver_version = "550.54.15"
        self.cuda_version = 12040
        self._gpm_buffers: dict[int, Any] = {}  # address -> the c_uint64 that backs a sample
        self.gpm_snapshots: dict[int, dict[int, float]] = {}  # address -> values at SampleGet
        self.gpm_freed = 0

    def __getattr__(self, name: str) -> Any:
        # Only reached for names not set above: an NVML function the fake does not implement.
        if name.startswith("nvml"):

            def missing(*args: Any, **kwargs: Any) -> Any:
                raise nvml_error(pynvml.NVML_ERROR_FUNCTION_NOT_FOUND)

            return missing
        raise AttributeError(name)

    # -- library ----------------------------------------------------------------------------
    def nvmlInit(self) -> None:
        self.init_count += 1
        if self.init_error is not None:
            raise nvml_error(self.init_error)
        self.initialised = True

    def nvmlShutdown(self) -> None:
        self._need_init()
        self.shutdown_count += 1
        self.initialised = False

    def _need_init(self) -> None:
        if not self.initialised:
            raise nvml_error(pynvml.NVML_ERROR_UNINITIALIZED)

    def nvmlSystemGetDriverVersion(self) -> str:
        self._need_init()
        return self.driver_version

    def nvmlSystemGetNVMLVersion(self) -> str:
        self._need_init()
        return "12.550.54.15"

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        self._need_init()
        return self.cuda_version

    # -- handles ----------------------------------------------------------------------------
    def nvmlDeviceGetCount(self) -> int:
        self._need_init()
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeDevice:
        self._need_init()
        for device in self.devices:
            if device.index == index:
                if device.lost:
                    raise nvml_error(pynvml.NVML_ERROR_GPU_IS_LOST)
                return device
        raise nvml_error(pynvml.NVML_ERROR_INVALID_ARGUMENT)

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> FakeDevice:
        self._need_init()
        for device in self._all_devices():
            if device.uuid == uuid and not device.lost:
                return device
        raise nvml_error(pynvml.NVML_ERROR_NOT_FOUND)

    def _all_devices(self) -> list[FakeDevice]:
        found = []
        for device in self.devices:
            found.append(device)
            found.extend(child for child in device.mig_slots if child is not None)
        return found

    def _call(self, handle: FakeDevice, function: str) -> FakeDevice:
        self._need_init()
        handle.enter(function)
        return handle

    # -- static facts -----------------------------------------------------------------------
    def nvmlDeviceGetUUID(self, handle: FakeDevice) -> str:
        return self._call(handle, "nvmlDeviceGetUUID").uuid

    def nvmlDeviceGetName(self, handle: FakeDevice) -> str:
        return self._call(handle, "nvmlDeviceGetName").name

    def nvmlDeviceGetIndex(self, handle: FakeDevice) -> int:
        return self._call(handle, "nvmlDeviceGetIndex").index

    def nvmlDeviceGetSerial(self, handle: FakeDevice) -> str:
        return self._call(handle, "nvmlDeviceGetSerial").serial

    def nvmlDeviceGetPciInfo(self, handle: FakeDevice) -> Any:
        device = self._call(handle, "nvmlDeviceGetPciInfo")
        info = pynvml.nvmlPciInfo_t()
        info.busId = device.pci_bus_id.encode()
        return info

    def nvmlDeviceGetCudaComputeCapability(self, handle: FakeDevice) -> tuple[int, int]:
        return self._call(handle, "nvmlDeviceGetCudaComputeCapability").compute_capability

    def nvmlDeviceGetMigMode(self, handle: FakeDevice) -> list[int]:
        device = self._call(handle, "nvmlDeviceGetMigMode")
        if device.mig_mode is None:
            raise nvml_error(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return [device.mig_mode, device.mig_mode]

    def nvmlDeviceGetMaxMigDeviceCount(self, handle: FakeDevice) -> int:
        return len(self._call(handle, "nvmlDeviceGetMaxMigDeviceCount").mig_slots)

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle: FakeDevice, index: int) -> FakeDevice:
        child = self._call(handle, "nvmlDeviceGetMigDeviceHandleByIndex").mig_slots[index]
        if child is None:
            raise nvml_error(pynvml.NVML_ERROR_NOT_FOUND)
        return child

    # -- readings ---------------------------------------------------------------------------
    def nvmlDeviceGetMemoryInfo(self, handle: FakeDevice, version: int | None = None) -> Any:
        device = self._call(handle, "nvmlDeviceGetMemoryInfo" + ("_v2" if version else ""))
        free = device.memory_total - device.memory_used - device.memory_reserved
        if not version:
            used = device.memory_used + device.memory_reserved  # v1 counts reserved as used
            return pynvml.c_nvmlMemory_t(total=device.memory_total, free=free, used=used)
        return pynvml.c_nvmlMemory_v2_t(
            version=version,
            total=device.memory_total,
            reserved=device.memory_reserved,
            free=free,
            used=device.memory_used,
        )

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: FakeDevice) -> int:
        return self._call(handle, "nvmlDeviceGetEnforcedPowerLimit").power_limit_mw

    def nvmlDeviceGetPowerUsage(self, handle: FakeDevice) -> int:
        return self._call(handle, "nvmlDeviceGetPowerUsage").power_usage_mw

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: FakeDevice) -> int:
        return self._call(handle, "nvmlDeviceGetTotalEnergyConsumption").energy_mj

    def nvmlDeviceGetTemperature(self, handle: FakeDevice, sensor: int) -> int:
        assert sensor == pynvml.NVML_TEMPERATURE_GPU
        return self._call(handle, "nvmlDeviceGetTemperature").temperature

    def nvmlDeviceGetClockInfo(self, handle: FakeDevice, clock_type: int) -> int:
        return self._call(handle, "nvmlDeviceGetClockInfo").clocks_mhz[clock_type]

    def nvmlDeviceGetFanSpeed(self, handle: FakeDevice) -> int:
        return self._call(handle, "nvmlDeviceGetFanSpeed").fan_percent

    def nvmlDeviceGetPerformanceState(self, handle: FakeDevice) -> int:
        return self._call(handle, "nvmlDeviceGetPerformanceState").pstate

    def nvmlDeviceGetPcieThroughput(self, handle: FakeDevice, counter: int) -> int:
        return self._call(handle, "nvmlDeviceGetPcieThroughput").pcie_kb_per_second[counter]

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: FakeDevice) -> int:
        return self._call(handle, "nvmlDeviceGetCurrentClocksEventReasons").clock_event_reasons

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle: FakeDevice) -> int:
        device = self._call(handle, "nvmlDeviceGetCurrentClocksThrottleReasons")
        return device.clock_event_reasons

    def nvmlDeviceGetTotalEccErrors(self, handle: FakeDevice, error_type: int, counter: int) -> int:
        device = self._call(handle, "nvmlDeviceGetTotalEccErrors")
        assert counter == pynvml.NVML_VOLATILE_ECC
        if error_type == pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED:
            return device.ecc_corrected
        return device.ecc_uncorrected

    def nvmlDeviceGetRetiredPages(self, handle: FakeDevice, cause: int) -> list[int]:
        return list(self._call(handle, "nvmlDeviceGetRetiredPages").retired_pages.get(cause, []))

    def nvmlDeviceGetRetiredPagesPendingStatus(self, handle: FakeDevice) -> int:
        return self._call(handle, "nvmlDeviceGetRetiredPagesPendingStatus").retired_pending

    def nvmlDeviceGetRemappedRows(self, handle: FakeDevice) -> tuple[int, int, int, int]:
        return self._call(handle, "nvmlDeviceGetRemappedRows").remapped_rows

    def nvmlDeviceGetUtilizationRates(self, handle: FakeDevice) -> Any:
        gpu, memory = self._call(handle, "nvmlDeviceGetUtilizationRates").utilization
        return pynvml.c_nvmlUtilization_t(gpu=gpu, memory=memory)

    def nvmlDeviceGetSamples(self, handle: FakeDevice, sample_type: int, since: int) -> Any:
        device = self._call(handle, "nvmlDeviceGetSamples")
        device.sample_requests.append((sample_type, since))
        newer = [(ts, v) for ts, v in device.samples.get(sample_type, []) if ts > since]
        if not newer:
            raise nvml_error(pynvml.NVML_ERROR_NOT_FOUND)  # real NVML: nothing newer than since
        samples = []
        for timestamp, value in newer:
            sample = pynvml.c_nvmlSample_t()
            sample.timeStamp = timestamp
            _set_union(sample.sampleValue, device.sample_value_type, value)
            samples.append(sample)
        return device.sample_value_type, samples

    def nvmlDeviceGetFieldValues(self, handle: FakeDevice, field_ids: list[int]) -> Any:
        device = self._call(handle, "nvmlDeviceGetFieldValues")
        known = {
            pynvml.NVML_FI_DEV_POWER_INSTANT: device.power_instant_mw,
            pynvml.NVML_FI_DEV_MEMORY_TEMP: device.memory_temperature,
        }
        values = (pynvml.c_nvmlFieldValue_t * len(field_ids))()
        for slot, field_id in zip(values, field_ids, strict=True):
            slot.fieldId = field_id
            value = known.get(field_id)
            if value is None:
                slot.nvmlReturn = pynvml.NVML_ERROR_NOT_SUPPORTED
                continue
            slot.nvmlReturn = pynvml.NVML_SUCCESS
            slot.valueType = pynvml.NVML_VALUE_TYPE_UNSIGNED_INT
            slot.value.uiVal = value
        return values

    def nvmlDeviceGetComputeRunningProcesses(self, handle: FakeDevice) -> list[Any]:
        device = self._call(handle, "nvmlDeviceGetComputeRunningProcesses")
        if "nvmlDeviceGetComputeRunningProcesses_v3" in device.missing:
            # What pynvml's @throwOnVersionMismatch wrapper does on a pre-R510 driver.
            raise pynvml.NVMLLibraryMismatchError("Unversioned function called ...")
        return [_process(pid, memory) for pid, memory in device.compute_processes]

    def nvmlDeviceGetComputeRunningProcesses_v2(self, handle: FakeDevice) -> list[Any]:
        device = self._call(handle, "nvmlDeviceGetComputeRunningProcesses_v2")
        return [_process(pid, memory) for pid, memory in device.compute_processes]

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: FakeDevice) -> list[Any]:
        device = self._call(handle, "nvmlDeviceGetGraphicsRunningProcesses")
        return [_process(pid, memory) for pid, memory in device.graphics_processes]

    def nvmlDeviceGetProcessUtilization(self, handle: FakeDevice, since: int) -> list[Any]:
        device = self._call(handle, "nvmlDeviceGetProcessUtilization")
        newer = [s for s in device.process_samples if s[1] > since]
        if not newer:
            raise nvml_error(pynvml.NVML_ERROR_NOT_FOUND)
        return [
            pynvml.c_nvmlProcessUtilizationSample_t(pid=pid, timeStamp=ts, smUtil=sm, memUtil=mem)
            for pid, ts, sm, mem in newer
        ]

    # -- events -----------------------------------------------------------------------------
    def nvmlEventSetCreate(self) -> object:
        self._need_init()
        self.event_sets_created += 1
        return object()

    def nvmlDeviceRegisterEvents(self, handle: FakeDevice, types: int, event_set: object) -> None:
        self._call(handle, "nvmlDeviceRegisterEvents")
        assert types & pynvml.nvmlEventTypeXidCriticalError
        self.registered.append(handle)

    def nvmlEventSetWait_v2(self, event_set: object, timeout_ms: int) -> Any:
        self._need_init()
        self.event_wait_timeouts.append(timeout_ms)
        if not self.events:
            raise nvml_error(pynvml.NVML_ERROR_TIMEOUT)
        device, xid = self.events.pop(0)
        return SimpleNamespace(
            device=device,
            eventType=pynvml.nvmlEventTypeXidCriticalError,
            eventData=xid,
            gpuInstanceId=0xFFFFFFFF,
            computeInstanceId=0xFFFFFFFF,
        )

    def nvmlEventSetFree(self, event_set: object) -> None:
        self._need_init()
        self.event_sets_freed += 1

    # -- GPM --------------------------------------------------------------------------------
    def nvmlGpmQueryDeviceSupport(self, handle: FakeDevice) -> Any:
        device = self._call(handle, "nvmlGpmQueryDeviceSupport")
        support = pynvml.c_nvmlGpmSupport_t()
        support.version = pynvml.NVML_GPM_SUPPORT_VERSION
        support.isSupportedDevice = int(device.gpm_supported)
        return support

    def nvmlGpmSampleAlloc(self) -> Any:
        # A real sample is an opaque pointer; back each fake one by its own buffer so that
        # the pointers stored in a real c_nvmlGpmMetricsGet_t can be told apart.
        self._need_init()
        buffer = ctypes.c_uint64(0)
        address = ctypes.addressof(buffer)
        self._gpm_buffers[address] = buffer
        return ctypes.cast(ctypes.pointer(buffer), pynvml.c_nvmlGpmSample_t)

    def nvmlGpmSampleGet(self, handle: FakeDevice, sample: Any) -> Any:
        device = self._call(handle, "nvmlGpmSampleGet")
        self.gpm_snapshots[_address(sample)] = dict(device.gpm_values)
        return sample

    def nvmlGpmMetricsGet(self, request: Any) -> Any:
        self._need_init()
        assert request.version == pynvml.NVML_GPM_METRICS_GET_VERSION
        first = self.gpm_snapshots[_address(request.sample1)]
        second = self.gpm_snapshots[_address(request.sample2)]
        assert first is not second
        for i in range(request.numMetrics):
            metric = request.metrics[i]
            if metric.metricId in second:
                metric.value = second[metric.metricId]
                metric.nvmlReturn = pynvml.NVML_SUCCESS
            else:
                metric.nvmlReturn = pynvml.NVML_ERROR_NOT_SUPPORTED
        return request

    def nvmlGpmSampleFree(self, sample: Any) -> None:
        self._need_init()
        del self._gpm_buffers[_address(sample)]
        self.gpm_freed += 1


def _address(sample: Any) -> int:
    address = ctypes.cast(sample, ctypes.c_void_p).value
    assert address is not None, "a GPM sample that was never allocated"
    return address


def _process(pid: int, used_memory: int | None) -> Any:
    # pynvml returns nvmlFriendlyObject copies of c_nvmlProcessInfo_v3_t, with usedGpuMemory
    # already None where NVML said NVML_VALUE_NOT_AVAILABLE.
    return pynvml.nvmlFriendlyObject(
        {
            "pid": pid,
            "usedGpuMemory": used_memory,
            "gpuInstanceId": 0xFFFFFFFF,
            "computeInstanceId": 0xFFFFFFFF,
        }
    )


_UNION_MEMBER = {
    pynvml.NVML_VALUE_TYPE_DOUBLE: "dVal",
    pynvml.NVML_VALUE_TYPE_UNSIGNED_INT: "uiVal",
    pynvml.NVML_VALUE_TYPE_UNSIGNED_LONG: "ulVal",
    pynvml.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG: "ullVal",
    pynvml.NVML_VALUE_TYPE_SIGNED_LONG_LONG: "sllVal",
    pynvml.NVML_VALUE_TYPE_SIGNED_INT: "siVal",
    pynvml.NVML_VALUE_TYPE_UNSIGNED_SHORT: "usVal",
}


def _set_union(union: Any, value_type: int, value: float) -> None:
    member = _UNION_MEMBER[value_type]
    setattr(union, member, value if member == "dVal" else int(value))
