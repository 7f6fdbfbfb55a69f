"""One advisor finding as Dash components (the Run page and the Advice page show them alike),
and which findings a page shows for a run (:func:`run_findings`, through the services).

A finding's texts come from the advisor and its evidence from the traces (kernel names, process
names, hosts): every one of them goes into components as a text child, never as markup.
Evidence values are shown with the unit their key names (``_us``, ``_bytes``, ``_percent``...).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dash import html

from dashboard.format import (
    bytes_text,
    celsius_text,
    duration_us_text,
    energy_text,
    mhz_text,
    percent_text,
    watts_text,
)
from monitor.core.advisor.findings import Finding, Gain, Scope, Waste
from monitor.services.runs import current_findings
from monitor.store import Store

TIMES = "\u00d7"  # the multiplication sign, as in "1.25x" (escaped: ruff flags it literal)
LIST_ITEMS_SHOWN = 8  # longer evidence lists say how many more there are


def run_findings(store: Store, run_id: str) -> tuple[list[Finding], bool]:
    """What a page shows for run ``run_id``: its current findings, most important first (the
    stored ones, computed again and saved first when stale, as ``gpulens advise`` saves them),
    and whether they are stored (False only when the store refused the save)."""
    current = current_findings(store, run_id)
    return list(current.findings), current.stored


def findings_list(findings: Sequence[Finding], *, empty: str) -> list[Any]:
    """A card per finding, or the ``empty`` message when there is none."""
    if not findings:
        return [html.P(empty, className="gl-empty")]
    return [finding_card(finding) for finding in findings]


def finding_card(finding: Finding, *, context: Sequence[Any] = ()) -> html.Div:
    """A finding: severity badge and title, what it is a symptom of, the gain at stake, its
    waste per 1,000 steps, the advice, the evidence and the thresholds it used. ``context``:
    components shown under the title (the Advice page puts the run there)."""
    parts: list[Any] = [
        html.H4([severity_badge(finding.severity), finding.title], className="gl-finding-title"),
        *context,
        html.P(f"rule {finding.rule} · confidence {finding.confidence}", className="gl-meta"),
    ]
    if finding.explained_by:
        parts.append(
            html.P(f"symptom of {finding.explained_by}: fix that first", className="gl-symptom")
        )
    if finding.expected_gain is not None:
        parts.append(html.P(["expected gain: ", gain_text(finding.expected_gain)]))
    if finding.waste is not None:
        parts.append(html.P(["waste: ", waste_text(finding.waste)]))
    where = scope_text(finding.scope)
    if where:
        parts.append(html.P(f"concerns {where}", className="gl-meta"))
    if finding.advice:
        parts.append(html.Ul([html.Li(item) for item in finding.advice]))
    if finding.evidence:
        parts.append(evidence_table(finding.evidence))
    if finding.thresholds:
        parts.append(
            html.Details(
                [
                    html.Summary("thresholds"),
                    html.Ul(
                        [
                            html.Li(f"{item.name} = {item.value:g} ({item.source})")
                            for item in finding.thresholds
                        ]
                    ),
                ]
            )
        )
    return html.Div(parts, className=f"gl-finding gl-finding-{finding.severity}")


def severity_badge(severity: str) -> html.Span:
    return html.Span(severity, className=f"gl-badge gl-badge-{severity}")


def gain_text(gain: Gain) -> str:
    """``up to 1.25x (20 % of step time: basis)``, with :data:`TIMES` for the x."""
    share = percent_text(gain.time_fraction * 100.0)
    return f"up to {gain.max_speedup:.2f}{TIMES} ({share} of step time: {gain.basis})"


def waste_text(waste: Waste) -> str:
    """Time, energy and money lost per 1,000 steps, and GPU hours over the run."""
    parts = [f"{duration_us_text(waste.seconds_per_1000_steps * 1e6)} per 1,000 steps"]
    if waste.energy_joules_per_1000_steps is not None:
        power = f"{watts_text(waste.power_watts)} from {waste.power_source or 'unknown'}"
        parts.append(f"{energy_text(waste.energy_joules_per_1000_steps)} ({power})")
    if waste.cost_per_1000_steps is not None:
        parts.append(f"{waste.cost_per_1000_steps:.2f} {waste.currency or ''}".rstrip())
    text = ", ".join(parts)
    if waste.gpu_hours_total is not None:
        gpus = "GPU" if waste.gpus == 1 else "GPUs"
        text += f"; {waste.gpu_hours_total:.2f} GPU hours over the run ({waste.gpus} {gpus})"
    return text


def scope_text(scope: Scope) -> str:
    """The steps, rank, GPU and kernels a finding concerns ("" when it names none)."""
    parts = []
    if scope.first_step is not None and scope.last_step is not None:
        parts.append(f"steps {scope.first_step}-{scope.last_step}")
    if scope.steps:
        parts.append("step " + value_text("steps", list(scope.steps)))
    if scope.rank is not None:
        parts.append(f"rank {scope.rank}")
    if scope.gpu_uuid:
        parts.append(f"GPU {scope.gpu_uuid}")
    if scope.kernels:
        parts.append("kernels " + value_text("kernels", list(scope.kernels)))
    return "; ".join(parts)


def evidence_table(evidence: Mapping[str, Any]) -> html.Dl:
    """The evidence as a key/value list, each value with its unit."""
    cells: list[Any] = []
    for label, value in evidence_rows(evidence):
        cells += [html.Dt(label), html.Dd(value)]
    return html.Dl(cells, className="gl-kv gl-evidence")


def evidence_rows(evidence: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(key_label(str(key)), value_text(str(key), value)) for key, value in evidence.items()]


_Formatter = Callable[[float], str]

# Unit suffixes of evidence keys (longest first) and how their values read.
_UNITS: tuple[tuple[str, _Formatter], ...] = (
    ("_us_per_step", lambda v: f"{duration_us_text(v)} per step"),
    ("_bytes_per_step", lambda v: f"{bytes_text(v)} per step"),
    ("_us", duration_us_text),
    ("_bytes", bytes_text),
    ("_watts", watts_text),
    ("_joules", energy_text),
    ("_seconds", lambda v: f"{v:,.1f} s"),
    ("_mhz", mhz_text),
    ("_celsius", celsius_text),
    ("_fraction", lambda v: percent_text(v * 100.0)),
    ("_percent", percent_text),
)


def key_label(key: str) -> str:
    """``dataloader_wait_us`` → ``dataloader wait`` (the unit goes with the value)."""
    for suffix, _ in _UNITS:
        if key.endswith(suffix) and len(key) > len(suffix):
            return key[: -len(suffix)].replace("_", " ") + (
                " per step" if suffix.endswith("_per_step") else ""
            )
    return key.replace("_", " ")


def value_text(key: str, value: Any) -> str:
    """A value of the evidence as text, with the unit its key names."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping):
        return ", ".join(f"{key_label(str(k))} {value_text(str(k), v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        shown = [value_text(key, item) for item in value[:LIST_ITEMS_SHOWN]]
        more = len(value) - len(shown)
        separator = " | " if any(isinstance(item, Mapping) for item in value) else ", "
        return separator.join(shown) + (f" … ({more} more)" if more > 0 else "")
    if isinstance(value, (int, float)):
        return number_text(key, value)
    return str(value)


def number_text(key: str, value: float) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return "n/a"
    for suffix, formatter in _UNITS:
        if key.endswith(suffix) or (suffix == "_percent" and "_percent_" in key):
            return formatter(value)
    if "_over_" in key:  # a ratio of two figures, e.g. p99_over_p50
        return f"{value:.2f}{TIMES}"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


__all__ = [
    "TIMES",
    "evidence_rows",
    "evidence_table",
    "finding_card",
    "findings_list",
    "gain_text",
    "key_label",
    "run_findings",
    "scope_text",
    "severity_badge",
    "value_text",
    "waste_text",
]
