"""The trace analyzer's pure core on hand-built events: every number is worked out by hand."""

from __future__ import annotations

import json
from typing import Any

import pytest

from monitor.core.analysis import to_json
from monitor.core.analysis.events import EventTable, copy_key, sync_kind, to_ns
from monitor.core.analysis.ranks import analyze_rank, combine
from monitor.core.analysis.results import CATEGORIES, RankAnalysis

PID, TID = 100, 100


def op(name: str, ts: float, dur: float, cat: str = "cpu_op", **args: Any) -> dict[str, Any]:
    return {
        "ph": "X",
        "cat": cat,
        "name": name,
        "pid": PID,
        "tid": TID,
        "ts": ts,
        "dur": dur,
        "args": args,
    }


def launch(ts: float, dur: float, corr: int, name: str = "cudaLaunchKernel") -> dict[str, Any]:
    return op(name, ts, dur, "cuda_runtime", correlation=corr)


def kernel(
    name: str, ts: float, dur: float, corr: int = -1, stream: int = 7, cat: str = "kernel"
) -> dict[str, Any]:
    args: dict[str, Any] = {"device": 0, "stream": stream}
    if corr >= 0:
        args["correlation"] = corr
    return {
        "ph": "X",
        "cat": cat,
        "name": name,
        "pid": 0,
        "tid": stream,
        "ts": ts,
        "dur": dur,
        "args": args,
    }


def step(number: int, ts: float, dur: float) -> dict[str, Any]:
    return op(f"ProfilerStep#{number}", ts, dur, "user_annotation")


META = {
    "deviceProperties": [
        {
            "id": 0,
            "name": "Test GPU",
            "computeMajor": 8,
            "computeMinor": 0,
            "totalGlobalMem": 40 * 2**30,
        }
    ],
    "distributedInfo": {"rank": 3},
}


def analyze(events: list[dict[str, Any]], meta: dict[str, Any] | None = None) -> RankAnalysis:
    table = EventTable()
    table.add(events)
    return analyze_rank(table, META if meta is None else meta, default_rank=0, source="t.json")


def test_times_keep_their_nanoseconds() -> None:
    assert to_ns(1712195495505583) == 1712195495505583000
    assert to_ns("1712195495505583.264") == 1712195495505583264
    assert to_ns("0.768") == 768
    assert to_ns("-1.5") == -1500
    assert to_ns("1.23456") == 1235  # more digits than ns: rounded
    assert to_ns("1e3") == 1_000_000
    assert to_ns(2.5) == 2500
    with pytest.raises(ValueError):
        to_ns("soon")


def test_breakdown_takes_categories_by_priority_and_sums_to_the_step() -> None:
    # Step 1: 0..100 µs on the host. A cpu op 0..60 with a launch 10..20 inside; the kernel
    # runs 15..45; a DataLoader fetch 60..80; nothing 80..100.
    events = [
        step(1, 0, 100),
        op("aten::mm", 0, 60),
        launch(10, 10, corr=1),
        kernel("gemm", 15, 30, corr=1),
        op(
            "enumerate(DataLoader)#_SingleProcessDataLoaderIter.__next__", 60, 20, "user_annotation"
        ),
    ]
    result = analyze(events)
    (only,) = result.steps
    assert only.step == 1 and only.duration_us == 100
    b = only.breakdown_us
    # kernel 15..45 = 30; runtime 10..15 = 5 (the rest is under the kernel); cpu_exec 0..10 and
    # 45..60 = 25; dataloader 60..80 = 20; other 80..100 = 20.
    assert b == {
        "kernel": 30,
        "memcpy": 0,
        "memset": 0,
        "communication": 0,
        "runtime": 5,
        "dataloader": 20,
        "cpu_exec": 25,
        "other": 20,
    }
    assert sum(b.values()) == pytest.approx(only.duration_us)
    assert only.gpu_busy_us == 30
    assert result.rank == 3 and result.device == "Test GPU"
    assert result.compute_capability == "8.0"


def test_a_step_stretches_to_the_end_of_the_gpu_work_it_launched() -> None:
    # Host step 0..50 launches a kernel that runs 40..90; step 2 starts on the host at 60 but
    # its time counts from 90, where step 1 ended on the GPU.
    events = [
        step(1, 0, 50),
        launch(5, 5, corr=1),
        kernel("k1", 40, 50, corr=1),
        step(2, 60, 50),
        launch(65, 5, corr=2),
        kernel("k2", 95, 10, corr=2),
    ]
    first, second = analyze(events).steps
    assert (first.start_us, first.duration_us) == (0, 90)
    assert (second.start_us, second.duration_us) == (90, 20)
    assert first.breakdown_us["kernel"] == 50
    assert second.breakdown_us["kernel"] == 10


def test_temporal_breakdown_follows_hta() -> None:
    # One step only, so every GPU event counts: compute 0..10 and 20..30, an NCCL kernel
    # 25..40 on another stream, a copy 50..60, a cuda_sync row 60..90 that is not GPU work.
    events = [
        step(1, 0, 100),
        kernel("gemm", 0, 10),
        kernel("gemm", 20, 10),
        kernel("ncclDevKernel_AllReduce_Sum_f32_RING_LL(ncclDevComm*)", 25, 15, stream=9),
        kernel("Memcpy HtoD (Pageable -> Device)", 50, 10, cat="gpu_memcpy"),
        kernel("Stream Sync", 60, 30, cat="cuda_sync"),
    ]
    result = analyze(events)
    t = result.temporal
    assert t.span_us == 60  # 0..60; the sync row is excluded
    assert t.compute_us == 20
    assert t.idle_us == 60 - (10 + 20 + 10)  # busy = 0..10, 20..40, 50..60
    assert t.non_compute_us == 40 - 20
    assert result.overlap is not None
    assert result.overlap.communication_us == 15 and result.overlap.overlapped_us == 5
    assert [k.category for k in result.kernels] == ["computation", "communication", "memory"]


def test_with_several_steps_the_temporal_scope_is_htas() -> None:
    # HTA counts GPU work launched before the last step began: the last step's kernel and an
    # event with no launch are left out of the temporal breakdown (not out of the steps).
    events = [
        step(1, 0, 100),
        launch(1, 1, corr=1),
        kernel("a", 10, 10, corr=1),
        step(2, 100, 100),
        launch(101, 1, corr=2),
        kernel("b", 110, 30, corr=2),
        step(3, 200, 100),
        launch(201, 1, corr=3),
        kernel("c", 210, 50, corr=3),
        kernel("orphan", 150, 5),
    ]
    result = analyze(events)
    assert result.temporal.span_us == 130  # 10..140
    assert result.temporal.compute_us == 40
    assert [s.gpu_busy_us for s in result.steps] == [10, 35, 50]


def test_idle_time_is_split_into_host_wait_kernel_wait_and_other() -> None:
    events = [
        step(1, 0, 1000),
        launch(0, 1, corr=1),
        kernel("a", 10, 10, corr=1),
        launch(100, 1, corr=2),
        kernel("b", 110, 10, corr=2),  # host late: 90 µs host wait
        launch(5, 1, corr=3),
        kernel("c", 130, 10, corr=3),  # queued, 10 µs gap: kernel wait
        launch(6, 1, corr=4),
        kernel("d", 240, 10, corr=4),  # queued, 100 µs gap: other
    ]
    idle = analyze(events).idle_breakdown_us
    assert (idle.host_wait, idle.kernel_wait, idle.other) == (90, 10, 100)


def test_launch_statistics_match_kernels_to_their_launch() -> None:
    events = [
        step(1, 0, 100),
        launch(0, 10, corr=1),
        kernel("tiny", 12, 2, corr=1),  # shorter than its 10 µs launch
        launch(20, 10, corr=2),
        kernel("big", 40, 50, corr=2),
        kernel("no launch", 95, 1),
    ]
    stats = analyze(events).launch
    assert stats is not None
    assert (stats.launches, stats.matched, stats.short_kernels) == (2, 2, 1)
    assert stats.mean_launch_us == 10
    assert stats.mean_delay_us == (12 + 20) / 2


def test_legacy_categories_and_stream_tids_are_understood() -> None:
    events = [
        {
            "ph": "X",
            "cat": "Operator",
            "name": "ProfilerStep#7",
            "pid": 1,
            "tid": 1,
            "ts": 0,
            "dur": 100,
        },
        {
            "ph": "X",
            "cat": "Runtime",
            "name": "cudaLaunchKernel",
            "pid": 1,
            "tid": 1,
            "ts": 1,
            "dur": 4,
            "args": {"correlation": 9},
        },
        {
            "ph": "X",
            "cat": "Kernel",
            "name": "volta_sgemm_128x64_nn",
            "pid": 0,
            "tid": "stream 7",
            "ts": 10,
            "dur": 40,
            "args": {"correlation": 9, "device": 0},
        },
        {
            "ph": "X",
            "cat": "Memcpy",
            "name": "Memcpy DtoH (Device -> Pageable)",
            "pid": 0,
            "tid": "stream 7",
            "ts": 60,
            "dur": 5,
            "args": {"device": 0, "bytes": 4096},
        },
    ]
    result = analyze(events, meta={})
    (only,) = result.steps
    assert only.step == 7
    assert only.breakdown_us["kernel"] == 40 and only.breakdown_us["memcpy"] == 5
    assert result.memcpy[0].direction == "DtoH" and result.memcpy[0].memory == "pageable"
    assert result.memcpy[0].total_bytes == 4096


def test_traces_without_profiler_steps_get_whole_trace_figures() -> None:
    events = [op("aten::add", 0, 10), launch(2, 2, corr=1), kernel("add", 5, 20, corr=1)]
    result = analyze(events)
    assert result.steps == ()
    assert result.total.duration_us == 25  # 0..25
    assert result.total.breakdown_us["kernel"] == 20
    assert sum(result.total.breakdown_us.values()) == pytest.approx(25)


def test_cpu_only_traces_have_no_gpu_figures() -> None:
    result = analyze([step(1, 0, 10), op("aten::mm", 1, 8)], meta={})
    assert result.device is None and result.temporal.span_us == 0
    assert result.steps[0].breakdown_us["cpu_exec"] == 8
    assert result.launch is None and result.overlap is None


def test_kernel_table_flags_tensor_cores_by_name() -> None:
    names = {
        "sm80_xmma_gemm_f16f16_f16f32_f32_nn_n_tilesize128x128x32_stage4_warpsize2x2x1": True,
        "ampere_fp16_s16816gemm_fp16_128x128_ldg8_f2f_stages_32x5_nn": True,
        "volta_h884gemm_64x64_ldg8_nn": True,
        "nvjet_tst_128x256_64x4_1x2_h_bz_coopA_NNT": True,
        "volta_sgemm_128x64_nn": False,
        "void at::native::vectorized_elementwise_kernel<4, at::native::AddFunctor<float>>": False,
    }
    events = [kernel(name, i * 10, 5) for i, name in enumerate(names)]
    table = {k.name: k.tensor_core for k in analyze(events).kernels}
    assert table == names


def test_copies_and_syncs_are_classified() -> None:
    assert copy_key("Memcpy HtoD (Pinned -> Device)") == ("HtoD", "pinned")
    assert copy_key("Memcpy DtoH (Device -> Pageable)") == ("DtoH", "pageable")
    assert copy_key("Memcpy DtoD (Device -> Device)") == ("DtoD", "device")
    assert sync_kind("cudaDeviceSynchronize") == "device"
    assert sync_kind("cudaMemcpy") == "memcpy"
    assert sync_kind("cudaMemcpyAsync") is None


def test_stragglers_stand_out_from_the_median_rank() -> None:
    def rank_with(step_us: float, rank: int) -> RankAnalysis:
        events = [step(n, n * 1000, step_us) for n in range(3)]
        return analyze(events, meta={"distributedInfo": {"rank": rank}})

    result = combine([rank_with(100, 0), rank_with(102, 1), rank_with(150, 2), rank_with(99, 3)])
    assert [s.rank for s in result.stragglers] == [2]
    assert result.stragglers[0].slowdown_percent == pytest.approx(100 * (150 / 100 - 1))


def test_json_has_the_documented_shape() -> None:
    result = combine([analyze([step(1, 0, 100), kernel("gemm", 10, 20)])])
    document = json.loads(json.dumps(to_json(result)))
    (rank,) = document["ranks"]
    assert {"rank", "device", "temporal", "idle_breakdown_us", "steps", "kernels"} <= set(rank)
    assert set(rank["temporal"]) == {"span_us", "idle_us", "compute_us", "non_compute_us"}
    assert set(rank["idle_breakdown_us"]) == {"host_wait", "kernel_wait", "other"}
    (only,) = rank["steps"]
    assert {"step", "start_us", "duration_us", "breakdown_us", "gpu_busy_us"} <= set(only)
    assert list(only["breakdown_us"]) == list(CATEGORIES)
    assert {"name", "category", "count", "total_us", "tensor_core"} <= set(rank["kernels"][0])
