"""The collector's telemetry joined with the steps: slow steps that coincide with throttling,
clock drops, XID errors or another process on the GPU; NVML utilization against the trace."""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from monitor.core.advisor.evidence import RunEvidence
from monitor.core.advisor.findings import Finding, Gain
from monitor.core.advisor.measures import Measures
from monitor.core.advisor.rules.base import pct, run_scope, us
from monitor.core.advisor.steps import median
from monitor.core.advisor.thresholds import Thresholds
from monitor.core.gpu_records import Event, GpuSample
from monitor.core.run_records import StepRecord
from monitor.core.throttle import decode_clock_event_reasons, is_slowdown

# A sample describes the sampling interval before it: a step [start, end] is seen by the
# samples taken in [start, end + interval]. The interval is the samples' median spacing.
MIN_SLACK, MAX_SLACK = timedelta(milliseconds=50), timedelta(seconds=5)
CAUSES = ("throttling", "clock_drop", "xid", "neighbour_process")


def check_slow_steps(
    evidence: RunEvidence, measures: Measures, thresholds: Thresholds
) -> list[Finding]:
    """Slow steps (over 1.5x the median) of which most coincide with one telemetry cause,
    at least twice as often as the other steps do."""
    samples = _samples(evidence)
    steady = measures.split.steady
    if not samples or len(steady) < thresholds.value("steps.min_steps"):
        return []
    limit = thresholds.value("telemetry.slow_step_factor") * measures.median_step_us
    slow = [step for step in steady if step.duration_us > limit]
    if len(slow) < 3:
        return []
    normal = [step for step in steady if step.duration_us <= limit]
    judge = _Judge(evidence, samples, thresholds)
    slow_causes = [judge.causes(step) for step in slow]
    normal_causes = [judge.causes(step) for step in normal[:: max(1, len(normal) // 500)]]
    best = _best_cause(slow_causes, normal_causes)
    if best is None:
        return []
    cause, slow_rate, normal_rate = best
    hit = [step for step, causes in zip(slow, slow_causes, strict=True) if cause in causes]
    lost_us = math.fsum(step.duration_us - measures.median_step_us for step in hit)
    total_us = math.fsum(step.duration_us for step in steady)
    return [
        Finding(
            rule="telemetry_slowdown",
            severity="warning",
            title=(
                f"{len(hit)} of {len(slow)} slow steps coincide with {cause.replace('_', ' ')} "
                "on the GPU"
            ),
            evidence={
                "cause": cause,
                "slow_steps": len(slow),
                "slow_steps_with_cause": len(hit),
                "slow_step_rate_percent": pct(slow_rate),
                "other_step_rate_percent": pct(normal_rate),
                "lost_us": us(lost_us),
                **judge.details(cause),
            },
            advice=_ADVICE[cause],
            expected_gain=Gain(
                lost_us / total_us if total_us > 0 else 0.0,
                "time the affected slow steps took above the median step",
            ),
            confidence="medium",
            scope=run_scope(evidence, measures, steps=tuple(step.step for step in hit[:30])),
            thresholds=thresholds.uses(
                "telemetry.slow_step_factor", "telemetry.clock_drop_percent", "steps.min_steps"
            ),
        )
    ]


_ADVICE: Mapping[str, tuple[str, ...]] = {
    "throttling": (
        "The GPU slows itself down (power cap or temperature): check cooling and airflow, "
        "the power limit (nvidia-smi -q -d POWER), and neighbours heating the chassis.",
        "Power capping under a sustained load is expected on some systems; the GPU page shows "
        "the throttle reasons over time.",
    ),
    "clock_drop": (
        "The SM clock drops during these steps: look for power or thermal limits, or an "
        "application clock setting (nvidia-smi -q -d CLOCK).",
    ),
    "xid": (
        "The driver reported XID errors during these steps: check the XID codes (GPU page), "
        "the kernel log, and whether the GPU needs a reset or service.",
    ),
    "neighbour_process": (
        "Another process uses this GPU while the run trains: move it, or give the run an "
        "exclusive GPU (compute mode EXCLUSIVE_PROCESS, or the scheduler's exclusive flag).",
    ),
}


class _Judge:
    """Which telemetry causes coincide with a step (samples and events of the run's GPUs)."""

    def __init__(
        self,
        evidence: RunEvidence,
        samples: Sequence[GpuSample],
        thresholds: Thresholds,
    ) -> None:
        self.samples = samples
        self.times = [sample.ts for sample in samples]
        gaps = [(b - a).total_seconds() for a, b in zip(self.times, self.times[1:], strict=False)]
        spacing = timedelta(seconds=median(gaps)) if gaps else MAX_SLACK
        self.slack = min(max(spacing, MIN_SLACK), MAX_SLACK)
        clocks = [s.sm_clock_mhz for s in samples if s.sm_clock_mhz]
        drop = thresholds.value("telemetry.clock_drop_percent") / 100
        self.clock_floor = median(clocks) * (1 - drop) if clocks else None
        self.xids = sorted(e.ts for e in evidence.events if e.kind == "xid")
        self.throttles = _throttle_spans(evidence.events)
        self.neighbours = _neighbours(evidence)

    def causes(self, step: StepRecord) -> set[str]:
        start = step.started_at
        end = start + timedelta(microseconds=step.duration_us) + self.slack
        window = self.samples[
            bisect.bisect_left(self.times, start) : bisect.bisect_right(self.times, end)
        ]
        found = set()
        if any(s.clock_event_reasons and is_slowdown(s.clock_event_reasons) for s in window) or any(
            a <= end and (b is None or b >= start) for a, b, _ in self.throttles
        ):
            found.add("throttling")
        floor = self.clock_floor
        if floor is not None and any(s.sm_clock_mhz and s.sm_clock_mhz < floor for s in window):
            found.add("clock_drop")
        if any(start <= ts <= end for ts in self.xids):
            found.add("xid")
        if any(first <= end and last >= start for first, last in self.neighbours.values()):
            found.add("neighbour_process")
        return found

    def details(self, cause: str) -> dict[str, Any]:
        if cause == "throttling":
            reasons = sorted({r for _, _, names in self.throttles for r in names})
            masks = {s.clock_event_reasons for s in self.samples if s.clock_event_reasons}
            reasons += sorted(
                {r for m in masks if is_slowdown(m) for r in decode_clock_event_reasons(m)}
                - set(reasons)
            )
            return {"throttle_reasons": reasons}
        if cause == "clock_drop":
            return {"sm_clock_floor_mhz": round(self.clock_floor or 0.0, 1)}
        if cause == "neighbour_process":
            return {"neighbour_pids": sorted(self.neighbours)[:10]}
        return {"xid_events": len(self.xids)}


def _best_cause(slow: list[set[str]], normal: list[set[str]]) -> tuple[str, float, float] | None:
    best = None
    for cause in CAUSES:
        slow_rate = sum(cause in item for item in slow) / len(slow)
        normal_rate = sum(cause in item for item in normal) / len(normal) if normal else 0.0
        is_cause = slow_rate >= 0.5 and slow_rate >= 2 * normal_rate
        if is_cause and (best is None or slow_rate > best[1]):
            best = (cause, slow_rate, normal_rate)
    return best


def _samples(evidence: RunEvidence) -> list[GpuSample]:
    uuids = evidence.run.gpu_uuids if evidence.run is not None else ()
    chosen = [s for uuid in uuids for s in evidence.samples.get(uuid, ())]
    return sorted(chosen, key=lambda sample: sample.ts)


def _throttle_spans(events: Sequence[Event]) -> list[tuple[datetime, datetime | None, list[str]]]:
    spans: list[tuple[datetime, datetime | None, list[str]]] = []
    open_at: dict[str | None, tuple[datetime, list[str]]] = {}
    for event in sorted(events, key=lambda e: e.ts):
        if event.kind == "throttle_start":
            open_at[event.uuid] = (
                event.ts,
                (event.detail or "").split(",") if event.detail else [],
            )
        elif event.kind == "throttle_end" and event.uuid in open_at:
            start, names = open_at.pop(event.uuid)
            spans.append((start, event.ts, names))
    spans += [(start, None, names) for start, names in open_at.values()]
    return spans


def _neighbours(evidence: RunEvidence) -> dict[int, tuple[datetime, datetime]]:
    """Other processes on the run's GPUs: pid -> (first, last) time seen (ProcessSample.ts is
    the last sighting; the first is taken as the run's start when unknown)."""
    if evidence.run is None:
        return {}
    hooks = evidence.run.config.get("gpulens") or {}
    own = {hooks.get("pid")} | set(hooks.get("peer_pids") or ())
    start = evidence.run.started_at
    return {
        p.pid: (start, p.ts)
        for p in evidence.processes
        if p.pid not in own and p.uuid in evidence.run.gpu_uuids
    }


def check_utilization_gap(
    evidence: RunEvidence, measures: Measures, thresholds: Thresholds
) -> list[Finding]:
    """NVML's utilization and the trace's GPU busy share disagree by 30 points or more."""
    busy = measures.gpu_busy_fraction
    samples = [s for s in _samples(evidence) if s.utilization_gpu_percent is not None]
    if busy is None or not samples:
        return []
    nvml = math.fsum(s.utilization_gpu_percent or 0.0 for s in samples) / len(samples)
    gap = nvml - 100 * busy
    if abs(gap) < thresholds.value("telemetry.utilization_gap_points"):
        return []
    if gap > 0:
        title = (
            f"NVML reports {nvml:.0f}% utilization, but the GPU computes only "
            f"{pct(busy):.0f}% of the step"
        )
        why = (
            "Trust the trace's busy share for how much of the step the GPU works. NVML's "
            "utilization is the share of its sample period in which at least one kernel was "
            "running, however small: one tiny kernel per period reads as 100%. It says nothing "
            "about how many SMs were used.",
            "For how full the GPU is, look at SM activity (GPM sm_active, when the GPU and "
            "driver support it) or the kernel table.",
        )
    else:
        title = (
            f"The traced steps show the GPU busy {pct(busy):.0f}% of the time, "
            f"NVML only {nvml:.0f}%"
        )
        why = (
            "The profiler windows may not be representative of the run (a faster phase was "
            "traced, or the GPU idles between windows, e.g. evaluation or checkpointing).",
            "Trace more windows across the run (GPULENS_PROFILE_SCHEDULE) to see the slow phases.",
        )
    return [
        Finding(
            rule="utilization_mismatch",
            severity="info",
            title=title,
            evidence={
                "nvml_utilization_percent": round(nvml, 1),
                "trace_gpu_busy_percent": pct(busy),
                "gap_points": round(gap, 1),
                "samples": len(samples),
            },
            advice=why,
            confidence="medium",
            scope=run_scope(evidence, measures),
            thresholds=thresholds.uses("telemetry.utilization_gap_points"),
        )
    ]
