"""Run every rule over a run's evidence: findings ranked, symptoms tied to their causes, and
what each costs in time, energy and money per 1,000 steps (pure).

Some findings are symptoms of others: a starved DataLoader also leaves the GPU idle, and ranks
waiting for a straggler show up as communication time. A symptom keeps its evidence but names
its cause in ``explained_by`` and ranks after the causes, so the top finding is the thing to
change first.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from monitor.core.advisor.evidence import RunEvidence
from monitor.core.advisor.findings import Finding, Waste, rank_findings, severity_rank
from monitor.core.advisor.measures import Measures, measure
from monitor.core.advisor.rules.catalog import RULES
from monitor.core.advisor.thresholds import Thresholds

# symptom rule -> the rules whose findings explain it, most specific first
SYMPTOM_OF: Mapping[str, tuple[str, ...]] = {
    "gpu_underused": (
        "input_pipeline",
        "cpu_preprocessing",
        "host_sync",
        "launch_bound",
        "h2d_copies",
        "straggler",
        "communication",
    ),
    "memory_underused": ("gpu_underused", "input_pipeline", "cpu_preprocessing", "launch_bound"),
    "communication": ("straggler",),
    "launch_bound": ("host_sync",),
    "step_variance": ("telemetry_slowdown", "input_pipeline"),
    "step_drift": ("telemetry_slowdown",),
}


# A cause explains a symptom when it covers at least this share of the symptom's time.
CAUSE_SHARE = 0.25


@dataclass(frozen=True, slots=True)
class AdvisorSettings:
    """Thresholds in force and the price of energy (``None``: no money figures)."""

    thresholds: Thresholds = field(default_factory=Thresholds)
    price_per_kwh: float | None = None
    currency: str = "USD"


def advise(evidence: RunEvidence, settings: AdvisorSettings | None = None) -> list[Finding]:
    """Every rule's findings for the run, most important first."""
    settings = settings or AdvisorSettings()
    measures = measure(evidence, settings.thresholds)
    findings = [f for rule in RULES for f in rule(evidence, measures, settings.thresholds)]
    findings = tie_symptoms(demote_small(findings, settings.thresholds))
    return rank_findings([with_waste(f, evidence, measures, settings) for f in findings])


def tie_symptoms(findings: list[Finding]) -> list[Finding]:
    """Set ``explained_by`` on findings whose cause was also found (warning or worse) and
    accounts for at least :data:`CAUSE_SHARE` of the symptom's share of step time."""
    causes = {
        f.rule: f.time_fraction
        for f in findings
        if severity_rank(f.severity) >= severity_rank("warning")
    }
    tied = []
    for finding in findings:
        needed = CAUSE_SHARE * finding.time_fraction
        cause = next(
            (c for c in SYMPTOM_OF.get(finding.rule, ()) if c in causes and causes[c] >= needed),
            None,
        )
        tied.append(dataclasses.replace(finding, explained_by=cause) if cause else finding)
    return tied


def demote_small(findings: list[Finding], thresholds: Thresholds) -> list[Finding]:
    """A warning or critical finding worth less than ``advisor.min_gain_percent`` of step
    time is information: true, but not where the time goes."""
    floor = thresholds.value("advisor.min_gain_percent") / 100
    return [
        dataclasses.replace(f, severity="info")
        if f.expected_gain is not None and f.time_fraction < floor and f.severity != "info"
        else f
        for f in findings
    ]


def with_waste(
    finding: Finding, evidence: RunEvidence, measures: Measures, settings: AdvisorSettings
) -> Finding:
    """The finding with its cost per 1,000 steps filled in (when it has a time share)."""
    if finding.expected_gain is None or not measures.has_steps:
        return finding
    seconds = finding.time_fraction * measures.mean_step_us / 1e6 * 1000
    gpus = evidence.gpu_count
    power, source = run_power(evidence)
    energy = power * seconds if power is not None else None
    cost = (
        energy / 3.6e6 * settings.price_per_kwh
        if energy is not None and settings.price_per_kwh is not None
        else None
    )
    steps = len(measures.split.steady) or measures.traced_steps
    run_seconds = measures.mean_step_us / 1e6 * steps
    waste = Waste(
        seconds_per_1000_steps=round(seconds, 3),
        gpus=gpus,
        power_watts=round(power, 1) if power is not None else None,
        power_source=source,
        energy_joules_per_1000_steps=round(energy, 1) if energy is not None else None,
        cost_per_1000_steps=cost,
        currency=settings.currency if cost is not None else None,
        gpu_hours_total=finding.time_fraction * run_seconds * gpus / 3600,
    )
    return dataclasses.replace(finding, waste=waste)


def run_power(evidence: RunEvidence) -> tuple[float | None, str | None]:
    """The run's GPUs' power draw: the mean measured by the collector during the run, summed
    over GPUs; else the sum of their power limits (an upper bound); else unknown."""
    uuids = evidence.run.gpu_uuids if evidence.run is not None else ()
    measured = []
    for uuid in uuids:
        values = [s.power_watts for s in evidence.samples.get(uuid, ()) if s.power_watts]
        if values:
            measured.append(math.fsum(values) / len(values))
    if measured and len(measured) == len(uuids):
        return math.fsum(measured), "telemetry"
    limits = [g.power_limit_watts for g in evidence.gpus if g.uuid in uuids and g.power_limit_watts]
    if limits and len(limits) == len(uuids):
        return math.fsum(limits), "power_limit"
    return None, None


__all__ = ["SYMPTOM_OF", "AdvisorSettings", "advise", "run_power", "tie_symptoms"]
