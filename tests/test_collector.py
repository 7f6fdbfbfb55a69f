"""The collector's jobs, called directly (no scheduler), on a real SQLite store."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from monitor.clock import ManualClock
from monitor.collector.delivery import GPU_RECORDS, collector_pipeline, collector_spool
from monitor.collector.jobs import Collector, JobSettings, PollWait, join_poll
from monitor.collector.sampler import Sampler
from monitor.core.errors import StoreUnavailable
from monitor.core.source import Poll
from monitor.pipeline import Spool
from monitor.store import Store
from monitor.store.schema import events, gpu_rollups_1m, gpu_samples
from tests.helpers import T0, ScriptedSource, dead_pid, steady_poll


@pytest.fixture
def store(tmp_path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'g.db'}")
    yield opened
    opened.close()


def two_gpus(n: int) -> Poll:
    return steady_poll(n, ("GPU-a", "GPU-b"))


# Only reached when the code under test is broken (a final flush that never ends), never a speed
# limit: a stop whose flush finishes returns at once.
HANG_GUARD_SECONDS = 60.0


def join_without_deadline(thread: threading.Thread, started: datetime, timeout: float) -> bool:
    """The tests' poll wait: every poll gets all the time it needs, so none counts as hung on a
    slow machine; a test that wants a hung poll says which one."""
    thread.join()
    return True


def build(store_opener, tmp_path, poll=two_gpus, wait_for_poll: PollWait = join_without_deadline):
    clock = ManualClock(T0)
    source = ScriptedSource(poll, ("GPU-a", "GPU-b"))
    collector = Collector(
        Sampler(source, "h1", clock),
        collector_pipeline(
            Spool(tmp_path / "spool.jsonl", GPU_RECORDS, max_bytes=10**7, claims=False),
            capacity=20,
            clock=clock.monotonic,
        ),
        store_opener,
        clock=clock,
        wait_for_poll=wait_for_poll,
    )
    collector.start()
    return collector, clock


def rows(store: Store, table, *where) -> int:
    with store.engine.connect() as conn:
        query = select(func.count()).select_from(table)
        for clause in where:
            query = query.where(clause)
        return int(conn.execute(query).scalar_one())


def tick(collector: Collector, clock: ManualClock, n: int) -> None:
    for _ in range(n):
        collector.sample()
        clock.advance(1)


def test_samples_flow_into_the_store_and_are_rolled_up(store, tmp_path) -> None:
    collector, clock = build(lambda: store, tmp_path)
    tick(collector, clock, 130)
    collector.flush()
    collector.rollup()
    assert rows(store, gpu_samples) == 260
    assert rows(store, gpu_rollups_1m) == 4  # two whole minutes x two GPUs
    (status,) = store.collectors()
    # host + 2 GPUs + start event + 260 samples
    assert (status.collected, status.written, status.pending) == (264, 264, 0)


class FlakyStore:
    """Delegates to a real store, but can be switched off like a database outage."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.up = True

    def __getattr__(self, name: str):
        if not self.up:
            raise StoreUnavailable("database down")
        return getattr(self.store, name)


def test_an_outage_loses_nothing_and_writes_each_row_once(store, tmp_path) -> None:
    flaky = FlakyStore(store)
    collector, clock = build(lambda: flaky, tmp_path)  # type: ignore[arg-type,return-value]
    tick(collector, clock, 5)
    collector.flush()
    flaky.up = False
    tick(collector, clock, 40)  # 80 samples: beyond the buffer's capacity of 20
    collector.flush()
    collector.rollup()
    during = collector.pipeline.counters()
    assert during.spooled > 0 and during.pending > 0 and during.dropped == 0
    flaky.up = True
    tick(collector, clock, 5)
    collector.flush()
    after = collector.pipeline.counters()
    assert after.pending == 0 and after.collected == after.written
    assert rows(store, gpu_samples) == 100


def test_a_hung_poll_marks_collection_stale_and_other_jobs_go_on(store, tmp_path) -> None:
    release = threading.Event()
    hung_at = T0 + timedelta(seconds=3)  # the fourth poll, n == 3
    timeouts: list[float] = []

    def poll(n: int) -> Poll:
        if n == 3:
            release.wait()  # an NVML call that hangs until the test lets it return
        return steady_poll(n, ("GPU-a", "GPU-b"))

    def wait_for_poll(thread: threading.Thread, started: datetime, timeout: float) -> bool:
        if started == hung_at and not release.is_set():
            timeouts.append(timeout)
            return False  # its deadline passes at once, however fast or slow the machine
        return join_without_deadline(thread, started, timeout)

    collector, clock = build(lambda: store, tmp_path, poll=poll, wait_for_poll=wait_for_poll)
    tick(collector, clock, 3)
    tick(collector, clock, 3)  # the hung poll, then two ticks skipped while it hangs
    assert collector.stale_since == hung_at
    assert timeouts[0] == JobSettings().poll_deadline_seconds  # then 0: "has it returned?"
    collector.flush()  # flush is not blocked by the hung poll
    assert store.collectors()[0].stale_since == collector.stale_since
    release.set()  # the hung call returns; the next tick waits for it and keeps its samples
    tick(collector, clock, 1)
    collector.flush()
    assert collector.stale_since is None
    kinds = [e.kind for e in store.events(T0, clock.wall())]
    assert "collection_stale" in kinds and "collection_recovered" in kinds
    assert rows(store, gpu_samples) == 2 * 5  # 3 + the late hung one + 1


def test_the_production_poll_wait_is_a_thread_join_with_the_deadline() -> None:
    returns = threading.Event()
    poll = threading.Thread(target=returns.wait, daemon=True)  # a call that has not returned
    poll.start()
    assert not join_poll(poll, T0, 0)  # deadline passed: the poll counts as hung
    returns.set()
    poll.join()
    assert join_poll(poll, T0, 0)


def test_stop_flushes_and_marks_the_collector_stopped(store, tmp_path) -> None:
    collector, clock = build(lambda: store, tmp_path)
    tick(collector, clock, 3)
    collector.stop("signal", flush_deadline_seconds=HANG_GUARD_SECONDS)
    (status,) = store.collectors()
    assert status.state == "stopped" and status.pending == 0
    kinds = {e.kind for e in store.events(T0, clock.wall() + (clock.wall() - T0))}
    assert {"collector_start", "collector_stop"} <= kinds
    assert rows(store, events) >= 2


def test_stop_with_the_database_gone_spools_everything(tmp_path) -> None:
    def unavailable() -> Store:
        raise StoreUnavailable("database down")

    collector, clock = build(unavailable, tmp_path)
    tick(collector, clock, 3)
    collector.stop("signal", flush_deadline_seconds=HANG_GUARD_SECONDS)
    c = collector.pipeline.counters()
    assert c.in_spool == c.pending == c.collected and collector.pipeline.spool.path.exists()


def test_a_collector_replays_the_spool_a_crashed_one_left_for_its_store(store, tmp_path) -> None:
    url, folder = f"sqlite:///{tmp_path / 'g.db'}", tmp_path / "spool"
    flaky = FlakyStore(store)
    flaky.up = False
    crashed, clock = build_in(folder, url, lambda: flaky)  # type: ignore[arg-type,return-value]
    tick(crashed, clock, 10)
    crashed.flush()  # fails: everything goes to the spool at once
    c = crashed.pipeline.counters()
    assert (c.in_memory, c.in_spool) == (0, c.collected) and c.collected > 20
    own = crashed.pipeline.spool.path
    left = own.with_name(own.name.replace(f".{os.getpid()}.", f".{dead_pid()}."))
    own.rename(left)  # the process was killed: its file stays, named with its pid

    elsewhere, _ = build_in(folder, f"sqlite:///{tmp_path / 'other.db'}", lambda: store)
    elsewhere.flush()
    elsewhere.flush()
    assert left.exists() and elsewhere.pipeline.counters().adopted == 0

    successor, _ = build_in(folder, url, lambda: store)
    successor.flush()  # writes its own records, then claims the file
    successor.flush()  # replays it
    after = successor.pipeline.counters()
    assert after.adopted == c.collected and after.pending == 0 and not left.exists()
    assert rows(store, gpu_samples) == 2 * 10
    assert after.collected == after.written


def test_stop_honours_its_deadline_when_the_database_hangs(store, tmp_path) -> None:
    hanging = HangingStore(store)
    collector, clock = build(lambda: hanging, tmp_path)  # type: ignore[arg-type,return-value]
    tick(collector, clock, 3)
    hanging.gate.clear()  # the database freezes: calls hang instead of failing
    scheduled = threading.Thread(target=collector.flush)  # the flush job, stuck in a write
    scheduled.start()
    hanging.entered.wait()
    tick(collector, clock, 2)
    collector.stop("signal", flush_deadline_seconds=0.05)  # returns: the process can exit
    c = collector.pipeline.counters()
    assert c.in_spool == c.pending == c.collected and c.written == 0
    hanging.gate.set()  # the database answers again, long after
    scheduled.join()
    assert collector.pipeline.counters() == c  # the late answer changed nothing, raised nothing

    successor, _ = build(lambda: store, tmp_path)
    successor.flush()
    assert rows(store, gpu_samples) == 2 * 5  # every sample, stored once


class HangingStore:
    """Delegates to a real store; while ``gate`` is clear, writes hang (a frozen database)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def write(self, records) -> None:
        if not self.gate.is_set():
            self.entered.set()
            self.gate.wait()
        self.store.write(records)

    def __getattr__(self, name: str):
        return getattr(self.store, name)


def build_in(folder, url, store_opener):
    """A collector whose spool is keyed by ``url`` in ``folder`` (the production layout)."""
    clock = ManualClock(T0)
    collector = Collector(
        Sampler(ScriptedSource(two_gpus, ("GPU-a", "GPU-b")), "h1", clock),
        collector_pipeline(collector_spool(url, "h1", directory=folder), clock=clock.monotonic),
        store_opener,
        clock=clock,
        wait_for_poll=join_without_deadline,
    )
    collector.start()
    return collector, clock
