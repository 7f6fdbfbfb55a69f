"""Simulated GPUs for demos and tests: believable, deterministic, labelled as simulated.

Each GPU runs a story: training jobs start, climb to a memory plateau, step with short dips for data
loading and checkpoints, heat the board, and end; rare cooling trouble pushes the temperature past
the slowdown threshold and the SM clock drops for a while. With two or more GPUs the last one is a
notebook that holds memory but computes almost nothing. No clock is read: time advances by
``interval_seconds`` per poll, and every random draw comes from generators seeded by ``(host, seed,
index)``, so the same arguments give the same polls. The jobs themselves (their sizes, labels and
processes) are in :mod:`monitor.collector.simulated_jobs`.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass

from monitor.collector.simulated_jobs import (
    MEMORY_RESERVED_BYTES,
    MEMORY_TOTAL_BYTES,
    MEMORY_USABLE_BYTES,
    Job,
    job_processes,
    memory_used_bytes,
    new_job,
)
from monitor.core.metrics import Number
from monitor.core.source import DeviceFacts, GpuReading, Poll, SystemFacts, XidReading

__all__ = ["MAX_GPUS", "NOT_SIMULATED", "SimulatedSource"]

MAX_GPUS = 64

# Catalogue metrics a simulated H100 does not report, with the reason; it reports every other
# one of SOURCE_METRIC_NAMES (a test checks both, so a new catalogue metric is decided here).
NOT_SIMULATED: dict[str, str] = {
    "retired_pages_count": "Hopper remaps rows instead of retiring pages",
    "retired_pages_pending_count": "Hopper remaps rows instead of retiring pages",
}

# NVML's clock event reason bits (pynvml.nvmlClocksEventReason*), so a simulated bitmask decodes
# like a real one. Copied, not imported: only monitor.collector.nvml may import pynvml.
CLOCK_EVENT_GPU_IDLE = 0x1
CLOCK_EVENT_SW_POWER_CAP = 0x4
CLOCK_EVENT_SW_THERMAL_SLOWDOWN = 0x20
CLOCK_EVENT_HW_THERMAL_SLOWDOWN = 0x40

_MODEL_NAME = "Simulated H100 80GB HBM3"
_POWER_LIMIT_WATTS = 700.0
_SM_CLOCK_MAX_MHZ = 1980.0
_SM_CLOCK_IDLE_MHZ = 345.0
_MEMORY_CLOCK_MHZ = 2619.0  # HBM3 runs at one clock, busy or idle
_PCI_BUSES = (0x18, 0x2A, 0x3A, 0x5D, 0x9A, 0xAB, 0xBA, 0xDB)  # an HGX H100 board's layout

# Temperatures follow power through a first-order lag; the driver slows the clock at the
# slowdown threshold and lets go a few degrees lower (hysteresis), so episodes last a while.
_WATTS_TO_CELSIUS = 0.064
_CORE_LAG_SECONDS = 45.0
_MEMORY_LAG_SECONDS = 90.0
_SLOWDOWN_CELSIUS = 87.0
_HW_SLOWDOWN_CELSIUS = 92.0
_RECOVER_CELSIUS = 83.0
_THROTTLED_POWER_SHARE = 0.72

_CHECKPOINT_SECONDS = 12.0

# PCIe bytes/s (rx low, rx high, tx low, tx high) by phase of the job.
_PCIE_BY_PHASE: dict[str, tuple[float, float, float, float]] = {
    "idle": (5e4, 3e5, 5e4, 3e5),
    "notebook": (1e5, 2e6, 1e5, 1e6),
    "warmup": (6e9, 12e9, 1e8, 4e8),  # weights and the first batches come over the bus
    "load": (5e9, 11e9, 1e8, 5e8),
    "checkpoint": (1e8, 5e8, 8e9, 14e9),  # state is copied back to the host
    "step": (6e8, 1.6e9, 1e8, 3e8),
}


@dataclass(slots=True)
class _GpuState:
    """What one simulated GPU carries from one poll to the next."""

    facts: DeviceFacts
    rng: random.Random
    is_notebook_gpu: bool
    idle_watts: float
    ambient_celsius: float
    job: Job | None
    next_job_at: float
    temperature_celsius: float
    memory_temperature_celsius: float
    energy_joules: float
    extra_heat_celsius: float = 0.0  # cooling trouble; 0 when the cooling works
    extra_heat_until: float = 0.0
    is_throttled: bool = False
    ecc_corrected_count: int = 0


@dataclass(frozen=True, slots=True)
class _Rates:
    """Per-poll chances and lag factors, fixed by the poll interval."""

    dt: float
    cooling_trouble: float
    xid: float
    ecc: float
    notebook_cell: float
    core_lag: float
    memory_lag: float


def _per_poll(dt: float, mean_seconds: float) -> float:
    return 1.0 - math.exp(-dt / mean_seconds)


def _clamp(value: float, low: float, high: float) -> float:
    return low if value < low else high if value > high else value


def _device_facts(host: str, seed: int, index: int) -> DeviceFacts:
    # Hashing host and seed in means two simulated hosts never share a UUID.
    digest = hashlib.sha256(f"gpulens-sim\0{host}\0{seed}\0{index}".encode()).hexdigest()
    uuid = f"GPU-{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
    bus = _PCI_BUSES[index % len(_PCI_BUSES)]
    return DeviceFacts(
        uuid=uuid,
        index=index,
        name=_MODEL_NAME,
        pci_bus_id=f"{index // len(_PCI_BUSES):08X}:{bus:02X}:00.0",
        serial=f"SIM{int(digest[32:44], 16) % 10**10:010d}",
        memory_total_bytes=MEMORY_TOTAL_BYTES,
        power_limit_watts=_POWER_LIMIT_WATTS,
        compute_capability="9.0",
        mig_mode=False,
    )


def _initial_state(host: str, seed: int, index: int, *, is_notebook_gpu: bool) -> _GpuState:
    rng = random.Random(f"gpulens-sim\0{host}\0{seed}\0{index}")
    job = new_job(rng, 0.0, is_notebook=is_notebook_gpu)
    # Start mid-job, so the first polls already show a working machine.
    shift = rng.uniform(0.0, 0.7) * (job.ends_at - job.started_at)
    job.started_at -= shift
    job.ends_at -= shift
    ambient = rng.uniform(26.0, 32.0)
    return _GpuState(
        facts=_device_facts(host, seed, index),
        rng=rng,
        is_notebook_gpu=is_notebook_gpu,
        idle_watts=rng.uniform(62.0, 85.0),
        ambient_celsius=ambient,
        job=job,
        next_job_at=0.0,
        temperature_celsius=ambient + (15.0 if is_notebook_gpu else 40.0),
        memory_temperature_celsius=ambient + (18.0 if is_notebook_gpu else 40.0),
        # The counter runs since the driver loaded, days ago.
        energy_joules=rng.uniform(1.0, 30.0) * 86400.0 * 350.0,
    )


def _advance_job(gpu: _GpuState, now: float, rates: _Rates) -> XidReading | None:
    """End and start jobs; a rare XID crashes the running training job."""
    rng, job = gpu.rng, gpu.job
    xid = None
    if job is not None and not job.is_notebook and rng.random() < rates.xid:
        code = rng.choice((31, 43))  # MMU fault / GPU stopped processing: the app's fault
        xid = XidReading(gpu.facts.uuid, code, f"pid={job.pids[0]}, name=python (simulated)")
        job.ends_at = now
    if job is not None and now >= job.ends_at:
        gpu.job = None
        gap = rng.uniform(60.0, 600.0) if gpu.is_notebook_gpu else rng.uniform(20.0, 180.0)
        gpu.next_job_at = now + gap
    if gpu.job is None and now >= gpu.next_job_at:
        gpu.job = new_job(rng, now, is_notebook=gpu.is_notebook_gpu)
    return xid


def _utilization(gpu: _GpuState, now: float, rates: _Rates) -> tuple[float, str]:
    """GPU utilization (percent) and the phase of the job that explains it."""
    job, rng = gpu.job, gpu.rng
    if job is None:
        return 0.0, "idle"
    if job.is_notebook:
        busy = rng.random() < rates.notebook_cell
        return (rng.uniform(1.0, 12.0) if busy else 0.0), "notebook"
    elapsed = now - job.started_at
    if elapsed < job.ramp_seconds:
        return rng.uniform(15.0, 35.0), "warmup"
    running = elapsed - job.ramp_seconds
    since_checkpoint = running % job.checkpoint_every_seconds
    if running >= job.checkpoint_every_seconds and since_checkpoint < _CHECKPOINT_SECONDS:
        return rng.uniform(3.0, 15.0), "checkpoint"
    if running % job.step_seconds < job.dip_seconds:
        return rng.uniform(35.0, 60.0), "load"
    return _clamp(job.util_level + rng.gauss(0.0, 1.5), 0.0, 100.0), "step"


def _update_thermal_state(gpu: _GpuState, now: float, rates: _Rates) -> None:
    """Start or end cooling trouble, and throttle on the temperature the last poll left."""
    rng, job = gpu.rng, gpu.job
    if gpu.extra_heat_until <= now:
        gpu.extra_heat_celsius = 0.0
    is_training = job is not None and not job.is_notebook
    if is_training and gpu.extra_heat_celsius == 0.0 and rng.random() < rates.cooling_trouble:
        # One trouble in ten is severe enough to reach the hardware slowdown threshold.
        gpu.extra_heat_celsius = (
            rng.uniform(32.0, 40.0) if rng.random() < 0.1 else rng.uniform(14.0, 26.0)
        )
        gpu.extra_heat_until = now + rng.uniform(90.0, 240.0)
    if gpu.temperature_celsius >= _SLOWDOWN_CELSIUS:
        gpu.is_throttled = True
    elif gpu.temperature_celsius < _RECOVER_CELSIUS:
        gpu.is_throttled = False


def _power_and_clock(gpu: _GpuState, util: float) -> tuple[float, int, float]:
    """Board power (W), clock event reasons and SM clock (MHz) for this utilization."""
    rng, job = gpu.rng, gpu.job
    if util == 0.0:
        power = gpu.idle_watts + rng.gauss(0.0, 1.5)
        reasons, clock = CLOCK_EVENT_GPU_IDLE, _SM_CLOCK_IDLE_MHZ
    else:
        intensity = job.power_intensity if job is not None else 1.0
        span = _POWER_LIMIT_WATTS - gpu.idle_watts
        power = gpu.idle_watts + span * intensity * (util / 100.0) ** 1.5 + rng.gauss(0.0, 6.0)
        reasons, clock = 0, _SM_CLOCK_MAX_MHZ
        if job is not None and job.is_power_bound and util >= 80.0:
            # The power cap holds the board just under its limit by shaving the clock; decided
            # per job, not per noisy sample, so the reason does not flicker every poll.
            power = _POWER_LIMIT_WATTS * rng.uniform(0.975, 0.995)
            reasons |= CLOCK_EVENT_SW_POWER_CAP
            clock -= rng.uniform(60.0, 240.0)
    if gpu.is_throttled:
        power *= _THROTTLED_POWER_SHARE
        clock = min(clock, _SM_CLOCK_MAX_MHZ * rng.uniform(0.55, 0.7))
        reasons |= CLOCK_EVENT_SW_THERMAL_SLOWDOWN
        if gpu.temperature_celsius >= _HW_SLOWDOWN_CELSIUS:
            reasons |= CLOCK_EVENT_HW_THERMAL_SLOWDOWN
            clock = min(clock, 0.45 * _SM_CLOCK_MAX_MHZ)  # deeper than the driver's slowdown
    power = round(_clamp(power, 0.9 * gpu.idle_watts, _POWER_LIMIT_WATTS), 3)
    return power, reasons, float(round(clock))


def _advance_temperatures(gpu: _GpuState, power: float, rates: _Rates) -> None:
    heat, core = gpu.extra_heat_celsius, gpu.temperature_celsius
    memory = gpu.memory_temperature_celsius
    # Long intervals would overshoot before the slowdown reacts; the hardware holds ~95 C.
    core_target = min(gpu.ambient_celsius + power * _WATTS_TO_CELSIUS + heat, 95.0)
    memory_target = gpu.ambient_celsius + 4.0 + power * 0.055 + 0.5 * heat
    gpu.temperature_celsius = core + (core_target - core) * rates.core_lag
    gpu.memory_temperature_celsius = memory + (memory_target - memory) * rates.memory_lag


def _activity_metrics(gpu: _GpuState, util: float, phase: str) -> tuple[dict[str, Number], float]:
    """Utilization, GPM and PCIe metrics, and the memory utilization they imply."""
    job, rng = gpu.job, gpu.rng
    memory_share = job.memory_intensity if job is not None else 0.5
    memory_util = _clamp(util * memory_share + rng.gauss(0.0, 1.0), 0.0, 100.0) if util else 0.0
    sm_active = util * rng.uniform(0.8, 0.92)
    occupancy = job.occupancy_share if job is not None else 0.4
    tensor = job.tensor_share if job is not None else 0.5
    rx_low, rx_high, tx_low, tx_high = _PCIE_BY_PHASE[phase]
    memory_spread = abs(rng.gauss(0.0, 3.0))
    metrics: dict[str, Number] = {
        "utilization_gpu_percent": round(util, 1),
        "utilization_gpu_max_percent": round(min(100.0, util + abs(rng.gauss(0.0, 3.0))), 1),
        "utilization_memory_percent": round(memory_util, 1),
        "utilization_memory_max_percent": round(min(100.0, memory_util + memory_spread), 1),
        "gpm_sm_active_percent": round(sm_active, 1),
        "gpm_sm_occupancy_percent": round(sm_active * occupancy, 1),
        "gpm_tensor_active_percent": round(sm_active * tensor, 1),
        "gpm_dram_bandwidth_percent": round(memory_util * 0.9, 1),
        "pcie_rx_bytes_per_second": float(round(rng.uniform(rx_low, rx_high))),
        "pcie_tx_bytes_per_second": float(round(rng.uniform(tx_low, tx_high))),
    }
    return metrics, memory_util


def _device_metrics(
    gpu: _GpuState, power: float, reasons: int, clock: float, used: int
) -> dict[str, Number]:
    """Memory, power, energy, thermal, clock and error-counter metrics."""
    rng = gpu.rng
    temperature = gpu.temperature_celsius
    instant = _clamp(power + rng.gauss(0.0, 10.0), 0.0, _POWER_LIMIT_WATTS)
    return {
        "memory_used_bytes": used,
        "memory_free_bytes": MEMORY_USABLE_BYTES - used,
        "memory_reserved_bytes": MEMORY_RESERVED_BYTES,
        "memory_total_bytes": MEMORY_TOTAL_BYTES,
        "power_watts": power,
        "power_max_watts": min(_POWER_LIMIT_WATTS, round(power + abs(rng.gauss(0.0, 12.0)), 3)),
        "power_instant_watts": round(instant, 3),
        "power_limit_watts": _POWER_LIMIT_WATTS,
        "energy_joules": gpu.energy_joules,  # energy_used_joules is the sampler's to derive
        "temperature_celsius": float(round(temperature)),
        "temperature_memory_celsius": float(round(gpu.memory_temperature_celsius)),
        "sm_clock_mhz": clock,
        "graphics_clock_mhz": clock,
        "memory_clock_mhz": _MEMORY_CLOCK_MHZ,
        # An SXM board has no fan of its own; the simulation reports the chassis fan instead.
        "fan_speed_percent": float(round(_clamp(30.0 + (temperature - 35.0) * 1.5, 30.0, 100.0))),
        "performance_state": 8 if reasons & CLOCK_EVENT_GPU_IDLE else 0,
        "clock_event_reasons": reasons,
        "ecc_corrected_volatile_count": gpu.ecc_corrected_count,
        "ecc_uncorrected_volatile_count": 0,
        # retired_pages_*: NOT_SIMULATED.
        "remapped_rows_correctable_count": 0,
        "remapped_rows_uncorrectable_count": 0,
        "remapped_rows_pending_count": 0,
    }


def _poll_gpu(gpu: _GpuState, now: float, rates: _Rates) -> tuple[GpuReading, XidReading | None]:
    xid = _advance_job(gpu, now, rates)
    job, rng = gpu.job, gpu.rng
    util, phase = _utilization(gpu, now, rates)
    _update_thermal_state(gpu, now, rates)
    power, reasons, clock = _power_and_clock(gpu, util)
    _advance_temperatures(gpu, power, rates)
    gpu.energy_joules += power * rates.dt
    if rng.random() < rates.ecc:
        gpu.ecc_corrected_count += 1
    used = memory_used_bytes(job, now)
    metrics, memory_util = _activity_metrics(gpu, util, phase)
    metrics.update(_device_metrics(gpu, power, reasons, clock, used))
    processes = job_processes(job, used, util, memory_util)
    return GpuReading(gpu.facts.uuid, metrics, processes), xid


class SimulatedSource:
    """A :class:`~monitor.core.source.GpuSource` of ``count`` simulated H100 GPUs.

    Deterministic: the same ``(count, seed, host, interval_seconds)`` give the same sequence
    of polls, and simulated time advances by ``interval_seconds`` per :meth:`poll` (no clock
    is read). Different hosts get different UUIDs and different stories for the same seed.
    """

    def __init__(
        self, count: int, *, seed: int = 0, host: str = "sim", interval_seconds: float = 1.0
    ) -> None:
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_GPUS:
            raise ValueError(f"simulated GPUs: count must be from 1 to {MAX_GPUS}, got {count!r}")
        if not (math.isfinite(interval_seconds) and interval_seconds > 0):
            raise ValueError(f"interval_seconds must be positive, got {interval_seconds!r}")
        dt = float(interval_seconds)
        self._rates = _Rates(
            dt=dt,
            # Mean simulated seconds between events on one GPU.
            cooling_trouble=_per_poll(dt, 2400.0),
            xid=_per_poll(dt, 20000.0),
            ecc=_per_poll(dt, 50000.0),
            notebook_cell=_per_poll(dt, 40.0),
            core_lag=_per_poll(dt, _CORE_LAG_SECONDS),
            memory_lag=_per_poll(dt, _MEMORY_LAG_SECONDS),
        )
        # With two or more GPUs, the last one is the idle-but-allocated notebook.
        self._gpus = [
            _initial_state(host, seed, index, is_notebook_gpu=count >= 2 and index == count - 1)
            for index in range(count)
        ]
        self._now = 0.0

    @property
    def is_simulated(self) -> bool:
        """Always ``True``: the data must be labelled as simulated wherever it shows."""
        return True

    def open(self) -> SystemFacts:
        """Describe the simulated driver and devices; never raises."""
        return SystemFacts(
            devices=tuple(gpu.facts for gpu in self._gpus),
            driver_version="550.54.15 (simulated)",
            nvml_version="12.550.54.15 (simulated)",
            cuda_driver_version="12.4",
            notes=("simulated GPUs: no NVIDIA driver is read",),
        )

    def poll(self) -> Poll:
        """Read every simulated GPU, then advance simulated time by one interval."""
        results = [_poll_gpu(gpu, self._now, self._rates) for gpu in self._gpus]
        self._now += self._rates.dt
        xids = tuple(xid for _, xid in results if xid is not None)
        return Poll(readings=tuple(reading for reading, _ in results), xids=xids)

    def close(self) -> None:
        """Nothing to release."""
