"""The hooks' writer: a daemon thread between the training loop and the sink.

The training thread only appends to a deque (:meth:`BackgroundWriter.add_step`, no lock, no
I/O). The writer wakes every ``flush_interval_s`` or when ``flush_steps`` steps wait, turns
them into records and writes everything in order: operations one by one, consecutive steps in
batches. When the sink fails with a "try again" error (``StoreError``, ``ConfigError``,
``OSError``) the records stay in memory and the write is retried with back-off (``backoff_s``,
doubling up to 60 s); beyond ``capacity_steps`` the oldest go to the spool file, and if even
that fails they are dropped and counted. Any other error is retried twice, then the item is
dropped (a record the sink refuses must not block the ones behind it). At close everything
left is spooled.

Counters for this session's steps: ``added == written + spooled + dropped + pending``;
``replayed`` counts steps written back from spool files (this run's or earlier runs').
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from monitor.core.errors import ConfigError, StoreError
from monitor.core.run_records import StepRecord
from monitor.pipeline.spool import HookSpool, Item
from profiler_hooks.analyzer import WindowAnalyzer
from profiler_hooks.config import AnalysisMode
from profiler_hooks.sink import AnalyzeWindow, RunSink, SaveWindow, SinkOp, StepBatch
from profiler_hooks.step_timer import RawStep

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 60.0
STRIKES = 3  # attempts at an item the sink refuses for a reason other than "try again"
TRANSIENT_ERRORS = (StoreError, ConfigError, OSError)


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
        spool: HookSpool,
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
    ) -> None:
        self.sink = sink
        self.spool = spool
        self.analyzer = WindowAnalyzer(
            analysis, emit=self.submit, store_url=store_url, spool_dir=spool.directory
        )
        self._to_record = to_record
        self._close_sink = close_sink
        self._interval = flush_interval_s
        self._flush_steps = flush_steps
        self._capacity = capacity_steps
        self._queue_cap = max(4 * capacity_steps, 100_000)
        self._batch = batch_steps
        self._backoff = backoff_s
        self._queue: deque[RawStep | SinkOp | _Task] = deque()
        self._pending: deque[Item] = deque()
        self._lock = threading.Lock()  # pending and the counters; never held during I/O
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gpulens-writer", daemon=True)
        self._deadline = float("inf")
        self._abandoned = False
        self._retry_at = 0.0
        self._failures = 0
        self._down = False  # the last write failed with a "try again" error
        self._strikes = 0
        self._struck: Item | None = None
        self._foreign_left = True
        self._added = 0
        self._queue_dropped = 0
        self._written = self._replayed = self._spooled = 0
        self._dropped = self._own_dropped = self._write_errors = 0

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
        self._deadline = time.monotonic() + timeout_s
        self._stop.set()
        self._wake.set()
        if self._thread.ident is None:  # never started: keep what was queued
            self._drain(run_tasks=False)
            self._spill(len(self._pending))
            self.spool.release()
            return
        self._thread.join(timeout_s + 1.0)
        if self._thread.is_alive():
            log.warning("gpulens: the store did not answer in %.0f s; spooling the rest", timeout_s)
            with self._lock:
                self._abandoned = True
            self._drain(run_tasks=False)
            self._spill(len(self._pending))
            self.spool.release()

    def stats(self) -> HookStats:
        with self._lock:
            lost = self._own_dropped + self._queue_dropped
            pending = self._added - self._written - self._spooled - lost
            return HookStats(
                written=self._written,
                pending=max(pending, 0),
                dropped=self._dropped + self._queue_dropped,
                spooled=self._spooled,
                write_errors=self._write_errors,
                replayed=self._replayed,
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
            self._spill(len(self._pending))
            self.spool.release()
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
        if time.monotonic() >= self._retry_at:
            self._flush()
        self._spill_overflow()

    def _final(self) -> None:
        ok = True
        while not self._abandoned:
            self._drain()
            ok = self._flush()
            if not ok and self._down:  # no use waiting: spool what is left
                break
            self.analyzer.poll()
            more = self._queue or self._pending or self.analyzer.busy
            if not more or time.monotonic() >= self._deadline:
                break
            if ok:
                time.sleep(0.02)
        left = self.analyzer.wait(self._deadline if ok else 0.0)
        with self._lock:
            self._pending.extend(left)
        self._drain(run_tasks=False)

    def _drain(self, *, run_tasks: bool = True) -> None:
        queue, items = self._queue, []
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
                items.append(item)  # type: ignore[arg-type]  # the remaining member, SinkOp
        if items:
            with self._lock:
                self._pending.extend(items)

    def _flush(self) -> bool:
        """Write the own spool file's items, then the pending ones; False if the sink failed."""
        head: list[Item] = []
        try:
            if self.spool.items:
                self._replay_own()
            while True:
                with self._lock:
                    if self._abandoned:
                        return False
                    head = self._head()
                if not head:
                    break
                self._apply(head)
            self._recovered()
            self._replay_foreign()
            return True
        except Exception as exc:
            self._failed(head, exc)
            return False

    def _replay_own(self) -> None:
        """Write this writer's spool file back, oldest first; it goes once all is stored.
        Raises on a "try again" failure; an item the sink refuses is dropped."""
        for item in self.spool.read_own():
            try:
                self._apply([item], spooled=True)
            except TRANSIENT_ERRORS:
                raise
            except Exception as exc:
                log.error("gpulens: the store refuses a spooled %s: %r", type(item).__name__, exc)
                with self._lock:
                    self._dropped += _step_count([item])
        with self._lock:
            if not self._abandoned:
                self.spool.clear_own()

    def _head(self) -> list[Item]:
        pending = self._pending
        if not pending:
            return []
        if not isinstance(pending[0], StepRecord):
            return [pending[0]]
        head: list[Item] = []
        for item in pending:
            if not isinstance(item, StepRecord) or len(head) == self._batch:
                break
            head.append(item)
        return head

    def _apply(self, head: list[Item], *, spooled: bool = False) -> None:
        """Write ``head`` (the front of the pending items, or an item of the own spool)."""
        first = head[0]
        if isinstance(first, StepRecord):
            self.sink.write_steps(head)  # type: ignore[arg-type]  # _head: steps only
        else:
            first.apply(self.sink)
        with self._lock:
            if self._abandoned:
                return
            if not spooled:
                for _ in head:
                    self._pending.popleft()
            if isinstance(first, StepRecord):
                self._written += len(head)
            elif isinstance(first, StepBatch):
                self._replayed += len(first.steps)
        if isinstance(first, SaveWindow) and first.analyze and first.window.trace_path:
            self.analyzer.submit(first.window.window_id, first.window.trace_path)
        elif isinstance(first, AnalyzeWindow):
            self.analyzer.submit(first.window_id, first.trace_path)

    def _recovered(self) -> None:
        if self._failures:
            log.warning("gpulens: the store answers again; pending records written")
        self._failures = self._strikes = 0
        self._down = False
        self._struck = None
        self._retry_at = 0.0

    def _replay_foreign(self) -> None:
        """Take in one spool file left by an earlier session (written by the next flush)."""
        if not self._foreign_left:
            return
        claimed = self.spool.claim_foreign()
        if claimed is None:
            self._foreign_left = False
            return
        items = self.spool.read_claimed(claimed)
        log.info("gpulens: replaying %d records from %s", len(items), claimed.name)
        with self._lock:
            self._pending.extend(items)
        self._wake.set()

    def _failed(self, head: list[Item], exc: Exception) -> None:
        self._write_errors += 1
        now = time.monotonic()
        self._down = isinstance(exc, TRANSIENT_ERRORS)
        if self._down:
            self._failures += 1
            delay = self._backoff * 2.0 ** (self._failures - 1)
            self._retry_at = now + min(MAX_BACKOFF_S, delay)
            if self._failures == 1:
                log.warning("gpulens: cannot write to the store, keeping records: %s", exc)
            return
        self._retry_at = now + self._backoff
        if not head:
            log.warning("gpulens: cannot read the spool: %s", exc)
            return
        self._strikes = self._strikes + 1 if head[0] is self._struck else 1
        self._struck = head[0]
        if self._strikes >= STRIKES:
            log.error("gpulens: the store refuses %s; dropped: %r", type(head[0]).__name__, exc)
            self._discard(head)

    def _discard(self, head: list[Item]) -> None:
        with self._lock:
            for _ in head:
                self._pending.popleft()
            lost = _step_count(head)
            self._dropped += lost
            if isinstance(head[0], StepRecord):
                self._own_dropped += lost
        self._strikes, self._struck = 0, None

    def _spill_overflow(self) -> None:
        excess = len(self._pending) - self._capacity
        if excess > 0:
            self._spill(excess)

    def _spill(self, count: int) -> None:
        with self._lock:
            oldest = [self._pending.popleft() for _ in range(min(count, len(self._pending)))]
            if not oldest:
                return
            try:
                kept = self.spool.append(oldest)
            except OSError as exc:
                log.error("gpulens: cannot write the spool %s: %s", self.spool.path, exc)
                kept = 0
            own_kept = sum(isinstance(item, StepRecord) for item in oldest[:kept])
            own_lost = sum(isinstance(item, StepRecord) for item in oldest[kept:])
            self._spooled += own_kept
            self._own_dropped += own_lost
            self._dropped += _step_count(oldest[kept:])
        if kept < len(oldest):
            log.error(
                "gpulens: dropped %d records: the store is unreachable and the spool %s is full",
                len(oldest) - kept,
                self.spool.path,
            )


def _step_count(items: list[Item]) -> int:
    return sum(
        1 if isinstance(item, StepRecord) else len(item.steps) if isinstance(item, StepBatch) else 0
        for item in items
    )
