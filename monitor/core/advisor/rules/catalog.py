"""The rules in the order they run (the order does not rank findings)."""

from __future__ import annotations

from monitor.core.advisor.rules import (
    copies,
    distributed,
    gpu,
    input_pipeline,
    memory,
    precision,
    step_health,
    sync,
    telemetry,
)
from monitor.core.advisor.rules.base import Rule

RULES: tuple[Rule, ...] = (
    input_pipeline.check_dataloader,
    input_pipeline.check_preprocessing,
    gpu.check_underused,
    gpu.check_launch_bound,
    copies.check,
    sync.check,
    precision.check,
    memory.check,
    distributed.check_communication,
    distributed.check_stragglers,
    distributed.check_setup,
    step_health.check_warmup,
    step_health.check_variance,
    step_health.check_drift,
    telemetry.check_slow_steps,
    telemetry.check_utilization_gap,
)

__all__ = ["RULES"]
