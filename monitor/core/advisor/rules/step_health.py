"""Step-time health over the every-step records: warm-up, a long tail, drift over the run."""

from __future__ import annotations

import math

from monitor.core.advisor.evidence import RunEvidence
from monitor.core.advisor.findings import Finding, Gain
from monitor.core.advisor.measures import Measures
from monitor.core.advisor.rules.base import pct, run_scope, us
from monitor.core.advisor.steps import median, percentile
from monitor.core.advisor.thresholds import Thresholds


def check_warmup(
    evidence: RunEvidence, measures: Measures, thresholds: Thresholds
) -> list[Finding]:
    """Leading steps that took several times the steady median (reported, never warned)."""
    warmup = measures.split.warmup
    if not warmup or not measures.split.steady:
        return []
    total_us = math.fsum(step.duration_us for step in warmup)
    extra_us = total_us - len(warmup) * measures.median_step_us
    return [
        Finding(
            rule="warmup",
            severity="info",
            title=(
                f"The first {len(warmup)} steps took {total_us / 1e6:.2f} s, "
                f"{total_us / len(warmup) / measures.median_step_us:.1f}x a steady step"
            ),
            evidence={
                "warmup_steps": len(warmup),
                "warmup_total_us": us(total_us),
                "warmup_extra_us": us(extra_us),
                "steady_median_step_us": us(measures.median_step_us),
                "slowest_step_us": us(max(step.duration_us for step in warmup)),
            },
            advice=(
                "Expected once per process (CUDA context, cuDNN autotuning with "
                "cudnn.benchmark, torch.compile). gpulens leaves these steps out of every "
                "other figure; leave them out of your benchmarks too.",
                "If it is long: cache compiled graphs (TORCHINDUCTOR_FX_GRAPH_CACHE=1), or "
                "mark dynamic shapes (torch._dynamo.mark_dynamic) to stop recompiles.",
            ),
            confidence="high",
            scope=run_scope(evidence, measures, steps=tuple(step.step for step in warmup[:30])),
            thresholds=thresholds.uses("steps.warmup_factor", "steps.warmup_max_steps"),
        )
    ]


def check_variance(
    evidence: RunEvidence, measures: Measures, thresholds: Thresholds
) -> list[Finding]:
    """p99 over p50 of the steady step times above 1.5."""
    # Traced steps carry the profiler's overhead: they would make the tail, not reveal one.
    untraced = [step for step in measures.split.steady if not step.is_profiled]
    durations = [step.duration_us for step in untraced]
    if len(durations) < thresholds.value("steps.min_steps"):
        return []
    p50, p99 = percentile(durations, 50), percentile(durations, 99)
    ratio = p99 / p50 if p50 > 0 else 0.0
    if ratio <= thresholds.value("steps.tail_ratio"):
        return []
    mean_us = math.fsum(durations) / len(durations)
    slow = sorted(untraced, key=lambda step: -step.duration_us)[:10]
    return [
        Finding(
            rule="step_variance",
            severity="warning",
            title=f"Step time has a long tail: p99 is {ratio:.1f}x the median",
            evidence={
                "p50_step_us": us(p50),
                "p99_step_us": us(p99),
                "p99_over_p50": round(ratio, 2),
                "mean_step_us": us(mean_us),
                "slowest_steps": [
                    {"step": step.step, "duration_us": us(step.duration_us)} for step in slow
                ],
            },
            advice=(
                "Look at what the slowest steps have in common (the run page marks them): "
                "periodic checkpointing, evaluation or logging inside the loop, DataLoader "
                "stalls at epoch boundaries (persistent_workers=True), Python garbage "
                "collection (gc.freeze() after setup).",
                "If they coincide with GPU throttling or another process on the GPU, see the "
                "telemetry finding.",
            ),
            expected_gain=Gain(
                max(0.0, (mean_us - p50) / mean_us),
                "time above the median step, share of all step time",
            ),
            confidence="high" if len(durations) >= 100 else "medium",
            scope=run_scope(evidence, measures, steps=tuple(step.step for step in slow)),
            thresholds=thresholds.uses("steps.tail_ratio", "steps.min_steps"),
        )
    ]


def check_drift(evidence: RunEvidence, measures: Measures, thresholds: Thresholds) -> list[Finding]:
    """The last quarter's median step over the first quarter's by more than 15 %."""
    steady = [step for step in measures.split.steady if not step.is_profiled]
    if len(steady) < thresholds.value("steps.min_steps"):
        return []
    quarter = len(steady) // 4
    first = median([step.duration_us for step in steady[:quarter]])
    last = median([step.duration_us for step in steady[-quarter:]])
    growth = last / first - 1 if first > 0 else 0.0
    if growth <= thresholds.value("steps.drift_percent") / 100:
        return []
    return [
        Finding(
            rule="step_drift",
            severity="warning",
            title=f"Steps got {pct(growth):.0f}% slower over the run",
            evidence={
                "first_quarter_median_us": us(first),
                "last_quarter_median_us": us(last),
                "growth_percent": pct(growth),
                "first_step": steady[0].step,
                "last_step": steady[-1].step,
            },
            advice=(
                "Something accumulates: tensors kept in Python lists (losses appended without "
                ".item()/.detach()), a growing graph (retain_graph), caches; watch allocated "
                "memory per step on the run page.",
                "Or the hardware slows down as it heats: check the GPU's clocks and throttle "
                "reasons over the run.",
            ),
            expected_gain=Gain(growth / (1 + growth), "the last quarter's extra time per step"),
            confidence="medium",
            scope=run_scope(evidence, measures),
            thresholds=thresholds.uses("steps.drift_percent", "steps.min_steps"),
        )
    ]
