"""GPU: every metric of one GPU over a chosen range, with events, runs and processes.

The store picks the resolution (raw samples or rollups) so no series has more than 2,000
points; a short range follows the live tick by patching only the newest points in.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from html import escape as html_escape
from typing import Any

import dash
from dash import ALL, Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate

from dashboard import ids
from dashboard.context import PageContext
from dashboard.figures import MAX_POINTS, metric_figure
from dashboard.format import bytes_text, metric_label, metric_scale
from dashboard.routes import RANGES, RouteError, gpu_uuid, range_name
from monitor.core.errors import StoreError
from monitor.core.gpu_records import GpuInfo

SHOWN_METRICS = (
    "utilization_gpu_percent",
    "utilization_memory_percent",
    "memory_used_bytes",
    "power_watts",
    "temperature_celsius",
    "sm_clock_mhz",
    "pcie_rx_bytes_per_second",
    "pcie_tx_bytes_per_second",
)
LIVE_RANGES = ("15m", "1h")  # ranges short enough to follow the live tick


def layout(ctx: PageContext, params: Mapping[str, str]) -> html.Div:
    uuid, chosen = params["uuid"], params.get("range", "1h")
    gpu = next((g for g in ctx.store.gpus() if g.uuid == uuid), None)
    if gpu is None:
        return html.Div([html.H1("GPU not found"), html.P(f"No GPU {uuid} in the store."),
                         dcc.Link("back to the fleet", href="/")])  # fmt: skip
    children, resolution = graphs(ctx, uuid, chosen)
    return html.Div(
        [
            html.H1(f"{gpu.host} · GPU {gpu.index} · {gpu.name}"),
            html.P(_facts(gpu), className="gl-empty"),
            dcc.Store(id="gpu-uuid", data=uuid),
            dcc.Store(id=ids.GPU_LIVE, data=live_state(children, ctx.now())),
            html.Div(
                className="gl-controls",
                children=[
                    dcc.RadioItems(
                        id=ids.GPU_RANGE,
                        options=[{"label": name, "value": name} for name in RANGES],
                        value=chosen,
                        inline=True,
                    ),
                    html.Span(resolution, id=ids.GPU_RESOLUTION, className="gl-empty"),
                ],
            ),
            html.Div(id=ids.GPU_GRAPHS, children=children),
            html.H2("Training runs on this GPU"),
            html.Div(id=ids.GPU_RUNS, children=run_links(ctx, uuid, chosen)),
            html.H2("Processes (the range's last 24 h at most)"),
            html.Div(id=ids.GPU_PROCESSES, children=process_table(ctx, uuid, chosen)),
        ]
    )


def _facts(gpu: GpuInfo) -> str:
    parts = [gpu.uuid, f"memory {bytes_text(gpu.memory_total_bytes)}"]
    if gpu.compute_capability:
        parts.append(f"compute capability {gpu.compute_capability}")
    if gpu.driver_version:
        parts.append(f"driver {gpu.driver_version}")
    if gpu.is_simulated:
        parts.append("SIMULATED GPU")
    return " · ".join(parts)


def register(app: dash.Dash, ctx: PageContext) -> None:
    app.callback(
        Output(ids.GPU_GRAPHS, "children"),
        Output(ids.GPU_RESOLUTION, "children"),
        Output(ids.GPU_RUNS, "children"),
        Output(ids.GPU_PROCESSES, "children"),
        Output(ids.GPU_LIVE, "data"),
        Input(ids.GPU_RANGE, "value"),
        State("gpu-uuid", "data"),
        prevent_initial_call=True,
    )(lambda chosen, uuid: change_range(ctx, uuid, chosen))
    app.callback(
        Output({"type": "gpu-metric", "metric": ALL}, "extendData"),
        Output(ids.GPU_LIVE, "data", allow_duplicate=True),
        Input(ids.TICK, "n_intervals"),
        State(ids.GPU_RANGE, "value"),
        State("gpu-uuid", "data"),
        State(ids.GPU_LIVE, "data"),
        prevent_initial_call=True,
    )(lambda _n, chosen, uuid, state: live_update(ctx, uuid, chosen, state))


def change_range(ctx: PageContext, uuid: str, chosen: str) -> tuple[Any, ...]:
    try:
        uuid, chosen = gpu_uuid(uuid), range_name(chosen)
        children, resolution = graphs(ctx, uuid, chosen)
        runs, processes = run_links(ctx, uuid, chosen), process_table(ctx, uuid, chosen)
    except (RouteError, StoreError):
        raise PreventUpdate from None
    return children, resolution, runs, processes, live_state(children, ctx.now())


def live_state(children: list[Any], now: datetime) -> dict[str, Any]:
    """What the live tick needs: since when to fetch, and which trace of each graph is the
    mean line (``None`` for a graph without data)."""
    indices = []
    for child in children:
        names = [getattr(trace, "name", None) for trace in child.figure.data]
        label = html_escape(metric_label(child.id["metric"])[0])
        indices.append(names.index(label) if label in names else None)
    return {"since": now.isoformat(), "mean_trace": indices}


def live_update(
    ctx: PageContext, uuid: str, chosen: str, state: dict[str, Any] | None
) -> tuple[list[Any], Any]:
    """On each tick of a short range, send only the new points of each mean line
    (``extendData``), never the whole figure."""
    if chosen not in LIVE_RANGES or not state:
        raise PreventUpdate
    try:
        uuid, since = gpu_uuid(uuid), datetime.fromisoformat(state["since"])
        now = ctx.now()
        updates = [
            _new_points(ctx, uuid, metric, since, now, index)
            for metric, index in zip(SHOWN_METRICS, state["mean_trace"], strict=True)
        ]
    except (RouteError, StoreError, KeyError, ValueError):
        raise PreventUpdate from None
    return updates, {**state, "since": now.isoformat()}


def _new_points(
    ctx: PageContext, uuid: str, metric: str, since: datetime, now: datetime, index: int | None
) -> Any:
    if index is None:
        return dash.no_update
    series = ctx.store.series(uuid, metric, since, now, now=now, max_points=MAX_POINTS)
    points = [p for p in series.points if p.ts > since and p.mean is not None]
    if not points:
        return dash.no_update
    scale = metric_scale(metric)
    data = {
        "x": [[p.ts.isoformat() for p in points]],
        "y": [[(p.mean or 0.0) / scale for p in points]],
    }
    return [data, [index], MAX_POINTS]


def window(ctx: PageContext, chosen: str) -> tuple[datetime, datetime]:
    now = ctx.now()
    return now - timedelta(seconds=RANGES[chosen]), now


def graphs(ctx: PageContext, uuid: str, chosen: str) -> tuple[list[Any], str]:
    start, end = window(ctx, chosen)
    events = ctx.store.events(start, end, uuid=uuid)
    runs = ctx.store.runs_on_gpu(uuid, start, end)
    children, sources = [], set()
    for metric in SHOWN_METRICS:
        series = ctx.store.series(uuid, metric, start, end, now=end, max_points=MAX_POINTS)
        sources.add(f"{series.source} ({series.bucket_seconds} s buckets)")
        label, unit = metric_label(metric)
        figure = metric_figure(series, title=f"{label} ({unit})", events=events, runs=runs, now=end)
        # Stacked small multiples: the title names the metric and unit, so the y axis needs no
        # title; the legend goes under the plot, clear of the mode bar.
        figure.update_layout(
            height=240,
            margin={"t": 30, "b": 30, "l": 60, "r": 20},
            legend={"orientation": "h", "x": 0, "y": -0.2, "xanchor": "left"},
        )
        figure.update_yaxes(title_text=None)
        figure.update_xaxes(title_text=None)
        children.append(dcc.Graph(figure=figure, config={"displaylogo": False},
                                  id={"type": "gpu-metric", "metric": metric}))  # fmt: skip
    return children, "resolution: " + ", ".join(sorted(sources))


def run_links(ctx: PageContext, uuid: str, chosen: str) -> Any:
    start, end = window(ctx, chosen)
    runs = ctx.store.runs_on_gpu(uuid, start, end)
    if not runs:
        return html.P("No training run used this GPU in this range.", className="gl-empty")
    return html.Ul(
        [
            html.Li(
                dcc.Link(
                    f"{r.name} ({r.status}, started {r.started_at:%Y-%m-%d %H:%M} UTC)",
                    href=f"/run/{r.run_id}",
                )
            )
            for r in runs
        ]
    )


PROCESS_WINDOW = timedelta(hours=24)  # process rows are per second: the last day is plenty


def process_table(ctx: PageContext, uuid: str, chosen: str) -> Any:
    """Processes seen on the GPU in the range's last 24 hours (at most)."""
    start, end = window(ctx, chosen)
    processes = ctx.store.process_spans(uuid, max(start, end - PROCESS_WINDOW), end)
    if not processes:
        return html.P("No process seen on this GPU in this range.", className="gl-empty")
    header = html.Tr([html.Th(t) for t in ("pid", "name", "peak memory", "last seen (UTC)")])
    rows = [
        html.Tr(
            [
                html.Td(str(p.pid)),
                html.Td(p.name or "?"),
                html.Td(bytes_text(p.used_memory_bytes)),
                html.Td(f"{p.ts:%Y-%m-%d %H:%M:%S}"),
            ]
        )
        for p in processes[:50]
    ]
    return html.Table([html.Thead(header), html.Tbody(rows)])
