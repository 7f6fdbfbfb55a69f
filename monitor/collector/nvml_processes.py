"""The processes on one GPU: NVML's pids and memory, its per-process utilization, and ``/proc``.

:class:`ProcessLister` receives the pynvml module (``lib``), the :class:`CallGuard` every NVML call
goes through, and a :class:`monitor.collector.procinfo.ProcReader`. Only
:mod:`monitor.collector.nvml` imports pynvml.
"""

from __future__ import annotations

from typing import Any

from monitor.collector.nvml_guard import CallGuard
from monitor.collector.nvml_metrics import TrackedDevice
from monitor.collector.procinfo import ProcInfo, ProcReader
from monitor.core.source import ProcessReading

__all__ = ["ProcessLister"]

# The unversioned wrappers call the newest struct version (_v3, driver R510+); an older driver
# lacks it, and pynvml then raises NVMLLibraryMismatchError: the guard moves on to _v2.
_PROCESS_LISTS = (
    (
        "compute",
        ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetComputeRunningProcesses_v2"),
    ),
    (
        "graphics",
        ("nvmlDeviceGetGraphicsRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses_v2"),
    ),
)


class ProcessLister:
    """Lists the compute and graphics processes of a device, described from ``/proc``."""

    def __init__(self, lib: Any, guard: CallGuard, proc: ProcReader) -> None:
        self._lib = lib
        self._guard = guard
        self._proc = proc
        self._not_available = lib.NVML_VALUE_NOT_AVAILABLE_ulonglong.value

    def read(self, device: TrackedDevice) -> tuple[ProcessReading, ...]:
        """The processes on ``device``, by pid. May raise DeviceLost."""
        listed: dict[int, tuple[int | None, str]] = {}
        for kind, functions in _PROCESS_LISTS:
            attempts = [(name, device.handle) for name in functions]
            for process in self._guard.call(device.uuid, f"{kind} processes", *attempts) or ():
                memory = process.usedGpuMemory
                # Unknown memory (Windows WDDM, some MIG setups) is NVML_VALUE_NOT_AVAILABLE;
                # pynvml turns it into None, but only in its newer wrappers.
                if memory is not None and memory >= self._not_available:
                    memory = None
                listed.setdefault(process.pid, (memory, kind))  # compute wins for "C+G"
        if not listed:
            return ()
        utilization = self._utilization(device)
        return tuple(
            _reading(pid, memory, kind, utilization.get(pid), self._proc.describe(pid))
            for pid, (memory, kind) in sorted(listed.items())
        )

    def _utilization(self, device: TrackedDevice) -> dict[int, tuple[float, float]]:
        """Mean SM and memory utilization per pid over the samples new since the last poll."""
        since = device.process_timestamp
        samples = self._guard.call(
            device.uuid,
            "process utilization",
            ("nvmlDeviceGetProcessUtilization", device.handle, since),
        )  # NOT_FOUND (no sample newer than since) comes back as None
        sums: dict[int, list[float]] = {}
        for sample in samples or ():
            if sample.timeStamp <= since:
                continue
            device.process_timestamp = max(device.process_timestamp, sample.timeStamp)
            total = sums.setdefault(sample.pid, [0.0, 0.0, 0.0])
            total[0] += sample.smUtil
            total[1] += sample.memUtil
            total[2] += 1
        return {pid: (sm / n, mem / n) for pid, (sm, mem, n) in sums.items()}


def _reading(
    pid: int,
    memory: int | None,
    kind: str,
    utilization: tuple[float, float] | None,
    info: ProcInfo | None,  # None: the process is gone, or a host pid hidden from this /proc
) -> ProcessReading:
    sm_percent, memory_percent = utilization if utilization is not None else (None, None)
    return ProcessReading(
        pid=pid,
        name=info.name if info else None,
        used_memory_bytes=memory,
        sm_percent=sm_percent,
        memory_percent=memory_percent,
        process_type=kind,
        container_id=info.container_id if info else None,
        cgroup=info.cgroup if info else None,
        slurm_job_id=info.slurm_job_id if info else None,
    )
