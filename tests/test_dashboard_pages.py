"""The Run and Compare pages and the finding view, on a real SQLite store seeded here: layouts
and callback functions called directly, their component trees walked."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import dash
import pytest
from dash import dash_table, dcc

from dashboard import ids
from dashboard.context import PageContext
from dashboard.downloads import trace_href
from dashboard.findings_view import (
    evidence_rows,
    finding_card,
    gain_text,
    key_label,
    value_text,
    waste_text,
)
from dashboard.pages import compare as compare_page
from dashboard.pages import run as run_page
from dashboard.pages.runs import runs_table
from monitor.core.advisor.compare_report import FindingCheck
from monitor.core.advisor.findings import Finding, Gain, Scope, ThresholdUse, Waste
from monitor.core.analysis.results import (
    CATEGORIES,
    IdleBreakdown,
    KernelStat,
    MemcpyStat,
    RankAnalysis,
    StepBreakdown,
    SyncStat,
    Temporal,
    TraceAnalysis,
)
from monitor.core.run_records import RunInfo, StepRecord, WindowRecord
from monitor.core.run_views import StepBreakdownRow
from monitor.store import Store
from tests.helpers import T0, at, facts_records, samples

# Dash 4.4 warns at every DataTable that it will leave the built-in components (dash-ag-grid
# replaces it); the tables here are DataTables on purpose, so that one warning is expected.
pytestmark = pytest.mark.filterwarnings(
    "ignore:\\s*The dash_table.DataTable will be removed:DeprecationWarning"
)

HOSTILE = "<script>alert(1)</script>"
NOW = T0 + timedelta(hours=2)
ADVISED = T0 + timedelta(minutes=5)  # after every seeded run's evidence: its findings are current
GEMM = "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64"
ADD = "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float>>"


# -- seeding -------------------------------------------------------------------------------


def a_run(run_id: str = "r1", name: str = "bert-base", **changes: Any) -> RunInfo:
    run = RunInfo(
        run_id=run_id,
        name=name,
        host="h1",
        started_at=T0,
        gpu_uuids=("GPU-a",),
        status="finished",
        ended_at=T0 + timedelta(seconds=90),
    )
    return dataclasses.replace(run, **changes)


def some_steps(run_id: str, count: int, duration_us: float, jitter_us: float = 0.0) -> list[Any]:
    made, start = [], T0
    for number in range(count):
        wobble = jitter_us * ((number * 7) % 5 - 2) / 2  # symmetric around 0: median exact
        made.append(
            StepRecord(
                run_id,
                number,
                start,
                duration_us + wobble,
                cuda_allocated_bytes=2 * 2**30,
                cuda_peak_bytes=3 * 2**30,
            )
        )
        start += timedelta(microseconds=duration_us + wobble)
    return made


def a_breakdown(step: int | None, duration_us: float, busy_us: float) -> StepBreakdown:
    parts = dict.fromkeys(CATEGORIES, 0.0)
    parts.update(kernel=busy_us, dataloader=duration_us - busy_us)
    return StepBreakdown(step, 1000.0 * (step or 0), duration_us, parts, busy_us)


def an_analysis(kernels: tuple[KernelStat, ...], steps: range) -> TraceAnalysis:
    rank = RankAnalysis(
        rank=0,
        device="NVIDIA H100 80GB HBM3",
        device_index=0,
        compute_capability="9.0",
        device_memory_bytes=80 * 2**30,
        temporal=Temporal(
            span_us=36_900.0, idle_us=18_450.0, compute_us=18_000.0, non_compute_us=450.0
        ),
        idle_breakdown_us=IdleBreakdown(host_wait=18_000.0, kernel_wait=400.0, other=50.0),
        steps=tuple(a_breakdown(step, 12_300.0, 6_150.0) for step in steps),
        total=a_breakdown(None, 36_900.0, 18_450.0),
        kernels=kernels,
        memcpy=(
            MemcpyStat("HtoD", "pageable", 3, 300.0, 3 * 2**20),
            MemcpyStat("DtoH", "pinned", 1, 50.0, 2**10),
        ),
        syncs=(SyncStat("cudaDeviceSynchronize", "device", 2, 40.0),),
    )
    return TraceAnalysis(ranks=(rank,))


def a_kernel(name: str, count: int, total_us: float, tensor_core: bool = False) -> KernelStat:
    return KernelStat(
        name, "computation", count, total_us, total_us / count, 1.0, 100.0, tensor_core
    )


def a_finding(rule: str = "input_pipeline", fraction: float = 0.5, **changes: Any) -> Finding:
    finding = Finding(
        rule=rule,
        severity="critical",
        title="The GPU waits for the DataLoader half of each step",
        evidence={
            "mean_dataloader_wait_us": 6150.0,
            "dataloader_wait_percent": 50.0,
            "slowest_steps": [{"step": 7, "step_us": 13_000.0}],
            "pin_memory": False,
        },
        advice=("Raise DataLoader(num_workers=...)", "Set pin_memory=True"),
        expected_gain=Gain(fraction, "step timer: DataLoader wait"),
        confidence="high",
        scope=Scope(run_id="r1", steps=(3, 7)),
        thresholds=(ThresholdUse("input.wait_fraction", 0.1, "default"),),
        waste=Waste(6.15, 1, 300.0, "telemetry", 1845.0, 0.02, "EUR", 0.5),
    )
    return dataclasses.replace(finding, **changes)


def seed_run(store: Store, run: RunInfo, duration_us: float, *, jitter_us: float = 0.0) -> None:
    store.start_run(run)
    store.write_steps(some_steps(run.run_id, 20, duration_us, jitter_us))
    window = WindowRecord(
        f"{run.run_id}-w1",
        run.run_id,
        10,
        12,
        at(10),
        f"{run.run_id}/window-10-12.pt.trace.json.gz",
        "recording",
    )
    store.save_window(window)
    kernels = (a_kernel(ADD, 300, 900.0), a_kernel(GEMM, 30, 17_000.0, True))
    store.save_window_analysis(
        window.window_id, an_analysis(kernels, range(10, 13)), analyzed_at=at(20)
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'gpulens.db'}")
    opened.write(facts_records("h1", ("GPU-a",)) + samples("GPU-a", "h1", range(0, 90)))
    seed_run(opened, a_run(), 12_300.0)
    opened.save_findings("r1", [a_finding()], at=ADVISED)
    yield opened
    opened.close()


def context(store: Store) -> PageContext:
    return PageContext(store, now=lambda: NOW)


# -- walking component trees ---------------------------------------------------------------


def walk(node: Any) -> Iterator[Any]:
    yield node
    children = getattr(node, "children", None)
    if isinstance(children, (list, tuple)):
        for child in children:
            yield from walk(child)
    elif children is not None and not isinstance(node, str):
        yield from walk(children)


def texts(node: Any) -> list[str]:
    return [item for item in walk(node) if isinstance(item, str)]


def text(node: Any) -> str:
    return " ".join(texts(node))


def by_id(node: Any, element_id: str) -> Any:
    found = [item for item in walk(node) if getattr(item, "id", None) == element_id]
    assert len(found) == 1, f"{element_id}: {len(found)} components"
    return found[0]


def components(node: Any) -> list[Any]:
    return [item for item in walk(node) if not isinstance(item, str) and item is not None]


# -- the finding view ----------------------------------------------------------------------


def test_a_finding_reads_with_units_gain_waste_and_cause() -> None:
    finding = a_finding(fraction=0.2, explained_by="host_sync")
    assert gain_text(finding.expected_gain) == (  # type: ignore[arg-type]
        "up to 1.25\u00d7 (20 % of step time: step timer: DataLoader wait)"
    )
    assert waste_text(finding.waste) == (  # type: ignore[arg-type]
        "6.15 s per 1,000 steps, 1.8 kJ (300 W from telemetry), 0.02 EUR; "
        "0.50 GPU hours over the run (1 GPU)"
    )
    assert evidence_rows(finding.evidence) == [
        ("mean dataloader wait", "6.2 ms"),
        ("dataloader wait", "50 %"),
        ("slowest steps", "step 7, step 13.0 ms"),
        ("pin memory", "no"),
    ]
    card = finding_card(finding)
    shown = text(card)
    for part in (
        "critical",
        finding.title,
        "symptom of host_sync",
        "confidence high",
        "Set pin_memory=True",
        "step 3, 7",
        "input.wait_fraction = 0.1 (default)",
    ):
        assert part in shown
    assert "gl-badge gl-badge-critical" in {
        getattr(item, "className", "") for item in components(card)
    }


def test_evidence_values_take_the_unit_of_their_key() -> None:
    assert value_text("peak_allocated_bytes", 3 * 2**30) == "3.0 GiB"
    assert value_text("pageable_h2d_us_per_step", 2500.0) == "2.5 ms per step"
    assert key_label("pageable_h2d_us_per_step") == "pageable h2d per step"
    assert value_text("memcpy_percent_of_step", 12.4) == "12 %"
    assert value_text("p99_over_p50", 3.456) == "3.46\u00d7"
    assert value_text("sm_clock_floor_mhz", 1410.0) == "1,410 MHz"
    assert value_text("kernels", list(range(10))) == "0, 1, 2, 3, 4, 5, 6, 7 … (2 more)"
    assert value_text("growth_percent", float("nan")) == "n/a"
    assert value_text("source", None) == "n/a"


# -- the Run page: pure helpers --------------------------------------------------------------


def test_the_header_gives_every_figure_with_its_unit() -> None:
    run = a_run(world_size=2, rank=1)
    steps = some_steps("r1", 20, 12_300.0)
    rows = [StepBreakdownRow("w1", 1, n, 0.0, 12_300.0, {}, 3_075.0) for n in range(10, 13)]
    summary = run_page.run_summary(run, steps, rows, windows=1)
    items = dict(run_page.run_header_items(summary, now=NOW))
    assert items["mean step"] == "12.3 ms" and items["median step"] == "12.3 ms"
    assert items["rank / world"] == "1 / 2"
    assert items["started"] == "2026-11-22 12:00:00 UTC (2 h ago)"
    assert items["duration"] == "1 min 30 s"
    assert items["steps"] == "20" and items["profiler windows"] == "1"
    assert items["GPU busy (traced steps)"] == "25 %"
    untraced = run_page.run_summary(run, steps, [], windows=0)
    busy = dict(run_page.run_header_items(untraced, now=NOW))["GPU busy (traced steps)"]
    assert busy == "n/a"  # no window: not measured, never 0


def test_a_running_run_lasts_until_now() -> None:
    run = a_run(status="running", ended_at=None)
    summary = run_page.run_summary(run, [], [], windows=0)
    assert dict(run_page.run_header_items(summary, now=NOW))["duration"] == "2 h 0 min (running)"
    start, end = run_page.run_span(run, [], NOW)
    assert (start, end) == (T0 - run_page.TELEMETRY_SLACK, NOW + run_page.TELEMETRY_SLACK)


def test_kernel_rows_are_sorted_by_total_time_and_capped() -> None:
    kernels = [a_kernel(f"k{n}", 10, float(n * 10)) for n in range(1, 300)]
    rows = run_page.kernel_rows(kernels)
    assert len(rows) == run_page.KERNEL_ROWS
    assert [row["name"] for row in rows[:3]] == ["k299", "k298", "k297"]
    totals = [row["total_ms"] for row in rows]
    assert totals == sorted(totals, reverse=True)
    assert rows[0]["total_ms"] == pytest.approx(2.99) and rows[0]["mean_us"] == 299.0
    assert rows[0]["tensor_core"] == "no"


def test_copies_and_syncs_are_summed_over_windows() -> None:
    analysis = an_analysis((), range(0))
    traces = [analysis.ranks[0], analysis.ranks[0]]
    copies = run_page.copy_rows(traces)
    assert copies[0] == {
        "direction": "HtoD",
        "memory": "pageable",
        "count": 6,
        "total_ms": pytest.approx(0.6),
        "mib": pytest.approx(6.0),
    }
    assert [row["direction"] for row in copies] == ["HtoD", "DtoH"]
    assert run_page.sync_rows(traces) == [
        {
            "name": "cudaDeviceSynchronize",
            "kind": "device",
            "count": 4,
            "total_ms": pytest.approx(0.08),
        }
    ]


# -- the Run page: the layout on a seeded store ------------------------------------------------


def test_the_run_page_shows_the_run(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    highlighted: list[tuple[int, ...]] = []
    drawn = run_page.step_time_figure

    def spy(steps: Any, *, highlight: tuple[int, ...] = ()) -> Any:
        highlighted.append(tuple(highlight))
        return drawn(steps, highlight=highlight)

    monkeypatch.setattr(run_page, "step_time_figure", spy)
    page = run_page.layout(context(store), {"run": "bert-base"})  # by name
    header = text(by_id(page, ids.RUN_HEADER))
    assert "12.3 ms" in header and "50 %" in header and "h1" in header
    assert highlighted == [(3, 7)]  # the top finding's steps
    for graph_id in (
        ids.RUN_STEP_TIME,
        ids.RUN_BREAKDOWN,
        ids.RUN_BREAKDOWN_TOTAL,
        ids.RUN_TELEMETRY,
        ids.RUN_MEMORY,
    ):
        assert isinstance(by_id(page, graph_id), dcc.Graph)
    kernels = by_id(page, ids.RUN_KERNELS)
    assert isinstance(kernels, dash_table.DataTable) and kernels.sort_action == "native"
    assert [row["name"] for row in kernels.data] == [GEMM, ADD]
    assert {"total (ms)", "mean (µs)"} <= {column["name"] for column in kernels.columns}
    assert by_id(page, ids.RUN_COPIES).data[0]["direction"] == "HtoD"
    assert by_id(page, ids.RUN_SYNCS).data[0]["count"] == 2
    findings = text(by_id(page, ids.RUN_FINDINGS))
    assert "stored with the run" in findings
    assert "up to 2.00\u00d7 (50 % of step time: step timer: DataLoader wait)" in findings
    downloads = by_id(page, ids.RUN_DOWNLOADS)
    hrefs = [item.href for item in walk(downloads) if getattr(item, "href", None)]
    assert hrefs == ["https://ui.perfetto.dev", trace_href("r1", "r1-w1")]
    assert "ui.perfetto.dev" in text(downloads) and "TensorBoard" in text(downloads)


def test_an_unknown_run_says_so_and_links_to_the_runs(store: Store) -> None:
    page = run_page.layout(context(store), {"run": "nope"})
    assert "no run 'nope'" in text(page)
    assert [item.href for item in walk(page) if isinstance(item, dcc.Link)] == ["/runs"]


def test_an_empty_run_says_what_to_run(store: Store) -> None:
    store.start_run(a_run("r9", "fresh", gpu_uuids=("GPU-z",)))
    page = run_page.layout(context(store), {"run": "r9"})
    shown = text(page)
    assert "no steps recorded yet" in shown
    assert "no profiler window analyzed yet: windows trace 5 steps every 300" in shown
    assert "GPULENS_PROFILE_SCHEDULE" in shown
    assert "no GPU telemetry during the run: run `gpulens collect` on h1" in shown
    assert "stored with the run" in text(by_id(page, ids.RUN_FINDINGS))  # advised on view
    assert isinstance(by_id(page, ids.RUN_KERNELS), type(by_id(page, ids.RUN_MEMORY)))


def test_findings_older_than_the_evidence_are_computed_again_and_saved(store: Store) -> None:
    store.save_findings("r1", [], at=T0)  # before the run's steps, window and end
    page = run_page.layout(context(store), {"run": "r1"})
    findings = by_id(page, ids.RUN_FINDINGS)
    assert "stored with the run" in text(findings)
    stored = store.findings(run_id="r1")
    assert stored and all(item.finding.title in text(findings) for item in stored)
    state = store.findings_state("r1")
    assert state is not None and not state.is_stale


def test_text_from_the_data_stays_inert(store: Store) -> None:
    seed_run(store, a_run("r2", HOSTILE, host=HOSTILE), 12_300.0)
    page = run_page.layout(context(store), {"run": "r2"})
    assert HOSTILE in texts(page)
    for item in components(page):
        assert not isinstance(item, dcc.Markdown)
        props = item.to_plotly_json()["props"]
        assert "dangerously_allow_html" not in props
        for name, value in props.items():
            if name not in ("children", "figure", "data"):
                assert HOSTILE not in repr(value), name
        if isinstance(item, dash_table.DataTable):
            assert all("presentation" not in column for column in item.columns)


# -- the Compare page -------------------------------------------------------------------------


def seed_pair(store: Store) -> None:
    seed_run(
        store, a_run("ra", "before", started_at=T0 + timedelta(hours=1)), 12_300.0, jitter_us=200.0
    )
    seed_run(
        store,
        a_run("rb", "after", started_at=T0 + timedelta(hours=1, minutes=5)),
        9_840.0,
        jitter_us=150.0,
    )
    store.save_findings("ra", [a_finding(scope=Scope(run_id="ra"))], at=ADVISED)


def test_the_compare_callback_shows_the_speed_up(store: Store) -> None:
    seed_pair(store)
    result = compare_page.comparison_view(store, "ra", "rb")
    shown = text(result)
    assert "B is 1.25x faster than A" in shown and "95% CI" in shown
    assert "faster" in texts(result)  # the verdict badge
    assert "median step B - A: -2.5 ms" in shown
    assert isinstance(by_id(result, ids.COMPARE_DISTRIBUTION), dcc.Graph)
    assert isinstance(by_id(result, ids.COMPARE_BREAKDOWN), dcc.Graph)
    stats = text(by_id(result, ids.COMPARE_STATS))
    assert "before" in stats and "after" in stats and "12.3 ms" in stats
    checks = by_id(result, ids.COMPARE_FINDINGS).data
    assert checks[0]["rule"] == "input_pipeline"
    assert checks[0]["predicted"] == "up to 2.00\u00d7 (50 % of step time)"
    kernels = by_id(result, ids.COMPARE_KERNELS).data
    assert {row["name"] for row in kernels} == {GEMM, ADD}


def test_the_compare_page_explains_what_is_missing(store: Store) -> None:
    seed_pair(store)
    assert "Choose run A" in text(compare_page.comparison_view(store, "ra", None))
    assert "same run" in text(compare_page.comparison_view(store, "ra", "before"))
    assert "no run 'gone'" in text(compare_page.comparison_view(store, "gone", "rb"))


def test_the_compare_layout_offers_recent_runs_and_resolves_names(store: Store) -> None:
    seed_pair(store)
    page = compare_page.layout(context(store), {"a": "before", "b": "rb"})
    chooser_a, chooser_b = by_id(page, ids.COMPARE_A), by_id(page, ids.COMPARE_B)
    assert (chooser_a.value, chooser_b.value) == ("ra", "rb")
    labels = {option["value"]: option["label"] for option in chooser_a.options}
    assert labels["ra"] == "before · h1 · 2026-11-22 13:00 UTC"
    assert set(labels) == {"r1", "ra", "rb"}
    assert "B is 1.25x faster" in text(by_id(page, ids.COMPARE_RESULT))
    empty = compare_page.layout(context(store), {})
    assert "Choose run A" in text(by_id(empty, ids.COMPARE_RESULT))


def test_finding_checks_read_as_predicted_and_realized_gains() -> None:
    check = FindingCheck(
        "h2d_copies",
        "Pageable copies",
        "warning",
        1.25,
        0.2,
        1.31,
        (1.2, 1.4),
        None,
        "verified",
        "the copies are gone",
    )
    (row,) = compare_page.check_rows([check])
    assert row["predicted"] == "up to 1.25\u00d7 (20 % of step time)"
    assert row["realized"] == "1.31\u00d7 (CI 1.20\u00d7-1.40\u00d7)"
    assert row["in_b"] == "not in B"


def test_register_wires_the_compare_callback(store: Store) -> None:
    app = dash.Dash(__name__, suppress_callback_exceptions=True)
    run_page.register(app, context(store))
    compare_page.register(app, context(store))
    assert any(ids.COMPARE_RESULT in key for key in app.callback_map)


def test_the_runs_search_matches_underscores_and_percents_literally(store: Store) -> None:
    for run_id, name in (("r-under", "lr_0.1"), ("r-any", "lrx0.1"), ("r-pct", "50%-data")):
        seed_run(store, a_run(run_id, name), 12_000.0)
    shown = repr(runs_table(context(store), "lr_0", "", ""))
    assert "lr_0.1" in shown and "lrx0.1" not in shown
    shown = repr(runs_table(context(store), "50%", "", ""))
    assert "50%-data" in shown and "lr_0.1" not in shown
