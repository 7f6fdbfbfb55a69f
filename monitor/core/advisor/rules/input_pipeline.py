"""Input pipeline: the step waits for data, or prepares it on the training thread."""

from __future__ import annotations

from monitor.core.advisor.evidence import RunEvidence
from monitor.core.advisor.findings import Finding, Gain
from monitor.core.advisor.measures import Measures
from monitor.core.advisor.rules.base import (
    confidence_for,
    grade_share,
    pct,
    run_scope,
    step_basis,
    us,
)
from monitor.core.advisor.thresholds import Thresholds

# The (warning, critical) thresholds of each rule: a share of step time, in percent.
_DATALOADER = ("input.dataloader_warning_percent", "input.dataloader_critical_percent")
_PREPROCESSING = ("input.preprocess_warning_percent", "input.dataloader_critical_percent")


def check_dataloader(
    evidence: RunEvidence, measures: Measures, thresholds: Thresholds
) -> list[Finding]:
    """DataLoader wait over 5 % of step time (warning), over 20 % (critical)."""
    fraction = measures.dataloader_fraction
    severity = grade_share(fraction, thresholds, *_DATALOADER)
    if fraction is None or severity is None:
        return []
    wait_us = fraction * measures.mean_step_us
    return [
        Finding(
            rule="input_pipeline",
            severity=severity,
            title=f"The step waits for the DataLoader {pct(fraction):.1f}% of the time",
            evidence={
                "dataloader_wait_percent": pct(fraction),
                "mean_dataloader_wait_us": us(wait_us),
                "mean_step_us": us(measures.mean_step_us),
                "measured_over": step_basis(measures)
                if measures.dataloader_source == "every-step records"
                else f"{measures.traced_steps} traced steps",
                "source": measures.dataloader_source,
            },
            advice=(
                "Load batches in worker processes: DataLoader(..., num_workers=N) with N up to "
                "the free CPU cores, persistent_workers=True and prefetch_factor=4.",
                "On a GPU, add pin_memory=True and copy with .to(device, non_blocking=True).",
                "Make __getitem__ cheap: decode and augment once and cache, or read a "
                "preprocessed format (memory-mapped arrays, WebDataset shards).",
            ),
            expected_gain=Gain(
                fraction, "DataLoader wait share of step time; workers can hide all of it"
            ),
            confidence=confidence_for(measures),
            scope=run_scope(evidence, measures),
            thresholds=thresholds.uses(*_DATALOADER),
        )
    ]


def check_preprocessing(
    evidence: RunEvidence, measures: Measures, thresholds: Thresholds
) -> list[Finding]:
    """Host work between a batch's arrival and the model's forward (``attach(model=)``)."""
    fraction = measures.pre_forward_fraction
    severity = grade_share(fraction, thresholds, *_PREPROCESSING)
    if fraction is None or severity is None:
        return []
    return [
        Finding(
            rule="cpu_preprocessing",
            severity=severity,
            title=(
                f"{pct(fraction):.1f}% of each step is spent preparing the batch on the "
                "training thread, before the model runs"
            ),
            evidence={
                "pre_forward_percent": pct(fraction),
                "mean_pre_forward_us": us(fraction * measures.mean_step_us),
                "mean_step_us": us(measures.mean_step_us),
                "measured_over": step_basis(measures),
            },
            advice=(
                "Move the per-batch transform out of the training loop into the Dataset "
                "(__getitem__) or a collate_fn, so DataLoader workers run it in parallel with "
                "training (num_workers>0).",
                "Or run it on the GPU on whole batches (tensor ops, torchvision.transforms.v2 "
                "on device tensors) instead of per sample in Python.",
                "If the result is the same every epoch, compute it once and cache it.",
            ),
            expected_gain=Gain(
                fraction, "time from the batch's arrival to the forward call, share of step"
            ),
            confidence=confidence_for(measures),
            scope=run_scope(evidence, measures),
            thresholds=thresholds.uses(*_PREPROCESSING),
        )
    ]
