"""Host-device copies: pageable host-to-device copies, and copies that fill the step."""

from __future__ import annotations

import math

from monitor.core.advisor.evidence import RunEvidence
from monitor.core.advisor.findings import Finding, Gain
from monitor.core.advisor.measures import Measures
from monitor.core.advisor.rules.base import confidence_for, pct, run_scope, us
from monitor.core.advisor.thresholds import Thresholds


def check(evidence: RunEvidence, measures: Measures, thresholds: Thresholds) -> list[Finding]:
    """Pageable HtoD copies over 1 % of GPU busy time, or copies over 10 % of the step."""
    if measures.gpu_busy_fraction is None or measures.traced_us <= 0 or not measures.memcpy:
        return []
    busy_us = measures.gpu_busy_fraction * measures.traced_us
    pageable = [c for c in measures.memcpy if c.direction == "HtoD" and c.memory == "pageable"]
    pageable_us = math.fsum(copy.total_us for copy in pageable)
    copy_share = measures.shares.get("memcpy", 0.0)
    is_pageable = busy_us > 0 and pageable_us / busy_us >= (
        thresholds.value("copy.pageable_h2d_percent") / 100
    )
    is_dominant = copy_share >= thresholds.value("copy.memcpy_warning_percent") / 100
    if not (is_pageable or is_dominant):
        return []
    steps = max(measures.traced_steps, 1)
    title = (
        f"Host-to-device copies from pageable memory take {us(pageable_us / steps)} µs per step"
        if is_pageable
        else f"Memory copies fill {pct(copy_share):.1f}% of the step"
    )
    return [
        Finding(
            rule="h2d_copies",
            severity="warning",
            title=title,
            evidence={
                "memcpy_percent_of_step": pct(copy_share),
                "pageable_h2d_us_per_step": us(pageable_us / steps),
                "pageable_h2d_bytes_per_step": sum(c.total_bytes for c in pageable) // steps,
                "pageable_h2d_percent_of_gpu_busy": pct(pageable_us / busy_us) if busy_us else None,
                "copies": [
                    {
                        "direction": c.direction,
                        "memory": c.memory,
                        "count_per_step": round(c.count / steps, 2),
                        "us_per_step": us(c.total_us / steps),
                        "bytes_per_step": c.total_bytes // steps,
                    }
                    for c in measures.memcpy[:6]
                ],
            },
            advice=(
                "Pin host memory and copy asynchronously: DataLoader(..., pin_memory=True) and "
                "batch.to(device, non_blocking=True); pinned copies overlap compute, pageable "
                "ones block the host and are staged through a bounce buffer.",
                "Create tensors directly on the GPU (torch.randn(..., device='cuda')) instead of "
                "on the CPU and copying; keep constant data resident on the device.",
                "Copy less: send uint8 images and convert/normalise on the GPU.",
            ),
            expected_gain=Gain(
                max(copy_share, pageable_us / measures.traced_us),
                "copy time share of the traced steps (async pinned copies can overlap it)",
            ),
            confidence=confidence_for(measures),
            scope=run_scope(evidence, measures),
            thresholds=thresholds.uses("copy.pageable_h2d_percent", "copy.memcpy_warning_percent"),
        )
    ]
