"""Step-time statistics the rules and the run comparison share (pure).

Warm-up: the leading steps of a run are often slow (CUDA context, cuDNN autotuning,
torch.compile, allocator growth). A leading step slower than ``steps.warmup_factor`` times the
median of the rest is warm-up, up to ``steps.warmup_max_steps`` steps; the *steady* steps are
the ones after it. Every figure that speaks for the whole run (medians, shares, comparisons)
uses the steady steps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from monitor.core.advisor.thresholds import Thresholds
from monitor.core.run_records import StepRecord


@dataclass(frozen=True, slots=True)
class StepSplit:
    """A run's steps split into leading warm-up steps and the steady steps after them."""

    warmup: tuple[StepRecord, ...]
    steady: tuple[StepRecord, ...]

    @property
    def durations_us(self) -> list[float]:
        return [step.duration_us for step in self.steady]


def split_warmup(steps: Sequence[StepRecord], thresholds: Thresholds) -> StepSplit:
    """The leading run of steps over ``warmup_factor`` x the median of the later steps is
    warm-up (a slow step after a normal one is not: it belongs to the run's tail)."""
    ordered = sorted(steps, key=lambda step: step.step)
    if len(ordered) < 3:
        return StepSplit((), tuple(ordered))
    limit = min(int(thresholds.value("steps.warmup_max_steps")), len(ordered) // 2)
    factor = thresholds.value("steps.warmup_factor")
    reference = median([step.duration_us for step in ordered[limit:]])
    count = 0
    while count < limit and ordered[count].duration_us > factor * reference:
        count += 1
    return StepSplit(tuple(ordered[:count]), tuple(ordered[count:]))


def median(values: Sequence[float]) -> float:
    return percentile(values, 50.0)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values) if values else math.nan


__all__ = ["StepSplit", "mean", "median", "percentile", "split_warmup"]
