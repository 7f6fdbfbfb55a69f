"""GPU use: the GPU idles through much of the step, or waits on kernel launches."""

from __future__ import annotations

from monitor.core.advisor.evidence import RunEvidence
from monitor.core.advisor.findings import Finding, Gain
from monitor.core.advisor.measures import Measures
from monitor.core.advisor.rules.base import confidence_for, pct, run_scope, us
from monitor.core.advisor.thresholds import Thresholds


def check_underused(
    evidence: RunEvidence, measures: Measures, thresholds: Thresholds
) -> list[Finding]:
    """GPU busy under 50 % of the traced steps (warning), under 20 % (critical)."""
    busy = measures.gpu_busy_fraction
    if busy is None or measures.traced_us <= 0:
        return []
    warning = thresholds.value("gpu.busy_warning_percent") / 100
    critical = thresholds.value("gpu.busy_critical_percent") / 100
    if busy >= warning:
        return []
    idle = measures.idle_us
    idle_total = sum(idle.values())
    cause = max(idle, key=lambda key: idle[key]) if idle_total > 0 else None
    return [
        Finding(
            rule="gpu_underused",
            severity="critical" if busy < critical else "warning",
            title=f"The GPU is busy only {pct(busy):.1f}% of the step",
            evidence={
                "gpu_busy_percent": pct(busy),
                "traced_steps": measures.traced_steps,
                "traced_us": us(measures.traced_us),
                "idle_host_wait_us": us(idle.get("host_wait", 0.0)),
                "idle_kernel_wait_us": us(idle.get("kernel_wait", 0.0)),
                "idle_other_us": us(idle.get("other", 0.0)),
                "idle_mostly": cause,
                **{f"{name}_percent": pct(share) for name, share in measures.shares.items()},
            },
            advice=_advice(cause),
            expected_gain=Gain(1.0 - busy, "GPU idle share of the traced steps"),
            confidence=confidence_for(measures),
            scope=run_scope(evidence, measures),
            thresholds=thresholds.uses("gpu.busy_warning_percent", "gpu.busy_critical_percent"),
        )
    ]


def _advice(cause: str | None) -> tuple[str, ...]:
    if cause == "host_wait":
        lead = (
            "The GPU waits for the host to issue work (HTA 'host wait'): find what the CPU "
            "does between kernels (data loading, Python, .item()/.cpu() syncs) and remove it "
            "from the step."
        )
    elif cause == "kernel_wait":
        lead = (
            "The GPU waits between back-to-back kernels (launch overhead): fuse them with "
            "torch.compile(model) or capture the step with CUDA graphs "
            "(torch.compile(mode='reduce-overhead'))."
        )
    else:
        lead = "Look at the idle gaps in the trace (Perfetto) for what the GPU waits on."
    return (
        lead,
        "Give the GPU more work per launch: a larger batch (scale the learning rate) or "
        "gradient accumulation over larger micro-batches.",
    )


def check_launch_bound(
    evidence: RunEvidence, measures: Measures, thresholds: Thresholds
) -> list[Finding]:
    """Over half of the kernels ran shorter than their launch call took (≥ 100 kernels)."""
    launch = measures.launch
    if launch is None or launch.matched < thresholds.value("launch.min_kernels"):
        return []
    share = launch.short_kernels / launch.matched
    if share <= thresholds.value("launch.short_kernel_fraction"):
        return []
    busy = measures.gpu_busy_fraction
    per_step = launch.launches / measures.traced_steps if measures.traced_steps else None
    launch_us = launch.launches * launch.mean_launch_us
    fraction = min(
        1.0 - busy if busy is not None else 1.0,
        launch_us / measures.traced_us if measures.traced_us > 0 else 1.0,
    )
    return [
        Finding(
            rule="launch_bound",
            severity="warning",
            title=(
                f"{pct(share):.0f}% of kernels run shorter than it takes to launch them: "
                "the step is launch-bound"
            ),
            evidence={
                "short_kernels": launch.short_kernels,
                "kernels": launch.matched,
                "short_kernel_percent": pct(share),
                "mean_launch_us": us(launch.mean_launch_us),
                "launches_per_step": round(per_step, 1) if per_step is not None else None,
                "launch_time_percent_of_step": pct(launch_us / measures.traced_us)
                if measures.traced_us > 0
                else None,
                "gpu_busy_percent": pct(busy) if busy is not None else None,
            },
            advice=(
                "Fuse small kernels: torch.compile(model) (Inductor fuses pointwise chains).",
                "Remove launch overhead altogether with CUDA graphs: "
                "torch.compile(model, mode='reduce-overhead').",
                "Give each kernel more work: a larger batch; use fused optimizers "
                "(torch.optim.AdamW(..., fused=True)) and set_to_none=True in zero_grad.",
            ),
            expected_gain=Gain(
                fraction,
                "host launch time per step, at most the GPU's idle share (CUDA graphs "
                "remove the launches)",
            ),
            confidence=confidence_for(measures),
            scope=run_scope(evidence, measures),
            thresholds=thresholds.uses("launch.short_kernel_fraction", "launch.min_kernels"),
        )
    ]
