"""The bounded buffer, the spool and the counters' invariant."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence

import pytest

from monitor.core.errors import StoreUnavailable
from monitor.core.gpu_records import Record
from monitor.pipeline.buffer import Buffer, Counters, Spool
from tests.helpers import samples


def invariant(c: Counters) -> bool:
    return c.collected == c.written + c.dropped + c.pending


class Db:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, object], Record] = {}
        self.up = True
        self.writes = 0

    def write(self, records: Sequence[Record]) -> None:
        if not self.up:
            raise StoreUnavailable("database down")
        self.writes += 1
        for r in records:
            self.rows[(r.uuid, r.ts)] = r  # type: ignore[union-attr]


def test_records_reach_the_store_in_batches(tmp_path) -> None:
    buffer, db = Buffer(Spool(tmp_path / "s.jsonl", 10**6), batch_size=40), Db()
    buffer.add(samples("GPU-a", "h", range(100)))
    assert buffer.flush(db.write) == 100
    assert db.writes == 3 and len(db.rows) == 100
    c = buffer.counters()
    assert (c.collected, c.written, c.pending) == (100, 100, 0) and invariant(c)


def test_an_outage_buffers_then_spools_then_replays_exactly_once(tmp_path) -> None:
    spool = Spool(tmp_path / "s.jsonl", 10**7)
    buffer, db = Buffer(spool, capacity=50), Db()
    db.up = False
    for start in range(0, 200, 20):
        buffer.add(samples("GPU-a", "h", range(start, start + 20)))
        with pytest.raises(StoreUnavailable):
            buffer.flush(db.write)
        assert invariant(buffer.counters())
    c = buffer.counters()
    assert c.spooled == 150 and c.pending == 200 and c.written == 0
    assert spool.path.exists()
    db.up = True
    assert buffer.flush(db.write) == 200
    c = buffer.counters()
    assert (c.written, c.pending, c.dropped) == (200, 0, 0) and invariant(c)
    assert len(db.rows) == 200 and not spool.path.exists()


def test_a_full_spool_drops_and_counts(tmp_path) -> None:
    buffer, db = Buffer(Spool(tmp_path / "s.jsonl", 2_000), capacity=10), Db()
    db.up = False
    buffer.add(samples("GPU-a", "h", range(100)))
    c = buffer.counters()
    assert c.dropped > 0 and c.spooled > 0 and invariant(c)
    db.up = True
    buffer.flush(db.write)
    c = buffer.counters()
    assert c.pending == 0 and c.written + c.dropped == 100 and invariant(c)


def test_a_spool_left_by_an_earlier_run_is_replayed_and_counted(tmp_path) -> None:
    path = tmp_path / "s.jsonl"
    first = Buffer(Spool(path, 10**6))
    first.add(samples("GPU-a", "h", range(30)))
    first.spill_all()
    with path.open("a") as handle:
        handle.write('{"type": "GpuSample", "uuid": "torn')  # a write cut short by a crash
    second, db = Buffer(Spool(path, 10**6)), Db()
    assert second.counters().collected == 31
    second.flush(db.write)
    c = second.counters()
    assert len(db.rows) == 30 and (c.written, c.dropped, c.pending) == (30, 1, 0)


def test_counters_hold_while_adding_and_flushing_concurrently(tmp_path) -> None:
    buffer, db = Buffer(Spool(tmp_path / "s.jsonl", 10**7), capacity=100), Db()
    stop = threading.Event()
    seen_broken: list[Counters] = []

    def watch() -> None:
        while not stop.is_set():
            c = buffer.counters()
            if not invariant(c):
                seen_broken.append(c)

    watcher = threading.Thread(target=watch)
    watcher.start()
    for start in range(0, 2000, 50):
        buffer.add(samples("GPU-a", "h", range(start, start + 50)))
        db.up = start % 300 != 0
        with contextlib.suppress(StoreUnavailable):
            buffer.flush(db.write)
    db.up = True
    buffer.flush(db.write)
    stop.set()
    watcher.join()
    assert seen_broken == []
    assert len(db.rows) == 2000 and buffer.counters().written == 2000
