"""A realistic store for the dashboard's browser tests and screenshots.

:func:`seed_store` fills a real store through its public write API only (``write``,
``heartbeat``, ``rollup``, the run methods and the advisor's ``refresh_findings``): hosts with
H100s sampled every 10 s, the processes on them, a throttling episode, an XID, training runs
with steps, one profiler window analyzed from a synthetic Kineto trace, and the advisor's
findings. Two values are hostile on purpose (a process name and a run name that are markup) so
the tests can check that the pages show them as text.

Deterministic for a given ``now``; :class:`SeedInfo` carries the numbers the tests check.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import uuid as uuidlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from monitor.core.gpu_records import (
    CollectorStatus,
    Event,
    GpuInfo,
    GpuSample,
    HostInfo,
    ProcessSample,
    Record,
)
from monitor.core.run_records import RunInfo, RunStatus, StepRecord, WindowRecord
from monitor.services.runs import refresh_findings
from monitor.store import Store
from monitor.traces.analyze import analyze_path
from tests.trace_gen import FIRST_STEP, write_synthetic_trace

HOSTILE_PROCESS_NAME = "<img src=x onerror=alert(1)>"
HOSTILE_RUN_NAME = "<script>alert(1)</script>"
GPU_NAME = "NVIDIA H100 80GB HBM3"
MIB = 2**20
MEMORY_TOTAL_BYTES = 81_559 * MIB  # what nvidia-smi reports for an H100 80GB HBM3
DRIVER_MEMORY_BYTES = 512 * MIB  # used on a GPU with no process (the driver's own)
POWER_LIMIT_WATTS = 700.0
INTERVAL = timedelta(seconds=10)
DRIVER_VERSION = "570.133.20"
CUDA_DRIVER_VERSION = "12.8"
THROTTLE_REASONS = 0x4 | 0x20  # sw_power_cap + sw_thermal_slowdown
IDLE_REASONS = 0x1  # gpu_idle: not a slowdown
WINDOW_STEPS = 4  # steps traced by the analyzed profiler window


@dataclass(frozen=True, slots=True)
class SeededRun:
    """A run as seeded, with the figures its pages must show."""

    run_id: str
    name: str
    host: str
    gpu_uuid: str
    status: RunStatus
    started_at: datetime
    ended_at: datetime | None
    steps: int
    mean_step_us: float
    finding_titles: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SeedInfo:
    """What :func:`seed_store` wrote: ids, and the numbers the dashboard must show."""

    now: datetime
    hosts: tuple[str, ...]
    gpu_uuids: tuple[str, ...]  # by host, then index
    gpu_hosts: dict[str, str]  # uuid -> host
    gpu_indices: dict[str, int]  # uuid -> NVML index on its host
    latest: dict[str, GpuSample]  # uuid -> its newest sample
    runs: tuple[SeededRun, ...]
    analyzed_run_id: str | None  # the run with an analyzed profiler window
    throttled_uuid: str  # the GPU with the throttle_start/throttle_end episode
    xid_uuid: str
    hostile_process_uuid: str
    hostile_process_name: str = HOSTILE_PROCESS_NAME
    hostile_run_name: str = HOSTILE_RUN_NAME
    sample_count: int = 0
    window_ids: tuple[str, ...] = field(default_factory=tuple)

    @property
    def run_ids(self) -> tuple[str, ...]:
        return tuple(run.run_id for run in self.runs)

    def run(self, run_id: str) -> SeededRun:
        return next(run for run in self.runs if run.run_id == run_id)


@dataclass(frozen=True, slots=True)
class _Job:
    """A process keeping one GPU busy over ``[start, end)`` (``end=None``: still running)."""

    uuid: str
    pid: int
    name: str
    start: datetime
    end: datetime | None
    utilization_percent: float
    memory_bytes: int


@dataclass(frozen=True, slots=True)
class _RunPlan:
    name: str
    gpu: int  # index into the GPU list
    start_share: float  # of the seeded span
    end_share: float | None  # None: still running at ``now``
    step_s: float
    dataloader_s: float
    status: RunStatus
    utilization_percent: float
    memory_gib: float
    analyzed: bool = False


def _plans(runs: int, gpu_count: int) -> list[_RunPlan]:
    last = gpu_count - 1
    base = [
        # Input-bound: 35 % of every step waits for the DataLoader (a critical finding).
        _RunPlan("llama-7b-finetune", 0, 0.05, 0.45, 1.20, 0.42, "finished", 62.0, 58.5,
                 analyzed=True),
        _RunPlan("llama-7b-finetune-workers8", min(2, last), 0.20, 0.60, 0.85, 0.03,
                 "finished", 91.0, 61.0),
        _RunPlan(HOSTILE_RUN_NAME, 0, 0.55, None, 1.00, 0.05, "running", 88.0, 60.0),
    ]  # fmt: skip
    extra = [
        _RunPlan(f"sweep-lr-{k}", k % gpu_count, 0.10, 0.30, 0.50, 0.02, "finished", 80.0, 40.0)
        for k in range(len(base), runs)
    ]
    return (base + extra)[:runs]


def seed_store(
    store: Store,
    *,
    now: datetime,
    hosts: int = 2,
    gpus_per_host: int = 2,
    minutes: int = 90,
    runs: int = 3,
    trace_dir: Path | None = None,
) -> SeedInfo:
    """Fill ``store`` with ``minutes`` of telemetry up to ``now`` and ``runs`` training runs.

    ``trace_dir``: where the analyzed window's synthetic trace is kept (its path is stored with
    the window); without one it is written to a temporary folder and removed.
    """
    if hosts < 1 or gpus_per_host < 1 or minutes < 10:
        raise ValueError("seed at least one host with one GPU over at least 10 minutes")
    rng = random.Random(20261122)
    span = timedelta(minutes=minutes)
    first_ts = now - span
    host_names = tuple(f"gpu-node-{h + 1:02d}" for h in range(hosts))
    gpus = [
        GpuInfo(
            uuid=_gpu_uuid(host, index),
            host=host,
            ts=first_ts,
            index=index,
            name=GPU_NAME,
            is_simulated=False,
            pci_bus_id=f"00000000:{0x18 + 0x20 * index:02X}:00.0",
            serial=f"16549220{h:02d}{index:03d}",
            memory_total_bytes=MEMORY_TOTAL_BYTES,
            power_limit_watts=POWER_LIMIT_WATTS,
            compute_capability="9.0",
            driver_version=DRIVER_VERSION,
            cuda_driver_version=CUDA_DRIVER_VERSION,
            mig_mode=False,
        )
        for h, host in enumerate(host_names)
        for index in range(gpus_per_host)
    ]
    uuids = tuple(gpu.uuid for gpu in gpus)
    host_of = {gpu.uuid: gpu.host for gpu in gpus}

    plans = _plans(runs, len(gpus))
    planned = [_run_info(plan, index, gpus, first_ts, span) for index, plan in enumerate(plans)]
    jobs = [
        _Job(info.gpu_uuids[0], 41_000 + 17 * index, "python", info.started_at, ended,
             plan.utilization_percent, int(plan.memory_gib * 2**30))
        for index, (plan, (info, ended)) in enumerate(zip(plans, planned, strict=True))
    ]  # fmt: skip
    throttled = uuids[-1]
    # A job without the hooks (no run) on the last GPU; it throttles for a while.
    jobs.append(_Job(throttled, 52_310, "python3", first_ts + 0.30 * span, first_ts + 0.90 * span,
                     97.0, 70 * 2**30))  # fmt: skip
    hostile_uuid = uuids[0]
    jobs.append(_Job(hostile_uuid, 31_337, HOSTILE_PROCESS_NAME, now - 0.2 * span, None, 0.0,
                     1 * 2**30))  # fmt: skip
    throttle_from, throttle_to = first_ts + 0.50 * span, first_ts + 0.60 * span

    records: list[Record] = [
        HostInfo(host, first_ts, False, DRIVER_VERSION, f"12.{DRIVER_VERSION}",
                 CUDA_DRIVER_VERSION, "0.1.0")
        for host in host_names
    ]  # fmt: skip
    records += gpus
    latest: dict[str, GpuSample] = {}
    ticks = _ticks(now, minutes)
    for gpu in gpus:
        energy_counter = 1.8e9 + 1e7 * gpu.index
        for ts in ticks:
            running = [job for job in jobs if job.uuid == gpu.uuid and _covers(job, ts)]
            is_throttled = gpu.uuid == throttled and throttle_from <= ts < throttle_to
            sample = _sample(gpu, ts, running, is_throttled, energy_counter, rng)
            energy_counter = sample.energy_joules or energy_counter
            records.append(sample)
            latest[gpu.uuid] = sample
            records += [
                ProcessSample(gpu.uuid, gpu.host, ts, job.pid, job.name,
                              used_memory_bytes=job.memory_bytes, process_type="compute")
                for job in running
            ]  # fmt: skip
    records += _events(host_names, host_of, first_ts, throttled, throttle_from, throttle_to,
                       uuids, span)  # fmt: skip
    store.write(records)
    for host in host_names:
        store.rollup(host, first_ts, now)
        count = sum(1 for gpu in gpus if gpu.host == host) * len(ticks)
        store.heartbeat(
            CollectorStatus(
                host=host,
                pid=1200 + host_names.index(host),
                state="running",
                is_simulated=False,
                version="0.1.0",
                interval_seconds=INTERVAL.total_seconds(),
                started_at=first_ts,
                heartbeat_at=ticks[-1],
                stale_since=None,
                collected=count,
                written=count,
                dropped=0,
                spooled=0,
                pending=0,
                poll_errors=0,
            )
        )

    seeded: list[SeededRun] = []
    window_ids: list[str] = []
    analyzed_run_id = None
    for plan, (info, ended) in zip(plans, planned, strict=True):
        steps = _steps(plan, info.run_id, info.started_at, ended or now, rng)
        store.start_run(info)
        store.write_steps(steps)
        if plan.analyzed:
            window_ids.append(_save_analyzed_window(store, info, steps, trace_dir))
            analyzed_run_id = info.run_id
        titles: tuple[str, ...] = ()
        if ended is not None:
            store.end_run(info.run_id, ended, plan.status)
            titles = tuple(finding.title for finding in refresh_findings(store, info.run_id))
        durations = [step.duration_us for step in steps]
        seeded.append(
            SeededRun(info.run_id, info.name, info.host, info.gpu_uuids[0], plan.status,
                      info.started_at, ended, len(steps), statistics.fmean(durations), titles)
        )  # fmt: skip
    return SeedInfo(
        now=now,
        hosts=host_names,
        gpu_uuids=uuids,
        gpu_hosts=host_of,
        gpu_indices={gpu.uuid: gpu.index for gpu in gpus},
        latest=latest,
        runs=tuple(seeded),
        analyzed_run_id=analyzed_run_id,
        throttled_uuid=throttled,
        xid_uuid=uuids[min(2, len(uuids) - 1)],
        hostile_process_uuid=hostile_uuid,
        sample_count=len(ticks) * len(gpus),
        window_ids=tuple(window_ids),
    )


def _gpu_uuid(host: str, index: int) -> str:
    return "GPU-" + str(uuidlib.uuid5(uuidlib.NAMESPACE_DNS, f"{host}.gpulens.test/{index}"))


def _ticks(now: datetime, minutes: int) -> list[datetime]:
    """Every 10 s, the newest 2 s before ``now`` (a collector that just flushed)."""
    newest = now - timedelta(seconds=2)
    count = minutes * 60 // 10
    return [newest - INTERVAL * (count - 1 - k) for k in range(count)]


def _covers(job: _Job, ts: datetime) -> bool:
    return job.start <= ts and (job.end is None or ts < job.end)


def _sample(
    gpu: GpuInfo,
    ts: datetime,
    running: list[_Job],
    is_throttled: bool,
    energy_counter: float,
    rng: random.Random,
) -> GpuSample:
    busy = max((job.utilization_percent for job in running), default=0.0)
    if busy > 0:
        utilization = round(min(100.0, max(1.0, rng.gauss(busy, 4.0))))
        power = min(POWER_LIMIT_WATTS, 180 + 5.2 * utilization + rng.uniform(-15, 15))
        temperature = 48 + 0.22 * utilization + rng.uniform(-1.5, 1.5)
        sm_clock, reasons = 1980.0, 0
    else:
        utilization, power, temperature = 0, 71.0 + rng.uniform(-2, 2), 31 + rng.uniform(-1, 1)
        sm_clock, reasons = 345.0, IDLE_REASONS
    if is_throttled:
        power, temperature = POWER_LIMIT_WATTS - rng.uniform(0, 4), 87 + rng.uniform(0, 2)
        sm_clock, reasons = 1410.0 + 15 * rng.randint(0, 6), THROTTLE_REASONS
    used = DRIVER_MEMORY_BYTES + sum(job.memory_bytes for job in running)
    energy_used = power * INTERVAL.total_seconds()
    return GpuSample(
        uuid=gpu.uuid,
        host=gpu.host,
        ts=ts,
        utilization_gpu_percent=float(utilization),
        utilization_memory_percent=float(round(utilization * 0.45)),
        memory_used_bytes=used,
        memory_free_bytes=MEMORY_TOTAL_BYTES - used,
        memory_reserved_bytes=DRIVER_MEMORY_BYTES,
        memory_total_bytes=MEMORY_TOTAL_BYTES,
        power_watts=round(power, 1),
        power_limit_watts=POWER_LIMIT_WATTS,
        energy_joules=energy_counter + energy_used,
        energy_used_joules=round(energy_used, 1),
        temperature_celsius=float(round(temperature)),
        temperature_memory_celsius=float(round(temperature + 6)),
        sm_clock_mhz=sm_clock,
        memory_clock_mhz=2619.0,
        graphics_clock_mhz=sm_clock,
        fan_speed_percent=None,  # an SXM board has no fan: not supported, not 0
        performance_state=0,
        pcie_tx_bytes_per_second=float(round(busy * 4e6 + rng.uniform(0, 1e6))),
        pcie_rx_bytes_per_second=float(round(busy * 2.2e7 + rng.uniform(0, 1e6))),
        clock_event_reasons=reasons,
        ecc_corrected_volatile_count=0,
        ecc_uncorrected_volatile_count=0,
        retired_pages_count=None,  # H100 remaps rows instead of retiring pages
        retired_pages_pending_count=None,
        remapped_rows_correctable_count=0,
        remapped_rows_uncorrectable_count=0,
        remapped_rows_pending_count=0,
    )


def _events(
    hosts: tuple[str, ...],
    host_of: dict[str, str],
    first_ts: datetime,
    throttled: str,
    throttle_from: datetime,
    throttle_to: datetime,
    uuids: tuple[str, ...],
    span: timedelta,
) -> list[Event]:
    def event_id(*parts: object) -> str:
        return uuidlib.uuid5(uuidlib.NAMESPACE_URL, "/".join(map(str, parts))).hex

    found = [
        Event(event_id("start", host), first_ts, host, "collector_start", detail="collector 0.1.0")
        for host in hosts
    ]
    xid_uuid = uuids[min(2, len(uuids) - 1)]
    found += [
        Event(event_id("throttle_start", throttled), throttle_from, host_of[throttled],
              "throttle_start", uuid=throttled, value=THROTTLE_REASONS,
              detail="sw_power_cap,sw_thermal_slowdown"),
        Event(event_id("throttle_end", throttled), throttle_to + 2 * INTERVAL,
              host_of[throttled], "throttle_end", uuid=throttled),
        Event(event_id("xid", xid_uuid), first_ts + 0.75 * span, host_of[xid_uuid], "xid",
              uuid=xid_uuid, value=13, detail="XID 13: Graphics Engine Exception"),
    ]  # fmt: skip
    return found


def _run_info(
    plan: _RunPlan, index: int, gpus: list[GpuInfo], first_ts: datetime, span: timedelta
) -> tuple[RunInfo, datetime | None]:
    """The run as the hooks start it, and when it ends (``None``: still running)."""
    gpu = gpus[plan.gpu]
    info = RunInfo(
        run_id=uuidlib.uuid5(uuidlib.NAMESPACE_URL, f"gpulens-seed-run/{index}").hex,
        name=plan.name,
        host=gpu.host,
        started_at=(first_ts + plan.start_share * span).replace(microsecond=0),
        gpu_uuids=(gpu.uuid,),
        config={"model": "llama-7b", "batch_size": 32, "seq_len": 2048, "lr": 2e-5,
                "num_workers": 8 if "workers8" in plan.name else 2},
        versions={"torch": "2.13.0", "gpulens": "0.1.0", "cuda": "12.8"},
    )  # fmt: skip
    return info, None if plan.end_share is None else first_ts + plan.end_share * span


def _steps(
    plan: _RunPlan, run_id: str, start: datetime, end: datetime, rng: random.Random
) -> list[StepRecord]:
    """Steps back to back from ``start`` for as many as end before ``end``."""
    steps: list[StepRecord] = []
    at = start
    number = 0
    while True:
        wait_s = max(0.0, rng.gauss(plan.dataloader_s, plan.dataloader_s * 0.15))
        compute_s = max(0.05, rng.gauss(plan.step_s - plan.dataloader_s, 0.02))
        if number < 3:
            compute_s *= 2.5  # warm-up: compilation, allocator growth
        duration_us = round((wait_s + compute_s) * 1e6, 1)
        if at + timedelta(microseconds=duration_us) > end:
            break
        allocated = int(plan.memory_gib * 2**30 * 0.82)
        steps.append(
            StepRecord(
                run_id=run_id,
                step=number,
                started_at=at,
                duration_us=duration_us,
                dataloader_wait_us=round(wait_s * 1e6, 1),
                cuda_allocated_bytes=allocated,
                cuda_reserved_bytes=int(plan.memory_gib * 2**30),
                cuda_peak_bytes=int(allocated * 1.12),
                samples=32,
                tokens=32 * 2048,
                is_profiled=plan.analyzed and FIRST_STEP <= number < FIRST_STEP + WINDOW_STEPS,
            )
        )
        at += timedelta(microseconds=duration_us)
        number += 1
    return steps


def _save_analyzed_window(
    store: Store, info: RunInfo, steps: list[StepRecord], trace_dir: Path | None
) -> str:
    """A profiler window over steps 10-13 with the analysis of a synthetic Kineto trace."""
    window_id = uuidlib.uuid5(uuidlib.NAMESPACE_URL, f"gpulens-seed-window/{info.run_id}").hex
    first, last = FIRST_STEP, FIRST_STEP + WINDOW_STEPS - 1
    with tempfile.TemporaryDirectory(prefix="gpulens-seed-") as scratch:
        folder = trace_dir if trace_dir is not None else Path(scratch)
        path = folder / f"{info.name}-steps{first}-{last}.pt.trace.json"
        write_synthetic_trace(path, steps=WINDOW_STEPS, kernels_per_step=60, seed=7)
        analysis = analyze_path(path)
        store.save_window(
            WindowRecord(
                window_id=window_id,
                run_id=info.run_id,
                first_step=first,
                last_step=last,
                started_at=steps[first].started_at,
                trace_path=str(path) if trace_dir is not None else None,
                status="analyzing",
            )
        )
        store.save_window_analysis(
            window_id, analysis, analyzed_at=steps[last].started_at + timedelta(seconds=5)
        )
    return window_id


__all__ = ["HOSTILE_PROCESS_NAME", "HOSTILE_RUN_NAME", "SeedInfo", "SeededRun", "seed_store"]
