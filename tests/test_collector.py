"""The collector's jobs, called directly (no scheduler), on a real SQLite store."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from monitor.clock import ManualClock
from monitor.collector.jobs import Collector, JobSettings
from monitor.collector.sampler import Sampler
from monitor.core.errors import StoreUnavailable
from monitor.core.source import Poll
from monitor.pipeline.buffer import Buffer, Spool
from monitor.store import Store
from monitor.store.schema import events, gpu_rollups_1m, gpu_samples
from tests.helpers import T0, ScriptedSource, steady_poll


@pytest.fixture
def store(tmp_path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'g.db'}")
    yield opened
    opened.close()


def two_gpus(n: int) -> Poll:
    return steady_poll(n, ("GPU-a", "GPU-b"))


def build(store_opener, tmp_path, poll=two_gpus, deadline=5.0):
    clock = ManualClock(T0)
    source = ScriptedSource(poll, ("GPU-a", "GPU-b"))
    collector = Collector(
        Sampler(source, "h1", clock),
        Buffer(Spool(tmp_path / "spool.jsonl", 10**7), capacity=20),
        store_opener,
        settings=JobSettings(poll_deadline_seconds=deadline),
        clock=clock,
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
    during = collector.buffer.counters()
    assert during.spooled > 0 and during.pending > 0 and during.dropped == 0
    flaky.up = True
    tick(collector, clock, 5)
    collector.flush()
    after = collector.buffer.counters()
    assert after.pending == 0 and after.collected == after.written
    assert rows(store, gpu_samples) == 100


def test_a_hung_poll_marks_collection_stale_and_other_jobs_go_on(store, tmp_path) -> None:
    release = threading.Event()

    def poll(n: int) -> Poll:
        if n == 3:
            release.wait(10)  # an NVML call that hangs
        return steady_poll(n, ("GPU-a", "GPU-b"))

    collector, clock = build(lambda: store, tmp_path, poll=poll, deadline=0.05)
    tick(collector, clock, 3)
    tick(collector, clock, 3)  # the hung poll, then two ticks skipped while it hangs
    assert collector.stale_since == T0 + timedelta(seconds=3)
    collector.flush()  # flush is not blocked by the hung poll
    assert store.collectors()[0].stale_since == collector.stale_since
    release.set()
    collector._poll.wait(5)  # type: ignore[union-attr]
    tick(collector, clock, 1)
    collector.flush()
    assert collector.stale_since is None
    kinds = [e.kind for e in store.events(T0, clock.wall())]
    assert "collection_stale" in kinds and "collection_recovered" in kinds
    assert rows(store, gpu_samples) == 2 * 5  # 3 + the late hung one + 1


def test_stop_flushes_and_marks_the_collector_stopped(store, tmp_path) -> None:
    collector, clock = build(lambda: store, tmp_path)
    tick(collector, clock, 3)
    collector.stop("signal", flush_deadline_seconds=5)
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
    collector.stop("signal", flush_deadline_seconds=2)
    spool = collector.buffer.spool
    c = collector.buffer.counters()
    assert spool.count == c.pending == c.collected and spool.path.exists()
