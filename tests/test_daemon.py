"""The daemon with the real APScheduler: clean stops and wall-clock jumps."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from monitor.clock import ClockWatch, ManualClock
from monitor.collector.daemon import DaemonOptions, reschedule_all, run
from monitor.collector.delivery import GPU_RECORDS, collector_pipeline
from monitor.collector.jobs import Collector, JobSettings
from monitor.collector.sampler import Sampler
from monitor.core.source import Poll
from monitor.pipeline import Spool
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


# Only reached when the code under test is broken (a stalled scheduler, a final flush that never
# ends), never a speed limit.
HANG_GUARD_SECONDS = 60.0


class CountingSource(ScriptedSource):
    """A scripted source a test can wait on: each poll wakes the waiters (no sleeping)."""

    def __init__(self) -> None:
        super().__init__(steady_poll)
        self._polled = threading.Condition()

    def poll(self) -> Poll:
        result = super().poll()
        with self._polled:
            self._polled.notify_all()
        return result

    def wait_for_polls(self, count: int) -> bool:
        with self._polled:
            return self._polled.wait_for(lambda: self.polls >= count, HANG_GUARD_SECONDS)


class SteppedLoop:
    """The daemon's main-loop wait, driven by the test: each call blocks until :meth:`step`."""

    def __init__(self) -> None:
        self._turns = threading.Semaphore(0)
        self._waiting = threading.Semaphore(0)
        self._is_stopping = False

    def __call__(self, seconds: float) -> bool:
        self._waiting.release()
        self._turns.acquire()
        return self._is_stopping

    def wait_until_waiting(self) -> None:
        assert self._waiting.acquire(timeout=HANG_GUARD_SECONDS), "the daemon loop never waited"

    def step(self) -> None:
        """Let the loop run one pass (one look at the clocks) and wait until it is done."""
        self._turns.release()
        self.wait_until_waiting()

    def finish(self) -> None:
        self._is_stopping = True
        self._turns.release()


def test_wall_clock_jumps_reschedule_the_jobs_and_sampling_goes_on(
    tmp_path, shifted_wall_clock, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="monitor.collector.daemon")
    store = Store.open(f"sqlite:///{tmp_path / 'g.db'}")
    source = CountingSource()
    clock = ShiftedClock()
    collector = Collector(
        Sampler(source, "h1", clock),
        collector_pipeline(Spool(tmp_path / "s.jsonl", GPU_RECORDS, claims=False)),
        lambda: store,
        settings=JobSettings(interval_seconds=0.1, flush_seconds=0.5),
        clock=clock,
    )
    collector.start()
    loop = SteppedLoop()
    daemon = threading.Thread(
        target=run,
        args=(collector, DaemonOptions(flush_deadline_seconds=HANG_GUARD_SECONDS)),
        kwargs={"clock": clock, "wait": loop},
    )
    daemon.start()
    try:
        loop.wait_until_waiting()
        assert source.wait_for_polls(5)
        # NTP steps the clock back an hour, then forward two. Unrescheduled, APScheduler would
        # wait out the hour before the next poll (a stall the hang guard would catch).
        for offset in (timedelta(hours=-1), timedelta(hours=1)):
            shifted_wall_clock[0] = offset
            caplog.clear()
            loop.step()
            assert "jobs rescheduled after a clock jump" in caplog.text
            assert source.wait_for_polls(source.polls + 10), "sampling stalled"
    finally:
        loop.finish()
        daemon.join(HANG_GUARD_SECONDS)
    assert not daemon.is_alive()
    jumps = store.events(T0 - timedelta(days=1), T0 + timedelta(days=3650), kinds=["clock_jump"])
    assert len(jumps) >= 2  # both jumps are on record
    (status,) = store.collectors()
    assert status.state == "stopped" and status.pending == 0
    store.close()


def test_rescheduling_puts_every_job_one_interval_after_the_new_now(shifted_wall_clock) -> None:
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.start(paused=True)  # next run times are kept, nothing runs
    interval = timedelta(seconds=60)
    try:
        scheduler.add_job(lambda: None, "interval", seconds=interval.total_seconds(), id="sample")
        # Forward two hours: every run time since is missed (a burst of catching up, or of
        # misfire bookkeeping); back an hour: the next run is an hour away (a stall).
        for offset, is_off in (
            (timedelta(hours=2), lambda run_at, now: run_at < now - timedelta(hours=1)),
            (timedelta(hours=-1), lambda run_at, now: run_at > now + timedelta(hours=1)),
        ):
            shifted_wall_clock[0] = offset
            before = ShiftedDatetime.now(timezone.utc)
            assert is_off(scheduler.get_job("sample").next_run_time, before)
            reschedule_all(scheduler, SimpleNamespace(host="h1"))
            after = ShiftedDatetime.now(timezone.utc)
            assert before < scheduler.get_job("sample").next_run_time <= after + interval
    finally:
        scheduler.shutdown(wait=False)


def test_duration_stops_the_daemon_cleanly(tmp_path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'g.db'}")
    collector = Collector(
        Sampler(ScriptedSource(steady_poll), "h1"),
        collector_pipeline(Spool(tmp_path / "s.jsonl", GPU_RECORDS, claims=False)),
        lambda: store,
        settings=JobSettings(interval_seconds=0.25, flush_seconds=0.5),
    )
    collector.start()
    clock = ManualClock(T0)
    waits: list[float] = []

    def wait(seconds: float) -> bool:  # the loop's pause, as time passing on the clock
        waits.append(seconds)
        clock.advance(seconds)
        return False

    options = DaemonOptions(duration_seconds=1.0, flush_deadline_seconds=HANG_GUARD_SECONDS)
    assert run(collector, options, clock=clock, wait=wait) == 0
    assert waits == [0.25] * 4  # stopped at the duration by the clock, not by a signal
    (status,) = store.collectors()
    assert status.state == "stopped" and status.written == status.collected
    store.close()
