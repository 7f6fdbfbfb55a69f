"""The simulated source: deterministic, believable, within physical bounds, labelled."""

from __future__ import annotations

import ast
import math
import re
import statistics
from itertools import pairwise
from pathlib import Path

import pytest

import monitor.collector.simulated as simulated
from monitor.collector.simulated import (
    CLOCK_EVENT_GPU_IDLE,
    CLOCK_EVENT_HW_THERMAL_SLOWDOWN,
    CLOCK_EVENT_SW_POWER_CAP,
    CLOCK_EVENT_SW_THERMAL_SLOWDOWN,
    NOT_SIMULATED,
    SimulatedSource,
)
from monitor.core.metrics import METRICS_BY_NAME, SOURCE_METRIC_NAMES
from monitor.core.source import GpuReading, GpuSource, Poll

UUID_SHAPE = re.compile(r"^GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
SM_CLOCK_MAX_MHZ = 1980.0
POLLS = 3600
COUNT = 8


@pytest.fixture(scope="module")
def hour() -> list[Poll]:
    """An hour of 1 Hz polls of eight GPUs (seed 0), shared by the read-only tests."""
    source = SimulatedSource(COUNT, seed=0)
    source.open()
    return [source.poll() for _ in range(POLLS)]


def series(polls: list[Poll], index: int) -> list[GpuReading]:
    return [poll.readings[index] for poll in polls]


def test_it_is_a_gpu_source_and_says_it_is_simulated() -> None:
    source: GpuSource = SimulatedSource(2)
    assert source.is_simulated is True
    facts = source.open()
    assert facts.notes == ("simulated GPUs: no NVIDIA driver is read",)
    assert facts.driver_version is not None and "simulated" in facts.driver_version
    assert all("Simulated" in device.name for device in facts.devices)
    source.close()


@pytest.mark.parametrize("count", [0, -1, 65, 1000, True, 2.0, "8"])
def test_count_must_be_1_to_64(count: object) -> None:
    with pytest.raises(ValueError, match=r"count must be from 1 to 64, got"):
        SimulatedSource(count)  # type: ignore[arg-type]


@pytest.mark.parametrize("interval", [0.0, -1.0, math.nan, math.inf])
def test_interval_must_be_positive(interval: float) -> None:
    with pytest.raises(ValueError, match="interval_seconds must be positive"):
        SimulatedSource(1, interval_seconds=interval)


@pytest.mark.parametrize("count", [1, 2, 8, 64])
def test_one_reading_per_gpu_in_device_order(count: int) -> None:
    source = SimulatedSource(count)
    facts = source.open()
    poll = source.poll()
    assert len(poll.readings) == count == len(facts.devices)
    assert [r.uuid for r in poll.readings] == [d.uuid for d in facts.devices]
    assert [d.index for d in facts.devices] == list(range(count))
    assert poll.lost == {} and poll.reacquired == () and poll.error_count == 0


def test_device_facts_look_like_an_h100_board() -> None:
    devices = SimulatedSource(64, seed=3, host="node-a").open().devices
    assert all(UUID_SHAPE.match(d.uuid) for d in devices)
    assert len({d.uuid for d in devices}) == 64
    assert len({d.pci_bus_id for d in devices}) == 64
    assert len({d.serial for d in devices}) == 64
    for device in devices:
        assert device.memory_total_bytes is not None and device.memory_total_bytes > 80 * 10**9
        assert device.power_limit_watts == 700.0
        assert device.compute_capability == "9.0"
        assert device.mig_mode is False and device.parent_uuid is None


def test_same_arguments_give_the_same_polls() -> None:
    first, second = SimulatedSource(4, seed=7), SimulatedSource(4, seed=7)
    assert first.open() == second.open()
    assert [first.poll() for _ in range(600)] == [second.poll() for _ in range(600)]


def test_another_seed_gives_other_polls() -> None:
    first, second = SimulatedSource(4, seed=1), SimulatedSource(4, seed=2)
    assert [first.poll() for _ in range(60)] != [second.poll() for _ in range(60)]


def test_hosts_with_the_same_seed_never_share_a_uuid() -> None:
    left = {d.uuid for d in SimulatedSource(64, seed=0, host="node-a").open().devices}
    right = {d.uuid for d in SimulatedSource(64, seed=0, host="node-b").open().devices}
    assert not left & right


def test_clock_event_bits_are_nvmls() -> None:
    pynvml = pytest.importorskip("pynvml")
    assert pynvml.nvmlClocksEventReasonGpuIdle == CLOCK_EVENT_GPU_IDLE
    assert pynvml.nvmlClocksEventReasonSwPowerCap == CLOCK_EVENT_SW_POWER_CAP
    assert pynvml.nvmlClocksEventReasonSwThermalSlowdown == CLOCK_EVENT_SW_THERMAL_SLOWDOWN
    assert pynvml.nvmlClocksEventReasonHwThermalSlowdown == CLOCK_EVENT_HW_THERMAL_SLOWDOWN


def test_module_imports_neither_pynvml_nor_io() -> None:
    tree = ast.parse(Path(simulated.__file__).read_text())
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not imported & {"pynvml", "time", "os", "numpy", "datetime"}


def test_metrics_are_known_names_of_the_right_type(hour: list[Poll]) -> None:
    assert set(NOT_SIMULATED) <= set(SOURCE_METRIC_NAMES)
    for poll in hour:
        for reading in poll.readings:
            assert set(reading.metrics) == set(SOURCE_METRIC_NAMES) - set(NOT_SIMULATED)
            for name, value in reading.metrics.items():
                expected = int if METRICS_BY_NAME[name].is_integer else float
                assert type(value) is expected, (name, value)


def assert_physical(reading: GpuReading) -> None:
    m = reading.metrics
    for name, value in m.items():
        assert value is not None and value >= 0, name
        if name.endswith("_percent"):
            assert value <= 100.0, name
    used, free = m["memory_used_bytes"], m["memory_free_bytes"]
    assert used + free + m["memory_reserved_bytes"] == m["memory_total_bytes"]
    assert m["utilization_gpu_max_percent"] >= m["utilization_gpu_percent"]
    assert m["utilization_memory_max_percent"] >= m["utilization_memory_percent"]
    assert m["power_watts"] <= m["power_max_watts"] <= m["power_limit_watts"]
    assert m["power_instant_watts"] <= m["power_limit_watts"]
    assert 20.0 <= m["temperature_celsius"] <= 100.0
    assert 20.0 <= m["temperature_memory_celsius"] <= 100.0
    assert 300.0 <= m["sm_clock_mhz"] <= SM_CLOCK_MAX_MHZ
    assert m["performance_state"] in (0, 8)
    assert m["gpm_sm_active_percent"] <= m["utilization_gpu_percent"]


def test_metrics_stay_within_physical_bounds(hour: list[Poll]) -> None:
    for poll in hour:
        for reading in poll.readings:
            assert_physical(reading)


@pytest.mark.parametrize("interval", [0.25, 30.0, 600.0])
def test_other_intervals_stay_within_physical_bounds(interval: float) -> None:
    source = SimulatedSource(4, seed=9, interval_seconds=interval)
    for _ in range(500):
        for reading in source.poll().readings:
            assert_physical(reading)


def test_energy_counter_rises_by_power_times_interval() -> None:
    source = SimulatedSource(3, seed=5, interval_seconds=2.0)
    polls = [source.poll() for _ in range(900)]
    for index in range(3):
        readings = series(polls, index)
        energy = [r.metrics["energy_joules"] for r in readings]
        assert all(b > a for a, b in pairwise(energy))
        spent = sum(r.metrics["power_watts"] * 2.0 for r in readings[1:])
        assert energy[-1] - energy[0] == pytest.approx(spent, rel=1e-9)
        # Like the NVML source, leave the per-tick delta to the sampler.
        assert all("energy_used_joules" not in r.metrics for r in readings)


def test_power_follows_utilization(hour: list[Poll]) -> None:
    readings = [r for poll in hour for r in poll.readings]
    utilization = [r.metrics["utilization_gpu_percent"] for r in readings]
    power = [r.metrics["power_watts"] for r in readings]
    assert statistics.correlation(utilization, power) > 0.9


def test_training_gpus_step_with_short_dips(hour: list[Poll]) -> None:
    utilization = [r.metrics["utilization_gpu_percent"] for r in series(hour, 0)]
    assert sum(u >= 85.0 for u in utilization) > 0.5 * POLLS
    assert sum(30.0 <= u <= 60.0 for u in utilization) > 0.02 * POLLS


def test_last_gpu_is_idle_but_holds_memory(hour: list[Poll]) -> None:
    idle = series(hour, COUNT - 1)
    assert statistics.mean(r.metrics["utilization_gpu_percent"] for r in idle) < 3.0
    assert statistics.mean(r.metrics["power_watts"] for r in idle) < 100.0
    assert sum(bool(r.metrics["clock_event_reasons"] & CLOCK_EVENT_GPU_IDLE) for r in idle) > (
        0.9 * POLLS
    )
    holding = [r for r in idle if r.processes and r.metrics["memory_used_bytes"] > 2**30]
    assert len(holding) > 0.6 * POLLS
    busy = series(hour, 0)
    assert statistics.mean(r.metrics["utilization_gpu_percent"] for r in busy) > 50.0


def test_a_single_gpu_is_busy() -> None:
    source = SimulatedSource(1)
    polls = [source.poll() for _ in range(600)]
    assert statistics.mean(p.readings[0].metrics["utilization_gpu_percent"] for p in polls) > 50


def test_thermal_throttle_drops_the_sm_clock_then_recovers(hour: list[Poll]) -> None:
    episodes = 0
    for index in range(COUNT):
        readings = series(hour, index)
        hot = [
            bool(r.metrics["clock_event_reasons"] & CLOCK_EVENT_SW_THERMAL_SLOWDOWN)
            for r in readings
        ]
        for reading, is_hot in zip(readings, hot, strict=True):
            if is_hot:
                assert reading.metrics["sm_clock_mhz"] <= 0.75 * SM_CLOCK_MAX_MHZ
                assert reading.metrics["temperature_celsius"] >= 82.0
        starts = [i for i in range(1, POLLS) if hot[i] and not hot[i - 1]]
        ends = [i for i in range(1, POLLS) if hot[i - 1] and not hot[i]]
        episodes += len(starts)
        if starts and ends:
            assert any(r.metrics["sm_clock_mhz"] >= 1700.0 for r in readings[ends[-1] :])
    assert episodes >= 1


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_other_seeds_throttle_within_an_hour(seed: int) -> None:
    source = SimulatedSource(COUNT, seed=seed)
    thermal = CLOCK_EVENT_SW_THERMAL_SLOWDOWN
    assert any(
        r.metrics["clock_event_reasons"] & thermal
        for _ in range(POLLS)
        for r in source.poll().readings
    )


def test_memory_climbs_after_a_job_starts(hour: list[Poll]) -> None:
    starts = 0
    for index in range(COUNT - 1):
        readings = series(hour, index)
        for i in range(1, POLLS - 30):
            if readings[i].processes and not readings[i - 1].processes:
                used = [r.metrics["memory_used_bytes"] for r in readings[i : i + 30]]
                assert all(b >= a for a, b in pairwise(used))
                assert used[-1] > used[0]
                starts += 1
    assert starts >= 3


def test_processes_come_and_go_and_fit_in_memory(hour: list[Poll]) -> None:
    for index in range(COUNT - 1):
        readings = series(hour, index)
        assert len({tuple(p.pid for p in r.processes) for r in readings}) >= 2
        assert any(not r.processes for r in readings)
    processes = []
    for poll in hour:
        for reading in poll.readings:
            assert len(reading.processes) <= 2
            held = sum(p.used_memory_bytes or 0 for p in reading.processes)
            assert held <= reading.metrics["memory_used_bytes"]
            assert sum(p.sm_percent or 0.0 for p in reading.processes) <= 100.0
            if not reading.processes:
                assert reading.metrics["memory_used_bytes"] == 0
            processes.extend(reading.processes)
    assert {p.process_type for p in processes} == {"compute"}
    assert {p.name for p in processes} == {"python"}
    assert any(p.slurm_job_id for p in processes)
    assert any(p.container_id for p in processes)


def test_xids_name_a_device_and_end_its_job() -> None:
    source = SimulatedSource(COUNT, seed=4)
    uuids = {d.uuid for d in source.open().devices}
    seen = 0
    for _ in range(7200):
        poll = source.poll()
        readings = {r.uuid: r for r in poll.readings}
        for xid in poll.xids:
            assert xid.uuid in uuids and xid.xid in (31, 43)
            assert xid.detail is not None and "simulated" in xid.detail
            assert readings[xid.uuid].processes == ()
            seen += 1
    assert seen >= 1
