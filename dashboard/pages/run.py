"""Run (``/run/<id or name>``): one training run, its steps, where the time goes, and what to do.

Header figures, step time over the run (the top finding's steps highlighted), the 8-category
breakdown per traced step and overall, GPU telemetry and CUDA memory aligned to the steps, the
kernel table, copies and synchronizing calls, the advisor's findings and the windows' traces.
Data comes from the store's query functions only; the shaping helpers here are pure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import dash
from dash import dcc, html

from dashboard import ids
from dashboard.context import PageContext
from dashboard.downloads import trace_href
from dashboard.figures import (
    breakdown_figure,
    breakdown_total_figure,
    memory_figure,
    step_telemetry_figure,
    step_time_figure,
)
from dashboard.findings_view import findings_list, run_findings
from dashboard.format import ago_text, duration_us_text, percent_text
from dashboard.pages.run_tables import (
    KERNEL_ROWS,
    NO_WINDOW,
    copy_rows,
    copy_tables,
    empty_note,
    kernel_rows,
    kernel_table,
    sync_rows,
)
from monitor.core.advisor.findings import Finding
from monitor.core.advisor.steps import mean, median
from monitor.core.analysis.results import KernelStat, RankAnalysis, from_json
from monitor.core.gpu_records import GpuSample
from monitor.core.run_records import RunInfo, StepRecord, WindowRecord
from monitor.core.run_views import RunSummary, StepBreakdownRow
from monitor.store import Store

SAMPLES_PER_GPU = 5_000
TELEMETRY_SLACK = timedelta(seconds=5)
PERFETTO = "https://ui.perfetto.dev"

NO_STEPS = (
    "no steps recorded yet: wrap the training loop in profiler_hooks.profile_steps(...) "
    "or call profiler_hooks.attach(optimizer=...)"
)


@dataclass(frozen=True, slots=True)
class RunData:
    """Everything the Run page shows, read from the store once."""

    run: RunInfo
    steps: tuple[StepRecord, ...]
    breakdowns: tuple[StepBreakdownRow, ...]
    windows: tuple[WindowRecord, ...]
    traces: tuple[RankAnalysis, ...]  # the window summaries of this run's rank
    kernels: tuple[KernelStat, ...]
    samples: tuple[GpuSample, ...]  # of the run's GPUs over its span
    findings: tuple[Finding, ...]
    findings_stored: bool


def layout(ctx: PageContext, params: Mapping[str, str]) -> html.Div:
    ref = params.get("run", "")
    run = ctx.store.run(ref) if ref else None
    if run is None:
        return unknown_run(ref)
    now = ctx.now()
    data = load_run(ctx.store, run, now)
    top = data.findings[0] if data.findings else None
    return html.Div(
        className="gl-run",
        children=[
            *header(data, now),
            _section("Step time", _step_time(data, top.scope.steps if top else ())),
            _section("Step breakdown", *_breakdowns(data.breakdowns)),
            _section("GPU telemetry during the steps", _telemetry(data)),
            _section("CUDA memory per step", _memory(data.steps)),
            _section("Kernels", kernel_table(data.kernels)),
            _section("Copies and synchronization", *copy_tables(data.traces)),
            _section("Findings", findings_view(data)),
            _section("Traces", downloads(data.run.run_id, data.windows)),
        ],
    )


def register(app: dash.Dash, ctx: PageContext) -> None:
    """The Run page has no callbacks: it is drawn once per visit."""


def unknown_run(ref: str) -> html.Div:
    return html.Div(
        className="gl-message",
        children=[
            html.H2("Unknown run"),
            html.P(f"no run {ref!r} in the store (neither a run id nor a run name)."),
            html.P(["See ", dcc.Link("the runs", href="/runs"), " for the runs it has."]),
        ],
    )


def load_run(store: Store, run: RunInfo, now: datetime) -> RunData:
    steps = tuple(store.steps(run.run_id))
    windows = tuple(store.windows(run.run_id))
    start, end = run_span(run, steps, now)
    findings, stored = run_findings(store, run.run_id)
    return RunData(
        run=run,
        steps=steps,
        breakdowns=tuple(store.step_breakdowns(run.run_id)),
        windows=windows,
        traces=window_traces(store, run, windows),
        kernels=tuple(store.kernels(run.run_id, limit=KERNEL_ROWS)),
        samples=tuple(
            sample
            for uuid in run.gpu_uuids
            for sample in store.samples(uuid, start, end, limit=SAMPLES_PER_GPU)
        ),
        findings=tuple(findings),
        findings_stored=stored,
    )


def window_traces(
    store: Store, run: RunInfo, windows: Sequence[WindowRecord]
) -> tuple[RankAnalysis, ...]:
    found: list[RankAnalysis] = []
    for window in windows:
        summary = store.window_summary(window.window_id) if window.status == "analyzed" else None
        if summary:
            found += [item for item in from_json(summary).ranks if item.rank == run.rank]
    return tuple(found)


def run_span(run: RunInfo, steps: Sequence[StepRecord], now: datetime) -> tuple[datetime, datetime]:
    """From the run's start to its end or its last step's end (now, while it runs), with
    :data:`TELEMETRY_SLACK` either side."""
    ends = [run.ended_at] if run.ended_at is not None else []
    if steps:
        last = max(steps, key=lambda step: step.started_at)
        ends.append(last.started_at + timedelta(microseconds=last.duration_us))
    if run.ended_at is None and run.status == "running":
        ends.append(now)
    end = max(ends, default=run.started_at)
    return run.started_at - TELEMETRY_SLACK, end + TELEMETRY_SLACK


def run_summary(
    run: RunInfo, steps: Sequence[StepRecord], breakdowns: Sequence[StepBreakdownRow], windows: int
) -> RunSummary:
    """The run's figures over its steps and breakdowns (as :meth:`Store.runs` gives them)."""
    durations = [step.duration_us for step in steps]
    traced = math.fsum(row.duration_us for row in breakdowns)
    busy = math.fsum(row.gpu_busy_us for row in breakdowns)
    fields = {name: getattr(run, name) for name in RunInfo.__dataclass_fields__}
    return RunSummary(
        **fields,
        steps=len(durations),
        mean_step_us=mean(durations) if durations else None,
        median_step_us=median(durations) if durations else None,
        gpu_busy_percent=100.0 * busy / traced if traced > 0 else None,
        windows=windows,
    )


def run_header_items(summary: RunSummary, *, now: datetime) -> list[tuple[str, str]]:
    """The header's label/value pairs, every figure with its unit."""
    ended = summary.ended_at or now
    running = " (running)" if summary.ended_at is None and summary.status == "running" else ""
    started = summary.started_at
    return [
        ("host", summary.host),
        ("rank / world", f"{summary.rank} / {summary.world_size}"),
        ("status", summary.status),
        (
            "started",
            f"{started:%Y-%m-%d %H:%M:%S} UTC ({ago_text((now - started).total_seconds())})",
        ),
        ("duration", duration_us_text((ended - started).total_seconds() * 1e6) + running),
        ("steps", f"{summary.steps:,}"),
        ("mean step", duration_us_text(summary.mean_step_us)),
        ("median step", duration_us_text(summary.median_step_us)),
        ("GPU busy (traced steps)", percent_text(summary.gpu_busy_percent)),
        ("profiler windows", f"{summary.windows:,}"),
    ]


def header(data: RunData, now: datetime) -> list[Any]:
    summary = run_summary(data.run, data.steps, data.breakdowns, len(data.windows))
    cells: list[Any] = []
    for label, value in run_header_items(summary, now=now):
        cells += [html.Dt(label), html.Dd(value)]
    return [
        html.H1(data.run.name),
        html.P(f"run {data.run.run_id}", className="gl-meta"),
        html.Dl(cells, id=ids.RUN_HEADER, className="gl-kv"),
        dcc.Link("compare with another run", href=f"/compare?a={data.run.run_id}"),
    ]


def _section(title: str, *children: Any) -> html.Section:
    return html.Section(className="gl-section", children=[html.H2(title), *children])


def _graph(graph_id: str, figure: Any) -> dcc.Graph:
    return dcc.Graph(id=graph_id, figure=figure, config={"displaylogo": False})


def _step_time(data: RunData, highlight: Sequence[int]) -> Any:
    if not data.steps:
        return empty_note(ids.RUN_STEP_TIME, NO_STEPS)
    return _graph(ids.RUN_STEP_TIME, step_time_figure(data.steps, highlight=tuple(highlight)))


def _breakdowns(rows: Sequence[StepBreakdownRow]) -> list[Any]:
    if not rows:
        return [empty_note(ids.RUN_BREAKDOWN, NO_WINDOW)]
    return [
        _graph(ids.RUN_BREAKDOWN, breakdown_figure(rows)),
        _graph(ids.RUN_BREAKDOWN_TOTAL, breakdown_total_figure(rows)),
    ]


def _telemetry(data: RunData) -> Any:
    if not data.run.gpu_uuids:
        return empty_note(ids.RUN_TELEMETRY, "the run recorded no GPU (a CPU run): no telemetry")
    if not data.samples:
        return empty_note(
            ids.RUN_TELEMETRY,
            f"no GPU telemetry during the run: run `gpulens collect` on {data.run.host} "
            "(it samples every GPU of the host) while the job trains",
        )
    if not data.steps:
        return empty_note(ids.RUN_TELEMETRY, NO_STEPS)
    return _graph(ids.RUN_TELEMETRY, step_telemetry_figure(data.steps, data.samples))


def _memory(steps: Sequence[StepRecord]) -> Any:
    measured = ("cuda_allocated_bytes", "cuda_reserved_bytes", "cuda_peak_bytes")
    if not any(getattr(step, name) is not None for step in steps for name in measured):
        return empty_note(
            ids.RUN_MEMORY,
            "no CUDA memory recorded: steps record the allocator's memory on CUDA devices only",
        )
    return _graph(ids.RUN_MEMORY, memory_figure(steps))


def findings_view(data: RunData) -> html.Div:
    note = (
        "stored with the run (computed again whenever new evidence of the run lands)"
        if data.findings_stored
        else f"computed now and not saved: `gpulens advise --run {data.run.run_id}` stores them"
    )
    empty = "the advisor finds nothing holding this run back"
    return html.Div(
        id=ids.RUN_FINDINGS,
        children=[html.P(note, className="gl-meta"), *findings_list(data.findings, empty=empty)],
    )


def downloads(run_id: str, windows: Sequence[WindowRecord]) -> html.Div:
    """A link per analyzed window's trace, and what became of the other windows."""
    if not windows:
        return html.Div(html.P(NO_WINDOW, className="gl-empty"), id=ids.RUN_DOWNLOADS)
    items = []
    for window in windows:
        label = f"steps {window.first_step}-{window.last_step} ({window.trigger}): "
        if window.status == "analyzed" and window.trace_path:
            link = html.A("download trace", href=trace_href(run_id, window.window_id), download="")
            items.append(html.Li([label, link]))
        else:
            items.append(
                html.Li(label + window.status + (f": {window.error}" if window.error else ""))
            )
    perfetto = html.A("ui.perfetto.dev", href=PERFETTO, target="_blank", rel="noopener")
    opens: list[Any] = [
        "The traces open in Perfetto (",
        perfetto,
        ": Open trace file) and in TensorBoard.",
    ]
    return html.Div([html.P(opens), html.Ul(items)], id=ids.RUN_DOWNLOADS)


__all__ = ["copy_rows", "kernel_rows", "layout", "register", "sync_rows"]
