"""Two runs side by side (``gpulens compare RUN_A RUN_B``): did the change between them work?

Pure: two :class:`~monitor.core.advisor.evidence.RunEvidence` and the advisor's findings of each in,
one :class:`Comparison` out. The result types, their JSON form and the text report live in
:mod:`monitor.core.advisor.compare_report` and are re-exported here.
Durations are microseconds; every delta is B minus A.

Step time. Each run's warm-up is left out (:func:`~monitor.core.advisor.steps.split_warmup`). A run
with fewer than :data:`MIN_STEPS` steady steps (a trace-only run has no every-step records)
uses its stored step breakdowns' durations instead, and the notes say so. The speed-up is
``median_A / median_B`` (above 1: B is faster), with a percentile bootstrap confidence interval:
each run's step times are resampled independently (``numpy.random.default_rng(seed)``) and the
ratio of the resamples' medians is taken ``resamples`` times. The difference of medians
(``median_B - median_A``) gets its interval from the same resamples. Verdict on speed: "faster"
when the interval lies above 1, "slower" when below 1, "no significant change" when it holds 1,
"not enough data" when a run has fewer than :data:`MIN_STEPS` step times even so.

Breakdown and kernels are per profiled step: the stored breakdown rows of ProfilerSteps, or the
whole-trace rows (then per trace) when the trace had no step markers. Kernel rows are summed
by name over the run's windows; the :data:`KERNEL_LIMIT` largest changes are kept.

Findings of A, one :class:`FindingCheck` each. A finding *matches* a finding of B with the same
rule and the same scope rank (an unknown rank matches any). The finding is *addressed* in B
when no finding of B matches it, or when the matching one's time fraction is at most half of
A's (a finding without a time fraction is addressed only when it is gone). Then:

- **verified**: addressed, and B is significantly faster (the interval's low end is above 1).
  When the realized speed-up exceeds the Amdahl bound A's finding predicted, the reason says
  that other changes helped too.
- **refuted**: addressed, the finding predicted a gain (its bound above ``1 + REFUTE_EPSILON``),
  and B is not faster (the interval's high end is at most ``1 + REFUTE_EPSILON``): the
  bottleneck went away but the step did not speed up, so the prediction was wrong.
- **inconclusive**: B still has the finding, or the interval holds 1, or there are too few
  steps, or the finding predicted no step-time gain to test.

Findings of B that match no finding of A are listed as new.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Literal, TypeAlias

import numpy as np
import numpy.typing as npt

from monitor.core.advisor.compare_report import (
    CategoryDelta,
    CheckVerdict,
    Comparison,
    Difference,
    FindingCheck,
    KernelChange,
    KernelDelta,
    RunStats,
    SpeedUp,
    SpeedVerdict,
    comparison_to_json,
    render_comparison,
)
from monitor.core.advisor.evidence import RunEvidence
from monitor.core.advisor.findings import Finding, rank_findings
from monitor.core.advisor.steps import mean, median, percentile, split_warmup
from monitor.core.advisor.thresholds import Thresholds
from monitor.core.analysis.results import CATEGORIES, KernelStat
from monitor.core.run_views import StepBreakdownRow

MIN_STEPS = 5  # step times a run needs before its median is compared
REFUTE_EPSILON = 0.01  # a speed-up interval ending below 1.01x is "no speed-up"
ADDRESSED_RATIO = 0.5  # a finding whose time fraction halved is addressed
KERNEL_LIMIT = 20

Floats: TypeAlias = npt.NDArray[np.float64]
_KernelSum: TypeAlias = tuple[str, int, float, bool]  # category, calls, total µs, tensor core


def compare_runs(
    a: RunEvidence,
    b: RunEvidence,
    findings_a: Sequence[Finding],
    findings_b: Sequence[Finding],
    *,
    thresholds: Thresholds | None = None,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    kernel_limit: int = KERNEL_LIMIT,
) -> Comparison:
    """Compare run B against run A: step times, breakdown, kernels and A's findings."""
    if resamples < 1 or not 0.0 < confidence < 1.0:
        raise ValueError("resamples must be at least 1 and confidence within (0, 1)")
    thresholds = thresholds or Thresholds()
    notes: list[str] = []
    stats_a, sample_a = _run_stats("A", a, thresholds, notes)
    stats_b, sample_b = _run_stats("B", b, thresholds, notes)
    speedup, difference = _bootstrap(sample_a, sample_b, resamples, confidence, seed)
    breakdown = _breakdown_deltas(a, b, notes)
    kernels = diff_kernels(a, b, limit=kernel_limit, notes=notes)
    checks = tuple(
        check_finding(item, findings_b, speedup) for item in rank_findings([*findings_a])
    )
    new = [item for item in findings_b if not any(_matches(item, old) for old in findings_a)]
    return Comparison(
        a=stats_a,
        b=stats_b,
        speedup=speedup,
        difference=difference,
        breakdown=breakdown,
        kernels=kernels,
        findings=checks,
        new_findings=tuple(rank_findings(new)),
        notes=tuple(notes + _batch_notes(a, b)),
    )


def _run_stats(
    label: str, evidence: RunEvidence, thresholds: Thresholds, notes: list[str]
) -> tuple[RunStats, list[float]]:
    split = split_warmup(evidence.steps, thresholds)
    durations = split.durations_us
    sample: Literal["steps", "breakdowns"] = "steps"
    profiled = [row.duration_us for row in evidence.breakdowns if row.step is not None]
    if len(durations) < MIN_STEPS and len(profiled) > len(durations):
        notes.append(
            f"run {label} has {len(durations)} steady step records; its {len(profiled)} "
            "profiled step breakdowns stand in for its step times"
        )
        durations, sample = profiled, "breakdowns"
    if len(durations) < MIN_STEPS:
        notes.append(f"run {label} has {len(durations)} step times, fewer than {MIN_STEPS}")
    rows = _breakdown_rows(evidence)
    total_us = math.fsum(row.duration_us for row in rows)
    stats = RunStats(
        run_id=evidence.run_id,
        name=evidence.run.name if evidence.run is not None else None,
        steps=len(durations),
        warmup_steps=len(split.warmup) if sample == "steps" else 0,
        sample=sample,
        median_us=median(durations),
        mean_us=mean(durations),
        p90_us=percentile(durations, 90.0),
        p99_us=percentile(durations, 99.0),
        gpu_busy_percent=_percent(math.fsum(row.gpu_busy_us for row in rows), total_us),
    )
    return stats, durations


def _bootstrap(
    a: Sequence[float], b: Sequence[float], resamples: int, confidence: float, seed: int
) -> tuple[SpeedUp, Difference]:
    point_a, point_b = median(a), median(b)
    enough = min(len(a), len(b)) >= MIN_STEPS and point_b > 0
    ratio = point_a / point_b if enough else math.nan
    if not enough:
        nan = math.nan
        speedup = SpeedUp(ratio, nan, nan, confidence, resamples, seed, "not enough data")
        return speedup, Difference(point_b - point_a, nan, nan)
    rng = np.random.default_rng(seed)
    medians_a = _resampled_medians(np.asarray(a, dtype=np.float64), resamples, rng)
    medians_b = _resampled_medians(np.asarray(b, dtype=np.float64), resamples, rng)
    tails = [50.0 * (1.0 - confidence), 50.0 * (1.0 + confidence)]
    with np.errstate(divide="ignore"):
        ratio_low, ratio_high = np.percentile(medians_a / medians_b, tails)
    delta_low, delta_high = np.percentile(medians_b - medians_a, tails)
    verdict: SpeedVerdict = "no significant change"
    if ratio_low > 1.0:
        verdict = "faster"
    elif ratio_high < 1.0:
        verdict = "slower"
    speedup = SpeedUp(
        ratio, float(ratio_low), float(ratio_high), confidence, resamples, seed, verdict
    )
    return speedup, Difference(point_b - point_a, float(delta_low), float(delta_high))


def _resampled_medians(values: Floats, resamples: int, rng: np.random.Generator) -> Floats:
    """The medians of ``resamples`` resamples with replacement (numpy's median: the mean of the
    two middle values), drawn exactly in O(resamples) instead of O(resamples x steps).

    Drawing n indices uniformly is drawing n uniforms U and taking floor(U * n); the k-th
    smallest drawn index is floor(U_(k) * n), and the k-th order statistic of n uniforms is
    Beta(k, n - k + 1). The next one is U_(k) + (1 - U_(k)) * Beta(1, n - k). So each
    resample's middle values come from two Beta draws, whatever the run's length.
    """
    ordered, size = np.sort(values), values.size
    rank = (size - 1) // 2 + 1  # 1-based rank of the (lower) middle value
    low = rng.beta(rank, size - rank + 1, size=resamples)
    lower = ordered[np.minimum((low * size).astype(np.int64), size - 1)]
    if size % 2:
        return lower
    high = low + (1.0 - low) * rng.beta(1, size - rank, size=resamples)
    upper = ordered[np.minimum((high * size).astype(np.int64), size - 1)]
    return (lower + upper) / 2.0


def _breakdown_rows(evidence: RunEvidence) -> list[StepBreakdownRow]:
    """Profiled steps where the trace had step markers, else the whole-trace rows."""
    steps = [row for row in evidence.breakdowns if row.step is not None]
    return steps or [row for row in evidence.breakdowns if row.step is None]


def _breakdown_deltas(
    a: RunEvidence, b: RunEvidence, notes: list[str]
) -> tuple[CategoryDelta, ...]:
    rows_a, rows_b = _breakdown_rows(a), _breakdown_rows(b)
    missing = [label for label, rows in (("A", rows_a), ("B", rows_b)) if not rows]
    if missing:
        notes.append(f"no step breakdown for run {' and '.join(missing)}: no profiler window")
        return ()
    for label, rows in (("A", rows_a), ("B", rows_b)):
        if rows[0].step is None:
            notes.append(f"run {label}'s trace has no step markers: breakdown is per trace")
    return tuple(
        CategoryDelta(
            category=name,
            a_us=_mean_of(rows_a, name),
            b_us=_mean_of(rows_b, name),
            a_percent=_share(rows_a, name),
            b_percent=_share(rows_b, name),
        )
        for name in CATEGORIES
    )


def _mean_of(rows: Sequence[StepBreakdownRow], category: str) -> float:
    return math.fsum(row.breakdown_us.get(category, 0.0) for row in rows) / len(rows)


def _share(rows: Sequence[StepBreakdownRow], category: str) -> float:
    part = math.fsum(row.breakdown_us.get(category, 0.0) for row in rows)
    return _percent(part, math.fsum(row.duration_us for row in rows)) or 0.0


def _percent(part: float, whole: float) -> float | None:
    return 100.0 * part / whole if whole > 0 else None


def diff_kernels(
    a: RunEvidence, b: RunEvidence, *, limit: int = KERNEL_LIMIT, notes: list[str] | None = None
) -> tuple[KernelDelta, ...]:
    """Kernel time per profiled step (per trace without step markers), A against B: the
    ``limit`` largest changes by absolute µs per step. Empty when either run has no kernels."""
    missing = [label for label, run in (("A", a), ("B", b)) if not run.kernels]
    if missing:
        if notes is not None:
            notes.append(f"no kernel table for run {' and '.join(missing)}: kernels not compared")
        return ()
    table_a, steps_a = _kernel_table(a.kernels), max(len(_breakdown_rows(a)), 1)
    table_b, steps_b = _kernel_table(b.kernels), max(len(_breakdown_rows(b)), 1)
    rows = [
        _kernel_delta(name, table_a.get(name), steps_a, table_b.get(name), steps_b)
        for name in sorted(table_a.keys() | table_b.keys())
    ]
    rows.sort(key=lambda row: abs(row.delta_us), reverse=True)
    return tuple(rows[:limit])


def _kernel_table(kernels: Iterable[KernelStat]) -> dict[str, _KernelSum]:
    """Kernel rows summed by name (a run's kernel table holds one row per kernel and window)."""
    table: dict[str, _KernelSum] = {}
    for item in kernels:
        _, count, total_us, tensor_core = table.get(item.name, (item.category, 0, 0.0, False))
        table[item.name] = (
            item.category,
            count + item.count,
            total_us + item.total_us,
            tensor_core or item.tensor_core,
        )
    return table


def _kernel_delta(
    name: str, a: _KernelSum | None, steps_a: int, b: _KernelSum | None, steps_b: int
) -> KernelDelta:
    change: KernelChange = "changed" if a and b else ("added" if b else "removed")
    category = (a or b or ("",))[0]
    return KernelDelta(
        name=name,
        category=category,
        change=change,
        a_us_per_step=a[2] / steps_a if a else 0.0,
        b_us_per_step=b[2] / steps_b if b else 0.0,
        a_calls_per_step=a[1] / steps_a if a else 0.0,
        b_calls_per_step=b[1] / steps_b if b else 0.0,
        tensor_core_a=a[3] if a else None,
        tensor_core_b=b[3] if b else None,
    )


def _matches(finding: Finding, other: Finding) -> bool:
    rank, other_rank = finding.scope.rank, other.scope.rank
    same_rank = rank is None or other_rank is None or rank == other_rank
    return finding.rule == other.rule and same_rank


def check_finding(
    finding: Finding, findings_b: Sequence[Finding], speedup: SpeedUp
) -> FindingCheck:
    """Judge one finding of A against B's findings and the measured speed-up."""
    matching = [other for other in findings_b if _matches(finding, other)]
    fraction_b = max((other.time_fraction for other in matching), default=None)
    gain = finding.expected_gain
    predicted = gain.max_speedup if gain is not None else None
    verdict, reason = _verdict(finding, fraction_b, predicted, speedup)
    return FindingCheck(
        rule=finding.rule,
        title=finding.title,
        severity=finding.severity,
        predicted_max_speedup=predicted,
        predicted_time_fraction=gain.time_fraction if gain is not None else None,
        realized_speedup=speedup.median_ratio,
        realized_ci=(speedup.ci_low, speedup.ci_high),
        fraction_in_b=fraction_b,
        verdict=verdict,
        reason=reason,
    )


def _verdict(
    finding: Finding, fraction_b: float | None, predicted: float | None, speedup: SpeedUp
) -> tuple[CheckVerdict, str]:
    fraction_a = finding.time_fraction
    if fraction_b is not None and (fraction_a <= 0 or fraction_b > ADDRESSED_RATIO * fraction_a):
        was = f" (A {fraction_a:.0%}, B {fraction_b:.0%} of step)" if fraction_a > 0 else ""
        return "inconclusive", f"B still has this finding{was}"
    gone = "gone in B" if fraction_b is None else f"down to {fraction_b:.0%} of step in B"
    if speedup.verdict == "not enough data":
        return "inconclusive", f"{gone}, but too few steps to measure the speed-up"
    if speedup.ci_low > 1.0:
        if predicted is not None and speedup.median_ratio > predicted:
            return "verified", (
                f"{gone} and B is faster, by more than the {predicted:.2f}x this finding "
                "bounds: other changes helped too"
            )
        return "verified", f"{gone} and B is significantly faster"
    if predicted is None or predicted <= 1.0 + REFUTE_EPSILON:
        return "inconclusive", f"{gone}; the finding predicted no step-time gain to test"
    if speedup.ci_high <= 1.0 + REFUTE_EPSILON:
        return "refuted", (
            f"{gone} but the step did not speed up (predicted up to {predicted:.2f}x)"
        )
    return "inconclusive", f"{gone}, but the speed-up's interval holds 1"


def _batch_notes(a: RunEvidence, b: RunEvidence) -> list[str]:
    """Step time compares like with like only when a step carries the same amount of work."""
    notes = []
    for unit in ("samples", "tokens"):
        per_a = _work_per_step(a, unit)
        per_b = _work_per_step(b, unit)
        if per_a is not None and per_b is not None and per_a != per_b:
            notes.append(
                f"a step of A carries {per_a:g} {unit}, of B {per_b:g}: "
                f"compare {unit} per second, not step time"
            )
    return notes


def _work_per_step(evidence: RunEvidence, unit: str) -> float | None:
    counts = [getattr(step, unit) for step in evidence.steps]
    known = [float(count) for count in counts if count is not None]
    return median(known) if known else None


__all__ = [
    "ADDRESSED_RATIO",
    "MIN_STEPS",
    "REFUTE_EPSILON",
    "CategoryDelta",
    "CheckVerdict",
    "Comparison",
    "Difference",
    "FindingCheck",
    "KernelChange",
    "KernelDelta",
    "RunStats",
    "SpeedUp",
    "SpeedVerdict",
    "check_finding",
    "compare_runs",
    "comparison_to_json",
    "diff_kernels",
    "render_comparison",
]
