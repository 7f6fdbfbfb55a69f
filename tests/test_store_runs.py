"""Training runs, steps, profiler windows and trace analyses in the store, on real SQLite files
and the real Postgres server."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from alembic import command
from sqlalchemy import inspect

from monitor.core.analysis.results import (
    CATEGORIES,
    IdleBreakdown,
    KernelStat,
    LaunchStats,
    MemcpyStat,
    Overlap,
    RankAnalysis,
    StepBreakdown,
    SyncStat,
    Temporal,
    TraceAnalysis,
)
from monitor.core.errors import StoreUnavailable
from monitor.core.run_records import RunInfo, StepRecord, WindowRecord
from monitor.core.run_views import RunSummary, StepBreakdownRow
from monitor.store import Store, migrate
from monitor.store.engine import create_store_engine
from monitor.store.schema import gpu_samples, gpus, kernel_stats, run_steps, step_breakdowns
from tests.helpers import T0, at, count, facts_records, samples

HOSTILE = "<script>alert(1)</script>'; DROP TABLE runs;--"


def a_run(run_id: str = "r1", name: str = "bert", **changes: object) -> RunInfo:
    run = RunInfo(
        run_id=run_id,
        name=name,
        host="h1",
        started_at=T0,
        gpu_uuids=("GPU-a", "GPU-b"),
        rank=1,
        world_size=2,
        config={"lr": 0.001, "layers": [12, 24], "optimizer": {"name": "adamw"}},
        versions={"torch": "2.13.0", "gpulens": "0.1.0"},
    )
    return dataclasses.replace(run, **changes)


def a_step(run_id: str, step: int, duration_us: float = 1000.0, **values: object) -> StepRecord:
    return StepRecord(run_id, step, at(step), duration_us, **values)


def a_window(window_id: str, run_id: str = "r1", first_step: int = 10) -> WindowRecord:
    return WindowRecord(window_id, run_id, first_step, first_step + 2, at(first_step), "t.json")


def a_breakdown(step: int | None, duration_us: float, gpu_busy_us: float) -> StepBreakdown:
    parts = {category: 0.0 for category in CATEGORIES}
    parts.update(kernel=gpu_busy_us, dataloader=duration_us - gpu_busy_us)
    return StepBreakdown(step, 100.0 * (step or 0), duration_us, parts, gpu_busy_us)


def a_kernel(name: str, count: int, total_us: float, min_us: float, max_us: float) -> KernelStat:
    return KernelStat(name, "computation", count, total_us, total_us / count, min_us, max_us, False)


def a_rank(
    rank: int = 0,
    steps: tuple[StepBreakdown, ...] = (),
    kernels: tuple[KernelStat, ...] = (),
    total: StepBreakdown | None = None,
) -> RankAnalysis:
    return RankAnalysis(
        rank=rank,
        device="NVIDIA H100 80GB HBM3",
        device_index=rank,
        compute_capability="9.0",
        device_memory_bytes=80 * 2**30,
        temporal=Temporal(span_us=1000.0, idle_us=100.0, compute_us=800.0, non_compute_us=100.0),
        idle_breakdown_us=IdleBreakdown(host_wait=50.0, kernel_wait=30.0, other=20.0),
        steps=steps,
        total=total or a_breakdown(None, 3000.0, 1500.0),
        kernels=kernels,
        memcpy=(MemcpyStat("HtoD", "pageable", 3, 30.0, 3000),),
        syncs=(SyncStat("cudaDeviceSynchronize", "device", 2, 40.0),),
        launch=LaunchStats(10, 9, 1, 5.0, 12.0, 30.0),
        overlap=Overlap(100.0, 50.0, 50.0),
        peak_memory_bytes=2**30,
        source="rank0.json",
        events=1234,
    )


def test_a_run_and_its_steps_round_trip(store: Store) -> None:
    run = a_run()
    steps = [
        a_step("r1", 0, 1500.5, dataloader_wait_us=20.25, cuda_allocated_bytes=2**33),
        a_step("r1", 1, samples=32, tokens=32 * 512, cuda_peak_bytes=2**34, is_profiled=True),
        a_step("r1", 2),  # nothing but the duration measured: the rest stays NULL
    ]
    store.start_run(run)
    assert store.write_steps(steps) == 3
    assert store.run("r1") == run
    assert store.steps("r1") == steps
    assert store.steps("r1", first_step=1, last_step=1) == steps[1:2]
    assert store.steps("r1", first_step=1) == steps[1:]
    assert store.steps("other") == []
    assert store.run("nope") is None


def test_a_replayed_batch_of_steps_is_not_doubled(store: Store) -> None:
    store.start_run(a_run())
    batch = [a_step("r1", n, float(n)) for n in range(1000)]
    assert store.write_steps(batch) == 1000
    assert store.write_steps(batch) == 1000
    assert count(store, run_steps) == 1000
    # A replay with newer values (and a step repeated inside one batch) keeps the last one.
    assert store.write_steps([a_step("r1", 5, 7.0), a_step("r1", 5, 9.0, samples=3)]) == 1
    assert count(store, run_steps) == 1000
    (step,) = store.steps("r1", first_step=5, last_step=5)
    assert (step.duration_us, step.samples) == (9.0, 3)
    assert store.write_steps([]) == 0


def test_end_run_records_the_end_and_status(store: Store) -> None:
    store.start_run(a_run())
    store.end_run("r1", at(3600), "finished")
    run = store.run("r1")
    assert run is not None and (run.status, run.ended_at) == ("finished", at(3600))
    with pytest.raises(ValueError, match="unknown run 'nope'"):
        store.end_run("nope", at(1), "failed")


def test_starting_a_run_again_replaces_its_fields(store: Store) -> None:
    store.start_run(a_run())
    store.start_run(a_run(name="bert-resumed", gpu_uuids=("GPU-c",), config={}))
    assert store.run("r1") == a_run(name="bert-resumed", gpu_uuids=("GPU-c",), config={})


def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        store.start_run(a_run(started_at=T0.replace(tzinfo=None)))
    store.start_run(a_run())
    with pytest.raises(Exception, match="naive datetime"):
        store.write_steps([StepRecord("r1", 0, T0.replace(tzinfo=None), 1.0)])
    assert count(store, run_steps) == 0


def test_a_string_longer_than_its_column_is_refused_on_both_backends(store: Store) -> None:
    with pytest.raises(ValueError, match=r"runs\.run_id holds at most 32"):
        store.start_run(a_run(run_id="x" * 33))
    with pytest.raises(ValueError, match=r"runs\.name holds at most 255"):
        store.start_run(a_run(name="n" * 256))


def test_a_hostile_run_name_round_trips_as_plain_text(store: Store) -> None:
    store.start_run(a_run(name=HOSTILE, config={"note": HOSTILE}))
    run = store.run(HOSTILE)
    assert run is not None and run.name == HOSTILE and run.config == {"note": HOSTILE}
    assert [r.name for r in store.runs(name_like="DROP TABLE")] == [HOSTILE]
    assert [r.name for r in store.runs(name_like=HOSTILE)] == [HOSTILE]
    assert store.runs(name_like="%") != []  # the table is still there


def test_a_run_is_found_by_id_or_by_name_newest_first(store: Store) -> None:
    store.start_run(a_run("old", "gpt"))
    store.start_run(a_run("new", "gpt", started_at=at(60)))
    store.start_run(a_run("gpt", "other", started_at=at(-60)))  # an id equal to a name
    assert (run := store.run("old")) is not None and run.run_id == "old"
    assert (run := store.run("gpt")) is not None and run.run_id == "gpt"
    assert (run := store.run("other")) is not None and run.run_id == "gpt"
    store.start_run(a_run("newest", "bert", started_at=at(120)))
    store.start_run(a_run("older", "bert", started_at=at(100)))
    assert (run := store.run("bert")) is not None and run.run_id == "newest"


def analysis(*ranks: RankAnalysis) -> TraceAnalysis:
    return TraceAnalysis(ranks=ranks, notes=("hand-made",))


def test_a_window_analysis_is_stored_and_replaced_on_reanalysis(store: Store) -> None:
    store.start_run(a_run())
    store.save_window(a_window("w1"))
    assert store.windows("r1") == [a_window("w1")]
    assert store.window_summary("w1") is None
    first = analysis(
        a_rank(
            steps=(a_breakdown(10, 1000.0, 600.0), a_breakdown(11, 1000.0, 200.0)),
            kernels=(a_kernel("gemm", 4, 400.0, 50.0, 150.0), a_kernel("relu", 2, 20.0, 9, 11)),
        )
    )
    store.save_window_analysis("w1", first, analyzed_at=at(500))
    assert count(store, step_breakdowns) == 2 and count(store, kernel_stats) == 2

    second = analysis(
        a_rank(0, (a_breakdown(10, 900.0, 450.0),), (a_kernel("gemm", 1, 80.0, 80.0, 80.0),)),
        a_rank(1, (a_breakdown(10, 950.0, 475.0),), ()),
    )
    store.save_window_analysis("w1", second, analyzed_at=at(600))
    assert count(store, step_breakdowns) == 2 and count(store, kernel_stats) == 1
    assert store.step_breakdowns("r1") == [
        StepBreakdownRow("w1", rank, 10, 1000.0, duration, parts, busy)
        for rank, duration, busy in ((0, 900.0, 450.0), (1, 950.0, 475.0))
        for parts in [dict(a_breakdown(10, duration, busy).breakdown_us)]
    ]
    assert [(k.name, k.count, k.total_us) for k in store.kernels("r1")] == [("gemm", 1, 80.0)]
    (window,) = store.windows("r1")
    assert window == dataclasses.replace(a_window("w1"), status="analyzed")


def test_the_window_summary_is_the_analysis_without_steps_and_kernels(store: Store) -> None:
    store.start_run(a_run())
    store.save_window(a_window("w1"))
    rank = a_rank(steps=(a_breakdown(10, 1000.0, 600.0),), kernels=(a_kernel("k", 1, 1, 1, 1),))
    store.save_window_analysis("w1", analysis(rank), analyzed_at=at(500))
    summary = store.window_summary("w1")
    assert summary is not None and summary["notes"] == ["hand-made"]
    (stored,) = summary["ranks"]
    assert "steps" not in stored and "kernels" not in stored
    assert stored["temporal"] == dataclasses.asdict(rank.temporal)
    assert stored["idle_breakdown_us"] == {"host_wait": 50.0, "kernel_wait": 30.0, "other": 20.0}
    assert stored["total"]["duration_us"] == 3000.0 and stored["total"]["step"] is None
    assert stored["memcpy"] == [dataclasses.asdict(rank.memcpy[0])]
    assert stored["syncs"][0]["name"] == "cudaDeviceSynchronize"
    assert stored["launch"]["p95_delay_us"] == 30.0 and stored["overlap"]["overlap_percent"] == 50
    assert (stored["device"], stored["peak_memory_bytes"]) == ("NVIDIA H100 80GB HBM3", 2**30)


def test_non_finite_numbers_are_stored_as_null_in_the_summary(store: Store) -> None:
    store.start_run(a_run())
    store.save_window(a_window("w1"))
    rank = dataclasses.replace(a_rank(), overlap=Overlap(0.0, 0.0, float("nan")))
    store.save_window_analysis("w1", analysis(rank))
    summary = store.window_summary("w1")
    assert summary is not None and summary["ranks"][0]["overlap"]["overlap_percent"] is None


def test_a_whole_trace_without_profiler_steps_is_one_breakdown_row(store: Store) -> None:
    store.start_run(a_run())
    store.save_window(a_window("w1"))
    total = a_breakdown(None, 2000.0, 1200.0)
    store.save_window_analysis("w1", analysis(a_rank(steps=(), total=total)))
    assert store.step_breakdowns("r1", window_id="w1") == [
        StepBreakdownRow("w1", 0, None, 0.0, 2000.0, dict(total.breakdown_us), 1200.0)
    ]
    assert store.step_breakdowns("r1", window_id="other") == []


def test_a_failed_reanalysis_keeps_the_previous_one(store: Store) -> None:
    store.start_run(a_run())
    store.save_window(a_window("w1"))
    good = analysis(
        a_rank(steps=(a_breakdown(10, 1000.0, 600.0),), kernels=(a_kernel("k", 1, 1, 1, 1),))
    )
    store.save_window_analysis("w1", good)
    bad_kernel = dataclasses.replace(a_kernel("k2", 1, 1, 1, 1), category="x" * 17)
    with pytest.raises(ValueError, match=r"kernel_stats\.category"):
        store.save_window_analysis("w1", analysis(a_rank(steps=(), kernels=(bad_kernel,))))
    assert [row.step for row in store.step_breakdowns("r1")] == [10]
    assert [k.name for k in store.kernels("r1")] == ["k"]
    store.fail_window("w1", "trace truncated at 1.2 GB")
    (window,) = store.windows("r1")
    assert (window.status, window.error) == ("failed", "trace truncated at 1.2 GB")


def test_an_unknown_window_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="unknown profiler window 'w9'"):
        store.save_window_analysis("w9", analysis(a_rank()))
    with pytest.raises(ValueError, match="unknown profiler window 'w9'"):
        store.fail_window("w9", "boom")
    assert count(store, step_breakdowns) == 0


def test_kernels_are_summed_over_windows_and_ranks_by_name(store: Store) -> None:
    store.start_run(a_run())
    store.save_window(a_window("w1", first_step=10))
    store.save_window(a_window("w2", first_step=20))
    store.save_window_analysis(
        "w1",
        analysis(
            a_rank(
                0, kernels=(a_kernel("gemm", 4, 400.0, 50.0, 150.0), a_kernel("relu", 1, 5, 5, 5))
            ),
            a_rank(1, kernels=(a_kernel("gemm", 2, 300.0, 100.0, 200.0),)),
        ),
    )
    tensor_gemm = dataclasses.replace(a_kernel("gemm", 4, 100.0, 10.0, 40.0), tensor_core=True)
    store.save_window_analysis(
        "w2", analysis(a_rank(0, kernels=(tensor_gemm, a_kernel("copy", 10, 50.0, 1, 9))))
    )
    gemm, copy, relu = store.kernels("r1")
    assert gemm == KernelStat("gemm", "computation", 10, 800.0, 80.0, 10.0, 200.0, True)
    assert (copy.name, copy.count, copy.total_us, copy.mean_us) == ("copy", 10, 50.0, 5.0)
    assert (relu.name, relu.total_us, relu.tensor_core) == ("relu", 5.0, False)
    assert [k.name for k in store.kernels("r1", limit=2)] == ["gemm", "copy"]
    only_w2 = store.kernels("r1", window_id="w2")
    assert [(k.name, k.count, k.total_us) for k in only_w2] == [
        ("gemm", 4, 100.0),
        ("copy", 10, 50.0),
    ]
    assert store.kernels("other") == []


def test_very_long_kernel_names_are_kept_whole(store: Store) -> None:
    # C++ template names run to kilobytes: more than a Postgres btree entry may hold.
    stem = "void cutlass::Kernel<cutlass::gemm::kernel::Gemm<" + "float, " * 1500
    names = [stem + "A>>(Params)", stem + "B>>(Params)"]
    assert all(len(name) > 10_000 for name in names)
    store.start_run(a_run())
    store.save_window(a_window("w1"))
    kernels = (a_kernel(names[0], 1, 20.0, 20, 20), a_kernel(names[1], 1, 10.0, 10, 10))
    store.save_window_analysis("w1", analysis(a_rank(kernels=kernels)))
    store.save_window_analysis("w1", analysis(a_rank(kernels=kernels)))
    assert [k.name for k in store.kernels("r1")] == names


def test_runs_are_summarised_with_exact_figures(store: Store) -> None:
    store.start_run(a_run("r1", "bert", started_at=at(0)))
    store.start_run(a_run("r2", "gpt", started_at=at(60), host="h2", status="finished"))
    store.start_run(a_run("r3", "bert-small", started_at=at(120)))
    store.write_steps([a_step("r1", n, d) for n, d in enumerate([100.0, 200.0, 400.0, 1000.0])])
    store.write_steps([a_step("r2", n, d) for n, d in enumerate([5.0, 1.0, 3.0])])
    store.save_window(a_window("w1"))
    store.save_window(a_window("w2", first_step=20))
    store.save_window(a_window("w3", first_step=30))  # recorded, not analyzed
    steps = (a_breakdown(10, 1000.0, 600.0), a_breakdown(11, 1000.0, 200.0))
    store.save_window_analysis("w1", analysis(a_rank(steps=steps)))
    whole = a_breakdown(None, 2000.0, 1200.0)
    store.save_window_analysis("w2", analysis(a_rank(steps=(), total=whole)))

    r3, r2, r1 = store.runs()
    assert isinstance(r1, RunSummary) and r1.run_id == "r1" and r1.config == a_run().config
    assert (r1.steps, r1.mean_step_us, r1.median_step_us) == (4, 425.0, 300.0)
    assert (r1.gpu_busy_percent, r1.windows) == (50.0, 3)  # (600+200+1200) / (1000+1000+2000)
    assert (r2.steps, r2.mean_step_us, r2.median_step_us) == (3, 3.0, 3.0)
    assert (r2.gpu_busy_percent, r2.windows) == (None, 0)
    assert (r3.steps, r3.mean_step_us, r3.median_step_us, r3.windows) == (0, None, None, 0)

    assert [r.run_id for r in store.runs(name_like="BERT")] == ["r3", "r1"]
    assert [r.run_id for r in store.runs(name_like="bert")] == ["r3", "r1"]
    assert [r.run_id for r in store.runs(name_like="bert%")] == ["r3", "r1"]
    assert [r.run_id for r in store.runs(name_like="%small")] == ["r3"]
    assert [r.run_id for r in store.runs(host="h2")] == ["r2"]
    assert [r.run_id for r in store.runs(status="running")] == ["r3", "r1"]
    assert [r.run_id for r in store.runs(limit=1)] == ["r3"]
    assert store.runs(host="nowhere") == []


def test_runs_on_a_gpu_are_those_overlapping_the_range(store: Store) -> None:
    store.start_run(a_run("a", gpu_uuids=("GPU-a",), started_at=at(0), ended_at=at(100)))
    store.start_run(a_run("b", gpu_uuids=("GPU-a", "GPU-b"), started_at=at(50)))  # running
    store.start_run(a_run("c", gpu_uuids=("GPU-b",), started_at=at(0), ended_at=at(100)))
    store.start_run(a_run("d", gpu_uuids=("GPU-a1",), started_at=at(0)))  # a longer UUID
    store.start_run(a_run("e", gpu_uuids=(), started_at=at(0)))

    def on(uuid: str, start: float, end: float) -> list[str]:
        return [run.run_id for run in store.runs_on_gpu(uuid, at(start), at(end))]

    assert on("GPU-a", 10, 20) == ["a"]
    assert on("GPU-a", 40, 60) == ["a", "b"]
    assert on("GPU-a", 100, 200) == ["b"]  # "a" ended as the range began
    assert on("GPU-a", 10_000, 20_000) == ["b"]  # still running
    assert on("GPU-a", -20, -10) == []
    assert on("GPU-a", -20, 0) == []  # "a" started as the range ended
    assert on("GPU-b", 0, 200) == ["c", "b"]
    assert on("GPU-a1", 0, 1) == ["d"]
    assert on("GPU-", 0, 1000) == []
    store.end_run("b", at(70), "finished")
    assert on("GPU-a", 100, 200) == []


def test_upgrading_from_0001_keeps_the_collector_data(db_url: str) -> None:
    engine = create_store_engine(db_url)  # the empty database: the test migrates it
    try:
        migrate.upgrade(engine, "0001")
        old = Store(engine)
        old.write([*facts_records(), *samples("GPU-a", "h1", range(50))])
        migrate.upgrade(engine)
        assert migrate.current_revision(engine) == migrate.head_revision() != "0001"
        store = Store(engine)
        assert count(store, gpu_samples) == 50 and count(store, gpus) == 1
        assert store.latest()[0].sample is not None
        store.start_run(a_run())
        assert store.write_steps([a_step("r1", 0)]) == 1
        # And back: 0002's downgrade drops only its own tables.
        with engine.begin() as conn:
            command.downgrade(migrate.alembic_config(conn), "0001")
        assert "runs" not in inspect(engine).get_table_names()
        assert count(store, gpu_samples) == 50
        migrate.upgrade(engine)
        assert store.runs() == []
    finally:
        engine.dispose()


def test_writes_to_an_unreachable_database_raise_store_unavailable() -> None:
    store = Store(create_store_engine("postgresql+psycopg://nobody@127.0.0.1:1/none"))
    try:
        with pytest.raises(StoreUnavailable, match="Check that it is running"):
            store.write_steps([a_step("r1", 0)])
        with pytest.raises(StoreUnavailable):
            store.start_run(a_run())
        with pytest.raises(StoreUnavailable):
            store.runs()
    finally:
        store.close()


def test_step_times_round_trip_as_aware_utc(store: Store) -> None:
    store.start_run(a_run())
    started = T0.replace(microsecond=123456)
    store.write_steps([StepRecord("r1", 0, started, 1.0)])
    (step,) = store.steps("r1")
    assert step.started_at == started and step.started_at.utcoffset() == timedelta(0)
