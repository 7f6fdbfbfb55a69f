"""The advisor's rules on hand-made evidence: each fires on its bottleneck, with the right
numbers, stays quiet on a healthy run, and symptoms rank after their causes."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

import pytest
from advisor_data import RUN, copies, kernel, launch, rows, rules_of, steps, syncs, trace
from helpers import T0

from monitor.core.advisor.advice import AdvisorSettings, advise
from monitor.core.advisor.evidence import PeerRank, RunEvidence
from monitor.core.advisor.findings import Gain, amdahl, finding_from_json, finding_to_json
from monitor.core.advisor.thresholds import THRESHOLDS, Thresholds, parse_overrides
from monitor.core.analysis.results import Overlap
from monitor.core.errors import ConfigError
from monitor.core.gpu_records import Event, GpuInfo, GpuSample, ProcessSample

GIB = 1024**3


def by_rule(findings: list, rule: str):
    found = [f for f in findings if f.rule == rule]
    assert found, f"no {rule} finding in {rules_of(findings)}"
    return found[0]


def test_a_healthy_run_raises_nothing_at_warning_level() -> None:
    evidence = RunEvidence(
        run=RUN,
        steps=steps(200, wait_us=1_000.0, pre_forward_us=500.0, peak_bytes=50 * GIB),
        breakdowns=rows(5, busy_us=92_000.0),
        kernels=(kernel("sm90_xmma_gemm_bf16bf16_bf16f32", 60_000.0, tensor_core=True),),
        traces=(trace(launch=launch(1000, 100)),),
    )
    findings = advise(evidence)
    assert [f for f in findings if f.severity != "info"] == []


@pytest.mark.parametrize(
    ("wait_us", "severity"), [(3_000.0, None), (10_000.0, "warning"), (25_000.0, "critical")]
)
def test_dataloader_wait_grades_at_5_and_20_percent(wait_us: float, severity: str | None) -> None:
    findings = advise(RunEvidence(run=RUN, steps=steps(100, wait_us=wait_us)))
    found = [f for f in findings if f.rule == "input_pipeline"]
    if severity is None:
        assert found == []
        return
    (finding,) = found
    assert finding.severity == severity
    fraction = wait_us / 100_000.0
    assert finding.evidence["dataloader_wait_percent"] == pytest.approx(100 * fraction)
    assert finding.expected_gain is not None
    assert finding.expected_gain.time_fraction == pytest.approx(fraction)
    assert finding.expected_gain.max_speedup == pytest.approx(1 / (1 - fraction))
    assert finding.scope.first_step == 0 and finding.scope.last_step == 99
    assert {t.name for t in finding.thresholds} == {
        "input.dataloader_warning_percent",
        "input.dataloader_critical_percent",
    }
    assert any("num_workers" in line for line in finding.advice)


def test_thresholds_are_configurable_and_the_finding_says_so() -> None:
    evidence = RunEvidence(run=RUN, steps=steps(100, wait_us=10_000.0))
    settings = AdvisorSettings(Thresholds({"input.dataloader_warning_percent": 15}))
    assert "input_pipeline" not in rules_of(advise(evidence, settings))
    settings = AdvisorSettings(Thresholds({"input.dataloader_warning_percent": 8}))
    finding = by_rule(advise(evidence, settings), "input_pipeline")
    used = {t.name: t for t in finding.thresholds}["input.dataloader_warning_percent"]
    assert used.value == 8 and used.source.startswith("set by the user (default 5")


def test_unknown_or_malformed_thresholds_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"unknown advisor threshold gpu\.nope"):
        Thresholds({"gpu.nope": 1})
    with pytest.raises(ConfigError, match="expected NAME=VALUE"):
        parse_overrides(["gpu.busy_warning_percent"])
    with pytest.raises(ConfigError, match="not a number"):
        parse_overrides(["gpu.busy_warning_percent=lots"])
    assert parse_overrides(["gpu.busy_warning_percent=40"]) == {"gpu.busy_warning_percent": 40}
    assert all(item.source for item in THRESHOLDS)


def test_warmup_steps_are_left_out_of_the_figures_and_reported() -> None:
    slow_start = steps(100, lambda n: 2_000_000.0 if n < 3 else 100_000.0, wait_us=10_000.0)
    findings = advise(RunEvidence(run=RUN, steps=slow_start))
    warmup = by_rule(findings, "warmup")
    assert warmup.severity == "info" and warmup.evidence["warmup_steps"] == 3
    loader = by_rule(findings, "input_pipeline")
    assert loader.evidence["mean_step_us"] == pytest.approx(100_000.0)
    assert loader.scope.first_step == 3


def test_preprocessing_on_the_training_thread() -> None:
    finding = by_rule(
        advise(RunEvidence(run=RUN, steps=steps(50, pre_forward_us=30_000.0))),
        "cpu_preprocessing",
    )
    assert finding.severity == "critical"
    assert finding.evidence["pre_forward_percent"] == pytest.approx(30.0)


def test_an_idle_gpu_is_a_symptom_of_a_starved_loader_and_ranks_after_it() -> None:
    evidence = RunEvidence(
        run=RUN,
        steps=steps(100, wait_us=40_000.0),
        breakdowns=rows(5, busy_us=30_000.0, shares={"kernel": 0.3, "dataloader": 0.4}),
        traces=(trace(),),
    )
    findings = advise(evidence)
    assert rules_of(findings)[:2] == ["input_pipeline", "gpu_underused"]
    idle = by_rule(findings, "gpu_underused")
    assert idle.explained_by == "input_pipeline"
    assert idle.evidence["gpu_busy_percent"] == pytest.approx(30.0)
    assert idle.evidence["idle_mostly"] == "host_wait"


def test_a_small_cause_does_not_explain_a_large_symptom() -> None:
    evidence = RunEvidence(
        run=RUN,
        breakdowns=rows(5, busy_us=10_000.0, shares={"kernel": 0.08, "memcpy": 0.02}),
        traces=(trace(memcpy=copies(("HtoD", "pageable", 500.0, 1_000_000))),),
    )
    findings = advise(evidence)
    assert by_rule(findings, "gpu_underused").explained_by is None
    assert rules_of(findings)[0] == "gpu_underused"


def test_launch_bound_when_most_kernels_are_shorter_than_their_launch() -> None:
    evidence = RunEvidence(
        run=RUN,
        breakdowns=rows(5, busy_us=30_000.0),
        traces=(trace(launch=launch(5000, 4000, mean_launch_us=20.0)),),
    )
    finding = by_rule(advise(evidence), "launch_bound")
    assert finding.evidence["short_kernel_percent"] == pytest.approx(80.0)
    assert finding.evidence["launches_per_step"] == pytest.approx(1000.0)
    # 5000 launches x 20 µs over 500 ms traced = 20 %, under the 70 % idle share
    assert finding.expected_gain is not None
    assert finding.expected_gain.time_fraction == pytest.approx(0.2)
    quiet = RunEvidence(run=RUN, breakdowns=rows(5), traces=(trace(launch=launch(50, 50)),))
    assert "launch_bound" not in rules_of(advise(quiet))


def test_pageable_host_to_device_copies() -> None:
    evidence = RunEvidence(
        run=RUN,
        breakdowns=rows(5, busy_us=80_000.0, shares={"kernel": 0.68, "memcpy": 0.12}),
        traces=(trace(memcpy=copies(("HtoD", "pageable", 60_000.0, 500_000_000))),),
    )
    finding = by_rule(advise(evidence), "h2d_copies")
    assert finding.evidence["pageable_h2d_us_per_step"] == pytest.approx(12_000.0)
    assert finding.evidence["pageable_h2d_bytes_per_step"] == 100_000_000
    assert any("pin_memory=True" in line for line in finding.advice)
    pinned = dataclasses.replace(
        evidence,
        breakdowns=rows(5, busy_us=80_000.0, shares={"kernel": 0.78, "memcpy": 0.02}),
        traces=(trace(memcpy=copies(("HtoD", "pinned", 10_000.0, 500_000_000))),),
    )
    assert "h2d_copies" not in rules_of(advise(pinned))


def test_host_syncs_gain_is_capped_by_gpu_idle_time() -> None:
    evidence = RunEvidence(
        run=RUN,
        breakdowns=rows(5, busy_us=70_000.0),
        traces=(trace(syncs=syncs(("cudaStreamSynchronize", "stream", 5, 100_000.0))),),
    )
    finding = by_rule(advise(evidence), "host_sync")
    assert finding.evidence["sync_percent_of_step"] == pytest.approx(20.0)
    assert finding.expected_gain is not None
    assert finding.expected_gain.time_fraction == pytest.approx(0.2)
    busy = dataclasses.replace(evidence, breakdowns=rows(5, busy_us=95_000.0))
    capped = by_rule(advise(busy), "host_sync")
    assert capped.expected_gain is not None
    assert capped.expected_gain.time_fraction == pytest.approx(0.05)


@pytest.mark.parametrize(
    ("capability", "tensor_core", "fires"),
    [("9.0", False, True), ("9.0", True, False), ("6.1", False, False)],
)
def test_fp32_gemms_without_tensor_cores(capability: str, tensor_core: bool, fires: bool) -> None:
    evidence = RunEvidence(
        run=RUN,
        breakdowns=rows(5),
        kernels=(
            kernel("sm90_xmma_gemm_f32f32_f32f32_f32_tn", 300_000.0, tensor_core=tensor_core),
            kernel("elementwise_kernel", 100_000.0),
        ),
        traces=(trace(compute_capability=capability),),
    )
    findings = advise(evidence)
    assert ("precision" in rules_of(findings)) is fires
    if fires:
        finding = by_rule(findings, "precision")
        assert finding.evidence["gemm_percent_of_kernel_time"] == pytest.approx(75.0)
        assert finding.evidence["tensor_core_percent_of_gemm_time"] == 0.0
        assert finding.scope.kernels == ("sm90_xmma_gemm_f32f32_f32f32_f32_tn",)


def test_memory_near_the_limit_and_memory_left_unused() -> None:
    full = RunEvidence(run=RUN, steps=steps(30, peak_bytes=76 * GIB), traces=(trace(),))
    finding = by_rule(advise(full), "memory_pressure")
    assert finding.evidence["peak_percent_of_device"] == pytest.approx(95.0)
    assert finding.severity == "warning"
    empty = RunEvidence(
        run=RUN, steps=steps(30, peak_bytes=8 * GIB), breakdowns=rows(5, busy_us=30_000.0),
        traces=(trace(),),
    )  # fmt: skip
    assert by_rule(advise(empty), "memory_underused").severity == "info"


def test_a_straggler_explains_the_others_communication_time() -> None:
    peers = (
        PeerRank(0, 100_000.0, 45_000.0, run_id="r1"),
        PeerRank(1, 100_000.0, 2_000.0, run_id="r2"),
    )
    evidence = RunEvidence(
        run=dataclasses.replace(RUN, world_size=2),
        steps=steps(50),
        breakdowns=rows(5, shares={"kernel": 0.5, "communication": 0.45}),
        traces=(trace(distributed_backend="nccl", overlap=Overlap(45_000.0, 5_000.0, 11.1)),),
        peers=peers,
    )
    findings = advise(evidence)
    straggler = findings[0]
    assert straggler.rule == "straggler" and straggler.scope.rank == 1
    assert straggler.evidence["straggler_busy_us"] == pytest.approx(98_000.0)
    assert straggler.evidence["median_busy_us_of_others"] == pytest.approx(55_000.0)
    assert straggler.expected_gain is not None
    assert straggler.expected_gain.time_fraction == pytest.approx(0.43)
    # rank 0's 45 % communication is waiting for rank 1, not transfer (rank 1 waits 2 %)
    assert "communication" not in rules_of(findings)
    balanced = dataclasses.replace(
        evidence, peers=(peers[0], dataclasses.replace(peers[1], wait_us=44_000.0))
    )
    assert "straggler" not in rules_of(advise(balanced))


def test_communication_every_rank_pays_is_a_finding() -> None:
    peers = (PeerRank(0, 100_000.0, 40_000.0), PeerRank(1, 100_000.0, 36_000.0))
    evidence = RunEvidence(
        run=dataclasses.replace(RUN, world_size=2),
        breakdowns=rows(5, shares={"kernel": 0.55, "communication": 0.40}),
        traces=(trace(distributed_backend="nccl", overlap=Overlap(45_000.0, 5_000.0, 11.1)),),
        peers=peers,
    )
    finding = by_rule(advise(evidence), "communication")
    assert finding.evidence["communication_percent_of_step"] == pytest.approx(36.0)
    assert finding.evidence["waiting_for_other_ranks_percent"] == pytest.approx(4.0)
    assert finding.evidence["comm_overlapped_by_compute_percent"] == pytest.approx(11.11, abs=0.01)
    assert any("overlap" in line for line in finding.advice)
    assert "straggler" not in rules_of(advise(evidence))


def test_ranks_that_take_turns_waiting_do_not_make_communication_expensive() -> None:
    # Each rank waits 20 ms in every other traced step: the other one was slower then.
    waits = [{n: (20_000.0 if n % 2 == r else 1_000.0) for n in range(6)} for r in (0, 1)]
    peers = tuple(PeerRank(r, 100_000.0, 10_500.0, wait_by_step_us=waits[r]) for r in (0, 1))
    evidence = RunEvidence(
        run=dataclasses.replace(RUN, world_size=2),
        breakdowns=rows(6, shares={"kernel": 0.85, "communication": 0.105}),
        traces=(trace(distributed_backend="gloo"),),
        peers=peers,
    )
    assert "communication" not in rules_of(advise(evidence))
    # without per-step figures the least mean share (10.5 %) stands in, and it is over 10 %
    means_only = tuple(dataclasses.replace(peer, wait_by_step_us={}) for peer in peers)
    finding = by_rule(advise(dataclasses.replace(evidence, peers=means_only)), "communication")
    assert finding.evidence["communication_percent_of_step"] == pytest.approx(10.5)


def test_distributed_setup_problems() -> None:
    run = dataclasses.replace(
        RUN, world_size=2, config={"gpulens": {"model_wrapper": "DataParallel"}}
    )
    evidence = RunEvidence(run=run, breakdowns=rows(5), traces=(trace(distributed_backend="gloo"),))
    assert {"data_parallel", "dist_backend"} <= set(rules_of(advise(evidence)))


def test_a_long_tail_and_a_drift_over_the_run() -> None:
    tail = steps(200, lambda n: 400_000.0 if n % 20 == 7 else 100_000.0)
    finding = by_rule(advise(RunEvidence(run=RUN, steps=tail)), "step_variance")
    assert finding.evidence["p99_over_p50"] == pytest.approx(4.0)
    assert 7 in finding.scope.steps
    drift = steps(200, lambda n: 100_000.0 + 500.0 * n)
    finding = by_rule(advise(RunEvidence(run=RUN, steps=drift)), "step_drift")
    assert finding.evidence["growth_percent"] > 50


def _telemetry_run(throttled_steps: set[int]) -> RunEvidence:
    run_steps = steps(120, lambda n: 300_000.0 if n in throttled_steps else 100_000.0)
    samples = []
    for step in run_steps:
        is_slow = step.step in throttled_steps
        samples.append(
            GpuSample(
                "GPU-a",
                "h1",
                step.started_at + timedelta(microseconds=step.duration_us / 2),
                utilization_gpu_percent=97.0,
                power_watts=400.0,
                sm_clock_mhz=1200.0 if is_slow else 1980.0,
                clock_event_reasons=0x40 if is_slow else 0,
            )
        )
    return RunEvidence(run=RUN, steps=run_steps, samples={"GPU-a": tuple(samples)})


def test_slow_steps_that_coincide_with_throttling() -> None:
    evidence = _telemetry_run({20, 30, 40, 50})
    finding = by_rule(advise(evidence), "telemetry_slowdown")
    assert finding.evidence["cause"] == "throttling"
    assert finding.evidence["slow_steps_with_cause"] == 4
    assert finding.evidence["throttle_reasons"] == ["hw_thermal_slowdown"]
    assert set(finding.scope.steps) == {20, 30, 40, 50}
    assert by_rule(advise(evidence), "step_variance").explained_by == "telemetry_slowdown"


def test_a_neighbour_process_and_xid_errors_are_causes_too() -> None:
    evidence = _telemetry_run(set())
    slow = {10, 25, 40}
    run_steps = steps(120, lambda n: 300_000.0 if n in slow else 100_000.0)
    xids = tuple(
        Event(f"x{n}", s.started_at + timedelta(milliseconds=50), "h1", "xid", "GPU-a", 79.0)
        for n, s in enumerate(run_steps)
        if s.step in slow
    )
    evidence = dataclasses.replace(evidence, steps=run_steps, events=xids)
    assert by_rule(advise(evidence), "telemetry_slowdown").evidence["cause"] == "xid"
    neighbour = ProcessSample("GPU-a", "h1", T0 + timedelta(hours=1), pid=4242, name="miner")
    run = dataclasses.replace(RUN, config={"gpulens": {"pid": 1}})
    crowded = dataclasses.replace(evidence, run=run, events=(), processes=(neighbour,))
    # present the whole run: slow and normal steps alike, so it explains nothing
    assert "telemetry_slowdown" not in rules_of(advise(crowded))


def test_nvml_utilization_against_the_trace() -> None:
    evidence = dataclasses.replace(
        _telemetry_run(set()), breakdowns=rows(5, busy_us=40_000.0), traces=(trace(),)
    )
    finding = by_rule(advise(evidence), "utilization_mismatch")
    assert finding.severity == "info"
    assert finding.evidence["gap_points"] == pytest.approx(57.0)
    assert "at least one kernel" in finding.advice[0]


def test_waste_uses_measured_power_and_the_price() -> None:
    evidence = dataclasses.replace(_telemetry_run(set()), steps=steps(100, wait_us=25_000.0))
    settings = AdvisorSettings(price_per_kwh=0.30, currency="EUR")
    finding = by_rule(advise(evidence, settings), "input_pipeline")
    waste = finding.waste
    assert waste is not None
    assert waste.seconds_per_1000_steps == pytest.approx(25.0)
    assert waste.power_source == "telemetry" and waste.power_watts == pytest.approx(400.0)
    assert waste.energy_joules_per_1000_steps == pytest.approx(10_000.0)
    assert waste.cost_per_1000_steps == pytest.approx(10_000 / 3.6e6 * 0.30)
    assert waste.currency == "EUR"
    assert waste.gpu_hours_total == pytest.approx(0.25 * 10.0 / 3600)


def test_waste_falls_back_to_the_power_limit_and_else_says_nothing() -> None:
    gpu = GpuInfo("GPU-a", "h1", T0, 0, "H100", False, power_limit_watts=700.0)
    evidence = RunEvidence(run=RUN, steps=steps(100, wait_us=25_000.0), gpus=(gpu,))
    waste = by_rule(advise(evidence), "input_pipeline").waste
    assert waste is not None and waste.power_source == "power_limit"
    cpu_only = RunEvidence(
        run=dataclasses.replace(RUN, gpu_uuids=()), steps=steps(100, wait_us=25_000.0)
    )
    waste = by_rule(advise(cpu_only), "input_pipeline").waste
    assert waste is not None and waste.energy_joules_per_1000_steps is None and waste.gpus == 0


def test_a_tiny_finding_is_information_not_a_warning() -> None:
    evidence = RunEvidence(
        run=RUN,
        breakdowns=rows(5, busy_us=50_000.0, shares={"kernel": 0.495, "memcpy": 0.005}),
        traces=(trace(memcpy=copies(("HtoD", "pageable", 3_000.0, 1_000_000))),),
    )
    assert by_rule(advise(evidence), "h2d_copies").severity == "info"


def test_findings_survive_their_json_form() -> None:
    evidence = dataclasses.replace(
        _telemetry_run({20, 30, 40, 50}), steps=_telemetry_run({20, 30, 40, 50}).steps
    )
    for finding in advise(evidence, AdvisorSettings(price_per_kwh=0.2)):
        document = json.loads(json.dumps(finding_to_json(finding)))
        assert finding_from_json(document) == finding
        assert document["expected_gain"] is None or document["expected_gain"]["max_speedup"] >= 1


def test_amdahl_bounds() -> None:
    assert amdahl(0.0) == 1.0
    assert amdahl(0.5) == pytest.approx(2.0)
    assert amdahl(1.0) == pytest.approx(100.0)  # capped: nothing is free
    assert Gain(0.2, "x").max_speedup == pytest.approx(1.25)


def _fleet(now_minutes: int, util: float, used_gib: float, uuid: str = "GPU-a") -> list[GpuSample]:
    return [
        GpuSample(
            uuid,
            "h1",
            T0 + timedelta(minutes=minute),
            utilization_gpu_percent=util,
            memory_used_bytes=int(used_gib * GIB),
            power_watts=70.0,
        )
        for minute in range(now_minutes + 1)
    ]


def test_fleet_gpus_idle_while_holding_memory() -> None:
    from monitor.core.advisor.fleet import idle_allocated

    gpus = [
        GpuInfo("GPU-a", "h1", T0, 0, "H100", False, memory_total_bytes=80 * GIB),
        GpuInfo("GPU-b", "h1", T0, 1, "H100", False, memory_total_bytes=80 * GIB),
        GpuInfo("GPU-c", "h1", T0, 2, "H100", False, memory_total_bytes=80 * GIB),
    ]
    samples = {
        "GPU-a": _fleet(40, 0.0, 30.0),  # idle, holding 30 GiB
        "GPU-b": _fleet(40, 85.0, 30.0, "GPU-b"),  # busy
        "GPU-c": _fleet(40, 0.0, 0.5, "GPU-c"),  # idle and empty
    }
    holder = ProcessSample("GPU-a", "h1", T0, pid=77, name="jupyter", used_memory_bytes=30 * GIB)
    now = T0 + timedelta(minutes=40)
    (finding,) = idle_allocated(gpus, samples, {"GPU-a": [holder]}, now, Thresholds())
    assert finding.rule == "idle_allocated" and finding.scope.gpu_uuid == "GPU-a"
    assert finding.evidence["held_memory_bytes"] == 30 * GIB
    assert finding.evidence["processes"][0]["name"] == "jupyter"
    assert finding.evidence["idle_minutes"] == pytest.approx(30.0)
    assert finding.waste is not None and finding.waste.gpu_hours_total == pytest.approx(0.5)
    # a GPU seen for only part of the window is not judged
    short = {"GPU-a": _fleet(40, 0.0, 30.0)[-10:]}
    assert idle_allocated(gpus[:1], short, {}, now, Thresholds()) == []
