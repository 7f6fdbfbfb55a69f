"""The daemon with the real APScheduler: clean stops and wall-clock jumps."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from monitor.clock import ClockWatch, ManualClock
from monitor.collector.daemon import DaemonOptions, run
from monitor.collector.jobs import Collector, JobSettings
from monitor.collector.sampler import Sampler
from monitor.pipeline.buffer import Buffer, Spool
from monitor.store import Store
from tests.helpers import T0, ScriptedSource, steady_poll

OFFSET = [timedelta(0)]


class ShiftedDatetime(datetime):
    """``datetime`` whose ``now`` is off by ``OFFSET``, like a wall clock that was stepped."""

    @classmethod
    def now(cls, tz=None):  # type: ignore[override]
        return datetime.now(tz) + OFFSET[0]


class ShiftedClock:
    def wall(self) -> datetime:
        return datetime.now(timezone.utc) + OFFSET[0]

    def monotonic(self) -> float:
        return time.monotonic()


@pytest.fixture
def shifted_wall_clock(monkeypatch):
    import apscheduler.executors.base as executors
    import apscheduler.schedulers.base as schedulers
    import apscheduler.triggers.interval as interval

    OFFSET[0] = timedelta(0)
    for module in (executors, schedulers, interval):
        monkeypatch.setattr(module, "datetime", ShiftedDatetime)
    yield OFFSET
    OFFSET[0] = timedelta(0)


def test_clock_watch_reports_jumps_only() -> None:
    clock = ManualClock(T0)
    watch = ClockWatch(clock)
    clock.advance(5)
    assert watch.check() is None
    clock.jump(-600)
    assert watch.check() == pytest.approx(-600)
    clock.advance(1)
    assert watch.check() is None


def wait_for(predicate, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_wall_clock_jumps_neither_stall_nor_burst_sampling(tmp_path, shifted_wall_clock) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'g.db'}")
    source = ScriptedSource(steady_poll)
    clock = ShiftedClock()
    collector = Collector(
        Sampler(source, "h1", clock),
        Buffer(Spool(tmp_path / "s.jsonl", 10**6)),
        lambda: store,
        settings=JobSettings(interval_seconds=0.1, flush_seconds=0.5),
        clock=clock,
    )
    collector.start()
    stop = threading.Event()
    daemon = threading.Thread(
        target=run, args=(collector, DaemonOptions()), kwargs={"clock": clock, "stop": stop}
    )
    daemon.start()
    try:
        assert wait_for(lambda: source.polls >= 5)
        shifted_wall_clock[0] = timedelta(hours=-1)  # NTP steps the clock back an hour
        before = source.polls
        assert wait_for(lambda: source.polls >= before + 10), "sampling stalled"
        shifted_wall_clock[0] = timedelta(hours=1)  # and forward two hours
        before = source.polls
        time.sleep(1.0)
        # 1 s at 10 Hz is ~10 polls; a burst catching up two hours would be ~72,000.
        assert source.polls - before < 100, "sampling burst after a forward jump"
    finally:
        stop.set()
        daemon.join(20)
    assert not daemon.is_alive()
    jumps = store.events(T0 - timedelta(days=1), T0 + timedelta(days=3650), kinds=["clock_jump"])
    assert len(jumps) >= 2  # both jumps are on record
    (status,) = store.collectors()
    assert status.state == "stopped" and status.pending == 0
    store.close()


def test_duration_stops_the_daemon_cleanly(tmp_path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'g.db'}")
    collector = Collector(
        Sampler(ScriptedSource(steady_poll), "h1"),
        Buffer(Spool(tmp_path / "s.jsonl", 10**6)),
        lambda: store,
        settings=JobSettings(interval_seconds=0.2, flush_seconds=0.5),
    )
    collector.start()
    assert run(collector, DaemonOptions(duration_seconds=1.0)) == 0
    (status,) = store.collectors()
    assert status.state == "stopped" and status.written == status.collected
    store.close()
