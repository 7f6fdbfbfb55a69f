"""The sampler: polls become samples, processes and the events between them."""

from __future__ import annotations

from monitor.clock import ManualClock
from monitor.collector.sampler import Sampler
from monitor.core.gpu_records import Event, GpuInfo, GpuSample, HostInfo, ProcessSample, Record
from monitor.core.source import DeviceFacts, GpuReading, Poll, ProcessReading, XidReading
from tests.helpers import T0, ScriptedSource, steady_poll


def events(records: list[Record], kind: str | None = None) -> list[Event]:
    return [r for r in records if isinstance(r, Event) and kind in (None, r.kind)]


def sampler_for(poll, devices=("GPU-a",)) -> tuple[Sampler, ManualClock]:
    clock = ManualClock(T0)
    sampler = Sampler(ScriptedSource(poll, devices), "h1", clock)
    sampler.start()
    return sampler, clock


def run(sampler: Sampler, clock: ManualClock, ticks: int) -> list[list[Record]]:
    out = []
    for _ in range(ticks):
        out.append(sampler.tick())
        clock.advance(1)
    return out


def test_start_records_host_gpus_and_a_start_event() -> None:
    sampler = Sampler(ScriptedSource(steady_poll, ("GPU-a", "GPU-b")), "h1", ManualClock(T0))
    records = sampler.start()
    assert [type(r) for r in records] == [HostInfo, GpuInfo, GpuInfo, Event]
    assert {r.uuid for r in records if isinstance(r, GpuInfo)} == {"GPU-a", "GPU-b"}
    assert events(records)[0].kind == "collector_start"


def test_a_tick_gives_one_sample_per_gpu_with_processes() -> None:
    def poll(n: int) -> Poll:
        reading = GpuReading(
            "GPU-a", {"power_watts": 300.0}, (ProcessReading(7, "python", used_memory_bytes=1024),)
        )
        return Poll((reading,))

    sampler, _clock = sampler_for(poll)
    records = sampler.tick()
    (sample,) = [r for r in records if isinstance(r, GpuSample)]
    (process,) = [r for r in records if isinstance(r, ProcessSample)]
    assert sample.power_watts == 300.0 and sample.ts == T0 and sample.host == "h1"
    assert sample.utilization_gpu_percent is None
    assert (process.pid, process.name, process.used_memory_bytes) == (7, "python", 1024)


def test_throttle_episodes_start_on_new_reasons_and_end_after_a_quiet_spell() -> None:
    # idle, thermal, thermal+idle, thermal+hw thermal, a 2-tick dip, power cap, 5 clear ticks
    masks = [0x1, 0x20, 0x21, 0x60, 0x1, 0x1, 0x4, 0x1, 0x1, 0x1, 0x1, 0x1, 0x1]

    def poll(n: int) -> Poll:
        return Poll((GpuReading("GPU-a", {"clock_event_reasons": masks[n]}),))

    sampler, clock = sampler_for(poll)
    ticks = run(sampler, clock, len(masks))
    kinds = [(n, e.kind, e.detail) for n, t in enumerate(ticks) for e in events(t)]
    assert kinds == [
        (1, "throttle_start", "sw_thermal_slowdown"),
        (3, "throttle_start", "sw_thermal_slowdown,hw_thermal_slowdown"),
        (6, "throttle_start", "sw_power_cap,sw_thermal_slowdown,hw_thermal_slowdown"),
        (11, "throttle_end", None),
    ]


def test_an_energy_counter_reset_never_gives_negative_energy() -> None:
    energy = [1000.0, 1100.0, 5.0, 25.0]

    def poll(n: int) -> Poll:
        return Poll((GpuReading("GPU-a", {"energy_joules": energy[n]}),))

    sampler, clock = sampler_for(poll)
    used = [
        next(r for r in tick if isinstance(r, GpuSample)).energy_used_joules
        for tick in run(sampler, clock, 4)
    ]
    assert used == [None, 100.0, None, 20.0]


def test_a_lost_gpu_gives_one_event_and_the_others_go_on() -> None:
    def poll(n: int) -> Poll:
        readings = (GpuReading("GPU-a", {"power_watts": 1.0}),)
        if n in (1, 2):
            return Poll(readings, lost={"GPU-b": "GPU is lost"})
        back = (DeviceFacts("GPU-b", 5, "Scripted GPU"),) if n == 3 else ()
        return Poll((*readings, GpuReading("GPU-b", {"power_watts": 2.0})), reacquired=back)

    sampler, clock = sampler_for(poll, ("GPU-a", "GPU-b"))
    ticks = run(sampler, clock, 4)
    assert [e.kind for e in events(ticks[1])] == ["gpu_lost"]
    assert events(ticks[2]) == []  # still lost: said once
    assert [e.kind for e in events(ticks[3])] == ["gpu_back"]
    assert any(isinstance(r, GpuInfo) and r.index == 5 for r in ticks[3])
    assert all(any(isinstance(r, GpuSample) and r.uuid == "GPU-a" for r in t) for t in ticks)


def test_xid_and_ecc_increments_become_events() -> None:
    def poll(n: int) -> Poll:
        metrics = {"ecc_uncorrected_volatile_count": 0 if n < 2 else 3}
        xids = (XidReading("GPU-a", 79, "GPU has fallen off the bus"),) if n == 1 else ()
        return Poll((GpuReading("GPU-a", metrics),), xids=xids)

    sampler, clock = sampler_for(poll)
    ticks = run(sampler, clock, 3)
    (xid,) = events(ticks[1], "xid")
    assert (xid.value, xid.uuid, xid.detail) == (79, "GPU-a", "GPU has fallen off the bus")
    (ecc,) = events(ticks[2], "ecc")
    assert ecc.value == 3


def test_intermittent_errors_are_counted() -> None:
    sampler, clock = sampler_for(lambda n: Poll((), error_count=2))
    run(sampler, clock, 3)
    assert sampler.poll_errors == 6


def test_a_wall_clock_jump_is_an_event_and_timestamps_follow_the_wall_clock() -> None:
    sampler, clock = sampler_for(steady_poll)
    sampler.tick()
    clock.advance(1)
    clock.jump(-3600)
    records = sampler.tick()
    (jump,) = events(records, "clock_jump")
    assert jump.value is not None and round(jump.value) == -3600
    sample = next(r for r in records if isinstance(r, GpuSample))
    assert sample.ts == T0 + (clock.wall() - T0)


def test_stop_closes_the_source_once() -> None:
    source = ScriptedSource(steady_poll)
    sampler = Sampler(source, "h1", ManualClock(T0))
    sampler.start()
    (event,) = sampler.stop("signal")
    assert (event.kind, event.detail, source.closed) == ("collector_stop", "signal", 1)
