"""The jobs that run on simulated GPUs: training jobs and notebooks, their labels and processes.

A training job climbs to a memory plateau, computes in steps with dips for data loading and
checkpoints, and carries Slurm or Docker labels like a real one; a notebook holds memory and
computes almost nothing. Every random draw comes from the ``rng`` passed in, in a fixed order,
so :mod:`monitor.collector.simulated` stays deterministic. Times are simulated seconds.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from monitor.core.source import ProcessReading

__all__ = [
    "MEMORY_RESERVED_BYTES",
    "MEMORY_TOTAL_BYTES",
    "MEMORY_USABLE_BYTES",
    "MIB",
    "Job",
    "job_labels",
    "job_processes",
    "memory_used_bytes",
    "new_job",
    "new_notebook",
    "new_training_job",
]

MIB = 1024 * 1024
_GIB = 1024 * MIB
# An H100 SXM 80GB reports 81559 MiB in total, of which the driver keeps a few hundred MiB.
MEMORY_TOTAL_BYTES = 81559 * MIB
MEMORY_RESERVED_BYTES = 527 * MIB
MEMORY_USABLE_BYTES = MEMORY_TOTAL_BYTES - MEMORY_RESERVED_BYTES
_CONTEXT_BYTES = 512 * MIB  # what a CUDA context costs before the first tensor


@dataclass(slots=True)
class Job:
    """One training job or notebook on a GPU; times in simulated seconds."""

    started_at: float
    ends_at: float
    memory_bytes: int  # device memory used at the plateau
    pids: tuple[int, ...]
    ramp_seconds: float = 10.0
    util_level: float = 0.0  # utilization while the step computes
    step_seconds: float = 30.0  # period of the data-loading dip
    dip_seconds: float = 0.0
    checkpoint_every_seconds: float = 600.0
    power_intensity: float = 1.0
    is_power_bound: bool = False  # matmul-heavy jobs run at the power cap
    memory_intensity: float = 0.5
    occupancy_share: float = 0.4
    tensor_share: float = 0.5
    companion_share: float = 0.0  # memory share of a second, small process
    slurm_job_id: str | None = None
    container_id: str | None = None
    cgroup: str | None = None
    is_notebook: bool = False


def job_labels(rng: random.Random) -> tuple[str | None, str | None, str | None]:
    """(slurm job id, container id, cgroup) of a new job: half Slurm, a quarter Docker."""
    draw = rng.random()
    if draw < 0.5:
        job_id = str(rng.randint(100_000, 999_999))
        return job_id, None, f"/system.slice/slurmstepd.scope/job_{job_id}/step_0/user/task_0"
    if draw < 0.75:
        container = f"{rng.getrandbits(256):064x}"
        return None, container, f"/system.slice/docker-{container}.scope"
    return None, None, None


def new_notebook(rng: random.Random, start: float) -> Job:
    """A notebook kernel that loaded a model and then sits, holding its memory for an hour."""
    return Job(
        started_at=start,
        ends_at=start + rng.uniform(1800.0, 7200.0),
        memory_bytes=rng.randint(6, 14) * _GIB,
        pids=(rng.randint(1000, 4_000_000),),
        is_notebook=True,
    )


def new_training_job(rng: random.Random, start: float) -> Job:
    """A training job of 10 to 40 minutes, with one or two processes, starting at ``start``."""
    step_seconds = rng.uniform(15.0, 40.0)
    # A quarter of the jobs are input bound: their data-loading dip is much longer.
    dip_share = rng.uniform(0.3, 0.45) if rng.random() < 0.25 else rng.uniform(0.05, 0.12)
    pids: tuple[int, ...] = (rng.randint(1000, 4_000_000),)
    if rng.random() < 0.3:
        pids += (rng.randint(1000, 4_000_000),)
    slurm_job_id, container_id, cgroup = job_labels(rng)
    is_power_bound = rng.random() < 0.35
    return Job(
        started_at=start,
        ends_at=start + rng.uniform(600.0, 2400.0),
        memory_bytes=int(MEMORY_USABLE_BYTES * rng.uniform(0.45, 0.95)),
        pids=pids,
        ramp_seconds=rng.uniform(30.0, 120.0),
        util_level=rng.uniform(88.0, 98.0),
        step_seconds=step_seconds,
        dip_seconds=step_seconds * dip_share,
        checkpoint_every_seconds=rng.uniform(300.0, 900.0),
        power_intensity=rng.uniform(1.02, 1.1) if is_power_bound else rng.uniform(0.85, 0.97),
        is_power_bound=is_power_bound,
        memory_intensity=rng.uniform(0.3, 0.7),
        occupancy_share=rng.uniform(0.3, 0.6),
        tensor_share=rng.uniform(0.2, 0.7),
        companion_share=rng.uniform(0.03, 0.1) if len(pids) > 1 else 0.0,
        slurm_job_id=slurm_job_id,
        container_id=container_id,
        cgroup=cgroup,
    )


def new_job(rng: random.Random, start: float, *, is_notebook: bool) -> Job:
    """A new notebook or training job starting at ``start``."""
    return (new_notebook if is_notebook else new_training_job)(rng, start)


def memory_used_bytes(job: Job | None, now: float) -> int:
    """Device memory in use: contexts at once, then allocations climbing to the plateau."""
    if job is None:
        return 0
    contexts = len(job.pids) * _CONTEXT_BYTES
    progress = min(max((now - job.started_at) / job.ramp_seconds, 0.0), 1.0)
    allocated = int((job.memory_bytes - contexts) * progress)
    return contexts + allocated // MIB * MIB


def job_processes(
    job: Job | None, used: int, util: float, memory_util: float
) -> tuple[ProcessReading, ...]:
    """The job's processes, sharing ``used`` bytes and the GPU's utilization (percent)."""
    if job is None:
        return ()
    companion_bytes = int(used * job.companion_share) // MIB * MIB
    shares = ((used - companion_bytes, 0.95), (companion_bytes, 0.04))[: len(job.pids)]
    return tuple(
        ProcessReading(
            pid=pid,
            name="python",
            used_memory_bytes=memory,
            sm_percent=round(util * share, 1),
            memory_percent=round(memory_util * share, 1),
            process_type="compute",
            container_id=job.container_id,
            cgroup=job.cgroup,
            slurm_job_id=job.slurm_job_id,
        )
        for pid, (memory, share) in zip(job.pids, shares, strict=True)
    )
