"""What the advisor says: findings as data, and their JSON form (``gpulens advise --json``).

A :class:`Finding` names the rule that raised it, how bad it is, the evidence (numbers whose
units are in their names, and the steps, ranks, kernels and GPU they concern), the change to
make, an upper bound on what the change can win, and what the bottleneck costs in energy and
money per 1,000 steps. Pure data: the rules (:mod:`monitor.core.advisor.rules`) build findings, the
store keeps them, the CLI and the dashboard show them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TypeAlias

Severity: TypeAlias = Literal["info", "warning", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")
Confidence: TypeAlias = Literal["low", "medium", "high"]


@dataclass(frozen=True, slots=True)
class Scope:
    """What a finding concerns: a run (and rank), a range of steps and time, a GPU, kernels."""

    run_id: str | None = None
    rank: int | None = None
    first_step: int | None = None
    last_step: int | None = None
    start_ts: str | None = None  # ISO 8601 UTC
    end_ts: str | None = None
    gpu_uuid: str | None = None
    host: str | None = None
    kernels: tuple[str, ...] = ()
    steps: tuple[int, ...] = ()  # particular steps (slow steps, outliers), at most a few dozen


@dataclass(frozen=True, slots=True)
class Gain:
    """An upper bound on the speed-up from removing the bottleneck.

    ``time_fraction`` is the share of step time the bottleneck costs; Amdahl's law bounds the
    speed-up from removing it at ``1 / (1 - time_fraction)``. ``basis`` says which measurement
    the fraction comes from.
    """

    time_fraction: float
    basis: str

    @property
    def max_speedup(self) -> float:
        return amdahl(self.time_fraction)


@dataclass(frozen=True, slots=True)
class Waste:
    """What the bottleneck costs per 1,000 steps: time, energy and (with a price) money.

    ``power_watts`` is the power the estimate assumes and ``power_source`` where it comes from
    (``"telemetry"``: the run's mean measured power; ``"power_limit"``: the GPU's limit, an upper
    bound). Energy and cost are ``None`` when no power figure is known (CPU runs, no collector).
    """

    seconds_per_1000_steps: float  # wall time lost per 1,000 steps
    gpus: int
    power_watts: float | None = None
    power_source: str | None = None
    energy_joules_per_1000_steps: float | None = None
    cost_per_1000_steps: float | None = None
    currency: str | None = None
    gpu_hours_total: float | None = None  # over the run's recorded steps


@dataclass(frozen=True, slots=True)
class ThresholdUse:
    """A threshold a rule compared against: its name, the value used, where the value comes
    from (see :mod:`monitor.core.advisor.thresholds`)."""

    name: str
    value: float
    source: str


@dataclass(frozen=True, slots=True)
class Finding:
    """One bottleneck or problem, with its evidence and the change to make."""

    rule: str
    severity: Severity
    title: str
    evidence: Mapping[str, Any]
    advice: tuple[str, ...]
    expected_gain: Gain | None = None
    confidence: Confidence = "medium"
    scope: Scope = field(default_factory=Scope)
    thresholds: tuple[ThresholdUse, ...] = ()
    waste: Waste | None = None
    explained_by: str | None = None  # the rule of a finding that this one is a symptom of

    @property
    def time_fraction(self) -> float:
        return self.expected_gain.time_fraction if self.expected_gain is not None else 0.0


def amdahl(time_fraction: float) -> float:
    """The most a step can speed up when ``time_fraction`` of it disappears."""
    fraction = min(max(time_fraction, 0.0), 0.99)
    return 1.0 / (1.0 - fraction)


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else -1


def importance(finding: Finding) -> tuple[int, int, float]:
    """Sort key, most important first when sorted in reverse: causes before their symptoms,
    then severity, then the share of step time at stake."""
    is_cause = 0 if finding.explained_by else 1
    return (is_cause, severity_rank(finding.severity), finding.time_fraction)


def rank_findings(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=importance, reverse=True)


def finding_to_json(finding: Finding) -> dict[str, Any]:
    """The documented JSON form of one finding (README, "Advisor JSON")."""
    gain = finding.expected_gain
    return {
        "rule": finding.rule,
        "severity": finding.severity,
        "title": finding.title,
        "evidence": dict(finding.evidence),
        "advice": list(finding.advice),
        "expected_gain": None
        if gain is None
        else {
            "time_fraction": gain.time_fraction,
            "max_speedup": gain.max_speedup,
            "basis": gain.basis,
        },
        "confidence": finding.confidence,
        "scope": _scope_json(finding.scope),
        "thresholds": [asdict(item) for item in finding.thresholds],
        "waste": asdict(finding.waste) if finding.waste is not None else None,
        "explained_by": finding.explained_by,
    }


def finding_from_json(document: Mapping[str, Any]) -> Finding:
    """The inverse of :func:`finding_to_json` (the store keeps findings as this JSON)."""
    gain = document.get("expected_gain")
    scope = dict(document.get("scope") or {})
    for name in ("kernels", "steps"):
        scope[name] = tuple(scope.get(name) or ())
    waste = document.get("waste")
    return Finding(
        rule=document["rule"],
        severity=document["severity"],
        title=document["title"],
        evidence=dict(document.get("evidence") or {}),
        advice=tuple(document.get("advice") or ()),
        expected_gain=None
        if gain is None
        else Gain(time_fraction=gain["time_fraction"], basis=gain["basis"]),
        confidence=document.get("confidence", "medium"),
        scope=Scope(**scope),
        thresholds=tuple(ThresholdUse(**item) for item in document.get("thresholds") or ()),
        waste=Waste(**waste) if waste is not None else None,
        explained_by=document.get("explained_by"),
    )


def _scope_json(scope: Scope) -> dict[str, Any]:
    document = asdict(scope)
    document["kernels"] = list(scope.kernels)
    document["steps"] = list(scope.steps)
    return document


__all__ = [
    "SEVERITIES",
    "Confidence",
    "Finding",
    "Gain",
    "Scope",
    "Severity",
    "ThresholdUse",
    "Waste",
    "amdahl",
    "finding_from_json",
    "finding_to_json",
    "rank_findings",
]
