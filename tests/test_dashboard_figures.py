"""The dashboard's formatters and figures: pure functions of hand-built records."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from dashboard.figures import (
    CATEGORY_COLORS,
    MAX_POINTS,
    breakdown_delta_figure,
    breakdown_figure,
    breakdown_total_figure,
    distribution_figure,
    empty_figure,
    memory_figure,
    metric_figure,
    step_telemetry_figure,
    step_time_figure,
    thin,
)
from dashboard.format import (
    ago_text,
    bytes_text,
    celsius_text,
    duration_us_text,
    energy_text,
    metric_label,
    metric_value_text,
    mhz_text,
    percent_text,
    watts_text,
)
from monitor.core.advisor.compare_report import CategoryDelta
from monitor.core.analysis.results import CATEGORIES
from monitor.core.gpu_records import Event, GpuSample
from monitor.core.resolution import Series, SeriesPoint
from monitor.core.run_records import RunInfo, StepRecord
from monitor.core.run_views import StepBreakdownRow

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
UUID = "GPU-00000000-1111-2222-3333-444444444444"
EVIL = "<img src=x onerror=alert(1)>"
EVIL_ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"


def series(count: int, *, bucket_seconds: int = 1, spread: float = 0.0) -> Series:
    points = tuple(
        SeriesPoint(
            T0 + timedelta(seconds=i * bucket_seconds),
            50.0 + (i % 7),
            50.0 + (i % 7) - spread,
            50.0 + (i % 7) + spread,
        )
        for i in range(count)
    )
    return Series(UUID, "utilization_gpu_percent", "raw", bucket_seconds, points)


def run(name: str, start_s: float, end_s: float | None) -> RunInfo:
    ended = None if end_s is None else T0 + timedelta(seconds=end_s)
    status = "running" if end_s is None else "finished"
    return RunInfo("r" + name[:4], name, "host-a", T0 + timedelta(seconds=start_s), (UUID,), 0, 1,
                   status, ended)  # fmt: skip


def steps(count: int, *, duration_us: float = 20_000.0, **extra: Any) -> list[StepRecord]:
    return [
        StepRecord("run1", i, T0 + timedelta(seconds=i * 0.02), duration_us + i, **extra)
        for i in range(count)
    ]


def points_per_trace(fig: Any) -> list[int]:
    return [len(trace.x) for trace in fig.data if trace.x is not None]


def figure_text(fig: Any) -> str:
    """The figure as plotly.js would receive it, with JSON escapes decoded."""
    return json.dumps(json.loads(fig.to_json()), ensure_ascii=False)


# --- format -------------------------------------------------------------------------------


def test_unit_formatters_give_exact_strings() -> None:
    assert bytes_text(512) == "512 B"
    assert bytes_text(1536) == "1.5 KiB"
    assert bytes_text(12.3 * 2**30) == "12.3 GiB"
    assert bytes_text(123 * 2**30) == "123 GiB"
    assert watts_text(245.4) == "245 W"
    assert celsius_text(67.2) == "67 °C"
    assert mhz_text(1980) == "1,980 MHz"
    assert percent_text(42.4) == "42 %"
    assert energy_text(850) == "850 J"
    assert energy_text(12_500) == "12.5 kJ"
    assert energy_text(3.4 * 3.6e6) == "3.4 kWh"


def test_none_and_nan_read_not_available() -> None:
    formatters = (bytes_text, watts_text, celsius_text, mhz_text, percent_text)
    for formatter in (*formatters, duration_us_text, energy_text, ago_text):
        assert formatter(None) == "n/a"
        assert formatter(math.nan) == "n/a"
    assert metric_value_text("power_watts", None) == "n/a"


def test_durations_pick_their_unit() -> None:
    assert duration_us_text(3.24) == "3.2 µs"
    assert duration_us_text(850) == "850 µs"
    assert duration_us_text(12_340) == "12.3 ms"
    assert duration_us_text(4_200_000) == "4.20 s"
    assert duration_us_text(200e6) == "3 min 20 s"
    assert duration_us_text(2 * 3600e6 + 5 * 60e6) == "2 h 5 min"
    assert duration_us_text(999.7) == "1.0 ms"  # rounding never gives "1000 µs"


def test_ago_text() -> None:
    assert ago_text(0.4) == "just now"
    assert ago_text(12.9) == "12 s ago"
    assert ago_text(200) == "3 min ago"
    assert ago_text(2 * 3600 + 59) == "2 h ago"
    assert ago_text(3 * 86400) == "3 d ago"


def test_metric_labels_and_values_follow_the_unit_suffix() -> None:
    assert metric_label("utilization_gpu_percent") == ("GPU utilization", "%")
    assert metric_label("memory_used_bytes") == ("Memory used", "GiB")
    assert metric_label("pcie_rx_bytes_per_second") == ("PCIe receive", "MiB/s")
    assert metric_label("performance_state") == ("Performance state", "")
    assert metric_label("new_thing_watts") == ("New thing", "W")
    assert metric_value_text("memory_used_bytes", 40 * 2**30) == "40.0 GiB"
    assert metric_value_text("pcie_tx_bytes_per_second", 3 * 2**20) == "3.0 MiB/s"
    assert metric_value_text("power_watts", 300.2) == "300 W"
    assert metric_value_text("temperature_celsius", 71) == "71 °C"
    assert metric_value_text("sm_clock_mhz", 1410) == "1,410 MHz"
    assert metric_value_text("fan_speed_percent", 35) == "35 %"
    assert metric_value_text("energy_joules", 12_500) == "12.5 kJ"
    assert metric_value_text("ecc_corrected_volatile_count", 1234) == "1,234"
    assert metric_value_text("performance_state", 0) == "0"


# --- thin ---------------------------------------------------------------------------------


def test_thin_leaves_short_series_alone() -> None:
    assert thin([1, 2, 3], [1.0, None, 3.0]) == ([1, 2, 3], [1.0, None, 3.0])


def test_thin_caps_the_count_and_keeps_each_buckets_min_and_max() -> None:
    count = 100_000
    xs = list(range(count))
    ys: list[float | None] = [float(i % 10) for i in range(count)]
    ys[54_321] = 1e6  # a one-sample spike
    ys[77_777] = -1e6
    thin_xs, thin_ys = thin(xs, ys)
    assert len(thin_xs) == len(thin_ys) <= MAX_POINTS
    assert thin_xs == sorted(thin_xs)  # order kept
    assert 1e6 in thin_ys and -1e6 in thin_ys
    assert thin_ys[thin_xs.index(54_321)] == 1e6
    # Every bucket of 100 points keeps its 0 and its 9 (or the spike).
    assert thin_xs[:2] == [0, 9] and thin_ys[:2] == [0.0, 9.0]
    assert len(thin(xs, ys, max_points=11)[0]) <= 11


def test_thin_keeps_a_gap_that_fills_a_bucket() -> None:
    ys: list[float | None] = [1.0] * 10 + [None] * 10 + [2.0] * 10
    thin_xs, thin_ys = thin(list(range(30)), ys, max_points=6)
    assert None in thin_ys and len(thin_xs) <= 6


# --- metric_figure ------------------------------------------------------------------------


def test_metric_figure_draws_the_mean_with_units_and_a_uirevision() -> None:
    fig = metric_figure(series(10), title="GPU utilization")
    assert [trace.type for trace in fig.data] == ["scatter"]
    assert list(fig.data[0].y) == [50.0 + (i % 7) for i in range(10)]
    assert fig.layout.yaxis.title.text == "GPU utilization (%)"
    assert fig.layout.template.layout.paper_bgcolor == "white"
    assert fig.layout.uirevision
    fig.to_json()


def test_metric_figure_uses_webgl_over_1000_points_and_never_exceeds_max_points() -> None:
    # 30 days at 1 Hz, as the store hands it over: bucketed to 2,000 points.
    month = series(2000, bucket_seconds=30 * 86400 // 2000, spread=5)
    fig = metric_figure(month, title="GPU utilization")
    assert {trace.type for trace in fig.data} == {"scattergl"}
    assert max(points_per_trace(fig)) <= MAX_POINTS
    small = metric_figure(series(1000), title="x")
    assert {trace.type for trace in small.data} == {"scatter"}
    # Even an unthinned series never reaches the browser with more than MAX_POINTS per trace.
    raw = metric_figure(series(100_000, spread=1), title="x")
    assert max(points_per_trace(raw)) <= MAX_POINTS


def test_metric_figure_adds_a_band_for_bucketed_series() -> None:
    fig = metric_figure(series(50, bucket_seconds=60, spread=3), title="x")
    fills = [trace.fill for trace in fig.data]
    assert "tonexty" in fills
    band_high, band_low = fig.data[0], fig.data[1]
    assert band_high.y[0] == 53.0 and band_low.y[0] == 47.0
    # A raw 1 Hz series with min == max has no band.
    assert all(trace.fill is None for trace in metric_figure(series(50), title="x").data)


def test_metric_figure_shades_one_span_per_run_until_now_when_running() -> None:
    runs = [run("train-a", 5, 20), run("train-b", 30, None)]
    now = T0 + timedelta(seconds=45)
    fig = metric_figure(series(60), title="x", runs=runs, now=now)
    rects = [shape for shape in fig.layout.shapes if shape.type == "rect"]
    assert len(rects) == 2
    assert rects[1].x1 == now
    assert [a.text for a in fig.layout.annotations] == ["train-a", "train-b"]


def test_metric_figure_marks_events_with_kind_and_detail() -> None:
    events = [
        Event("e1", T0 + timedelta(seconds=3), "host-a", "throttle_start", UUID, 4, "power cap"),
        Event("e2", T0 + timedelta(seconds=7), "host-a", "xid", UUID, 79, "fell off the bus"),
        Event("e3", T0 + timedelta(seconds=8), "host-a", "collector_start"),  # not marked
    ]
    fig = metric_figure(series(20), title="x", events=events)
    markers = [trace for trace in fig.data if trace.mode == "markers"]
    assert [trace.name for trace in markers] == ["throttle start", "xid"]
    assert "fell off the bus" in markers[1].hovertext[0]
    assert markers[0].yaxis == "y2"  # a row of its own beneath the metric


def test_metric_figure_of_an_empty_series_says_so() -> None:
    empty = Series(UUID, "power_watts", "raw", 1, ())
    fig = metric_figure(empty, title="Power")
    assert "no data" in fig.layout.annotations[0].text


# --- run figures --------------------------------------------------------------------------


def test_step_time_figure_is_in_ms_with_loader_wait_and_highlights() -> None:
    records = steps(5, dataloader_wait_us=1500.0)
    fig = step_time_figure(records, highlight=[3])
    step_time, wait, marked = fig.data
    assert list(step_time.y) == [20.0, 20.001, 20.002, 20.003, 20.004]
    assert list(wait.y) == [1.5] * 5
    assert list(marked.x) == [3] and marked.mode == "markers"
    assert fig.layout.yaxis.title.text == "time per step (ms)"
    assert len(step_time_figure(steps(5)).data) == 1  # no wait measured: no second trace


def test_step_time_figure_thins_long_runs_to_webgl() -> None:
    fig = step_time_figure(steps(50_000))
    assert fig.data[0].type == "scattergl"
    assert len(fig.data[0].x) <= MAX_POINTS


def breakdown_rows() -> list[StepBreakdownRow]:
    rows = []
    for step in (10, 11, 12):
        parts = {category: float(100 * (i + 1) + step) for i, category in enumerate(CATEGORIES)}
        rows.append(StepBreakdownRow("w1", 0, step, 0.0, sum(parts.values()), parts, 500.0))
    return rows


def test_breakdown_figure_stacks_the_categories_to_the_step_duration() -> None:
    rows = breakdown_rows()
    fig = breakdown_figure(rows)
    assert [trace.name for trace in fig.data] == list(CATEGORIES)
    assert [trace.marker.color for trace in fig.data] == [CATEGORY_COLORS[c] for c in CATEGORIES]
    assert fig.layout.barmode == "stack"
    for index, row in enumerate(rows):
        stacked = sum(trace.y[index] for trace in fig.data)
        assert stacked == pytest.approx(row.duration_us / 1e3)
    assert list(fig.data[0].x) == ["step 10", "step 11", "step 12"]


def test_breakdown_total_figure_gives_shares_that_sum_to_100() -> None:
    fig = breakdown_total_figure(breakdown_rows())
    shares = {trace.name: trace.x[0] for trace in fig.data}
    assert sum(shares.values()) == pytest.approx(100.0)
    assert list(shares) == list(CATEGORIES)
    assert fig.data[0].text[0].endswith(" %")
    assert "analyzed" in breakdown_total_figure([]).layout.annotations[0].text


def test_step_telemetry_takes_the_nearest_sample_within_two_seconds() -> None:
    records = [StepRecord("run1", i, T0 + timedelta(seconds=10 * i), 1e6) for i in range(3)]
    samples = [
        GpuSample(UUID, "host-a", T0 + timedelta(seconds=1.2), utilization_gpu_percent=90,
                  power_watts=300, sm_clock_mhz=1980, memory_used_bytes=2 * 2**30),
        GpuSample(UUID, "host-a", T0 + timedelta(seconds=12), utilization_gpu_percent=70),
        GpuSample(UUID, "host-a", T0 + timedelta(seconds=25), utilization_gpu_percent=10),
    ]  # fmt: skip
    fig = step_telemetry_figure(records, samples)
    utilization, power, clock, memory = fig.data
    assert list(utilization.y) == [90, 70, None]  # step 2's middle is 4 s from any sample
    assert list(power.y) == [300, None, None]
    assert list(clock.y) == [1980, None, None]
    assert list(memory.y) == [2.0, None, None]
    assert fig.layout.yaxis4.title.text == "Memory used (GiB)"
    no_samples = step_telemetry_figure(records, [])
    assert no_samples.layout.annotations[0].text == "no telemetry for this run&#x27;s GPUs"


def test_memory_figure_in_gib_and_a_note_when_not_measured() -> None:
    gib = 2**30
    fig = memory_figure(steps(3, cuda_allocated_bytes=gib, cuda_reserved_bytes=2 * gib))
    assert [trace.name for trace in fig.data] == ["allocated", "reserved"]
    assert list(fig.data[1].y) == [2.0, 2.0, 2.0]
    cpu = memory_figure(steps(3))
    assert not cpu.data and "not measured" in cpu.layout.annotations[0].text


# --- comparison figures -------------------------------------------------------------------


def test_distribution_figure_has_one_box_per_run_in_ms_from_thinned_samples() -> None:
    a = [20_000.0 + i for i in range(10_000)]
    fig = distribution_figure(a, [15_000.0, 16_000.0], names=("base", "fast"))
    assert [trace.type for trace in fig.data] == ["box", "box"]
    assert [trace.name for trace in fig.data] == ["A: base", "B: fast"]
    assert len(fig.data[0].y) <= MAX_POINTS
    assert min(fig.data[0].y) == 20.0 and max(fig.data[0].y) == pytest.approx(29.999)
    assert list(fig.data[1].y) == [15.0, 16.0]
    assert (
        "no step times" in distribution_figure([], [], names=("a", "b")).layout.annotations[0].text
    )


def test_breakdown_delta_figure_groups_a_and_b_per_category() -> None:
    deltas = [
        CategoryDelta("kernel", 8000.0, 6000.0, 80.0, 75.0),
        CategoryDelta("memcpy", 0.0, 0.0, 0.0, 0.0),  # in neither run: left out
        CategoryDelta("dataloader", 2000.0, 2000.0, 20.0, 25.0),
    ]
    fig = breakdown_delta_figure(deltas)
    assert fig.layout.barmode == "group"
    assert [trace.name for trace in fig.data] == ["A", "B"]
    assert list(fig.data[0].x) == ["kernel", "dataloader"]
    assert list(fig.data[0].y) == [8.0, 2.0] and list(fig.data[1].y) == [6.0, 2.0]
    assert list(fig.data[1].customdata) == [-2.0, 0.0]


# --- every figure -------------------------------------------------------------------------


def test_names_from_the_data_are_escaped_everywhere() -> None:
    events = [Event("e1", T0 + timedelta(seconds=2), EVIL, "xid", UUID, 13, EVIL)]
    rows = [StepBreakdownRow("w1", 0, 1, 0.0, 100.0, {"kernel": 100.0}, 100.0)]
    deltas = [CategoryDelta(EVIL, 1000.0, 500.0, 50.0, 40.0)]
    figures = [
        metric_figure(series(10), title=EVIL, events=events, runs=[run(EVIL, 1, 5)]),
        distribution_figure([1000.0], [2000.0], names=(EVIL, EVIL)),
        breakdown_delta_figure(deltas),
        step_telemetry_figure(steps(2), [GpuSample(EVIL, EVIL, T0, power_watts=1.0)]),
        breakdown_figure(rows),
        empty_figure(EVIL),
    ]
    for fig in figures:
        text = figure_text(fig)
        assert "<img" not in text
    for fig in (figures[0], figures[1], figures[2], figures[5]):
        assert EVIL_ESCAPED in figure_text(fig)


def test_every_figure_serialises_with_the_template_and_a_uirevision() -> None:
    records = steps(4, cuda_peak_bytes=2**30, dataloader_wait_us=10.0)
    figures = [
        metric_figure(series(5), title="t"),
        step_time_figure(records),
        breakdown_figure(breakdown_rows()),
        breakdown_total_figure(breakdown_rows()),
        step_telemetry_figure(records, [GpuSample(UUID, "h", T0, power_watts=100.0)]),
        memory_figure(records),
        distribution_figure([1.0, 2.0], [3.0], names=("a", "b")),
        breakdown_delta_figure([CategoryDelta("kernel", 1.0, 2.0, 50.0, 60.0)]),
        empty_figure("nothing yet"),
    ]
    for fig in figures:
        document = json.loads(fig.to_json())
        assert document["layout"]["uirevision"]
        assert document["layout"]["template"]["layout"]["plot_bgcolor"] == "white"
