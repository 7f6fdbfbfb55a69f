"""The NVML source: real GPUs through NVIDIA's management library (``nvidia-ml-py``).

This is the only module that imports ``pynvml``; the module object is an argument of
:class:`NvmlSource` (the real one by default), and is handed down to
:mod:`monitor.collector.nvml_guard` and :mod:`monitor.collector.nvml_metrics`, so tests pass a fake
one.

How NVML's failures show above this module:

- the library cannot start (no driver, driver not loaded, version mismatch, no permission):
  :meth:`NvmlSource.open` raises :class:`monitor.core.errors.DriverUnavailable` with one line that
  says what to do;
- a metric a device does not support, or an intermittent error: the value is ``None``
  (intermittent errors are counted in :attr:`Poll.error_count`);
- a GPU that falls off the bus: it is listed in :attr:`Poll.lost`, the other GPUs are read as
  usual, and every later poll looks for it again by UUID (:attr:`Poll.reacquired`).
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Hashable
from typing import Any

import pynvml

from monitor.collector.nvml_guard import CallGuard, DeviceLost
from monitor.collector.nvml_metrics import MetricReader, TrackedDevice
from monitor.collector.nvml_processes import ProcessLister
from monitor.collector.procinfo import ProcReader
from monitor.core.errors import DriverUnavailable
from monitor.core.metrics import SOURCE_METRIC_NAMES, Number
from monitor.core.source import (
    DeviceFacts,
    GpuReading,
    Poll,
    SystemFacts,
    XidReading,
)

__all__ = ["NvmlSource"]

log = logging.getLogger(__name__)

_SIMULATE_HINT = "or run with --simulate N for simulated GPUs"
# A storm of XIDs must not keep one poll busy; the rest are read next poll.
_MAX_EVENTS_PER_POLL = 256


def _init_failure(lib: Any, error: Any) -> str:
    """One line saying why NVML cannot start and what to do about it."""
    messages = {
        lib.NVML_ERROR_LIBRARY_NOT_FOUND: "NVIDIA driver library (libnvidia-ml.so.1) not found: "
        f"install the NVIDIA driver, {_SIMULATE_HINT}",
        lib.NVML_ERROR_DRIVER_NOT_LOADED: "NVIDIA driver is installed but not loaded: load the "
        f"kernel module (`sudo modprobe nvidia`, check `nvidia-smi`), {_SIMULATE_HINT}",
        lib.NVML_ERROR_LIB_RM_VERSION_MISMATCH: "driver/library version mismatch: the kernel "
        "module and libnvidia-ml differ — reboot or reload the nvidia module",
        lib.NVML_ERROR_NO_PERMISSION: "no permission to use the NVIDIA driver (/dev/nvidia*): "
        f"run as a user with access to the GPU devices, {_SIMULATE_HINT}",
    }
    return messages.get(
        error.value,
        f"NVML failed to start ({error}): check that `nvidia-smi` works, {_SIMULATE_HINT}",
    )


def _handle_key(handle: Any) -> Hashable:
    """A key equal for two handles of one device (ctypes pointers compare by identity)."""
    try:
        return ctypes.cast(handle, ctypes.c_void_p).value
    except (ctypes.ArgumentError, TypeError):
        return id(handle)  # not a ctypes pointer (a test's fake handle)


def _cuda_version(version: int | None) -> str | None:
    # NVML encodes CUDA 12.4 as 12040.
    return None if version is None else f"{version // 1000}.{version % 1000 // 10}"


class NvmlSource:
    """A :class:`monitor.core.source.GpuSource` reading real GPUs through NVML.

    ``lib`` is the pynvml module (tests pass a fake); ``proc`` describes process ids.
    ``open`` initialises NVML once: calling it again while open returns the same facts without
    a second ``nvmlInit``. ``close`` shuts NVML down and may be called twice; a closed source
    can be opened again.
    """

    def __init__(self, lib: Any = pynvml, proc: ProcReader | None = None) -> None:
        self._lib = lib
        self._proc = proc if proc is not None else ProcReader()
        self._guard = CallGuard(lib)
        self._metrics = MetricReader(lib, self._guard)
        self._processes = ProcessLister(lib, self._guard, self._proc)
        self._facts: SystemFacts | None = None
        self._devices: list[TrackedDevice] = []
        self._event_set: Any = None
        self._uuid_by_handle: dict[Hashable, str] = {}

    @property
    def is_simulated(self) -> bool:
        """Always ``False``: these are real GPUs."""
        return False

    def open(self) -> SystemFacts:
        """Start NVML and find the GPUs (and MIG instances). Raises DriverUnavailable."""
        if self._facts is not None:
            return self._facts
        lib = self._lib
        try:
            lib.nvmlInit()
        except lib.NVMLError as error:
            raise DriverUnavailable(_init_failure(lib, error)) from error
        try:
            count = lib.nvmlDeviceGetCount()
        except lib.NVMLError as error:
            self._shutdown()
            raise DriverUnavailable(_init_failure(lib, error)) from error
        notes: list[str] = [] if count else ["NVML found no GPUs on this machine"]
        self._devices = self._enumerate(count, notes)
        self._watch_xids(notes)
        self._probe_gpm(notes)
        self._facts = SystemFacts(
            devices=tuple(device.facts for device in self._devices),
            driver_version=self._system("nvmlSystemGetDriverVersion"),
            nvml_version=self._system("nvmlSystemGetNVMLVersion"),
            cuda_driver_version=_cuda_version(self._system("nvmlSystemGetCudaDriverVersion")),
            notes=tuple(notes),
        )
        return self._facts

    def poll(self) -> Poll:
        """Read every device once. Never raises for one device's trouble."""
        if self._facts is None:
            raise RuntimeError("NvmlSource.poll() called before open()")
        self._guard.start_poll()
        readings: list[GpuReading] = []
        lost: dict[str, str] = {}
        reacquired: list[DeviceFacts] = []
        for device in self._devices:
            if device.lost_reason is not None:
                facts = self._reacquire(device)
                if facts is None:
                    lost[device.uuid] = device.lost_reason
                    continue
                reacquired.append(facts)
            try:
                readings.append(self._read(device))
            except DeviceLost as exc:
                self._mark_lost(device, exc.reason)
                lost[device.uuid] = exc.reason
        xids = self._drain_xids()
        self._proc.retain(process.pid for reading in readings for process in reading.processes)
        return Poll(
            readings=tuple(readings),
            lost=lost,
            xids=xids,
            reacquired=tuple(reacquired),
            error_count=self._guard.error_count,
        )

    def close(self) -> None:
        """Free GPM samples and the event set and shut NVML down. Safe to call twice."""
        if self._facts is None:
            return
        for device in self._devices:
            self._metrics.free_gpm(device)
        if self._event_set is not None:
            try:
                self._lib.nvmlEventSetFree(self._event_set)
            except self._lib.NVMLError as error:
                log.debug("freeing the NVML event set failed: %s", error)
            self._event_set = None
        self._devices = []
        self._uuid_by_handle = {}
        self._facts = None
        self._shutdown()

    def _shutdown(self) -> None:
        try:
            self._lib.nvmlShutdown()
        except self._lib.NVMLError as error:
            log.debug("nvmlShutdown failed: %s", error)

    def _system(self, name: str) -> Any:
        try:
            return getattr(self._lib, name)()
        except (self._lib.NVMLError, AttributeError) as error:
            log.info("%s not available: %s", name, error)
            return None

    def _enumerate(self, count: int, notes: list[str]) -> list[TrackedDevice]:
        devices: list[TrackedDevice] = []
        for index in range(count):
            try:
                handle = self._lib.nvmlDeviceGetHandleByIndex(index)
                facts = self._describe(handle, index)
                instances = self._mig_instances(facts, handle) if facts.mig_mode else []
            except (self._lib.NVMLError, DeviceLost) as error:
                # Typical in containers given only some GPUs: NO_PERMISSION for the others.
                notes.append(f"GPU at index {index} cannot be read ({error}): not monitored")
                continue
            devices.append(TrackedDevice(facts, handle))
            devices.extend(instances)
        return devices

    def _describe(self, handle: Any, index: int, parent_uuid: str | None = None) -> DeviceFacts:
        """Static facts of a device. Raises NVMLError if even its UUID is unknown."""
        uuid = str(self._lib.nvmlDeviceGetUUID(handle))

        def ask(reading: str, name: str, *args: Any) -> Any:
            return self._guard.call(uuid, reading, (name, handle, *args))

        is_physical = parent_uuid is None
        pci = ask("pci_info", "nvmlDeviceGetPciInfo")
        memory = ask("memory", "nvmlDeviceGetMemoryInfo")
        limit_mw = (
            ask("power_limit_watts", "nvmlDeviceGetEnforcedPowerLimit") if is_physical else None
        )
        capability = ask("compute_capability", "nvmlDeviceGetCudaComputeCapability")
        mig = ask("mig_mode", "nvmlDeviceGetMigMode") if is_physical else None
        return DeviceFacts(
            uuid=uuid,
            index=index,
            name=str(ask("name", "nvmlDeviceGetName") or "unknown NVIDIA device"),
            pci_bus_id=pci.busId if pci is not None else None,
            serial=ask("serial", "nvmlDeviceGetSerial") if is_physical else None,
            memory_total_bytes=memory.total if memory is not None else None,
            power_limit_watts=limit_mw / 1000 if limit_mw is not None else None,
            compute_capability=f"{capability[0]}.{capability[1]}" if capability else None,
            mig_mode=mig[0] == self._lib.NVML_DEVICE_MIG_ENABLE if mig is not None else None,
            parent_uuid=parent_uuid,
        )

    def _mig_instances(self, parent: DeviceFacts, handle: Any) -> list[TrackedDevice]:
        slots = self._guard.call(parent.uuid, "mig", ("nvmlDeviceGetMaxMigDeviceCount", handle))
        instances: list[TrackedDevice] = []
        for slot in range(slots or 0):
            # Slots without an instance answer NOT_FOUND, which the guard turns into None.
            mig_handle = self._guard.call(
                parent.uuid, "mig", ("nvmlDeviceGetMigDeviceHandleByIndex", handle, slot)
            )
            if mig_handle is not None:
                facts = self._describe(mig_handle, slot, parent_uuid=parent.uuid)
                instances.append(TrackedDevice(facts, mig_handle))
        return instances

    def _watch_xids(self, notes: list[str]) -> None:
        try:
            self._event_set = self._lib.nvmlEventSetCreate()
        except self._lib.NVMLError as error:
            notes.append(f"XID events not available ({error}): XID errors are not recorded")
            return
        for device in self._devices:
            if not device.is_mig:  # a MIG instance's XIDs arrive through its parent
                self._register_xids(device, notes)

    def _register_xids(self, device: TrackedDevice, notes: list[str]) -> None:
        self._uuid_by_handle[_handle_key(device.handle)] = device.uuid
        try:
            self._lib.nvmlDeviceRegisterEvents(
                device.handle, self._lib.nvmlEventTypeXidCriticalError, self._event_set
            )
        except self._lib.NVMLError as error:
            notes.append(
                f"XID events not supported on {device.facts.name} ({device.uuid}): {error}"
            )

    def _probe_gpm(self, notes: list[str]) -> None:
        for device in self._devices:
            if device.is_mig:
                continue  # GPM per MIG instance needs nvmlGpmMigSampleGet; not read yet
            try:
                support = self._guard.call(
                    device.uuid, "gpm", ("nvmlGpmQueryDeviceSupport", device.handle)
                )
            except DeviceLost:
                support = None
            device.gpm_supported = bool(support is not None and support.isSupportedDevice)
            if not device.gpm_supported:
                notes.append(
                    f"GPM metrics not supported on {device.facts.name} ({device.uuid}): "
                    "gpm_* columns stay empty"
                )

    def _read(self, device: TrackedDevice) -> GpuReading:
        metrics: dict[str, Number] = dict.fromkeys(SOURCE_METRIC_NAMES)
        metrics.update(self._metrics.read(device))
        return GpuReading(uuid=device.uuid, metrics=metrics, processes=self._processes.read(device))

    def _drain_xids(self) -> tuple[XidReading, ...]:
        """XID events queued since the last poll, without waiting for new ones."""
        if self._event_set is None:
            return ()
        lib = self._lib
        xids: list[XidReading] = []
        # nvmlEventSetWait_v2 returns the event data; older bindings only have the v1 name.
        wait = getattr(lib, "nvmlEventSetWait_v2", None) or lib.nvmlEventSetWait
        for _ in range(_MAX_EVENTS_PER_POLL):
            try:
                event = wait(self._event_set, 0)
            except lib.NVMLError as error:
                if error.value != lib.NVML_ERROR_TIMEOUT:  # TIMEOUT: the queue is empty
                    self._guard.error_count += 1
                    log.debug("reading NVML events failed: %s", error)
                break
            if event.eventType & lib.nvmlEventTypeXidCriticalError:
                uuid = self._event_uuid(event.device)
                xids.append(XidReading(uuid=uuid, xid=int(event.eventData)))
        return tuple(xids)

    def _event_uuid(self, handle: Any) -> str:
        uuid = self._uuid_by_handle.get(_handle_key(handle))
        if uuid is None:
            try:
                uuid = str(self._lib.nvmlDeviceGetUUID(handle))
            except self._lib.NVMLError:
                uuid = "unknown"
        return uuid

    def _mark_lost(self, device: TrackedDevice, reason: str) -> None:
        log.warning(
            "GPU %s (%s) stopped answering: %s; looking for it again by UUID every poll",
            device.uuid,
            device.facts.name,
            reason,
        )
        device.lost_reason = reason
        device.has_gpm_baseline = False

    def _reacquire(self, device: TrackedDevice) -> DeviceFacts | None:
        """Find a lost device again by UUID; its facts, refreshed, or ``None`` if still gone."""
        try:
            handle = self._lib.nvmlDeviceGetHandleByUUID(device.uuid)
            index = device.facts.index
            if not device.is_mig:  # the index may have changed (a reset, a reboot of the bus)
                found = self._guard.call(device.uuid, "index", ("nvmlDeviceGetIndex", handle))
                index = found if found is not None else index
            facts = self._describe(handle, index, device.facts.parent_uuid)
        except (self._lib.NVMLError, DeviceLost):
            return None
        log.warning("GPU %s answers again, at index %d", device.uuid, facts.index)
        # Sample timestamps are kept: they are host clock microseconds, valid across a reset.
        device.facts, device.handle, device.lost_reason = facts, handle, None
        if self._event_set is not None and not device.is_mig:
            self._register_xids(device, [])
        return facts
