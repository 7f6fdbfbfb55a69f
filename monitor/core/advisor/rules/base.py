"""What every rule shares: its signature and the small helpers for evidence and scope."""

from __future__ import annotations

from collections.abc import Callable

from monitor.core.advisor.evidence import RunEvidence
from monitor.core.advisor.findings import Confidence, Finding, Scope, Severity
from monitor.core.advisor.measures import Measures
from monitor.core.advisor.thresholds import Thresholds

Rule = Callable[[RunEvidence, Measures, Thresholds], list[Finding]]


def pct(fraction: float) -> float:
    """A fraction as a percentage rounded for evidence (two decimals)."""
    return round(100.0 * fraction, 2)


def us(value: float) -> float:
    return round(value, 1)


def grade(value: float, warning: float, critical: float) -> Severity | None:
    """``critical`` at or over ``critical``, ``warning`` at or over ``warning``, else None."""
    if value >= critical:
        return "critical"
    if value >= warning:
        return "warning"
    return None


def grade_share(
    share: float | None, thresholds: Thresholds, warning: str, critical: str
) -> Severity | None:
    """:func:`grade` of a share of step time against two ``*_percent`` thresholds, named;
    ``None`` where the share was not measured."""
    if share is None:
        return None
    return grade(share, thresholds.value(warning) / 100, thresholds.value(critical) / 100)


def run_scope(evidence: RunEvidence, measures: Measures, **extra: object) -> Scope:
    """The run, its rank, and the steady steps the figures cover."""
    steady = measures.split.steady
    run = evidence.run
    fields: dict[str, object] = {
        "run_id": evidence.run_id,
        "rank": evidence.rank,
        "host": run.host if run is not None else None,
        "gpu_uuid": run.gpu_uuids[0] if run is not None and run.gpu_uuids else None,
    }
    if steady:
        fields |= {
            "first_step": steady[0].step,
            "last_step": steady[-1].step,
            "start_ts": steady[0].started_at.isoformat(),
            "end_ts": steady[-1].started_at.isoformat(),
        }
    elif evidence.breakdowns:
        numbered = [row.step for row in evidence.breakdowns if row.step is not None]
        if numbered:
            fields |= {"first_step": min(numbered), "last_step": max(numbered)}
    fields |= extra
    return Scope(**fields)  # type: ignore[arg-type]


def step_basis(measures: Measures) -> str:
    if measures.step_source == "every-step records":
        return f"{len(measures.split.steady)} steps (warm-up excluded)"
    return f"{measures.traced_steps} traced steps"


def confidence_for(measures: Measures) -> Confidence:
    if measures.step_source == "every-step records" and len(measures.split.steady) >= 20:
        return "high"
    return "medium" if measures.has_steps else "low"
