"""Advice: the open findings across the fleet, the most wasted GPU-hours first."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dash
from dash import dcc, html

from dashboard import ids
from dashboard.context import PageContext
from dashboard.findings_view import finding_card
from dashboard.format import energy_text
from monitor.core.run_views import StoredFinding
from monitor.services.runs import STALE_RUNS_CHECKED, refresh_stale_findings

COLUMNS = ("severity", "finding", "where", "wasted GPU-hours", "expected gain",
           "energy / 1,000 steps")  # fmt: skip


def layout(ctx: PageContext, params: Mapping[str, str]) -> html.Div:
    # Runs whose evidence changed since their findings were computed (a run that ended, a
    # window analysis that landed after it) are advised again first, so the list is current.
    refresh_stale_findings(ctx.store, limit=STALE_RUNS_CHECKED)
    stored = ctx.store.findings(limit=500)
    if not stored:
        body: Any = html.P(
            "No open findings. A run's findings are computed when it is shown (here for the "
            f"{STALE_RUNS_CHECKED} newest runs) or with `gpulens advise --run RUN`; idle GPUs "
            "with `gpulens advise --fleet`.",
            className="gl-empty",
        )
    else:
        header = html.Tr([html.Th(column) for column in COLUMNS])
        body = html.Div(
            [
                html.Table(
                    [html.Thead(header), html.Tbody([row(item) for item in stored])],
                    id=ids.ADVICE_TABLE,
                ),
                html.H2("Evidence and advice"),
                *[finding_card(item.finding, context=[where(item)]) for item in stored[:50]],
            ]
        )
    return html.Div([html.H1("Advice"), html.P(
        "Open findings across the fleet, ranked by the GPU-hours they waste. Each links to "
        "its run (or GPU), where the evidence is.", className="gl-empty"), body])  # fmt: skip


def register(app: dash.Dash, ctx: PageContext) -> None:
    """No callbacks: the page is rendered when visited."""


def where(item: StoredFinding) -> Any:
    """A link to what the finding concerns: its run, else its GPU, else the host."""
    scope = item.finding.scope
    if item.run_id is not None:
        return dcc.Link(item.run_name or item.run_id, href=f"/run/{item.run_id}")
    if scope.gpu_uuid:
        return dcc.Link(f"{scope.host} GPU", href=f"/gpu/{scope.gpu_uuid}")
    return scope.host or "fleet"


def row(item: StoredFinding) -> html.Tr:
    finding = item.finding
    waste = finding.waste
    hours = f"{waste.gpu_hours_total:.3f}" if waste and waste.gpu_hours_total is not None else "-"
    gain = finding.expected_gain
    cells: list[Any] = [
        html.Span(finding.severity, className=f"gl-badge gl-badge-{finding.severity}"),
        finding.title,
        where(item),
        hours,
        f"up to {gain.max_speedup:.2f}\u00d7" if gain is not None else "-",
        energy_text(waste.energy_joules_per_1000_steps) if waste else "n/a",
    ]
    return html.Tr([html.Td(cell) for cell in cells])
