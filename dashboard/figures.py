"""The dashboard's figures: pure functions from plain records to a ``plotly`` figure.

No store, no Dash, no clock (``now`` is an argument). Every figure uses the ``plotly_white``
template, names its units in the axis titles, and sets ``uirevision`` so a user's zoom survives
the live updates. No trace holds more than :data:`MAX_POINTS` points (:func:`thin` keeps each
bucket's minimum and maximum, so spikes survive), and WebGL draws traces of more than
:data:`WEBGL_ABOVE_POINTS`.

Text from the data (run, process, kernel, host names, event details) is passed through
:func:`html.escape` before it reaches a figure: plotly renders a subset of HTML in hover text,
annotations and legend names. Titles and messages given to a figure are plain text too.

The figures of one run live in :mod:`dashboard.figures_run`; import them from here.
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import plotly.graph_objects as go  # type: ignore[import-untyped, unused-ignore]
from plotly.subplots import make_subplots  # type: ignore[import-untyped, unused-ignore]

from dashboard.figures_run import (
    CATEGORY_COLORS,
    LINE_COLORS,
    MAX_POINTS,
    TEMPLATE,
    WEBGL_ABOVE_POINTS,
    apply_style,
    breakdown_figure,
    breakdown_total_figure,
    empty_figure,
    line_trace,
    memory_figure,
    scatter_type,
    step_telemetry_figure,
    step_time_figure,
    thin,
)
from dashboard.format import metric_label, metric_scale
from monitor.core.advisor.compare_report import CategoryDelta
from monitor.core.gpu_records import Event
from monitor.core.resolution import Series
from monitor.core.run_records import RunInfo

# The events a metric figure marks: kind -> (marker symbol, colour).
EVENT_MARKERS: dict[str, tuple[str, str]] = {
    "throttle_start": ("triangle-down", "#ff7f0e"),
    "xid": ("x", "#d62728"),
    "gpu_lost": ("circle-x", "#d62728"),
    "gpu_back": ("circle", "#2ca02c"),
    "ecc": ("diamond", "#9467bd"),
}
RUN_COLORS = ("#636efa", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3")
RUN_NAME_CHARS = 40
_AXIS_FROM_ZERO = {"%", "W", "GiB", "MiB/s"}
_SIDE_COLORS = {"A": "#636efa", "B": "#ef553b"}


def _scaled(value: float | None, scale: float) -> float | None:
    return None if value is None or math.isnan(value) else value / scale


def _is_bucketed(series: Series) -> bool:
    return series.bucket_seconds > 1 or any(
        p.min is not None and p.max is not None and p.min != p.max for p in series.points
    )


def _envelope(
    xs: Sequence[datetime], lows: Sequence[float | None], highs: Sequence[float | None]
) -> tuple[list[datetime], list[float | None], list[float | None]]:
    """The min-max band cut to at most :data:`MAX_POINTS` buckets (lowest low, highest high)."""
    if len(xs) <= MAX_POINTS:
        return list(xs), list(lows), list(highs)
    starts = [i * len(xs) // MAX_POINTS for i in range(MAX_POINTS + 1)]
    out_x, out_low, out_high = [], [], []
    for start, stop in itertools.pairwise(starts):
        low = [v for v in lows[start:stop] if v is not None]
        high = [v for v in highs[start:stop] if v is not None]
        out_x.append(xs[start])
        out_low.append(min(low) if low else None)
        out_high.append(max(high) if high else None)
    return out_x, out_low, out_high


def _series_traces(series: Series, label: str, unit: str) -> list[Any]:
    scale = metric_scale(series.metric)
    xs = [point.ts for point in series.points]
    kind = scatter_type(len(xs))  # one kind for all: a band cannot fill across SVG and WebGL
    traces = []
    if _is_bucketed(series):
        band_x, lows, highs = _envelope(
            xs,
            [_scaled(point.min, scale) for point in series.points],
            [_scaled(point.max, scale) for point in series.points],
        )
        band = {"mode": "lines", "line": {"width": 0}, "hoverinfo": "skip", "x": band_x}
        traces.append(kind(y=highs, name="max", showlegend=False, **band))
        traces.append(
            kind(y=lows, name="min-max", fill="tonexty", fillcolor="rgba(31,119,180,0.2)", **band)
        )
    traces.append(
        line_trace(
            xs,
            [_scaled(point.mean, scale) for point in series.points],
            kind=kind,
            name=html.escape(label),
            line={"color": LINE_COLORS[0]},
            hovertemplate=f"%{{x|%Y-%m-%d %H:%M:%S}} UTC<br>{html.escape(label)}: "
            f"%{{y:.1f}} {unit}<extra></extra>",
        )
    )
    return traces


def _event_text(event: Event) -> str:
    text = f"<b>{html.escape(event.kind)}</b> on {html.escape(event.host)}"
    if event.value is not None:
        text += f" ({event.value:g})"
    if event.detail:
        text += f"<br>{html.escape(event.detail)}"
    return text


def _event_traces(events: Sequence[Event]) -> list[Any]:
    traces = []
    for kind, (symbol, color) in EVENT_MARKERS.items():
        chosen = [event for event in events if event.kind == kind][-MAX_POINTS:]
        if chosen:
            traces.append(
                go.Scatter(
                    x=[event.ts for event in chosen],
                    y=[kind] * len(chosen),
                    mode="markers",
                    name=kind.replace("_", " "),
                    marker={"symbol": symbol, "color": color, "size": 10},
                    hovertext=[_event_text(event) for event in chosen],
                    hoverinfo="x+text",
                )
            )
    return traces


def _add_runs(
    fig: go.Figure,
    runs: Sequence[RunInfo],
    span: tuple[datetime, datetime],
    now: datetime | None,
    where: dict[str, int],
) -> None:
    """Each run as a shaded span, cut to the shown time (a running one lasts until ``now``).

    The spans and their labels go in with one layout update: plotly's ``add_vrect`` copies
    the layout on every call, which cost over a second for 50 runs on 8 graphs."""
    shapes, labels = [], []
    for number, run in enumerate(runs):
        start = max(run.started_at, span[0])
        end = min(run.ended_at or now or span[1], span[1])
        if end <= start:
            continue
        short = run.name if len(run.name) <= RUN_NAME_CHARS else run.name[: RUN_NAME_CHARS - 1]
        # The first (or only) subplot's axes are x and y, which is where spans belong.
        area = {"xref": "x", "yref": "y domain", "x0": start, "x1": end, "y0": 0, "y1": 1}
        shapes.append({"type": "rect", **area, "fillcolor": RUN_COLORS[number % len(RUN_COLORS)],
                       "opacity": 0.12, "line": {"width": 0}, "layer": "below"})  # fmt: skip
        labels.append({
            "x": start, "y": 1, "xref": "x", "yref": "y domain", "xanchor": "left",
            "yanchor": "top", "showarrow": False, "font": {"size": 11},
            "text": html.escape(short if short == run.name else f"{short}…"),
            "hovertext": html.escape(f"run {run.name} ({run.status}) on {run.host}"),
        })  # fmt: skip
    if shapes:
        fig.update_layout(
            shapes=[*fig.layout.shapes, *shapes], annotations=[*fig.layout.annotations, *labels]
        )


def _label_axes(fig: go.Figure, label: str, unit: str, *, has_event_row: bool) -> None:
    y_axis: dict[str, Any] = {"title_text": html.escape(f"{label} ({unit})" if unit else label)}
    if unit in _AXIS_FROM_ZERO:
        y_axis["rangemode"] = "tozero"
    if not has_event_row:
        fig.update_yaxes(**y_axis)
        fig.update_xaxes(title_text="time (UTC)")
        return
    fig.update_yaxes(**y_axis, row=1, col=1)
    fig.update_yaxes(visible=False, fixedrange=True, row=2, col=1)
    fig.update_xaxes(title_text="time (UTC)", row=2, col=1)


def metric_figure(
    series: Series,
    *,
    title: str,
    events: Sequence[Event] = (),
    runs: Sequence[RunInfo] = (),
    now: datetime | None = None,
) -> go.Figure:
    """One GPU metric over time: the mean as a line, the min-max band when the series is
    bucketed, ``events`` (throttling, Xid, lost/back, ECC) as markers on a row beneath, and
    each of ``runs`` as a shaded span, until ``now`` while it is still running."""
    label, unit = metric_label(series.metric)
    if not series.points:
        return empty_figure(f"{title}: no data in this time range")
    span = (series.points[0].ts, series.points[-1].ts + timedelta(seconds=series.bucket_seconds))
    shown = [e for e in events if e.kind in EVENT_MARKERS and span[0] <= e.ts <= span[1]]
    fig = go.Figure()
    where: dict[str, int] = {}
    if shown:
        fig = make_subplots(
            rows=2, cols=1, shared_xaxes=True, row_heights=[0.85, 0.15], vertical_spacing=0.04
        )
        where = {"row": 1, "col": 1}
    for trace in _series_traces(series, label, unit):
        fig.add_trace(trace, **where)
    for trace in _event_traces(shown):
        fig.add_trace(trace, row=2, col=1)
    _add_runs(fig, runs, span, now, where)
    _label_axes(fig, label, unit, has_event_row=bool(shown))
    return apply_style(
        fig,
        uirevision=f"metric:{series.uuid}:{series.metric}",
        title={"text": html.escape(title), "x": 0, "font": {"size": 14}},
        legend={"x": 1, "xanchor": "right"},  # the title holds the left
        hovermode="x",
    )


def _quantile_sample(values: Sequence[float], count: int) -> list[float]:
    """``count`` evenly spaced order statistics of ``values`` (the min and max included), so a
    box drawn from them has the quartiles of all the values."""
    ordered = sorted(values)
    if len(ordered) <= count:
        return ordered
    return [ordered[round(i * (len(ordered) - 1) / (count - 1))] for i in range(count)]


def distribution_figure(
    a: Sequence[float], b: Sequence[float], *, names: tuple[str, str]
) -> go.Figure:
    """The step-time distributions of runs A and B side by side, as boxes in ms.

    ``a`` and ``b`` are step durations in µs (the records' unit); ``names`` are the runs' names.
    """
    fig = go.Figure()
    for side, values, name in zip(("A", "B"), (a, b), names, strict=True):
        finite = [value / 1e3 for value in values if math.isfinite(value)]
        if finite:
            fig.add_trace(
                go.Box(
                    y=_quantile_sample(finite, MAX_POINTS),
                    name=html.escape(side if name in ("", side) else f"{side}: {name}"),
                    marker_color=_SIDE_COLORS[side],
                    boxmean=True,
                    boxpoints="outliers",
                )
            )
    if not fig.data:
        return empty_figure("no step times to compare")
    fig.update_yaxes(title_text="time per step (ms)", rangemode="tozero")
    return apply_style(fig, uirevision="distribution", showlegend=False)


def breakdown_delta_figure(deltas: Sequence[CategoryDelta]) -> go.Figure:
    """Mean time per profiled step (ms) of each breakdown category in runs A and B, as grouped
    bars; the hover says B minus A."""
    shown = [delta for delta in deltas if delta.a_us or delta.b_us]
    if not shown:
        return empty_figure("no step breakdowns to compare: neither run has an analyzed window")
    labels = [html.escape(delta.category) for delta in shown]
    fig = go.Figure()
    for side in ("A", "B"):
        fig.add_trace(
            go.Bar(
                x=labels,
                y=[(delta.a_us if side == "A" else delta.b_us) / 1e3 for delta in shown],
                name=side,
                marker_color=_SIDE_COLORS[side],
                customdata=[delta.delta_us / 1e3 for delta in shown],
                hovertemplate=f"%{{x}}<br>{side}: %{{y:.2f}} ms per step"
                "<br>B - A: %{customdata:+.2f} ms<extra></extra>",
            )
        )
    fig.update_xaxes(title_text="category")
    fig.update_yaxes(title_text="time per profiled step (ms)", rangemode="tozero")
    return apply_style(fig, uirevision="breakdown-delta", barmode="group")


__all__ = [
    "CATEGORY_COLORS",
    "EVENT_MARKERS",
    "MAX_POINTS",
    "TEMPLATE",
    "WEBGL_ABOVE_POINTS",
    "breakdown_delta_figure",
    "breakdown_figure",
    "breakdown_total_figure",
    "distribution_figure",
    "empty_figure",
    "memory_figure",
    "metric_figure",
    "step_telemetry_figure",
    "step_time_figure",
    "thin",
]
