"""Does the advisor name each case's injected bottleneck? The detection table of the suite.

For every case that ran (both variants, stored as runs ``<case>-bottleneck`` and
``<case>-clean``), :func:`detect` advises both runs and reports the bottleneck run's top
finding, its predicted gain (Amdahl's bound), the gain realized by the clean twin (the ratio
of the two runs' median time per sample, warm-up left out), and the clean twin's findings at
warning level or worse (there should be none). Distributed cases are judged on rank 0.
"""

from __future__ import annotations

from dataclasses import dataclass

from examples.bottlenecks.suite import Case
from monitor.core.advisor.advice import AdvisorSettings
from monitor.core.advisor.findings import Finding
from monitor.core.advisor.steps import median, split_warmup
from monitor.core.run_records import StepRecord
from monitor.services.runs import advise_run
from monitor.store import Store


@dataclass(frozen=True, slots=True)
class Detection:
    case: str
    expected_rule: str | None
    top_rule: str | None
    top_severity: str | None
    predicted_speedup: float | None
    realized_speedup: float | None
    clean_warnings: tuple[str, ...]
    findings: tuple[str, ...]  # every rule the bottleneck run raised, in rank order

    @property
    def is_detected(self) -> bool:
        if self.expected_rule is None:
            return self.top_rule is None or self.top_severity == "info"
        return self.top_rule == self.expected_rule

    @property
    def is_clean_quiet(self) -> bool:
        return not self.clean_warnings


def run_name(case: Case, variant: str) -> str:
    return f"{case.name}-{variant}"


def detect(store: Store, case: Case, settings: AdvisorSettings | None = None) -> Detection:
    bottleneck = _advise(store, run_name(case, "bottleneck"), settings)
    clean = _advise(store, run_name(case, "clean"), settings)
    ranked = [f for f in bottleneck[0] if f.severity != "info"] or bottleneck[0]
    top = ranked[0] if ranked else None
    gain = top.expected_gain if top is not None else None
    realized = _per_sample_median(bottleneck[1]) / _per_sample_median(clean[1])
    return Detection(
        case=case.name,
        expected_rule=case.expected_rule,
        top_rule=top.rule if top is not None else None,
        top_severity=top.severity if top is not None else None,
        predicted_speedup=gain.max_speedup if gain is not None else None,
        realized_speedup=realized,
        clean_warnings=tuple(f.rule for f in clean[0] if f.severity != "info"),
        findings=tuple(f.rule for f in bottleneck[0]),
    )


def _advise(
    store: Store, name: str, settings: AdvisorSettings | None
) -> tuple[list[Finding], list[StepRecord]]:
    candidates = [run for run in store.runs(name_like=name) if run.name == name]
    if not candidates:
        raise LookupError(f"no run named {name!r}: run the case first")
    rank0 = min(candidates, key=lambda run: (run.rank, -run.started_at.timestamp()))
    advice = advise_run(store, rank0.run_id, settings, save=False)
    return list(advice.findings), list(advice.evidence.steps)


def _per_sample_median(steps: list[StepRecord]) -> float:
    """Median step time per sample (per step when samples are not recorded), warm-up out."""
    from monitor.core.advisor.thresholds import Thresholds

    steady = split_warmup(steps, Thresholds()).steady
    return median([s.duration_us / (s.samples or 1) for s in steady])


def render_table(detections: list[Detection], device: str) -> str:
    """The detection table (Markdown)."""
    lines = [
        f"# Seeded-bottleneck detection on {device}",
        "",
        "| case | expected | top finding | predicted gain | realized gain (twin) | "
        "clean twin warnings | detected |",
        "|---|---|---|---|---|---|---|",
    ]
    for item in detections:
        predicted = f"≤ {item.predicted_speedup:.2f}x" if item.predicted_speedup else "-"
        realized = f"{item.realized_speedup:.2f}x" if item.realized_speedup else "-"
        top = f"{item.top_rule} ({item.top_severity})" if item.top_rule else "none"
        lines.append(
            f"| {item.case} | {item.expected_rule or 'none'} | {top} | {predicted} | "
            f"{realized} | {', '.join(item.clean_warnings) or 'none'} | "
            f"{'yes' if item.is_detected and item.is_clean_quiet else 'NO'} |"
        )
    return "\n".join(lines) + "\n"


__all__ = ["Detection", "detect", "render_table", "run_name"]
