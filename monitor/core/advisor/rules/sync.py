"""Synchronization: the host blocks on the GPU inside the step (.item(), .cpu(), syncs)."""

from __future__ import annotations

import math

from monitor.core.advisor.evidence import RunEvidence
from monitor.core.advisor.findings import Finding, Gain
from monitor.core.advisor.measures import Measures
from monitor.core.advisor.rules.base import confidence_for, pct, run_scope, us
from monitor.core.advisor.thresholds import Thresholds


def check(evidence: RunEvidence, measures: Measures, thresholds: Thresholds) -> list[Finding]:
    """Synchronizing calls over 5 % of the traced step time."""
    if not measures.syncs or measures.traced_us <= 0:
        return []
    sync_us = math.fsum(sync.total_us for sync in measures.syncs)
    share = sync_us / measures.traced_us
    if share < thresholds.value("sync.warning_percent") / 100:
        return []
    steps = max(measures.traced_steps, 1)
    busy = measures.gpu_busy_fraction
    idle = 1.0 - busy if busy is not None else share
    return [
        Finding(
            rule="host_sync",
            severity="warning",
            title=(
                f"The host waits on the GPU {pct(share):.1f}% of the step "
                f"({sum(s.count for s in measures.syncs) / steps:.1f} synchronizing calls a step)"
            ),
            evidence={
                "sync_percent_of_step": pct(share),
                "sync_us_per_step": us(sync_us / steps),
                "gpu_busy_percent": pct(busy) if busy is not None else None,
                "calls": [
                    {
                        "name": s.name,
                        "kind": s.kind,
                        "count_per_step": round(s.count / steps, 2),
                        "us_per_step": us(s.total_us / steps),
                    }
                    for s in measures.syncs[:6]
                ],
            },
            advice=(
                "Remove per-step host reads of GPU values: loss.item(), tensor.cpu(), "
                "print(tensor), if tensor: ... Accumulate metrics on the GPU and read them "
                "every N steps.",
                "Find the remaining ones with torch.cuda.set_sync_debug_mode('warn').",
                "Avoid synchronous copies: .to('cpu', non_blocking=True) into pinned memory, "
                "and no torch.cuda.synchronize() in the loop except around timing code.",
            ),
            expected_gain=Gain(
                min(share, idle),
                "host time blocked in synchronizing calls, at most the GPU's idle share "
                "(a sync drains the launch queue and the GPU idles until it refills)",
            ),
            confidence=confidence_for(measures),
            scope=run_scope(evidence, measures),
            thresholds=thresholds.uses("sync.warning_percent"),
        )
    ]
