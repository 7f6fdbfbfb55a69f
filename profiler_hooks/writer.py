"""The hooks' writer: a daemon thread between the training loop and the sink.

The training thread only appends to a deque (:meth:`BackgroundWriter.add_step`, no lock, no
I/O). The writer wakes every ``flush_interval_s`` or when ``flush_steps`` steps wait, turns
them into records and hands them, with the operations, to the delivery pipeline
(:mod:`monitor.pipeline`), which writes them in order: operations one by one, consecutive steps
in batches. The pipeline keeps, retries, spools and counts: a "try again" error
(``StoreError``, ``ConfigError``, ``OSError``) keeps everything and backs off (``backoff_s``,
doubling up to 60 s); once the store has been failing for ``spool_after_s``, or past
``capacity_steps`` items, memory goes to the spool file, and if even that fails items are
dropped and counted. Any other error is retried twice, then the item is dropped (a record the
sink refuses must not block the ones behind it). At close everything left is spooled.

Counters for this session's steps: ``added == written + spooled + dropped + pending``;
``replayed`` counts steps written back from spool files (this run's or earlier runs').
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

from monitor.core.run_records import StepRecord
from monitor.pipeline import Flush, Pipeline, Spool
from profiler_hooks.analyzer import WindowAnalyzer
from profiler_hooks.codec import HookItem
from profiler_hooks.config import AnalysisMode
from profiler_hooks.sink import AnalyzeWindow, RunSink, SaveWindow, SinkOp
from profiler_hooks.step_timer import RawStep

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HookStats:
    """A run's step counters: ``added == written + spooled + dropped + pending`` (``added``
    is the session's ``steps_recorded``); ``replayed``: steps written back from spool files,
    this run's or earlier ones'; ``write_errors``: failed sink calls."""

    written: int = 0
    pending: int = 0
    dropped: int = 0
    spooled: int = 0
    write_errors: int = 0
    replayed: int = 0


class _Task:
    """Work for the writer thread that is not a sink call (exporting a trace)."""

    __slots__ = ("run",)

    def __init__(self, run: Callable[[], None]) -> None:
        self.run = run


class BackgroundWriter:
    """Owns the sink calls of one run. ``add_step``/``submit``/``call_soon``/``close`` are
    called from the training thread; everything else happens in the writer thread."""

    def __init__(
        self,
        sink: RunSink,
        spool: Spool[HookItem],
        *,
        to_record: Callable[[RawStep], StepRecord],
        analysis: AnalysisMode = "off",
        store_url: str | None = None,
        close_sink: Callable[[], None] | None = None,
        flush_interval_s: float = 1.0,
        flush_steps: int = 500,
        capacity_steps: int = 50_000,
        batch_steps: int = 2_000,
        backoff_s: float = 1.0,
        spool_after_s: float | None = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sink = sink
        self.spool = spool
        self.pipeline = Pipeline(
            spool,
            capacity=capacity_steps,
            batch_size=batch_steps,
            backoff_s=backoff_s,
            spool_after_s=spool_after_s,
            clock=clock,
        )
        self.analyzer = WindowAnalyzer(
            analysis, emit=self.submit, store_url=store_url, spool_dir=spool.directory
        )
        self._to_record = to_record
        self._close_sink = close_sink
        self._clock = clock
        self._interval = flush_interval_s
        self._flush_steps = flush_steps
        self._queue_cap = max(4 * capacity_steps, 100_000)
        self._queue: deque[RawStep | SinkOp | _Task] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gpulens-writer", daemon=True)
        self._deadline = float("inf")
        self._abandoned = False
        self._failing = False  # logged: the store is down
        self._added = 0
        self._queue_dropped = 0

    # -- the training thread ---------------------------------------------------------------

    def add_step(self, raw: RawStep) -> None:
        """Queue one step: a deque append, and a wake-up every ``flush_steps`` steps."""
        queue = self._queue
        queue.append(raw)
        self._added += 1
        if len(queue) >= self._flush_steps:
            self._crowded()

    def submit(self, op: SinkOp) -> None:
        self._queue.append(op)
        self._wake.set()

    def call_soon(self, task: Callable[[], None]) -> None:
        """Run ``task`` in the writer thread (in queue order); its exceptions are logged."""
        self._queue.append(_Task(task))
        self._wake.set()

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout_s: float) -> None:
        """Write what is left (waiting for running analyses), spool the rest; returns within
        about ``timeout_s`` even if the sink hangs."""
        self._deadline = self._clock() + timeout_s
        self._stop.set()
        self._wake.set()
        if self._thread.ident is None:  # never started: keep what was queued
            self._drain(run_tasks=False)
            self.pipeline.close()
            return
        self._thread.join(timeout_s + 1.0)
        if self._thread.is_alive():
            log.warning("gpulens: the store did not answer in %.0f s; spooling the rest", timeout_s)
            self._abandoned = True
            self._drain(run_tasks=False)
            self.pipeline.close()  # a write that returns later counts nothing

    def stats(self) -> HookStats:
        counters = self.pipeline.counters()
        written = counters.written - counters.replayed  # this session's own steps
        lost = counters.dropped_unspooled + self._queue_dropped
        pending = self._added - written - counters.spooled - lost
        return HookStats(
            written=written,
            pending=max(pending, 0),
            dropped=counters.dropped + self._queue_dropped,
            spooled=counters.spooled,
            write_errors=counters.write_errors,
            replayed=counters.replayed,
        )

    def _crowded(self) -> None:
        # The writer is stuck (a hung database call): keep the newest steps.
        if len(self._queue) > self._queue_cap and type(self._queue.popleft()) is tuple:
            self._queue_dropped += 1
        if not self._wake.is_set():
            self._wake.set()

    # -- the writer thread ------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._stop.is_set():
                break
            self._guarded(self._cycle)
        self._guarded(self._final)
        if not self._abandoned:
            self.pipeline.close()
        if self._close_sink is not None:
            self._guarded(self._close_sink)

    def _guarded(self, work: Callable[[], object]) -> None:
        try:
            work()
        except Exception:
            log.exception("gpulens: unexpected error in the writer thread (training goes on)")

    def _cycle(self) -> None:
        self._drain()
        self.analyzer.poll()
        self._noted(self.pipeline.flush(self._write))

    def _final(self) -> None:
        """Write everything within the deadline, waiting for analyses; stop at once if the
        store is down (what is left is spooled)."""
        up = True
        while not self._abandoned:
            self._drain()
            result = self._noted(
                self.pipeline.flush(self._write, force=True, deadline=self._deadline)
            )
            up = result.error is None
            if not up:
                break
            self.analyzer.poll()
            more = self._queue or not result.done or self.analyzer.busy
            if not more or self._clock() >= self._deadline:
                break
            if result.done:  # only analyses to wait for: poll their processes
                self._wake.wait(0.02)
                self._wake.clear()
        left = self.analyzer.wait(self._deadline if up else 0.0)
        self.pipeline.add(left)
        self._drain(run_tasks=False)

    def _drain(self, *, run_tasks: bool = True) -> None:
        queue = self._queue
        items: list[HookItem] = []
        while queue:
            item = queue.popleft()
            if type(item) is tuple:
                items.append(self._to_record(item))
            elif isinstance(item, _Task):
                if run_tasks:
                    self._guarded(item.run)
                else:
                    log.warning("gpulens: a trace was not saved (the writer was stopped)")
            else:
                items.append(cast(SinkOp, item))
        self.pipeline.add(items)

    def _write(self, batch: Sequence[HookItem]) -> None:
        """The pipeline's write: steps in one call, an operation alone; a saved window with
        analysis, or an analysis still owed, goes to the analyzer once it is written."""
        first = batch[0]
        if isinstance(first, StepRecord):
            self.sink.write_steps(cast(Sequence[StepRecord], batch))
            return
        first.apply(self.sink)
        if isinstance(first, SaveWindow) and first.analyze and first.window.trace_path:
            window_id, trace_path = first.window.window_id, first.window.trace_path
        elif isinstance(first, AnalyzeWindow):
            window_id, trace_path = first.window_id, first.trace_path
        else:
            return
        self._guarded(lambda: self.analyzer.submit(window_id, trace_path))

    def _noted(self, result: Flush) -> Flush:
        if result.error is not None and not self._failing:
            log.warning("gpulens: cannot write to the store, keeping records: %s", result.error)
            self._failing = True
        elif result.recovered and self._failing:
            log.warning("gpulens: the store answers again; pending records written")
            self._failing = False
        return result
