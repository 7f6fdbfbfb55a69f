"""Compare (``/compare?a=RUN&b=RUN``): did the change between two runs work?

Run A is the run before the change, B the run after it. The page shows what
``gpulens compare A B`` prints: the speed-up of the median step with its bootstrap interval
and verdict, both runs' steady step times, the breakdown and kernel deltas per profiled step,
and each finding of A checked against B. The comparison and the runs' current findings (stored,
computed again first when stale) come from :func:`monitor.services.runs.compare`, as for the
CLI. Data shaping is pure and lives in small helpers here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import dash
from dash import Input, Output, dcc, html

from dashboard import ids
from dashboard.context import PageContext
from dashboard.figures import breakdown_delta_figure, distribution_figure
from dashboard.findings_view import TIMES, findings_list
from dashboard.format import duration_us_text, percent_text
from dashboard.pages.run_tables import numeric_column, table_or_note
from monitor.core.advisor.compare_report import (
    Comparison,
    FindingCheck,
    KernelDelta,
    RunStats,
    headline,
)
from monitor.core.advisor.evidence import RunEvidence
from monitor.core.advisor.steps import split_warmup
from monitor.core.advisor.thresholds import Thresholds
from monitor.core.run_records import RunInfo
from monitor.services.runs import compare
from monitor.store import Store

RECENT_RUNS = 200
KERNELS_SHOWN = 20
VERDICT_BADGES = {
    "faster": "ok",
    "slower": "critical",
    "no significant change": "info",
    "not enough data": "warning",
}
INSTRUCTIONS = (
    "Choose run A (before the change) and run B (after it). The page compares their steady "
    "step times (warm-up left out), the step breakdown and kernels per profiled step, and "
    "checks each finding the advisor had for A against B."
)


def layout(ctx: PageContext, params: Mapping[str, str]) -> html.Div:
    store = ctx.store
    chosen = {key: _resolve(store, params.get(key)) for key in ("a", "b")}
    runs = store.runs(limit=RECENT_RUNS)
    extra = [run for run in chosen.values() if isinstance(run, RunInfo)]
    options = run_options([*runs, *extra])
    values = {key: run.run_id if isinstance(run, RunInfo) else run for key, run in chosen.items()}
    return html.Div(
        className="gl-compare",
        children=[
            html.H1("Compare runs"),
            html.Div(
                className="gl-controls",
                children=[
                    _chooser("A (before)", ids.COMPARE_A, options, values["a"]),
                    _chooser("B (after)", ids.COMPARE_B, options, values["b"]),
                ],
            ),
            dcc.Loading(
                html.Div(comparison_view(store, values["a"], values["b"]), id=ids.COMPARE_RESULT)
            ),
        ],
    )


def register(app: dash.Dash, ctx: PageContext) -> None:
    app.callback(
        Output(ids.COMPARE_RESULT, "children"),
        Input(ids.COMPARE_A, "value"),
        Input(ids.COMPARE_B, "value"),
        prevent_initial_call=True,  # the layout already holds the result for the URL's runs
    )(lambda a, b: comparison_view(ctx.store, a, b))


def _resolve(store: Store, ref: str | None) -> RunInfo | str | None:
    """The run ``ref`` names, else ``ref`` itself (the result then says it is unknown)."""
    if not ref:
        return None
    return store.run(ref) or ref


def _chooser(label: str, element_id: str, options: list[dict[str, str]], value: Any) -> Any:
    return html.Label(
        [label, dcc.Dropdown(id=element_id, options=options, value=value, clearable=True)],
        style={"flex": "1"},
    )


def run_options(runs: Sequence[RunInfo]) -> list[dict[str, str]]:
    """Dropdown options, one per run id (first seen wins): ``name · host · started``."""
    options: dict[str, dict[str, str]] = {}
    for run in runs:
        rank = f" · rank {run.rank}/{run.world_size}" if run.world_size > 1 else ""
        label = f"{run.name} · {run.host}{rank} · {run.started_at:%Y-%m-%d %H:%M} UTC"
        options.setdefault(run.run_id, {"label": label, "value": run.run_id})
    return list(options.values())


def comparison_view(store: Store, a: str | None, b: str | None) -> Any:
    """The result area for runs ``a`` and ``b`` (ids or names): the comparison, or a message
    saying what is missing."""
    if not a or not b:
        return _note(INSTRUCTIONS)
    run_a, run_b = store.run(a), store.run(b)
    for ref, run in ((a, run_a), (b, run_b)):
        if run is None:
            return html.Div(
                className="gl-message",
                children=[
                    html.P(f"no run {ref!r} in the store."),
                    html.P(["See ", dcc.Link("the runs", href="/runs"), " for the runs it has."]),
                ],
            )
    assert run_a is not None and run_b is not None
    if run_a.run_id == run_b.run_id:
        return _note("A and B are the same run: choose two different runs to compare.")
    result = compare(store, run_a.run_id, run_b.run_id)  # as `gpulens compare A B` does
    comparison = result.comparison
    samples = step_sample(result.a, comparison.a), step_sample(result.b, comparison.b)
    return comparison_result(comparison, *samples)


def _note(text: str) -> html.P:
    return html.P(text, className="gl-empty")


def step_sample(evidence: RunEvidence, stats: RunStats) -> list[float]:
    """The step times (µs) the comparison used: steady steps, or profiled step breakdowns."""
    if stats.sample == "breakdowns":
        return [row.duration_us for row in evidence.breakdowns if row.step is not None]
    return split_warmup(evidence.steps, Thresholds()).durations_us


def comparison_result(
    comparison: Comparison, sample_a: Sequence[float], sample_b: Sequence[float]
) -> html.Div:
    speedup = comparison.speedup
    badge = html.Span(
        speedup.verdict, className=f"gl-badge gl-badge-{VERDICT_BADGES[speedup.verdict]}"
    )
    has_breakdown = any(row.a_us or row.b_us for row in comparison.breakdown)
    return html.Div(
        [
            html.H2([badge, headline(comparison)], className="gl-headline"),
            html.P(difference_text(comparison)),
            stats_table(comparison.a, comparison.b),
            html.Ul([html.Li(note) for note in comparison.notes], className="gl-meta"),
            html.H2("Step times"),
            dcc.Graph(
                id=ids.COMPARE_DISTRIBUTION,
                figure=distribution_figure(sample_a, sample_b, names=("A", "B")),
                config={"displaylogo": False},
            ),
            html.H2("Step breakdown per profiled step (B - A)"),
            dcc.Graph(
                id=ids.COMPARE_BREAKDOWN,
                figure=breakdown_delta_figure(comparison.breakdown),
                config={"displaylogo": False},
            )
            if has_breakdown
            else _note(
                "A or B has no profiled steps: the breakdown needs an analyzed window of each"
            ),
            html.H2(f"Kernel changes per profiled step (top {KERNELS_SHOWN})"),
            table_or_note(
                ids.COMPARE_KERNELS,
                KERNEL_COLUMNS,
                kernel_delta_rows(comparison.kernels),
                "no kernel changes: no analyzed window in A or B, or the same kernels",
                page_size=KERNELS_SHOWN,
            ),
            html.H2("Findings of A, checked against B"),
            table_or_note(
                ids.COMPARE_FINDINGS,
                CHECK_COLUMNS,
                check_rows(comparison.findings),
                "the advisor had no finding for A",
                page_size=KERNELS_SHOWN,
            ),
            html.H2("New in B"),
            *findings_list(comparison.new_findings, empty="B has no finding A did not have"),
        ]
    )


def difference_text(comparison: Comparison) -> str:
    """``per step B - A: -2.5 ms (95 % CI -2.6 ms .. -2.3 ms)``."""
    difference, confidence = comparison.difference, comparison.speedup.confidence
    text = f"median step B - A: {duration_us_text(difference.delta_us)}"
    if not math.isnan(difference.ci_low_us):
        text += (
            f" ({percent_text(confidence * 100)} CI {duration_us_text(difference.ci_low_us)} .. "
            f"{duration_us_text(difference.ci_high_us)})"
        )
    return text


def stats_rows(a: RunStats, b: RunStats) -> list[list[str]]:
    """One row per run: label, name, id, step times used, warm-up left out, median, mean, p90,
    p99, GPU busy."""
    return [
        [
            label,
            stats.name or "n/a",
            stats.run_id or "n/a",
            f"{stats.steps:,} ({'step records' if stats.sample == 'steps' else 'profiled steps'})",
            f"{stats.warmup_steps:,}",
            *(duration_us_text(value) for value in (stats.median_us, stats.mean_us)),
            *(duration_us_text(value) for value in (stats.p90_us, stats.p99_us)),
            percent_text(stats.gpu_busy_percent),
        ]
        for label, stats in (("A", a), ("B", b))
    ]


STATS_HEADER = ("", "run", "id", "step times", "warm-up steps", "median", "mean", "p90", "p99",
                "GPU busy")  # fmt: skip


def stats_table(a: RunStats, b: RunStats) -> html.Table:
    return html.Table(
        id=ids.COMPARE_STATS,
        className="gl-table",
        children=[
            html.Thead(html.Tr([html.Th(name) for name in STATS_HEADER])),
            html.Tbody([html.Tr([html.Td(cell) for cell in row]) for row in stats_rows(a, b)]),
        ],
    )


KERNEL_COLUMNS: list[dict[str, Any]] = [
    {"id": "change", "name": "change"},
    {"id": "name", "name": "kernel"},
    {"id": "category", "name": "category"},
    numeric_column("a_us", "A (µs/step)", 1),
    numeric_column("b_us", "B (µs/step)", 1),
    numeric_column("delta_us", "B - A (µs/step)", 1),
    numeric_column("a_calls", "A calls/step", 1),
    numeric_column("b_calls", "B calls/step", 1),
    {"id": "tensor_core", "name": "tensor cores A → B"},
]
CHECK_COLUMNS: list[dict[str, Any]] = [
    {"id": "rule", "name": "rule"},
    {"id": "title", "name": "finding of A"},
    {"id": "verdict", "name": "verdict"},
    {"id": "predicted", "name": "predicted"},
    {"id": "realized", "name": "realized"},
    {"id": "in_b", "name": "in B"},
    {"id": "reason", "name": "reason"},
]


def kernel_delta_rows(
    kernels: Sequence[KernelDelta], limit: int = KERNELS_SHOWN
) -> list[dict[str, Any]]:
    """The kernel diff rows, largest change first (as the comparison orders them)."""
    return [
        {
            "change": row.change,
            "name": row.name,
            "category": row.category,
            "a_us": row.a_us_per_step,
            "b_us": row.b_us_per_step,
            "delta_us": row.delta_us,
            "a_calls": row.a_calls_per_step,
            "b_calls": row.b_calls_per_step,
            "tensor_core": f"{_yes_no(row.tensor_core_a)} → {_yes_no(row.tensor_core_b)}",
        }
        for row in kernels[:limit]
    ]


def _yes_no(value: bool | None) -> str:
    return "—" if value is None else ("yes" if value else "no")


def check_rows(checks: Sequence[FindingCheck]) -> list[dict[str, str]]:
    """A row per finding of A: its verdict, the gain it predicted and the one realized."""
    return [
        {
            "rule": check.rule,
            "title": check.title,
            "verdict": check.verdict,
            "predicted": "no step-time gain predicted"
            if check.predicted_max_speedup is None
            else f"up to {check.predicted_max_speedup:.2f}{TIMES} "
            f"({percent_text((check.predicted_time_fraction or 0.0) * 100)} of step time)",
            "realized": realized_text(check),
            "in_b": "not in B"
            if check.fraction_in_b is None
            else f"{percent_text(check.fraction_in_b * 100)} of step time",
            "reason": check.reason,
        }
        for check in checks
    ]


def realized_text(check: FindingCheck) -> str:
    if math.isnan(check.realized_speedup):
        return "n/a"
    low, high = check.realized_ci
    if math.isnan(low) or math.isnan(high):
        return f"{check.realized_speedup:.2f}{TIMES}"
    return f"{check.realized_speedup:.2f}{TIMES} (CI {low:.2f}{TIMES}-{high:.2f}{TIMES})"
