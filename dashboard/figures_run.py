"""Figures of one training run, and the building blocks every figure shares.

Import from :mod:`dashboard.figures`, which re-exports everything public here. The shared
pieces (:func:`thin`, :func:`empty_figure`, the style) live in this module rather than in
``figures.py`` so that the import runs one way, ``figures`` -> ``figures_run``.

Pure functions of plain records: no store, no Dash, no clock. Text from the data (run,
process, kernel, host names) is escaped with :func:`html.escape` before it reaches a figure,
because plotly renders a subset of HTML in hover text, annotations and legend names.
Durations arrive in µs (the records' unit) and are drawn in ms; memory is drawn in GiB.
"""

from __future__ import annotations

import bisect
import html
import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

import plotly.graph_objects as go  # type: ignore[import-untyped, unused-ignore]
from plotly.subplots import make_subplots  # type: ignore[import-untyped, unused-ignore]

from dashboard.format import duration_us_text, metric_label, metric_scale
from monitor.core.analysis.results import CATEGORIES
from monitor.core.gpu_records import GpuSample
from monitor.core.run_records import StepRecord
from monitor.core.run_views import StepBreakdownRow

MAX_POINTS = 2000
WEBGL_ABOVE_POINTS = 1000  # SVG scatter gets slow past this; WebGL draws any count smoothly
TEMPLATE = "plotly_white"
NEAREST_SAMPLE_SECONDS = 2.0
CATEGORY_COLORS: dict[str, str] = {
    "kernel": "#2ca02c",
    "memcpy": "#1f77b4",
    "memset": "#17becf",
    "communication": "#9467bd",
    "runtime": "#ff7f0e",
    "dataloader": "#d62728",
    "cpu_exec": "#8c564b",
    "other": "#7f7f7f",
}
LINE_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")
_TELEMETRY = ("utilization_gpu_percent", "power_watts", "sm_clock_mhz", "memory_used_bytes")
_MEMORY = (
    ("cuda_allocated_bytes", "allocated"),
    ("cuda_reserved_bytes", "reserved"),
    ("cuda_peak_bytes", "peak"),
)
_GIB = float(2**30)

X = TypeVar("X")


def thin(
    xs: Sequence[X], ys: Sequence[float | None], max_points: int = MAX_POINTS
) -> tuple[list[X], list[float | None]]:
    """At most ``max_points`` of the points ``(xs[i], ys[i])``, in their order.

    The points are cut into ``max_points // 2`` runs of neighbours and each run keeps its
    smallest and its largest ``y``, so a one-sample spike survives any zoom. A run with no value
    at all (``None``) keeps one ``None`` point, so the gap shows.
    """
    if len(xs) != len(ys):
        raise ValueError(f"xs and ys differ in length: {len(xs)} and {len(ys)}")
    if max_points < 2:
        raise ValueError("max_points must be at least 2")
    count = len(xs)
    if count <= max_points:
        return list(xs), list(ys)
    buckets = max_points // 2
    kept: list[int] = []
    for bucket in range(buckets):
        kept.extend(_extremes(ys, bucket * count // buckets, (bucket + 1) * count // buckets))
    return [xs[i] for i in kept], [ys[i] for i in kept]


def _extremes(ys: Sequence[float | None], start: int, stop: int) -> list[int]:
    low = high = -1
    low_value = high_value = 0.0
    for i in range(start, stop):
        value = ys[i]
        if value is None or math.isnan(value):
            continue
        if low < 0 or value < low_value:
            low, low_value = i, value
        if high < 0 or value > high_value:
            high, high_value = i, value
    return [start] if low < 0 else sorted({low, high})


def scatter_type(points: int) -> Any:
    """``go.Scattergl`` for more than :data:`WEBGL_ABOVE_POINTS` points, else ``go.Scatter``."""
    return go.Scattergl if points > WEBGL_ABOVE_POINTS else go.Scatter


def line_trace(
    xs: Sequence[Any], ys: Sequence[float | None], *, kind: Any = None, **trace: Any
) -> Any:
    """A line of the points, thinned to :data:`MAX_POINTS`; WebGL when there are many."""
    thin_xs, thin_ys = thin(xs, ys)
    kind = kind or scatter_type(len(thin_xs))
    return kind(x=thin_xs, y=thin_ys, mode="lines", connectgaps=False, **trace)


def apply_style(fig: go.Figure, *, uirevision: str, **layout: Any) -> go.Figure:
    """The common layout: template, margins, and ``uirevision`` (zoom survives updates)."""
    legend = {"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0, "traceorder": "normal"}
    fig.update_layout(
        template=TEMPLATE,
        uirevision=uirevision,
        margin={"l": 60, "r": 20, "t": 40, "b": 40},
        legend=legend | layout.pop("legend", {}),
        **layout,
    )
    return fig


def empty_figure(message: str) -> go.Figure:
    """A blank figure that says ``message`` (plain text; escaped here), for empty states."""
    fig = go.Figure()
    fig.add_annotation(
        text=html.escape(message),
        x=0.5,
        y=0.5,
        xref="paper",
        yref="paper",
        showarrow=False,
        font={"size": 14, "color": "#666666"},
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return apply_style(fig, uirevision="empty")


def _ms(value_us: float | None) -> float:
    return 0.0 if value_us is None or math.isnan(value_us) else value_us / 1e3


def step_time_figure(steps: Sequence[StepRecord], *, highlight: Sequence[int] = ()) -> go.Figure:
    """Time per step (ms) over the step number, with the DataLoader wait where it was measured
    and the ``highlight`` steps (e.g. the slow ones a finding names) marked."""
    if not steps:
        return empty_figure("no steps recorded for this run yet")
    ordered = sorted(steps, key=lambda record: record.step)
    fig = go.Figure()
    fig.add_trace(
        line_trace(
            [record.step for record in ordered],
            [record.duration_us / 1e3 for record in ordered],
            name="step time",
            line={"color": LINE_COLORS[0]},
            hovertemplate="step %{x}<br>step time %{y:.2f} ms<extra></extra>",
        )
    )
    waits = [record for record in ordered if record.dataloader_wait_us is not None]
    if waits:
        fig.add_trace(
            line_trace(
                [record.step for record in waits],
                [_ms(record.dataloader_wait_us) for record in waits],
                name="DataLoader wait",
                line={"color": CATEGORY_COLORS["dataloader"]},
                hovertemplate="step %{x}<br>DataLoader wait %{y:.2f} ms<extra></extra>",
            )
        )
    wanted = set(highlight)
    marked = [record for record in ordered if record.step in wanted][-MAX_POINTS:]
    if marked:
        fig.add_trace(_highlight_trace(marked))
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text="time per step (ms)", rangemode="tozero")
    return apply_style(fig, uirevision="step-time", hovermode="closest")


def _highlight_trace(marked: Sequence[StepRecord]) -> Any:
    return go.Scatter(
        x=[record.step for record in marked],
        y=[record.duration_us / 1e3 for record in marked],
        mode="markers",
        name="highlighted",
        marker={"color": "#d62728", "size": 10, "symbol": "circle-open", "line_width": 2},
        hovertemplate="step %{x}<br>highlighted: %{y:.2f} ms<extra></extra>",
    )


def _row_labels(rows: Sequence[StepBreakdownRow]) -> list[str]:
    several_ranks = len({row.rank for row in rows}) > 1
    labels: list[str] = []
    for number, row in enumerate(rows, start=1):
        label = f"step {row.step}" if row.step is not None else f"trace {number}"
        if several_ranks:
            label += f" rank {row.rank}"
        while label in labels:  # the same step in two windows: keep both bars apart
            label += "'"
        labels.append(label)
    return labels


def breakdown_figure(rows: Sequence[StepBreakdownRow]) -> go.Figure:
    """Each traced step as a stacked bar of its categories (ms), in :data:`CATEGORIES` order with
    one fixed colour per category; a window without step markers is one bar for its trace."""
    ordered = sorted(
        rows, key=lambda row: (row.step is None, row.step or 0, row.rank, row.start_us)
    )[-MAX_POINTS:]
    if not ordered:
        return empty_figure("no profiler window of this run has been analyzed yet")
    labels = _row_labels(ordered)
    fig = go.Figure()
    for category in CATEGORIES:
        fig.add_trace(
            go.Bar(
                x=labels,
                y=[_ms(row.breakdown_us.get(category)) for row in ordered],
                name=category,
                marker_color=CATEGORY_COLORS[category],
                hovertemplate=f"{category}: %{{y:.2f}} ms<extra></extra>",
            )
        )
    fig.update_xaxes(title_text="traced step", type="category")
    fig.update_yaxes(title_text="time (ms)")
    return apply_style(fig, uirevision="breakdown", barmode="stack", hovermode="x unified")


def breakdown_total_figure(rows: Sequence[StepBreakdownRow]) -> go.Figure:
    """The share (%) of each category in all traced step time, as one horizontal stacked bar."""
    totals = {
        category: sum(_ms(row.breakdown_us.get(category)) for row in rows)
        for category in CATEGORIES
    }
    whole = sum(totals.values())
    if whole <= 0:
        return empty_figure("no profiler window of this run has been analyzed yet")
    fig = go.Figure()
    for category, total_ms in totals.items():
        share = 100 * total_ms / whole
        if share <= 0:
            continue
        fig.add_trace(
            go.Bar(
                x=[share],
                y=["traced steps"],
                orientation="h",
                name=category,
                marker_color=CATEGORY_COLORS[category],
                text=[f"{category} {share:.0f} %"],
                textposition="inside",
                textangle=0,
                insidetextanchor="middle",
                hovertemplate=f"{category}: %{{x:.1f}} % "
                f"({duration_us_text(total_ms * 1e3)} in total)<extra></extra>",
            )
        )
    fig.update_xaxes(title_text="share of traced step time (%)", range=[0, 100])
    fig.update_yaxes(visible=False)
    return apply_style(
        fig,
        uirevision="breakdown-total",
        barmode="stack",
        height=200,
        uniformtext={"minsize": 10, "mode": "hide"},
    )


def _nearest(times: Sequence[datetime], samples: Sequence[GpuSample], at: datetime) -> Any:
    index = bisect.bisect_left(times, at)
    best, best_gap = None, timedelta(seconds=NEAREST_SAMPLE_SECONDS)
    for i in (index - 1, index):
        if 0 <= i < len(times) and abs(times[i] - at) <= best_gap:
            best, best_gap = samples[i], abs(times[i] - at)
    return best


def _telemetry_traces(
    numbers: Sequence[int], nearest: Sequence[GpuSample | None], uuid: str, color: str
) -> list[Any]:
    traces = []
    name = html.escape(uuid if len(uuid) <= 16 else f"{uuid[:15]}…")
    for row, metric in enumerate(_TELEMETRY, start=1):
        scale, (label, unit) = metric_scale(metric), metric_label(metric)
        values = [getattr(sample, metric, None) if sample else None for sample in nearest]
        ys = [None if value is None else value / scale for value in values]
        traces.append(
            line_trace(
                numbers,
                ys,
                name=name,
                legendgroup=name,
                showlegend=row == 1,
                line={"color": color},
                hovertemplate=f"step %{{x}}<br>{label}: %{{y:.1f}} {unit}<extra>{name}</extra>",
            )
        )
    return traces


def step_telemetry_figure(steps: Sequence[StepRecord], samples: Sequence[GpuSample]) -> go.Figure:
    """GPU utilization (%), power (W), SM clock (MHz) and memory used (GiB) per step, one row
    each: every step takes the GPU's sample nearest its middle, within
    :data:`NEAREST_SAMPLE_SECONDS` (else a gap); one line per GPU of the run."""
    if not samples:
        return empty_figure("no telemetry for this run's GPUs")
    if not steps:
        return empty_figure("no steps recorded for this run yet")
    ordered = sorted(steps, key=lambda record: record.step)
    middles = [r.started_at + timedelta(microseconds=r.duration_us / 2) for r in ordered]
    numbers = [record.step for record in ordered]
    fig = make_subplots(rows=len(_TELEMETRY), cols=1, shared_xaxes=True, vertical_spacing=0.03)
    uuids = sorted({sample.uuid for sample in samples})
    for number, uuid in enumerate(uuids):
        gpu = sorted((s for s in samples if s.uuid == uuid), key=lambda sample: sample.ts)
        times = [sample.ts for sample in gpu]
        nearest = [_nearest(times, gpu, middle) for middle in middles]
        color = LINE_COLORS[number % len(LINE_COLORS)]
        for row, trace in enumerate(_telemetry_traces(numbers, nearest, uuid, color), start=1):
            fig.add_trace(trace, row=row, col=1)
    for row, metric in enumerate(_TELEMETRY, start=1):
        label, unit = metric_label(metric)
        fig.update_yaxes(title_text=f"{label} ({unit})", rangemode="tozero", row=row, col=1)
    fig.update_xaxes(title_text="step", row=len(_TELEMETRY), col=1)
    return apply_style(fig, uirevision="step-telemetry", height=680, showlegend=len(uuids) > 1)


def memory_figure(steps: Sequence[StepRecord]) -> go.Figure:
    """CUDA memory allocated, reserved and peak (GiB) per step, as the hooks measured it."""
    if not steps:
        return empty_figure("no steps recorded for this run yet")
    ordered = sorted(steps, key=lambda record: record.step)
    fig = go.Figure()
    for (field, name), color in zip(_MEMORY, LINE_COLORS[: len(_MEMORY)], strict=True):
        measured = [record for record in ordered if getattr(record, field) is not None]
        if measured:
            fig.add_trace(
                line_trace(
                    [record.step for record in measured],
                    [getattr(record, field) / _GIB for record in measured],
                    name=name,
                    line={"color": color},
                    hovertemplate=f"step %{{x}}<br>{name}: %{{y:.2f}} GiB<extra></extra>",
                )
            )
    if not fig.data:
        return empty_figure("CUDA memory was not measured for this run (e.g. a CPU run)")
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text="CUDA memory (GiB)", rangemode="tozero")
    return apply_style(fig, uirevision="memory", hovermode="x unified")
