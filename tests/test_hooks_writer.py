"""The hooks' writer thread and spool: ordering, outages, bounds, replays, the analysis child."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from monitor.core.analysis.results import TraceAnalysis
from monitor.core.errors import StoreUnavailable
from monitor.core.run_records import RunInfo, RunStatus, StepRecord, WindowRecord
from monitor.pipeline.spool_names import HOST, SpoolName
from monitor.store import Store
from profiler_hooks import analyze_window
from profiler_hooks.codec import HOOK_ITEMS, hook_spool
from profiler_hooks.sink import (
    AnalyzeWindow,
    EndRun,
    FailWindow,
    SaveAnalysis,
    SaveWindow,
    StartRun,
    StepBatch,
)
from profiler_hooks.step_timer import RawStep, WallClock, step_record
from profiler_hooks.writer import BackgroundWriter
from tests.helpers import ManualClock, dead_pid

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
CLOCK = WallClock(T0.timestamp(), 0)
RUN = RunInfo(run_id="r" * 32, name="unit", host="h", started_at=T0)


class RecordingSink:
    """A RunSink keeping everything in lists; ``down`` makes every call fail as a store
    outage would, ``refuse`` makes one kind of call fail for good."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.down = False
        self.refuse: str | None = None
        self.gate: threading.Event | None = None  # set: calls wait for it (a hung database)

    def _call(self, name: str, value: Any) -> None:
        if self.gate is not None:
            self.gate.wait()
        if self.down:
            raise StoreUnavailable("the test store is down")
        if name == self.refuse:
            raise ValueError(f"{name} refused")
        self.calls.append((name, value))

    def start_run(self, info: RunInfo) -> None:
        self._call("start_run", info)

    def end_run(self, run_id: str, ended_at: datetime, status: RunStatus) -> None:
        self._call("end_run", (run_id, status))

    def write_steps(self, steps: Sequence[StepRecord]) -> int:
        self._call("write_steps", list(steps))
        return len(steps)

    def save_window(self, window: WindowRecord) -> None:
        self._call("save_window", window)

    def save_window_analysis(self, window_id: str, analysis: TraceAnalysis) -> None:
        self._call("save_window_analysis", (window_id, analysis))

    def fail_window(self, window_id: str, error: str) -> None:
        self._call("fail_window", (window_id, error))

    @property
    def steps(self) -> list[StepRecord]:
        return [step for name, batch in self.calls if name == "write_steps" for step in batch]

    @property
    def windows(self) -> list[WindowRecord]:
        return [value for name, value in self.calls if name == "save_window"]

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


def raw(step: int) -> RawStep:
    return (step, step * 1_000_000, 900_000, 100_000, None, None, None, 8, None, False, None)


def make_writer(sink: RecordingSink, tmp_path: Path, **options: Any) -> BackgroundWriter:
    settings: dict[str, Any] = {"flush_interval_s": 0.01, "backoff_s": 0.01, **options}
    spool = hook_spool(
        tmp_path / "spool",
        RUN.run_id,
        store_url=settings.pop("store_url", None),
        max_bytes=settings.pop("max_bytes", 1 << 20),
    )
    return BackgroundWriter(
        sink,
        spool,
        to_record=lambda item: step_record(item, RUN.run_id, CLOCK),
        **settings,
    )


def started_writer(
    sink: RecordingSink, tmp_path: Path, steps: int, *, start_run: bool = True, **options: Any
) -> BackgroundWriter:
    """A writer given the run's start (unless not ``start_run``), started, then given steps
    ``0 .. steps - 1``: where most tests begin."""
    writer = make_writer(sink, tmp_path, **options)
    if start_run:
        writer.submit(StartRun(RUN))
    writer.start()
    for step in range(steps):
        writer.add_step(raw(step))
    return writer


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


def test_steps_become_records_written_in_order_after_the_run(
    sink: RecordingSink, tmp_path: Path
) -> None:
    writer = started_writer(sink, tmp_path, 10, flush_steps=3)
    writer.submit(EndRun(RUN.run_id, T0, "finished"))
    writer.close(timeout_s=10)

    assert sink.names()[0] == "start_run" and sink.names()[-1] == "end_run"
    assert [s.step for s in sink.steps] == list(range(10))
    first = sink.steps[1]
    assert first.started_at == T0 + timedelta(milliseconds=1)
    assert (first.duration_us, first.dataloader_wait_us, first.samples) == (900.0, 100.0, 8)
    stats = writer.stats()
    assert (stats.written, stats.pending, stats.dropped, stats.spooled) == (10, 0, 0, 0)


def test_an_outage_keeps_records_and_retries_until_the_store_answers(
    sink: RecordingSink, tmp_path: Path
) -> None:
    sink.down = True
    writer = started_writer(sink, tmp_path, 5)
    while writer.stats().write_errors < 3:  # retried, with back-off
        threading.Event().wait(0.01)
    assert writer.stats().pending == 5
    sink.down = False
    writer.close(timeout_s=10)

    assert sink.names()[0] == "start_run"
    assert [s.step for s in sink.steps] == list(range(5))
    assert writer.stats().written == 5 and not list((tmp_path / "spool").glob("*"))


def test_beyond_capacity_the_oldest_go_to_the_spool_and_come_back_first(
    sink: RecordingSink, tmp_path: Path
) -> None:
    sink.down = True
    writer = started_writer(sink, tmp_path, 12, capacity_steps=4, flush_steps=2)
    while writer.stats().spooled < 6:
        threading.Event().wait(0.01)
    sink.down = False
    writer.close(timeout_s=10)

    stats = writer.stats()
    assert sink.names()[0] == "start_run"  # the run came back from the spool before its steps
    assert sorted(s.step for s in sink.steps) == list(range(12))
    assert stats.written + stats.spooled == 12 and stats.replayed == stats.spooled
    assert (stats.dropped, stats.pending) == (0, 0)


def test_at_close_a_store_still_down_gets_everything_spooled(
    sink: RecordingSink, tmp_path: Path
) -> None:
    sink.down = True
    writer = started_writer(sink, tmp_path, 7)
    writer.submit(EndRun(RUN.run_id, T0, "finished"))
    writer.close(timeout_s=5)

    stats = writer.stats()
    assert (stats.spooled, stats.written, stats.pending, stats.dropped) == (7, 0, 0, 0)
    (spool_file,) = (tmp_path / "spool").glob("*.jsonl")
    lines = spool_file.read_text().splitlines()
    assert len(lines) == 9 and '"k":"run"' in lines[0] and '"k":"end"' in lines[-1]


def test_a_later_writer_replays_a_spool_left_by_an_ended_session(
    sink: RecordingSink, tmp_path: Path
) -> None:
    sink.down = True
    first = started_writer(sink, tmp_path, 3)
    first.close(timeout_s=5)

    sink.down = False
    second = make_writer(sink, tmp_path)
    second.start()
    second.close(timeout_s=10)
    assert sink.names() == ["start_run", "write_steps"]
    assert [s.step for s in sink.steps] == [0, 1, 2]
    assert second.stats().replayed == 3 and not list((tmp_path / "spool").glob("*"))


def test_a_spool_that_cannot_be_written_drops_and_counts(
    sink: RecordingSink, tmp_path: Path
) -> None:
    sink.down = True
    (tmp_path / "spool").write_text("a file where the spool folder should be")
    writer = started_writer(sink, tmp_path, 4, start_run=False)
    writer.close(timeout_s=5)
    stats = writer.stats()
    assert (stats.dropped, stats.spooled, stats.pending) == (4, 0, 0)


def test_a_full_spool_drops_the_rest(sink: RecordingSink, tmp_path: Path) -> None:
    sink.down = True
    line = len("".join(f"{x}" for x in HOOK_ITEMS.encode(step_record(raw(0), RUN.run_id, CLOCK))))
    writer = started_writer(sink, tmp_path, 10, start_run=False, max_bytes=3 * line)
    writer.close(timeout_s=5)
    stats = writer.stats()
    assert stats.spooled > 0 and stats.dropped > 0
    assert stats.spooled + stats.dropped == 10


def test_a_record_the_sink_refuses_is_dropped_and_the_rest_written(
    sink: RecordingSink, tmp_path: Path
) -> None:
    sink.refuse = "save_window"
    writer = make_writer(sink, tmp_path)
    writer.start()
    window = WindowRecord("w", RUN.run_id, 1, 2, T0)
    writer.submit(SaveWindow(window, analyze=False))
    writer.add_step(raw(0))
    writer.close(timeout_s=10)
    assert sink.names() == ["write_steps"]
    assert writer.stats().write_errors == 3


def test_close_returns_and_spools_when_the_store_hangs(sink: RecordingSink, tmp_path: Path) -> None:
    sink.gate = threading.Event()
    writer = started_writer(sink, tmp_path, 3)
    writer.close(timeout_s=0.2)
    sink.gate.set()
    assert writer.stats().spooled == 3


def test_a_late_answer_of_a_hung_store_changes_no_counter_and_raises_nothing(
    sink: RecordingSink, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sink.gate = threading.Event()
    writer = started_writer(sink, tmp_path, 3)
    writer.close(timeout_s=0.2)
    before = writer.stats()
    sink.gate.set()  # the hung call returns after the spool took everything
    writer._thread.join()
    assert writer.stats() == before
    assert (before.spooled, before.written, before.pending, before.dropped) == (3, 0, 0, 0)
    assert "unexpected error" not in caplog.text
    (spool_file,) = (tmp_path / "spool").glob("*.jsonl")
    assert '"k":"run"' in spool_file.read_text().splitlines()[0]  # in flight, spooled first


def test_during_an_outage_steps_go_to_the_spool_after_spool_after_s(
    sink: RecordingSink, tmp_path: Path
) -> None:
    clock = ManualClock()
    sink.down = True
    writer = started_writer(sink, tmp_path, 5, start_run=False, clock=clock, spool_after_s=5.0)
    while writer.stats().write_errors < 1:
        threading.Event().wait(0.01)
    assert writer.stats().pending == 5  # a short outage costs no disk write
    clock.now += 5.0  # the outage has lasted spool_after_s: a kill now would lose nothing
    while writer.stats().spooled < 5:
        threading.Event().wait(0.01)
    (spool_file,) = (tmp_path / "spool").glob("*.jsonl")
    assert len(spool_file.read_text().splitlines()) == 5
    sink.down = False
    clock.now += 60.0
    writer.close(timeout_s=10)
    stats = writer.stats()
    assert [s.step for s in sink.steps] == list(range(5))
    assert (stats.spooled, stats.replayed, stats.written, stats.pending) == (5, 5, 0, 0)


def test_operations_spooled_without_steps_are_replayed_in_the_same_session(
    sink: RecordingSink, tmp_path: Path
) -> None:
    clock = ManualClock()
    sink.down = True
    writer = make_writer(sink, tmp_path, clock=clock, spool_after_s=0.0)
    window = WindowRecord("w", RUN.run_id, 1, 2, T0)
    writer.submit(StartRun(RUN))
    writer.submit(SaveWindow(window, analyze=False))
    writer.start()
    while not list((tmp_path / "spool").glob("*.jsonl")):  # spooled at the first failure
        threading.Event().wait(0.01)
    sink.down = False
    clock.now += 60.0
    writer.close(timeout_s=10)
    assert sink.names() == ["start_run", "save_window"]
    assert not list((tmp_path / "spool").glob("*"))


def test_a_spool_meant_for_another_store_is_left_alone(sink: RecordingSink, tmp_path: Path) -> None:
    sink.down = True
    first = started_writer(sink, tmp_path, 1, store_url="sqlite:///a.db")
    first.close(timeout_s=5)

    sink.down = False
    other = make_writer(sink, tmp_path, store_url="sqlite:///b.db")
    other.start()
    other.close(timeout_s=10)
    assert sink.calls == [] and len(list((tmp_path / "spool").glob("*.jsonl"))) == 1

    same = make_writer(sink, tmp_path, store_url="sqlite:///a.db")
    same.start()
    same.close(timeout_s=10)
    assert sink.names() == ["start_run", "write_steps"] and same.stats().replayed == 1
    assert not list((tmp_path / "spool").glob("*"))


def test_a_spool_written_before_spools_were_keyed_is_replayed(
    sink: RecordingSink, tmp_path: Path
) -> None:
    folder = tmp_path / "spool"
    folder.mkdir()
    old = folder / str(SpoolName("r" * 32, None, HOST, dead_pid()))
    step = step_record(raw(0), RUN.run_id, CLOCK)
    old.write_text(encode_line(StartRun(RUN)) + encode_line(step))
    writer = make_writer(sink, tmp_path, store_url="sqlite:///a.db")
    writer.start()
    writer.close(timeout_s=10)
    assert sink.names() == ["start_run", "write_steps"] and sink.steps == [step]
    assert not old.exists()


def test_spool_rows_round_trip_every_kind_of_item() -> None:
    step = step_record(raw(3), RUN.run_id, CLOCK)
    window = WindowRecord("w1", RUN.run_id, 3, 4, T0, "/t/w.json.gz", "analyzing")
    run = RunInfo(
        run_id="a" * 32,
        name="n",
        host="h",
        started_at=T0,
        gpu_uuids=("GPU-1",),
        config={"lr": 0.1, "gpulens": {"profile": True}},
        versions={"torch": "2"},
    )
    items = [
        StartRun(run),
        step,
        EndRun(RUN.run_id, T0, "failed"),
        SaveWindow(window, analyze=True),
        FailWindow("w1", "bad trace"),
        AnalyzeWindow("w1", "/t/w.json.gz"),
    ]
    codec = HOOK_ITEMS
    assert [codec.decode(row) for item in items for row in codec.encode(item)] == items
    analysis = SaveAnalysis("w1", TraceAnalysis(ranks=()), "/t/w.json.gz")
    assert [codec.decode(row) for row in codec.encode(analysis)] == [
        AnalyzeWindow("w1", "/t/w.json.gz")
    ]
    batch = StepBatch((step, step))
    assert [codec.decode(r) for r in codec.encode(batch)] == [step, step]
    assert [codec.units([item]) for item in (batch, step, items[0])] == [2, 1, 0]
    assert codec.units([batch, step, items[0], step]) == 4
    # consecutive steps go to the sink together (up to the limit), an operation alone
    end = EndRun(RUN.run_id, T0, "finished")
    assert codec.batch_length([step, step, end, step], 2000) == 2
    assert codec.batch_length([step, step, step], 2) == 2
    assert codec.batch_length([end, step], 2000) == 1
    with pytest.raises(ValueError, match="unknown kind"):
        codec.decode({"k": "nonsense"})
    legacy = {"k": "analyse", "window_id": "w1", "trace_path": "/t/w.json.gz"}  # before 0.1.1
    assert codec.decode(legacy) == AnalyzeWindow("w1", "/t/w.json.gz")


def test_only_spools_of_writers_that_are_gone_are_claimed(tmp_path: Path) -> None:
    folder = tmp_path / "spool"
    mine = hook_spool(folder, "mine")
    other_live = hook_spool(folder, "live")
    other_live.append([EndRun("live", T0, "finished")])
    ended = hook_spool(folder, "ended")
    ended.append([EndRun("ended", T0, "finished")])
    ended.release()
    gone = folder / f"gone.{HOST}.{dead_pid()}.jsonl"
    gone.write_text(encode_line(EndRun("gone", T0, "finished")))

    claimed = [mine.claim(), mine.claim(), mine.claim()]
    runs = sorted(
        item.run_id
        for path in claimed
        if path
        for item in mine.items(path)
        if isinstance(item, EndRun)
    )
    assert runs == ["ended", "gone"] and claimed[2] is None
    assert other_live.path.exists()


def encode_line(item: Any) -> str:
    import json

    return "".join(json.dumps(row) + "\n" for row in HOOK_ITEMS.encode(item))


@pytest.fixture
def trace_file(shared_traces: dict[str, Path]) -> Path:
    return shared_traces["hta_alexnet_a100.json.gz"]


@pytest.fixture
def store_url(tmp_path: Path) -> Iterator[str]:
    url = "sqlite:///" + str(tmp_path / "g.db")
    store = Store.open(url)
    store.start_run(RUN)
    store.save_window(WindowRecord("w1", RUN.run_id, 0, 1, T0, status="analyzing"))
    store.close()
    yield url


def test_the_analysis_process_stores_its_result(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trace_file: Path
) -> None:
    monkeypatch.setenv("GPULENS_DB", store_url)
    status = analyze_window.main(
        ["--window-id", "w1", "--spool-dir", str(tmp_path), str(trace_file)]
    )
    store = Store.open(store_url)
    (window,) = store.windows(RUN.run_id)
    assert status == 0 and window.status == "analyzed"
    assert store.step_breakdowns(RUN.run_id)
    store.close()


def test_the_analysis_process_marks_a_bad_trace_failed(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    monkeypatch.setenv("GPULENS_DB", store_url)
    status = analyze_window.main(["--window-id", "w1", "--spool-dir", str(tmp_path), str(bad)])
    store = Store.open(store_url)
    (window,) = store.windows(RUN.run_id)
    store.close()
    assert status == 0 and window.status == "failed" and window.error


def test_the_analysis_process_spools_the_window_when_the_store_is_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GPULENS_DB", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    spool = tmp_path / "spool"
    status = analyze_window.main(["--window-id", "w9", "--spool-dir", str(spool), str(bad)])
    (left,) = spool.glob("analyze-w9.*.jsonl")
    assert status == analyze_window.EXIT_SPOOLED
    assert decode_all(left) == [AnalyzeWindow("w9", str(bad))]
    assert os.path.exists(bad)


def decode_all(path: Path) -> list[Any]:
    import json

    return [HOOK_ITEMS.decode(json.loads(line)) for line in path.read_text().splitlines()]
