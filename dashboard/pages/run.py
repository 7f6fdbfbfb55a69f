"""Run (``/run/<id or name>``): one training run, its steps, where the time goes, and what to do.

Header figures, step time over the run (the top finding's steps highlighted), the 8-category
breakdown per traced step and overall, GPU telemetry and CUDA memory aligned to the steps, the
kernel table, copies and synchronizing calls, the advisor's findings and the windows' traces.
Data comes from the store's query functions only; the shaping helpers here are pure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import dash
from dash import dcc, html
from dash.dash_table.DataTable import DataTable

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
from monitor.advisor.model import Finding
from monitor.advisor.steps import mean, median
from monitor.records import GpuSample
from monitor.run_views import RunSummary, StepBreakdownRow
from monitor.store import Store
from profiler_hooks.analysis.model import KernelStat, RankAnalysis, from_json
from profiler_hooks.records import RunInfo, StepRecord, WindowRecord

KERNEL_ROWS = 200
SAMPLES_PER_GPU = 5_000
TELEMETRY_SLACK = timedelta(seconds=5)
PERFETTO = "https://ui.perfetto.dev"

NO_WINDOW = (
    "no profiler window analysed yet: windows trace 5 steps every 300 "
    "(GPULENS_PROFILE_SCHEDULE), or `gpulens import TRACE` stores a trace you already have"
)
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
        summary = store.window_summary(window.window_id) if window.status == "analysed" else None
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


def _empty(element_id: str, text: str) -> html.P:
    return html.P(text, id=element_id, className="gl-empty")


def _step_time(data: RunData, highlight: Sequence[int]) -> Any:
    if not data.steps:
        return _empty(ids.RUN_STEP_TIME, NO_STEPS)
    return _graph(ids.RUN_STEP_TIME, step_time_figure(data.steps, highlight=tuple(highlight)))


def _breakdowns(rows: Sequence[StepBreakdownRow]) -> list[Any]:
    if not rows:
        return [_empty(ids.RUN_BREAKDOWN, NO_WINDOW)]
    return [
        _graph(ids.RUN_BREAKDOWN, breakdown_figure(rows)),
        _graph(ids.RUN_BREAKDOWN_TOTAL, breakdown_total_figure(rows)),
    ]


def _telemetry(data: RunData) -> Any:
    if not data.run.gpu_uuids:
        return _empty(ids.RUN_TELEMETRY, "the run recorded no GPU (a CPU run): no telemetry")
    if not data.samples:
        return _empty(
            ids.RUN_TELEMETRY,
            f"no GPU telemetry during the run: run `gpulens collect` on {data.run.host} "
            "(it samples every GPU of the host) while the job trains",
        )
    if not data.steps:
        return _empty(ids.RUN_TELEMETRY, NO_STEPS)
    return _graph(ids.RUN_TELEMETRY, step_telemetry_figure(data.steps, data.samples))


def _memory(steps: Sequence[StepRecord]) -> Any:
    measured = ("cuda_allocated_bytes", "cuda_reserved_bytes", "cuda_peak_bytes")
    if not any(getattr(step, name) is not None for step in steps for name in measured):
        return _empty(
            ids.RUN_MEMORY,
            "no CUDA memory recorded: steps record the allocator's memory on CUDA devices only",
        )
    return _graph(ids.RUN_MEMORY, memory_figure(steps))


def _numeric(column_id: str, name: str, decimals: int) -> dict[str, Any]:
    return {
        "id": column_id,
        "name": name,
        "type": "numeric",
        "format": {"specifier": f",.{decimals}f"},  # d3-format: grouped, fixed decimals
    }


KERNEL_COLUMNS: list[dict[str, Any]] = [
    {"id": "name", "name": "kernel"},
    {"id": "category", "name": "category"},
    _numeric("count", "calls", 0),
    _numeric("total_ms", "total (ms)", 3),
    _numeric("mean_us", "mean (µs)", 1),
    _numeric("share_percent", "share of kernel time (%)", 1),
    {"id": "tensor_core", "name": "tensor cores"},
]


def kernel_rows(kernels: Sequence[KernelStat], limit: int = KERNEL_ROWS) -> list[dict[str, Any]]:
    """Kernel table rows, most total time first, at most ``limit``."""
    total_us = math.fsum(kernel.total_us for kernel in kernels)
    ordered = sorted(kernels, key=lambda kernel: kernel.total_us, reverse=True)[:limit]
    return [
        {
            "name": kernel.name,
            "category": kernel.category,
            "count": kernel.count,
            "total_ms": kernel.total_us / 1e3,
            "mean_us": kernel.mean_us,
            "share_percent": 100.0 * kernel.total_us / total_us if total_us > 0 else None,
            "tensor_core": "yes" if kernel.tensor_core else "no",
        }
        for kernel in ordered
    ]


def table(table_id: str, columns: Sequence[Any], rows: Sequence[Any]) -> Any:
    """A sortable table; cells are plain text (never markdown or HTML)."""
    return DataTable(
        id=table_id,
        columns=columns,
        data=rows,
        sort_action="native",
        page_size=25,
        style_table={"overflowX": "auto"},
        style_cell={"textAlign": "left", "maxWidth": "40rem", "whiteSpace": "normal"},
    )


def kernel_table(kernels: Sequence[KernelStat]) -> Any:
    if not kernels:
        return _empty(
            ids.RUN_KERNELS, f"no kernels: {NO_WINDOW}; a CPU-only trace has no GPU kernels"
        )
    return table(ids.RUN_KERNELS, KERNEL_COLUMNS, kernel_rows(kernels))


COPY_COLUMNS: list[dict[str, Any]] = [
    {"id": "direction", "name": "direction"},
    {"id": "memory", "name": "host memory"},
    _numeric("count", "copies", 0),
    _numeric("total_ms", "time (ms)", 3),
    _numeric("mib", "data (MiB)", 3),
]
SYNC_COLUMNS: list[dict[str, Any]] = [
    {"id": "name", "name": "call"},
    {"id": "kind", "name": "kind"},
    _numeric("count", "calls", 0),
    _numeric("total_ms", "time (ms)", 3),
]


def _summed(
    items: Iterable[Any], key: Callable[[Any], tuple[str, str]], fields: tuple[str, ...]
) -> list[tuple[tuple[str, str], list[float]]]:
    """``fields`` of ``items`` summed by ``key``, the largest second field (time) first."""
    sums: dict[tuple[str, str], list[float]] = {}
    for item in items:
        row = sums.setdefault(key(item), [0.0] * len(fields))
        for index, name in enumerate(fields):
            row[index] += getattr(item, name)
    return sorted(sums.items(), key=lambda pair: pair[1][1], reverse=True)


def copy_rows(traces: Sequence[RankAnalysis]) -> list[dict[str, Any]]:
    """Copies summed over the analysed windows per direction and memory kind, most time first."""
    copies = (copy for trace in traces for copy in trace.memcpy)
    summed = _summed(
        copies, lambda c: (c.direction, c.memory), ("count", "total_us", "total_bytes")
    )
    return [
        {"direction": direction, "memory": memory, "count": int(count),
         "total_ms": total_us / 1e3, "mib": nbytes / 2**20}
        for (direction, memory), (count, total_us, nbytes) in summed
    ]  # fmt: skip


def sync_rows(traces: Sequence[RankAnalysis]) -> list[dict[str, Any]]:
    """Synchronizing calls summed over the analysed windows by name, most time first."""
    syncs = (sync for trace in traces for sync in trace.syncs)
    return [
        {"name": name, "kind": kind, "count": int(count), "total_ms": total_us / 1e3}
        for (name, kind), (count, total_us) in _summed(
            syncs, lambda s: (s.name, s.kind), ("count", "total_us")
        )
    ]


def copy_tables(traces: Sequence[RankAnalysis]) -> list[Any]:
    if not traces:
        return [_empty(ids.RUN_COPIES, NO_WINDOW)]
    copies, syncs = copy_rows(traces), sync_rows(traces)
    return [
        html.H3("Memory copies"),
        table(ids.RUN_COPIES, COPY_COLUMNS, copies)
        if copies
        else _empty(ids.RUN_COPIES, "no memory copies in the analysed windows"),
        html.H3("Synchronizing calls"),
        table(ids.RUN_SYNCS, SYNC_COLUMNS, syncs)
        if syncs
        else _empty(ids.RUN_SYNCS, "no synchronizing calls in the analysed windows"),
    ]


def findings_view(data: RunData) -> html.Div:
    note = (
        "stored with the run"
        if data.findings_stored
        else f"computed now and not saved: `gpulens advise --run {data.run.run_id}` stores them"
    )
    empty = "the advisor finds nothing holding this run back"
    return html.Div(
        id=ids.RUN_FINDINGS,
        children=[html.P(note, className="gl-meta"), *findings_list(data.findings, empty=empty)],
    )


def downloads(run_id: str, windows: Sequence[WindowRecord]) -> html.Div:
    """A link per analysed window's trace, and what became of the other windows."""
    if not windows:
        return html.Div(html.P(NO_WINDOW, className="gl-empty"), id=ids.RUN_DOWNLOADS)
    items = []
    for window in windows:
        label = f"steps {window.first_step}-{window.last_step} ({window.trigger}): "
        if window.status == "analysed" and window.trace_path:
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
