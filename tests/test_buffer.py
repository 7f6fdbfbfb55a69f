"""The collector's records through the delivery pipeline: bounded memory, the spool and the
counters' invariant."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from monitor.collector.delivery import GPU_RECORDS, collector_pipeline
from monitor.core.errors import StoreUnavailable
from monitor.core.gpu_records import Record
from monitor.pipeline import Counters, Pipeline, Spool
from tests.helpers import ManualClock, samples


def invariant(c: Counters) -> bool:
    return (
        c.collected
        == c.written + c.dropped + c.pending
        == (c.written + c.dropped + c.in_memory + c.in_spool)
    )


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


def pipeline(path: Path, max_bytes: int = 10**7, **options: Any) -> Pipeline[Record]:
    return Pipeline(Spool(path, GPU_RECORDS, max_bytes=max_bytes, claims=False), **options)


def test_records_reach_the_store_in_batches(tmp_path) -> None:
    buffer, db = pipeline(tmp_path / "s.jsonl", batch_size=40), Db()
    buffer.add(samples("GPU-a", "h", range(100)))
    result = buffer.flush(db.write)
    assert (result.written, result.done) == (100, True)
    assert db.writes == 3 and len(db.rows) == 100
    c = buffer.counters()
    assert (c.collected, c.written, c.pending) == (100, 100, 0) and invariant(c)


def test_an_outage_buffers_then_spools_then_replays_exactly_once(tmp_path) -> None:
    clock = ManualClock(1000.0)
    spool_path = tmp_path / "s.jsonl"
    buffer, db = pipeline(spool_path, capacity=50, spool_after_s=None, clock=clock), Db()
    db.up = False
    for start in range(0, 200, 20):
        buffer.add(samples("GPU-a", "h", range(start, start + 20)))
        assert isinstance(buffer.flush(db.write).error, StoreUnavailable)
        assert invariant(buffer.counters())
        clock.now += 60  # past the longest back-off
    c = buffer.counters()
    assert c.spooled == 150 and c.pending == 200 and c.written == 0
    assert (c.in_memory, c.in_spool) == (50, 150)
    assert spool_path.exists()
    db.up = True
    assert buffer.flush(db.write).written == 200
    c = buffer.counters()
    assert (c.written, c.pending, c.dropped, c.replayed) == (200, 0, 0, 150) and invariant(c)
    assert len(db.rows) == 200 and not spool_path.exists()


def test_the_collector_spools_everything_at_the_first_failed_flush(tmp_path) -> None:
    spool_path = tmp_path / "s.jsonl"
    buffer, db = collector_pipeline(Spool(spool_path, GPU_RECORDS, claims=False)), Db()
    buffer.add(samples("GPU-a", "h", range(30)))
    db.up = False
    buffer.flush(db.write)
    c = buffer.counters()
    assert (c.in_memory, c.in_spool, c.spooled) == (0, 30, 30) and invariant(c)
    # A kill now loses nothing: a new collector on the same spool finds every record.
    again = pipeline(spool_path)
    assert again.counters().collected == 30
    db.up = True
    again.flush(db.write)
    assert len(db.rows) == 30 and again.counters().written == 30


def test_a_full_spool_drops_and_counts(tmp_path) -> None:
    buffer, db = pipeline(tmp_path / "s.jsonl", max_bytes=2_000, capacity=10), Db()
    db.up = False
    buffer.add(samples("GPU-a", "h", range(100)))
    c = buffer.counters()
    assert c.dropped > 0 and c.spooled > 0 and invariant(c)
    assert c.dropped == c.dropped_unspooled
    db.up = True
    buffer.flush(db.write)
    c = buffer.counters()
    assert c.pending == 0 and c.written + c.dropped == 100 and invariant(c)
    assert len(db.rows) == c.written


def test_a_spool_left_by_an_earlier_run_is_replayed_and_counted(tmp_path) -> None:
    path = tmp_path / "s.jsonl"
    first = pipeline(path)
    first.add(samples("GPU-a", "h", range(30)))
    first.close()
    with path.open("a") as handle:
        handle.write('{"type": "GpuSample", "uuid": "torn')  # a write cut short by a crash
    second, db = pipeline(path), Db()
    assert second.counters().collected == 31 and second.counters().adopted == 31
    second.flush(db.write)
    c = second.counters()
    assert len(db.rows) == 30 and (c.written, c.dropped, c.pending) == (30, 1, 0)


def test_records_spooled_after_a_torn_line_are_not_lost(tmp_path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text('{"type": "GpuSample", "uuid": "torn')  # no newline: a crash mid-write
    buffer, db = pipeline(path), Db()
    db.up = False
    buffer.add(samples("GPU-a", "h", range(5)))
    buffer.close()  # appended after the torn line, on lines of their own
    again = pipeline(path)
    db.up = True
    again.flush(db.write)
    c = again.counters()
    assert len(db.rows) == 5 and (c.collected, c.written, c.dropped) == (6, 5, 1)


def test_counters_hold_while_adding_and_flushing_concurrently(tmp_path) -> None:
    clock = ManualClock(1000.0)
    buffer, db = pipeline(tmp_path / "s.jsonl", capacity=100, clock=clock), Db()
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
        buffer.flush(db.write, force=True)
    db.up = True
    buffer.flush(db.write, force=True)
    stop.set()
    watcher.join()
    assert seen_broken == []
    assert len(db.rows) == 2000 and buffer.counters().written == 2000
