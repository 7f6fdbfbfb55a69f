"""The delivery pipeline's guarantees under each fault, with a hand-moved clock (no sleeps):
back-off, early spooling, strikes, a write that hangs past close, deadlines, replays that are
interrupted, a disk that fills up, and spools keyed by their store."""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from monitor.core.errors import StoreUnavailable
from monitor.pipeline import Counters, OneRowPerItem, Pipeline, Spool, store_key
from monitor.pipeline.spool_names import HOST, SpoolName, store_identity
from tests.helpers import ManualClock, dead_pid


class Ints(OneRowPerItem[int]):
    """A codec of plain numbers: one row and one unit each."""

    family = "ints"

    def encode(self, item: int) -> list[dict[str, Any]]:
        return [{"n": item}]

    def decode(self, row: Mapping[str, Any]) -> int:
        if not isinstance(row.get("n"), int):
            raise ValueError("no number")
        return int(row["n"])


INTS = Ints()


class Sink:
    """Stores numbers once each (keyed, like the store's rows); ``down`` fails every call as
    an outage would; ``poison`` is refused for good; ``fail_after`` calls succeed, then down."""

    def __init__(self) -> None:
        self.stored: list[int] = []
        self.calls = 0
        self.down = False
        self.poison: int | None = None
        self.fail_after: int | None = None

    def write(self, batch: Sequence[int]) -> None:
        self.calls += 1
        if self.fail_after is not None:
            self.down = self.fail_after <= 0
            self.fail_after -= 1
        if self.down:
            raise StoreUnavailable("down")
        if self.poison in batch:
            raise ValueError(f"{self.poison} refused")
        self.stored.extend(n for n in batch if n not in self.stored)


def exact(c: Counters) -> bool:
    return (
        c.collected
        == c.written + c.dropped + c.pending
        == (c.written + c.dropped + c.in_memory + c.in_spool)
    )


def make(tmp_path: Path, clock: ManualClock, **options: Any) -> Pipeline[int]:
    spool = Spool(tmp_path / "own.jsonl", INTS, max_bytes=options.pop("max_bytes", 10**6))
    return Pipeline(spool, clock=clock, **options)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(100.0)


def test_after_a_failure_the_pipeline_backs_off_exponentially(tmp_path, clock) -> None:
    pipe, sink = make(tmp_path, clock, backoff_s=1.0, spool_after_s=None), Sink()
    pipe.add([1, 2])
    sink.down = True
    assert pipe.flush(sink.write).error is not None and sink.calls == 1
    assert pipe.flush(sink.write).waiting and sink.calls == 1  # within the back-off
    clock.now += 1.0
    pipe.flush(sink.write)  # second failure: now 2 s
    clock.now += 1.0
    assert pipe.flush(sink.write).waiting and sink.calls == 2
    clock.now += 1.0
    sink.down = False
    result = pipe.flush(sink.write)
    assert (result.written, result.done, result.recovered) == (2, True, True)
    assert sink.stored == [1, 2] and exact(pipe.counters())


def test_memory_goes_to_the_spool_once_the_outage_lasts_spool_after_s(tmp_path, clock) -> None:
    pipe, sink = make(tmp_path, clock, spool_after_s=30.0), Sink()
    sink.down = True
    pipe.add(list(range(10)))
    pipe.flush(sink.write)
    assert pipe.counters().in_memory == 10  # a short blip costs no disk write
    clock.now += 30.0
    pipe.add([10])
    pipe.flush(sink.write)  # backing off or failing: either way memory is spooled now
    c = pipe.counters()
    assert (c.in_memory, c.in_spool, c.spooled) == (0, 11, 11) and exact(c)
    clock.now += 60.0
    sink.down = False
    pipe.flush(sink.write)
    assert sink.stored == list(range(11)) and pipe.counters().pending == 0


def test_a_refused_record_uses_its_strikes_then_only_it_is_dropped(tmp_path, clock) -> None:
    pipe, sink = make(tmp_path, clock, batch_size=10), Sink()
    sink.poison = 4
    pipe.add(list(range(10)))
    results = [pipe.flush(sink.write, force=True) for _ in range(8)]
    assert results[-1].done and all(r.error is None for r in results)
    c = pipe.counters()
    assert sink.stored == [0, 1, 2, 3, 5, 6, 7, 8, 9]
    assert (c.written, c.dropped, c.dropped_unspooled, c.pending) == (9, 1, 1, 0) and exact(c)
    assert c.write_errors == 6  # three for the batch, three for the record alone


def test_a_hung_write_returning_after_close_counts_nothing_and_raises_nothing(
    tmp_path, clock
) -> None:
    pipe = make(tmp_path, clock, batch_size=3)
    entered, release = threading.Event(), threading.Event()
    stored: list[int] = []
    errors: list[BaseException] = []

    def hung_write(batch: Sequence[int]) -> None:
        entered.set()
        release.wait()
        stored.extend(batch)

    def flusher() -> None:
        try:
            pipe.flush(hung_write)
        except BaseException as exc:  # the IndexError of issue 11 would land here
            errors.append(exc)

    pipe.add(list(range(7)))
    thread = threading.Thread(target=flusher)
    thread.start()
    entered.wait()
    pipe.add([7])  # while the write hangs
    pipe.close()  # the process is ending: everything, the batch in flight too, is spooled
    c = pipe.counters()
    assert (c.in_memory, c.in_spool, c.written) == (0, 8, 0) and exact(c)
    release.set()
    thread.join()
    assert errors == [] and stored == [0, 1, 2]
    assert pipe.counters() == c  # the late return changed nothing
    again, sink = make(tmp_path, clock), Sink()
    again.flush(sink.write)
    assert sink.stored == list(range(8))  # the batch written late is stored once


def test_a_flush_starts_no_batch_after_its_deadline(tmp_path, clock) -> None:
    pipe, sink = make(tmp_path, clock, batch_size=2), Sink()

    def slow_write(batch: Sequence[int]) -> None:
        clock.now += 5.0
        sink.write(batch)

    pipe.add(list(range(10)))
    result = pipe.flush(slow_write, deadline=clock.now + 7.0)
    assert (result.written, result.done) == (4, False) and sink.stored == [0, 1, 2, 3]
    assert exact(pipe.counters())


def test_a_replay_cut_short_by_a_new_outage_loses_nothing_and_keeps_order(tmp_path, clock) -> None:
    pipe, sink = make(tmp_path, clock, batch_size=5), Sink()
    sink.down = True
    pipe.add(list(range(30)))
    pipe.flush(sink.write)  # spooled at once (spool_after_s=0)
    sink.fail_after = 2  # the store comes back for two batches of the replay, then fails
    clock.now += 10
    assert pipe.flush(sink.write).error is not None
    pipe.add(list(range(30, 40)))
    clock.now += 10
    pipe.flush(sink.write)  # still down: the new ones join the spool being replayed
    c = pipe.counters()
    assert (c.written, c.in_spool, c.in_memory) == (10, 30, 0) and exact(c)
    sink.fail_after, sink.down = None, False
    clock.now += 60
    assert pipe.flush(sink.write).done
    c = pipe.counters()
    assert sink.stored == list(range(40)) and (c.written, c.replayed, c.pending) == (40, 40, 0)
    assert not (tmp_path / "own.jsonl").exists()


def test_a_disk_that_fills_mid_append_is_cut_back_and_counted_once(
    tmp_path, clock, monkeypatch
) -> None:
    pipe, sink = make(tmp_path, clock), Sink()
    sink.down = True
    pipe.add([1, 2])
    pipe.flush(sink.write)
    size = (tmp_path / "own.jsonl").stat().st_size
    real_write = os.write

    def full_disk(fd: int, data: Any) -> int:
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("monitor.pipeline.spool.os.write", full_disk)
    pipe.add([3, 4, 5])
    clock.now += 10
    pipe.flush(sink.write)
    monkeypatch.undo()
    c = pipe.counters()
    assert (tmp_path / "own.jsonl").stat().st_size == size  # no half line left behind
    assert (c.in_spool, c.dropped, c.dropped_unspooled) == (2, 3, 3) and exact(c)
    sink.down = False
    clock.now += 60
    pipe.flush(sink.write)
    c = pipe.counters()
    assert sink.stored == [1, 2] and (c.written, c.dropped, c.pending) == (2, 3, 0)


def test_a_spool_that_cannot_be_written_drops_and_counts(tmp_path, clock) -> None:
    (tmp_path / "folder").write_text("a file where the spool folder should be")
    spool = Spool(tmp_path / "folder" / "own.jsonl", INTS)
    pipe, sink = Pipeline(spool, clock=clock), Sink()
    sink.down = True
    pipe.add([1, 2, 3])
    pipe.flush(sink.write)
    c = pipe.counters()
    assert (c.dropped, c.spooled, c.pending) == (3, 0, 0) and exact(c)


def test_after_close_nothing_waits_in_memory(tmp_path, clock) -> None:
    pipe, sink = make(tmp_path, clock), Sink()
    pipe.add([1])
    pipe.close()
    pipe.close()
    pipe.add([2])  # a producer that has not heard of the shutdown yet
    c = pipe.counters()
    assert (c.in_memory, c.in_spool) == (0, 2) and exact(c)
    assert pipe.flush(sink.write).written == 0 and sink.calls == 0


# -- spools keyed by their store, claims -------------------------------------------------------


def test_the_store_key_names_the_database_not_the_spelling(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    same = [
        "postgresql+psycopg://me:secret@DB.example:5432/gpulens",
        "postgresql://me:other@db.example:5432/gpulens?sslmode=require",
    ]
    assert len({store_key("gpu", url) for url in same}) == 1
    assert store_key("gpu", "sqlite:///g.db") == store_key("gpu", f"sqlite:///{tmp_path}/g.db")
    others = [
        same[0],
        "postgresql+psycopg://me@db.example:5432/other",
        "postgresql+psycopg://me@db.example:5433/gpulens",
        "sqlite:///g.db",
        "sqlite:///elsewhere/g.db",
    ]
    assert len({store_key("gpu", url) for url in others}) == len(others)
    assert store_key("gpu", same[0]) != store_key("hooks", same[0])
    assert "secret" not in store_identity(same[0])


def left_file(folder: Path, stem: str, key: str | None, numbers: list[int]) -> Path:
    """A spool file left by a writer that has died."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / str(SpoolName(stem, key, HOST, dead_pid()))
    path.write_text("".join(f'{{"n": {n}}}\n' for n in numbers))
    return path


def test_a_spool_is_replayed_only_into_the_store_it_was_meant_for(tmp_path, clock) -> None:
    folder = tmp_path / "spool"
    key_a, key_b = store_key("ints", "sqlite:///a.db"), store_key("ints", "sqlite:///b.db")
    for_a = left_file(folder, "run1", key_a, [1, 2, 3])
    unkeyed = left_file(folder, "run2", None, [4])
    into_b, sink_b = Pipeline(Spool.own(folder, "b", INTS, key=key_b), clock=clock), Sink()
    for _ in range(3):
        into_b.flush(sink_b.write)
    assert sink_b.stored == [] and for_a.exists() and unkeyed.exists()

    into_a, sink_a = Pipeline(Spool.own(folder, "a", INTS, key=key_a), clock=clock), Sink()
    assert not into_a.flush(sink_a.write).done  # claimed: written by the next flush
    assert into_a.flush(sink_a.write).done
    c = into_a.counters()
    assert sink_a.stored == [1, 2, 3] and not for_a.exists() and unkeyed.exists()
    assert (c.collected, c.adopted, c.written, c.replayed, c.pending) == (3, 3, 3, 3, 0)


def test_files_without_a_key_are_claimed_only_where_accepted(tmp_path, clock) -> None:
    folder = tmp_path / "spool"
    unkeyed = left_file(folder, "old", None, [7, 8])
    key = store_key("ints", "sqlite:///a.db")
    spool = Spool.own(folder, "mine", INTS, key=key, accept_unkeyed=True)
    pipe, sink = Pipeline(spool, clock=clock), Sink()
    pipe.flush(sink.write)
    pipe.flush(sink.write)
    assert sink.stored == [7, 8] and not unkeyed.exists()


def test_a_claimed_file_with_a_torn_line_counts_it_collected_and_dropped(tmp_path, clock) -> None:
    folder = tmp_path / "spool"
    path = left_file(folder, "run", None, [1, 2])
    with path.open("a") as handle:
        handle.write('{"n": 3')
    pipe, sink = Pipeline(Spool.own(folder, "me", INTS), clock=clock), Sink()
    pipe.flush(sink.write)
    assert pipe.flush(sink.write).done
    c = pipe.counters()
    assert sink.stored == [1, 2] and (c.collected, c.written, c.dropped) == (3, 2, 1)
    assert exact(c) and not list(folder.glob("run*"))


def test_the_spool_of_a_live_writer_is_not_claimed_until_it_is_released(tmp_path, clock) -> None:
    folder = tmp_path / "spool"
    other = Pipeline(Spool.own(folder, "other", INTS), clock=clock)
    other.add([5])
    other.close()  # spooled and released: this process may replay it now
    live = Spool.own(folder, "live", INTS)
    live.append([6])
    pipe, sink = Pipeline(Spool.own(folder, "me", INTS), clock=clock), Sink()
    for _ in range(4):
        clock.now += 60
        pipe.flush(sink.write)
    assert sink.stored == [5] and live.path.exists()


def test_a_spool_that_cannot_be_read_waits_and_the_rest_goes_on(
    tmp_path, clock, monkeypatch
) -> None:
    pipe, sink = make(tmp_path, clock), Sink()
    sink.down = True
    pipe.add([1, 2, 3])
    pipe.flush(sink.write)  # spooled
    sink.down = False
    clock.now += 10
    pipe.add([4])

    def broken(self: Any, count: int) -> Any:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr("monitor.pipeline.spool.SpoolReader.read", broken)
    pipe.flush(sink.write)
    c = pipe.counters()
    assert sink.stored == [4] and (c.in_spool, c.written) == (3, 1) and exact(c)
    monkeypatch.undo()
    clock.now += 60  # the unreadable file is tried again later
    assert pipe.flush(sink.write).done
    c = pipe.counters()
    assert sink.stored == [4, 1, 2, 3] and (c.written, c.pending, c.dropped) == (4, 0, 0)
