"""Fleet waste: GPUs whose processes hold memory while the GPU does nothing (pure).

A GPU is *idle but allocated* when, over the last ``fleet.idle_minutes``, every sample shows
utilization under ``fleet.idle_utilization_percent`` while its memory in use stays over
``fleet.held_memory_percent`` of the total: a notebook kernel or a finished job's process
keeps the GPU from anyone else. The finding names the processes that hold the memory.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from monitor.core.advisor.findings import Finding, Scope, Waste
from monitor.core.advisor.thresholds import Thresholds
from monitor.core.gpu_records import GpuInfo, GpuSample, ProcessSample


def idle_allocated(
    gpus: Sequence[GpuInfo],
    samples: Mapping[str, Sequence[GpuSample]],
    processes: Mapping[str, Sequence[ProcessSample]],
    now: datetime,
    thresholds: Thresholds,
) -> list[Finding]:
    """One finding per GPU idle but holding memory through the whole recent window."""
    minutes = thresholds.value("fleet.idle_minutes")
    since = now - timedelta(minutes=minutes)
    findings = []
    for gpu in gpus:
        recent = [s for s in samples.get(gpu.uuid, ()) if s.ts >= since]
        finding = _judge(gpu, recent, processes.get(gpu.uuid, ()), since, thresholds)
        if finding is not None:
            findings.append(finding)
    return findings


def _judge(
    gpu: GpuInfo,
    recent: Sequence[GpuSample],
    processes: Sequence[ProcessSample],
    since: datetime,
    thresholds: Thresholds,
) -> Finding | None:
    minutes = thresholds.value("fleet.idle_minutes")
    covered = recent and (recent[0].ts - since) <= timedelta(minutes=minutes * 0.1)
    total = gpu.memory_total_bytes
    if not covered or not total:
        return None
    idle_below = thresholds.value("fleet.idle_utilization_percent")
    held_share = thresholds.value("fleet.held_memory_percent") / 100
    for sample in recent:
        if sample.utilization_gpu_percent is None or sample.memory_used_bytes is None:
            return None
        if sample.utilization_gpu_percent >= idle_below:
            return None
        if sample.memory_used_bytes < held_share * total:
            return None
    held = min(s.memory_used_bytes or 0 for s in recent)
    powers = [s.power_watts for s in recent if s.power_watts is not None]
    power = math.fsum(powers) / len(powers) if powers else None
    hours = (recent[-1].ts - recent[0].ts).total_seconds() / 3600
    holders = sorted(processes, key=lambda p: -(p.used_memory_bytes or 0))[:5]
    return Finding(
        rule="idle_allocated",
        severity="warning",
        title=(
            f"GPU {gpu.index} on {gpu.host} has held {held / 1024**3:.1f} GiB for "
            f"{hours * 60:.0f} min without computing"
        ),
        evidence={
            "gpu_name": gpu.name,
            "held_memory_bytes": held,
            "memory_total_bytes": total,
            "max_utilization_percent": max(s.utilization_gpu_percent or 0.0 for s in recent),
            "idle_minutes": round(hours * 60, 1),
            "mean_power_watts": round(power, 1) if power is not None else None,
            "energy_joules_while_idle": round(power * hours * 3600, 1) if power else None,
            "processes": [
                {"pid": p.pid, "name": p.name, "used_memory_bytes": p.used_memory_bytes}
                for p in holders
            ],
            "is_simulated": gpu.is_simulated,
        },
        advice=(
            "Free the GPU: end the process that holds it (a notebook kernel, a finished "
            "job that did not exit), or release cached memory with torch.cuda.empty_cache() "
            "when the process must stay.",
            "Schedulers: enforce an idle timeout for interactive sessions.",
        ),
        confidence="high",
        scope=Scope(
            host=gpu.host,
            gpu_uuid=gpu.uuid,
            start_ts=recent[0].ts.isoformat(),
            end_ts=recent[-1].ts.isoformat(),
        ),
        thresholds=thresholds.uses(
            "fleet.idle_utilization_percent", "fleet.idle_minutes", "fleet.held_memory_percent"
        ),
        waste=Waste(
            seconds_per_1000_steps=0.0,
            gpus=1,
            power_watts=round(power, 1) if power is not None else None,
            power_source="telemetry" if power is not None else None,
            gpu_hours_total=hours,
        ),
    )


__all__ = ["idle_allocated"]
