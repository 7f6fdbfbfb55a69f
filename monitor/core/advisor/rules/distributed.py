"""Distributed training: exposed communication, straggler ranks, and the wrong setup."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from typing import Any

from monitor.core.advisor.evidence import PeerRank, RunEvidence
from monitor.core.advisor.findings import Finding, Gain
from monitor.core.advisor.measures import Measures
from monitor.core.advisor.rules.base import confidence_for, pct, run_scope, us
from monitor.core.advisor.thresholds import Thresholds


def check_communication(
    evidence: RunEvidence, measures: Measures, thresholds: Thresholds
) -> list[Finding]:
    """Communication not hidden behind compute over 10 % of the step.

    A collective lasts until the last rank arrives, so a rank's communication time is transfer
    plus waiting for slower ranks. The slowest rank never waits: with peers known, the smallest
    communication share among the ranks is the transfer cost, and the rest of this rank's is
    imbalance (the straggler rule's subject), not something communication tuning can win.
    """
    own = measures.shares.get("communication", 0.0)
    share = min(own, _transfer_share(evidence, measures))
    if share < thresholds.value("dist.comm_warning_percent") / 100:
        return []
    overlap = (
        measures.overlapped_us / measures.communication_us
        if measures.communication_us > 0
        else None
    )
    backend = next((t.distributed_backend for t in evidence.traces if t.distributed_backend), None)
    is_poor_overlap = overlap is not None and overlap < (
        thresholds.value("dist.overlap_min_percent") / 100
    )
    return [
        Finding(
            rule="communication",
            severity="warning",
            title=(f"Communication not hidden behind compute takes {pct(share):.1f}% of the step"),
            evidence={
                "communication_percent_of_step": pct(share),
                "waiting_for_other_ranks_percent": pct(own - share),
                "communication_us_per_step": us(share * measures.mean_step_us),
                "comm_overlapped_by_compute_percent": pct(overlap) if overlap is not None else None,
                "backend": backend,
                "world_size": evidence.run.world_size if evidence.run is not None else None,
            },
            advice=(
                "Check first whether this rank waits for a slower one (see a straggler finding): "
                "collectives include the wait for the last rank to arrive.",
                "Overlap gradient all-reduce with backward: DistributedDataParallel with "
                "bucket_cap_mb tuned (25 MB default), gradient_as_bucket_view=True, and no "
                "parameters unused in forward (find_unused_parameters=False).",
                "Communicate less often or less: model.no_sync() across gradient-accumulation "
                "micro-steps, or a bf16 compression hook "
                "(ddp_comm_hooks.default_hooks.bf16_compress_hook).",
            )
            if not is_poor_overlap
            else (
                "Communication barely overlaps compute: make sure collectives run on their own "
                "stream during backward (DDP does this; hand-written all_reduce after "
                "backward does not), and tune DDP's bucket_cap_mb.",
                "Communicate less: model.no_sync() across accumulation steps, bf16 gradient "
                "compression hooks.",
            ),
            expected_gain=Gain(share, "exposed communication share of the traced steps"),
            confidence=confidence_for(measures),
            scope=run_scope(evidence, measures),
            thresholds=thresholds.uses("dist.comm_warning_percent", "dist.overlap_min_percent"),
        )
    ]


def _transfer_share(evidence: RunEvidence, measures: Measures) -> float:
    """The share of step time every rank spends communicating. Step by step over the traced
    steps all ranks share: the least any rank waited in that step (ranks take turns being the
    slowest, so the least mean wait overstates it); else the least mean share."""
    peers = [peer for peer in evidence.peers if peer.step_us > 0]
    if len(peers) < 2:
        return 1.0
    own = {
        row.step: row.duration_us
        for row in evidence.breakdowns
        if row.step is not None and row.rank == evidence.rank
    }
    common = set(own).intersection(*(peer.wait_by_step_us for peer in peers))
    total = math.fsum(own[step] for step in common)
    if common and total > 0:
        least = math.fsum(min(peer.wait_by_step_us[step] for peer in peers) for step in common)
        return least / total
    return min(peer.wait_us / peer.step_us for peer in peers)


def check_stragglers(
    evidence: RunEvidence, measures: Measures, thresholds: Thresholds
) -> list[Finding]:
    """A rank whose own work (step minus communication wait) is over 10 % above the median
    of the other ranks'; the others wait for it in every collective."""
    peers = [peer for peer in evidence.peers if peer.step_us > 0]
    if len(peers) < 2:
        return []
    limit = 1 + thresholds.value("dist.straggler_percent") / 100
    findings = []
    for peer in peers:
        others = [other.busy_us for other in peers if other.rank != peer.rank]
        reference = statistics.median(others)
        if reference <= 0 or peer.busy_us <= reference * limit:
            continue
        lost = (peer.busy_us - reference) / peer.step_us
        findings.append(_straggler(evidence, measures, thresholds, peer, peers, reference, lost))
    return findings


def _straggler(
    evidence: RunEvidence,
    measures: Measures,
    thresholds: Thresholds,
    slow: PeerRank,
    peers: list[PeerRank],
    reference: float,
    lost: float,
) -> Finding:
    slowdown = slow.busy_us / reference - 1
    return Finding(
        rule="straggler",
        severity="critical" if lost >= 0.25 else "warning",
        title=(
            f"Rank {slow.rank} is a straggler: its own work per step takes "
            f"{pct(slowdown):.0f}% longer than the other ranks', and they wait for it"
        ),
        evidence={
            "straggler_rank": slow.rank,
            "straggler_host": slow.host,
            "straggler_busy_us": us(slow.busy_us),
            "median_busy_us_of_others": us(reference),
            "slowdown_percent": pct(slowdown),
            "ranks": [
                {
                    "rank": peer.rank,
                    "step_us": us(peer.step_us),
                    "communication_wait_us": us(peer.wait_us),
                    "busy_us": us(peer.busy_us),
                    "dataloader_wait_us": us(peer.dataloader_wait_us)
                    if peer.dataloader_wait_us is not None
                    else None,
                }
                for peer in sorted(peers, key=lambda item: item.rank)
            ],
        },
        advice=(
            f"Find what makes rank {slow.rank} slower: its data shard or loader (compare "
            "dataloader_wait_us across ranks), other processes or throttling on its GPU/host "
            "(the GPU page), or a larger share of the work.",
            "Balance the work: equal-sized shards (DistributedSampler with drop_last=True), "
            "equal sequence lengths per rank (bucketing), the same hardware for every rank.",
        ),
        expected_gain=Gain(
            lost, "the straggler's extra work per step, which every rank waits through"
        ),
        confidence="high" if measures.traced_steps >= 3 else "medium",
        scope=run_scope(evidence, measures, rank=slow.rank, host=slow.host),
        thresholds=thresholds.uses("dist.straggler_percent"),
    )


def check_setup(evidence: RunEvidence, measures: Measures, thresholds: Thresholds) -> list[Finding]:
    """DataParallel instead of DistributedDataParallel; a non-NCCL backend with GPUs."""
    findings = []
    hooks: Mapping[str, Any] = (evidence.run.config.get("gpulens") or {}) if evidence.run else {}
    if hooks.get("model_wrapper") == "DataParallel":
        findings.append(
            Finding(
                rule="data_parallel",
                severity="warning",
                title="The model uses DataParallel, which replicates it from one process",
                evidence={"model_wrapper": "DataParallel"},
                advice=(
                    "Use DistributedDataParallel with one process per GPU (torchrun "
                    "--nproc-per-node=N): no per-step model replication, no GIL contention, "
                    "gradients all-reduced during backward.",
                ),
                confidence="high",
                scope=run_scope(evidence, measures),
            )
        )
    backend = next((t.distributed_backend for t in evidence.traces if t.distributed_backend), None)
    if backend is not None and backend.lower() != "nccl" and evidence.has_gpu_trace:
        findings.append(
            Finding(
                rule="dist_backend",
                severity="warning",
                title=f"GPU training communicates through the {backend} backend, not NCCL",
                evidence={"backend": backend},
                advice=(
                    "Initialise with dist.init_process_group('nccl') (or 'cpu:gloo,cuda:nccl' "
                    "when CPU collectives are needed too): NCCL moves GPU tensors over "
                    "NVLink/InfiniBand without host copies.",
                ),
                confidence="high",
                scope=run_scope(evidence, measures),
            )
        )
    return findings
