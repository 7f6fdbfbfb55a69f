"""Runs: every training run with its status, duration, step time, GPU busy share and top
finding; filtered by name, host and status."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dash
from dash import Input, Output, dcc, html
from dash.exceptions import PreventUpdate

from dashboard import ids
from dashboard.context import PageContext
from dashboard.controls import search_box
from dashboard.format import duration_us_text, percent_text
from monitor.core.advisor.findings import Finding, importance
from monitor.core.errors import StoreError
from monitor.core.run_records import RUN_STATUSES
from monitor.core.run_views import RunSummary, StoredFinding
from monitor.store.runs import contains_pattern

COLUMNS = ("run", "status", "host", "rank", "started (UTC)", "duration", "steps", "mean step",
           "GPU busy", "top finding")  # fmt: skip


def layout(ctx: PageContext, params: Mapping[str, str]) -> html.Div:
    name, host, status = params.get("name", ""), params.get("host", ""), params.get("status", "")
    return html.Div(
        [
            html.H1("Runs"),
            html.Div(className="gl-controls", children=_filters(name, host, status)),
            html.Div(id=ids.RUNS_TABLE, children=runs_table(ctx, name, host, status)),
        ]
    )


def _filters(name: str, host: str, status: str) -> list[Any]:
    return [
        search_box(ids.RUNS_NAME, "name contains", name),
        search_box(ids.RUNS_HOST, "host", host),
        dcc.Dropdown(
            id=ids.RUNS_STATUS,
            placeholder="any status",
            value=status or None,
            options=[{"label": s, "value": s} for s in RUN_STATUSES],
        ),
    ]


def register(app: dash.Dash, ctx: PageContext) -> None:
    app.callback(
        Output(ids.RUNS_TABLE, "children"),
        Input(ids.RUNS_NAME, "value"),
        Input(ids.RUNS_HOST, "value"),
        Input(ids.RUNS_STATUS, "value"),
        prevent_initial_call=True,
    )(lambda name, host, status: filtered(ctx, name, host, status))


def filtered(ctx: PageContext, name: str | None, host: str | None, status: str | None) -> Any:
    if status and status not in RUN_STATUSES:
        raise PreventUpdate
    try:
        return runs_table(ctx, (name or "")[:100], (host or "")[:100], status or "")
    except StoreError:
        raise PreventUpdate from None


def runs_table(ctx: PageContext, name: str, host: str, status: str) -> Any:
    store = ctx.store
    runs = store.runs(
        name_like=contains_pattern(name) if name else None,
        host=host or None,
        status=status or None,
    )
    if not runs:
        if name or host or status:
            return html.P("No run matches these filters.", className="gl-empty")
        return html.P(
            "No training runs yet. Attach the hooks to a training script "
            "(profiler_hooks.attach(optimizer=..., dataloader=..., model=...)), import a "
            "trace with `gpulens import TRACE --run NAME`, or run `gpulens demo`.",
            className="gl-empty",
        )
    top = top_findings(store.findings(limit=5000))
    header = html.Tr([html.Th(column) for column in COLUMNS])
    return html.Table(
        [html.Thead(header), html.Tbody([row(run, top.get(run.run_id)) for run in runs])]
    )


def top_findings(stored: Sequence[StoredFinding]) -> dict[str, Finding]:
    """Each run's most important finding (causes before symptoms, then severity, share)."""
    best: dict[str, Finding] = {}
    for item in stored:
        if item.run_id is None:
            continue
        current = best.get(item.run_id)
        if current is None or importance(item.finding) > importance(current):
            best[item.run_id] = item.finding
    return best


def duration_us(run: RunSummary) -> float | None:
    if run.ended_at is None:
        return None
    return (run.ended_at - run.started_at).total_seconds() * 1e6


def row(run: RunSummary, finding: Finding | None) -> html.Tr:
    cells: list[Any] = [
        dcc.Link(run.name, href=f"/run/{run.run_id}"),
        run.status,
        run.host,
        f"{run.rank}/{run.world_size}",
        f"{run.started_at:%Y-%m-%d %H:%M}",
        duration_us_text(duration_us(run)) if run.ended_at else "running",
        f"{run.steps:,}",
        duration_us_text(run.mean_step_us),
        percent_text(run.gpu_busy_percent),
        _finding_cell(finding),
    ]
    return html.Tr([html.Td(cell) for cell in cells])


def _finding_cell(finding: Finding | None) -> Any:
    if finding is None:
        return "-"
    return [html.Span(finding.severity, className=f"gl-badge gl-badge-{finding.severity}"),
            finding.title]  # fmt: skip
