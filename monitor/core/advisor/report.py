"""The advisor's findings as a short text report and as the ``gpulens advise --json`` document."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from monitor.core.advisor.findings import Finding, finding_to_json
from monitor.core.advisor.thresholds import THRESHOLDS

_MARK = {"critical": "CRITICAL", "warning": "WARNING", "info": "info"}


def advice_to_json(findings: Sequence[Finding], subject: Mapping[str, Any]) -> dict[str, Any]:
    """``{"subject": {...}, "findings": [...]}``, findings most important first."""
    return {"subject": dict(subject), "findings": [finding_to_json(f) for f in findings]}


def render_advice(findings: Sequence[Finding], heading: str, *, limit: int = 10) -> str:
    """Top findings first, each with its evidence, the change to make and the expected gain."""
    lines = [heading, ""]
    if not findings:
        lines.append("No bottleneck found: no rule's threshold was crossed.")
        return "\n".join(lines)
    for number, finding in enumerate(findings[:limit], start=1):
        lines += _finding_lines(number, finding)
    if len(findings) > limit:
        lines.append(f"... and {len(findings) - limit} more (--json lists all)")
    return "\n".join(lines).rstrip() + "\n"


def _finding_lines(number: int, finding: Finding) -> list[str]:
    head = f"{number}. [{_MARK[finding.severity]}] {finding.title}  ({finding.rule})"
    lines = [head]
    if finding.explained_by:
        lines.append(f"   a symptom of: {finding.explained_by}")
    gain = finding.expected_gain
    if gain is not None:
        lines.append(
            f"   expected gain: up to {gain.max_speedup:.2f}x faster steps "
            f"({100 * gain.time_fraction:.1f}% of step time: {gain.basis})"
        )
    waste = finding.waste
    if waste is not None and waste.energy_joules_per_1000_steps is not None:
        cost = (
            f", {waste.cost_per_1000_steps:.4f} {waste.currency}"
            if waste.cost_per_1000_steps is not None
            else ""
        )
        lines.append(
            f"   waste per 1,000 steps: {waste.seconds_per_1000_steps:.1f} s, "
            f"{waste.energy_joules_per_1000_steps / 3600:.2f} Wh{cost} "
            f"(at {waste.power_watts} W, {waste.power_source})"
        )
    lines.append("   evidence: " + _evidence_text(finding.evidence))
    for item in finding.advice:
        lines += textwrap.wrap(item, 96, initial_indent="   - ", subsequent_indent="     ")
    lines.append("")
    return lines


def _evidence_text(evidence: Mapping[str, Any]) -> str:
    parts = []
    for key, value in evidence.items():
        if value is None or isinstance(value, list | dict):
            continue
        parts.append(f"{key}={value}")
    return ", ".join(parts[:8])


def render_thresholds() -> str:
    """The table of thresholds: name, default, unit, meaning, source."""
    lines = [f"{'threshold':<40} {'default':>8} {'unit':<9} meaning (source)"]
    for item in THRESHOLDS:
        lines.append(
            f"{item.name:<40} {item.default:>8g} {item.unit:<9} {item.meaning} ({item.source})"
        )
    return "\n".join(lines)


__all__ = ["advice_to_json", "render_advice", "render_thresholds"]
