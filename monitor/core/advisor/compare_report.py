"""What a run comparison found (:func:`monitor.core.advisor.compare.compare_runs`): the result
types, their JSON form (``gpulens compare --json``) and a short text report.

JSON shape (keys are only ever added; a number that could not be measured is ``null``; every
delta is B minus A; durations are µs)::

    {
      "a": RUN, "b": RUN,
      "speedup": {"median_ratio", "ci_low", "ci_high", "confidence", "resamples", "seed",
                  "verdict"},           # "faster" | "slower" | "no significant change"
                                        # | "not enough data"
      "difference_us": {"median_b_minus_a", "ci_low", "ci_high"},
      "breakdown": [{"category", "a_us", "b_us", "a_percent", "b_percent", "delta_us",
                     "delta_points"}],  # one per step-breakdown category; [] without traces
      "kernels": [{"name", "category", "change", "a_us_per_step", "b_us_per_step",
                   "a_calls_per_step", "b_calls_per_step", "tensor_core_a", "tensor_core_b",
                   "delta_us"}],
      "findings": [{"rule", "title", "severity", "predicted_time_fraction",
                    "predicted_max_speedup", "realized_speedup", "realized_ci": [low, high],
                    "fraction_in_b", "verdict", "reason"}],  # A's findings, most important first
      "new_findings": [FINDING],        # B's findings A did not have, as ``gpulens advise --json``
      "notes": [str]
    }
    RUN = {"run_id", "name", "steps", "warmup_steps", "sample", "median_us", "mean_us",
           "p90_us", "p99_us", "gpu_busy_percent"}

``change`` is "added" (only in B), "removed" (only in A) or "changed"; ``tensor_core_*`` is
``null`` for the run without the kernel. ``verdict`` of a finding is "verified", "refuted" or
"inconclusive" (rules in :mod:`monitor.core.advisor.compare`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Literal, TypeAlias, TypeVar

from monitor.core.advisor.findings import Finding, finding_to_json

_V = TypeVar("_V")
SpeedVerdict: TypeAlias = Literal["faster", "slower", "no significant change", "not enough data"]
CheckVerdict: TypeAlias = Literal["verified", "refuted", "inconclusive"]
KernelChange: TypeAlias = Literal["added", "removed", "changed"]


@dataclass(frozen=True, slots=True)
class RunStats:
    """One run's step times. ``sample`` is where they come from: ``"steps"`` (every-step
    records, warm-up left out) or ``"breakdowns"`` (stored profiler step breakdowns)."""

    run_id: str | None
    name: str | None
    steps: int
    warmup_steps: int
    sample: Literal["steps", "breakdowns"]
    median_us: float
    mean_us: float
    p90_us: float
    p99_us: float
    gpu_busy_percent: float | None


@dataclass(frozen=True, slots=True)
class SpeedUp:
    """``median_A / median_B`` with its bootstrap interval (NaN without enough data)."""

    median_ratio: float
    ci_low: float
    ci_high: float
    confidence: float
    resamples: int
    seed: int
    verdict: SpeedVerdict


@dataclass(frozen=True, slots=True)
class Difference:
    """``median_B - median_A`` in µs with its bootstrap interval (negative: B is faster)."""

    delta_us: float
    ci_low_us: float
    ci_high_us: float


@dataclass(frozen=True, slots=True)
class CategoryDelta:
    """One step-breakdown category: mean µs per profiled step and share of step, A and B."""

    category: str
    a_us: float
    b_us: float
    a_percent: float
    b_percent: float

    @property
    def delta_us(self) -> float:
        return self.b_us - self.a_us

    @property
    def delta_points(self) -> float:
        return self.b_percent - self.a_percent


@dataclass(frozen=True, slots=True)
class KernelDelta:
    """One kernel's time per profiled step in A and B (0 where the run does not have it)."""

    name: str
    category: str
    change: KernelChange
    a_us_per_step: float
    b_us_per_step: float
    a_calls_per_step: float
    b_calls_per_step: float
    tensor_core_a: bool | None
    tensor_core_b: bool | None

    @property
    def delta_us(self) -> float:
        return self.b_us_per_step - self.a_us_per_step


@dataclass(frozen=True, slots=True)
class FindingCheck:
    """A finding of A judged against B (the rule is in the module docstring)."""

    rule: str
    title: str
    severity: str
    predicted_max_speedup: float | None
    predicted_time_fraction: float | None
    realized_speedup: float
    realized_ci: tuple[float, float]
    fraction_in_b: float | None  # the matching finding of B's time fraction; None: none
    verdict: CheckVerdict
    reason: str


@dataclass(frozen=True, slots=True)
class Comparison:
    """Everything :func:`compare_runs` found."""

    a: RunStats
    b: RunStats
    speedup: SpeedUp
    difference: Difference
    breakdown: tuple[CategoryDelta, ...]
    kernels: tuple[KernelDelta, ...]
    findings: tuple[FindingCheck, ...]
    new_findings: tuple[Finding, ...]
    notes: tuple[str, ...]


def comparison_to_json(comparison: Comparison) -> dict[str, Any]:
    """The documented JSON form (see the module docstring); NaN becomes ``null``."""
    speedup, difference = comparison.speedup, comparison.difference
    return {
        "a": _row_json(comparison.a),
        "b": _row_json(comparison.b),
        "speedup": {
            "median_ratio": _number(speedup.median_ratio),
            "ci_low": _number(speedup.ci_low),
            "ci_high": _number(speedup.ci_high),
            "confidence": speedup.confidence,
            "resamples": speedup.resamples,
            "seed": speedup.seed,
            "verdict": speedup.verdict,
        },
        "difference_us": {
            "median_b_minus_a": _number(difference.delta_us),
            "ci_low": _number(difference.ci_low_us),
            "ci_high": _number(difference.ci_high_us),
        },
        "breakdown": [_row_json(row, "delta_us", "delta_points") for row in comparison.breakdown],
        "kernels": [_row_json(row, "delta_us") for row in comparison.kernels],
        "findings": [_check_json(check) for check in comparison.findings],
        "new_findings": [finding_to_json(item) for item in comparison.new_findings],
        "notes": list(comparison.notes),
    }


def _row_json(row: RunStats | CategoryDelta | KernelDelta, *derived: str) -> dict[str, Any]:
    """A result row's fields, then its ``derived`` properties (the deltas), keyed by name."""
    names = [*(item.name for item in fields(row)), *derived]
    return {name: _number(getattr(row, name)) for name in names}


def _check_json(check: FindingCheck) -> dict[str, Any]:
    return {
        "rule": check.rule,
        "title": check.title,
        "severity": check.severity,
        "predicted_time_fraction": check.predicted_time_fraction,
        "predicted_max_speedup": check.predicted_max_speedup,
        "realized_speedup": _number(check.realized_speedup),
        "realized_ci": [_number(value) for value in check.realized_ci],
        "fraction_in_b": check.fraction_in_b,
        "verdict": check.verdict,
        "reason": check.reason,
    }


def _number(value: _V) -> _V | None:
    # JSON has no NaN: an unmeasured figure is null.
    return None if isinstance(value, float) and math.isnan(value) else value


def render_comparison(comparison: Comparison) -> str:
    """A short text report: the headline speed-up, the runs, breakdown and kernel deltas, and
    each finding of A with its verdict."""
    lines = [headline(comparison), *_run_lines(comparison), ""]
    lines += _breakdown_lines(comparison.breakdown)
    lines += _kernel_lines(comparison.kernels)
    lines += _finding_lines(comparison.findings, comparison.new_findings)
    if comparison.notes:
        lines += ["Notes", *(f"  - {note}" for note in comparison.notes)]
    return "\n".join(lines).rstrip() + "\n"


def headline(comparison: Comparison) -> str:
    """One line: is B faster than A, by how much, and how sure."""
    speedup, a, b = comparison.speedup, comparison.a, comparison.b
    if speedup.verdict == "not enough data":
        return f"not enough step times to compare: A has {a.steps}, B {b.steps} (see notes)"
    ratio = f"{speedup.median_ratio:.2f}x"
    said = {
        "faster": f"B is {ratio} faster than A",
        "slower": f"B is slower than A: {ratio}",
        "no significant change": f"no significant change: {ratio}",
    }[speedup.verdict]
    return (
        f"{said} (median step {_duration(a.median_us)} -> {_duration(b.median_us)}; "
        f"{speedup.confidence:.0%} CI {speedup.ci_low:.2f}x-{speedup.ci_high:.2f}x)"
    )


def _run_lines(comparison: Comparison) -> list[str]:
    difference, confidence = comparison.difference, comparison.speedup.confidence
    lines = [f"  per step {_duration(difference.delta_us, signed=True)}"]
    if not math.isnan(difference.ci_low_us):
        lines[0] += (
            f" ({confidence:.0%} CI {_duration(difference.ci_low_us, signed=True)} .. "
            f"{_duration(difference.ci_high_us, signed=True)})"
        )
    lines.append(
        f"  {'run':<28} {'steps':>6} {'warm-up':>7} {'median':>10} {'mean':>10} {'p90':>10} "
        f"{'p99':>10} {'GPU busy':>8}"
    )
    for label, stats in (("A", comparison.a), ("B", comparison.b)):
        busy = stats.gpu_busy_percent
        name = f"{label} {stats.name or '-'} ({(stats.run_id or '-')[:8]})"
        lines.append(
            f"  {name[:28]:<28} {stats.steps:>6} {stats.warmup_steps:>7} "
            f"{_duration(stats.median_us):>10} {_duration(stats.mean_us):>10} "
            f"{_duration(stats.p90_us):>10} {_duration(stats.p99_us):>10} "
            f"{f'{busy:.0f}%' if busy is not None else '-':>8}"
        )
    return lines


def _breakdown_lines(rows: tuple[CategoryDelta, ...]) -> list[str]:
    shown = [row for row in rows if row.a_us or row.b_us]
    if not shown:
        return []
    lines = [
        "Step breakdown, mean per profiled step",
        f"  {'category':<14} {'A':>10} {'B':>10} {'delta':>11} {'A %':>6} {'B %':>6} {'points':>7}",
    ]
    lines += [
        f"  {row.category:<14} {_duration(row.a_us):>10} {_duration(row.b_us):>10} "
        f"{_duration(row.delta_us, signed=True):>11} {row.a_percent:>6.1f} "
        f"{row.b_percent:>6.1f} {row.delta_points:>+7.1f}"
        for row in shown
    ]
    return [*lines, ""]


def _kernel_lines(rows: tuple[KernelDelta, ...], shown: int = 10) -> list[str]:
    if not rows:
        return []
    lines = [
        "Kernel changes per profiled step",
        f"  {'change':<8} {'A':>10} {'B':>10} {'delta':>11} {'TC':>3}  name",
    ]
    for row in rows[:shown]:
        tensor_core = row.tensor_core_b if row.tensor_core_b is not None else row.tensor_core_a
        lines.append(
            f"  {row.change:<8} {_duration(row.a_us_per_step):>10} "
            f"{_duration(row.b_us_per_step):>10} {_duration(row.delta_us, signed=True):>11} "
            f"{'yes' if tensor_core else 'no':>3}  {_short(row.name)}"
        )
    return [*lines, ""]


def _finding_lines(checks: tuple[FindingCheck, ...], new: tuple[Finding, ...]) -> list[str]:
    lines: list[str] = []
    if checks:
        lines.append("Findings of A")
    for check in checks:
        predicted = "no predicted gain"
        if check.predicted_max_speedup is not None:
            fraction = check.predicted_time_fraction or 0.0
            predicted = f"predicted up to {check.predicted_max_speedup:.2f}x ({fraction:.0%})"
        realized = "-" if math.isnan(check.realized_speedup) else f"{check.realized_speedup:.2f}x"
        lines += [
            f"  {check.verdict:<12} {check.rule}: {check.title}",
            f"  {'':<12} {predicted}, realized {realized}: {check.reason}",
        ]
    if new:
        lines += ["", "New in B"] if checks else ["New in B"]
    lines += [f"  {item.severity:<12} {item.rule}: {item.title}" for item in new]
    return [*lines, ""] if lines else []


def _duration(value_us: float | None, *, signed: bool = False) -> str:
    if value_us is None or math.isnan(value_us):
        return "-"
    sign = "+" if signed else ""
    size = abs(value_us)
    if size >= 1e6:
        return f"{value_us / 1e6:{sign}.2f} s"
    if size >= 1e3:
        return f"{value_us / 1e3:{sign}.2f} ms"
    return f"{value_us:{sign}.1f} µs"


def _short(name: str, width: int = 70) -> str:
    return name if len(name) <= width else name[: width - 3] + "..."


__all__ = [
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
    "comparison_to_json",
    "headline",
    "render_comparison",
]
