"""The delivery pipeline: bounded memory buffer -> spool file -> exactly-once replay.

Producers :meth:`~Pipeline.add` items; a flusher calls :meth:`~Pipeline.flush` with the sink's
write function. The counters obey ``collected == written + dropped + pending`` at every instant
(``pending`` = in memory, in flight included, + in spool files), whatever the sink does:

- **Order of writing:** spool files first (the oldest items), then memory. A spool file is read
  in place a batch at a time and removed once all of it is written; rows are keyed in the
  store, so a replay that is interrupted and repeated stores nothing twice.
- **Outage:** a "try again" failure keeps everything and backs off (:mod:`.retry`); once the
  store has been failing for ``spool_after_s`` (0: at the first failure) memory goes to the
  spool, so a crash during an outage loses nothing collected. Past ``capacity`` items in
  memory the oldest go to the spool anyway; past the spool's ``max_bytes`` they are dropped,
  counted.
- **Refusal:** an item the sink refuses for another reason gets a few strikes, then is dropped
  (counted); a batch that strikes out is retried one item at a time, so only the bad one goes.
- **Shutdown:** :meth:`~Pipeline.close` spools what is in memory and in flight and stops; a
  write that hung and returns afterwards counts nothing (its rows are keyed: stored at most
  once more on replay) and never touches the queue.
- **Claims:** after a flush that wrote everything, one file left by a writer that is gone and
  meant for the same store is claimed; its items count as collected as they are read.

Only the sink's write runs outside the pipeline's lock; the spool's appends (with fsync) and
reads run under it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from itertools import islice
from typing import Generic

from monitor.pipeline.codec import ItemT
from monitor.pipeline.outcome import Counters, Flush
from monitor.pipeline.replay import Batch, Replay
from monitor.pipeline.retry import RETRY_ON, Retry
from monitor.pipeline.spool import Spool

log = logging.getLogger(__name__)

Write = Callable[[Sequence[ItemT]], object]


class Pipeline(Generic[ItemT]):
    """Thread-safe: producers :meth:`add`, one flusher at a time :meth:`flush`."""

    def __init__(
        self,
        spool: Spool[ItemT],
        *,
        capacity: int = 100_000,
        batch_size: int = 5_000,
        retry_on: tuple[type[BaseException], ...] = RETRY_ON,
        backoff_s: float = 1.0,
        spool_after_s: float | None = 0.0,
        claim_every_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spool = spool
        self.capacity = capacity
        self.batch_size = batch_size
        self.spool_after_s = spool_after_s
        self.claim_every_s = claim_every_s
        self._codec = spool.codec
        self.clock = clock  # the monotonic clock of back-off, early spooling and deadlines
        self._clock = clock
        self._retry = Retry(clock, retry_on=retry_on, backoff_s=backoff_s)
        self._lock = threading.Lock()  # state and counters; never held while the sink writes
        self._flushing = threading.Lock()  # one flusher at a time
        self._memory: deque[ItemT] = deque()
        self._memory_units = 0  # in the deque and in flight from it
        self._inflight: Batch[ItemT] | None = None
        self._replay: Replay[ItemT] | None = None
        self._isolate = 0  # items left to write one by one after a batch struck out
        self._recovered = False  # a write went through after "try again" failures
        self._own_unreadable_until = float("-inf")
        self._next_claim = float("-inf")
        self._closed = False
        # A file left at the own path by an earlier run (pid reuse, a path the user named).
        self._spool_units = spool.count_units()
        self._own_items = spool.size() > 0  # operations count 0 units, yet must be replayed
        self._collected = self._adopted = self._spool_units
        self._written = self._replayed = self._spooled = 0
        self._dropped = self._dropped_unspooled = self._write_errors = 0

    # -- producers ------------------------------------------------------------------------

    def add(self, items: Sequence[ItemT]) -> None:
        """Queue ``items``; past ``capacity`` the oldest go to the spool."""
        if not items:
            return
        units = self._units(items)
        with self._lock:
            self._collected += units
            self._memory_units += units
            if self._closed:  # after shutdown nothing waits in memory
                self._spill(list(items))
                return
            self._memory.extend(items)
            excess = len(self._memory) - self.capacity
            if excess > 0:
                self._spill([self._memory.popleft() for _ in range(excess)])

    def counters(self) -> Counters:
        with self._lock:
            claimed = 0 if self._replay is None or self._replay.own else self._replay.units
            return Counters(
                collected=self._collected,
                written=self._written,
                dropped=self._dropped,
                spooled=self._spooled,
                pending=self._memory_units + self._spool_units + claimed,
                in_memory=self._memory_units,
                in_spool=self._spool_units + claimed,
                replayed=self._replayed,
                adopted=self._adopted,
                dropped_unspooled=self._dropped_unspooled,
                write_errors=self._write_errors,
            )

    @property
    def store_down(self) -> bool:
        """The last write failed with a "try again" error."""
        return self._retry.down

    # -- the flusher ------------------------------------------------------------------------

    def flush(
        self,
        write: Write[ItemT],
        *,
        force: bool = False,
        deadline: float | None = None,
        claim: bool = True,
    ) -> Flush:
        """Write what is owed, spool files first, in batches through ``write``.

        Waits out the back-off unless ``force``; stops starting batches at ``deadline`` (the
        clock's time); with ``claim``, after writing everything, takes in one file left by a
        writer that is gone (written by the next flush).
        """
        wait = -1.0
        if deadline is not None:
            wait = min(threading.TIMEOUT_MAX, max(0.0, deadline - self._clock()))
        if not self._flushing.acquire(timeout=wait):  # another flush hangs in the sink
            return Flush(0, done=False, waiting=True)
        try:
            if not force and not self._retry.due():
                self._spool_early()
                return Flush(0, done=False, waiting=True)
            result = self._write_all(write, deadline)
            if result.error is not None:
                self._spool_early()
            elif result.done and claim:
                result = self._claim(result)
            return result
        finally:
            self._flushing.release()

    def close(self) -> None:
        """Spool everything in memory and in flight, and stop: later flushes write nothing, a
        write still hanging counts nothing when it returns. Idempotent."""
        with self._lock:
            items: list[ItemT] = []
            inflight, self._inflight = self._inflight, None
            if inflight is not None and inflight.replay is None:
                items.extend(inflight.items)  # may be stored too, if it returns: keyed rows
            items.extend(self._memory)
            self._memory.clear()
            self._closed = True
            if self._replay is not None:
                self._replay.reader.close()  # what it had not written stays in its file
            self._spill(items)
        self.spool.release()

    # -- internals: writing ---------------------------------------------------------------

    def _write_all(self, write: Write[ItemT], deadline: float | None) -> Flush:
        written = 0
        self._recovered = False
        while deadline is None or self._clock() < deadline:
            batch = self._next_batch()
            if batch is None:
                return Flush(written, done=self._owes_nothing(), recovered=self._recovered)
            try:
                write(batch.items)
            except Exception as exc:
                transient = self._failed(batch, exc)
                error = exc if transient else None
                return Flush(written, done=False, error=error, refused=not transient)
            except BaseException:
                self._give_back(batch)  # interrupted: nothing was lost, nothing counted
                raise
            written += self._succeeded(batch)
        return Flush(written, done=False, recovered=self._recovered)

    def _next_batch(self) -> Batch[ItemT] | None:
        with self._lock:
            if self._closed:
                return None
            limit = 1 if self._isolate else self.batch_size
            while (replay := self._replay_source()) is not None:
                batch = self._replay_batch(replay, limit)
                if self._replay is None:  # the file could not be read
                    continue
                if batch is not None:
                    self._inflight = batch
                    return batch
                self._finish_replay(replay)
            if not self._memory:
                return None
            head = list(islice(self._memory, limit))
            items = head[: self._codec.batch_length(head, limit)]
            for _ in items:
                self._memory.popleft()
            self._inflight = Batch(items, self._units(items), None)
            return self._inflight

    def _replay_source(self) -> Replay[ItemT] | None:
        own_due = self._clock() >= self._own_unreadable_until
        if self._replay is None and self._own_items and own_due:
            self._replay = Replay(self.spool.reader(), own=True)
        return self._replay

    def _unreadable(self, replay: Replay[ItemT], exc: OSError) -> None:
        """A spool file cannot be read: leave it for a later try (the own file) or a later
        process (a claimed one); what was read of it waits in memory."""
        log.error("cannot read the spool %s: %s", replay.reader.path, exc)
        replay.reader.close()
        self._replay = None
        if replay.own:
            # Read again from its start later: its first items may then be stored twice
            # (keyed rows) and counted again (collected, so the counters still add up).
            self._own_unreadable_until = self._clock() + self.claim_every_s
            self._adopt(replay.consumed)
            self._spool_units += replay.consumed
        else:
            self._memory.extendleft(reversed(replay.peek))
            self._memory_units += replay.units
            replay.units = 0

    def _replay_batch(self, replay: Replay[ItemT], limit: int) -> Batch[ItemT] | None:
        units, damaged, error = replay.fill(limit, self._units)
        if not replay.own:  # a claimed file's items become ours as they are read
            self._adopt(units + damaged)
            replay.units += units + damaged
        self._consume(replay, damaged)
        self._dropped += damaged
        if error is not None:
            self._unreadable(replay, error)
            return None
        items = replay.take(limit, self._codec)
        return None if items is None else Batch(items, self._units(items), replay)

    def _finish_replay(self, replay: Replay[ItemT]) -> None:
        self._replay = None
        replay.remove(self.spool)
        if replay.own:
            leftover, self._spool_units = self._spool_units, 0
            self._own_items = False
        else:
            leftover = replay.units
        if leftover > 0:  # counted on the way in, never decoded: a codec that disagrees
            self._dropped += leftover
        elif leftover < 0:
            self._adopt(-leftover)

    def _succeeded(self, batch: Batch[ItemT]) -> int:
        with self._lock:
            if self._inflight is not batch:  # closed while it was written: it was spooled
                return 0
            self._inflight = None
            if self._retry.succeeded():
                self._recovered = True
            self._written += batch.units
            self._settle(batch)
            if batch.replay is not None:
                self._replayed += batch.units
                batch.replay.written += batch.units
            return batch.units

    def _failed(self, batch: Batch[ItemT], exc: Exception) -> bool:
        """Returns whether ``exc`` is a "try again" failure."""
        transient = self._retry.is_transient(exc)
        with self._lock:
            self._write_errors += 1
            if self._inflight is not batch:
                return transient
            self._inflight = None
            if transient:
                self._retry.failed(exc)
                self._put_back(batch)
            elif not self._retry.strike(batch.items[0]):
                self._put_back(batch)
            elif len(batch.items) > 1:  # retry one by one: drop only the item refused
                self._isolate = len(batch.items)
                self._put_back(batch)
            else:
                log.error("the store refuses a %s; dropped: %r", type(batch.items[0]).__name__, exc)
                self._dropped += batch.units
                if batch.replay is None:
                    self._dropped_unspooled += batch.units
                self._settle(batch)
        return transient

    def _give_back(self, batch: Batch[ItemT]) -> None:
        with self._lock:
            if self._inflight is batch:
                self._inflight = None
                self._put_back(batch)

    def _put_back(self, batch: Batch[ItemT]) -> None:
        queue = self._memory if batch.replay is None else batch.replay.peek
        queue.extendleft(reversed(batch.items))

    def _settle(self, batch: Batch[ItemT]) -> None:
        """``batch`` left the pipeline (written or dropped): it is no longer pending."""
        if self._isolate:
            self._isolate = max(0, self._isolate - len(batch.items))
        if batch.replay is None:
            self._memory_units -= batch.units
        else:
            self._consume(batch.replay, batch.units)

    def _consume(self, replay: Replay[ItemT], units: int) -> None:
        replay.consumed += units
        if replay.own:
            self._spool_units -= units
        else:
            replay.units -= units

    # -- internals: spooling and claims -----------------------------------------------------

    def _spool_early(self) -> None:
        """During an outage, memory goes to the spool (a crash then loses nothing)."""
        after = self.spool_after_s
        if after is None or not self._retry.down or self._retry.outage_s() < after:
            return
        with self._lock:
            items = list(self._memory)
            self._memory.clear()
            self._spill(items)

    def _spill(self, items: list[ItemT]) -> None:
        """Append ``items`` (already out of memory) to the spool; what does not fit is dropped.
        Under the lock throughout, so the counters never show items in between."""
        if not items:
            return
        try:
            kept = self.spool.append(items)
        except OSError as exc:
            log.error("cannot write the spool %s: %s", self.spool.path, exc)
            kept = 0
        kept_units, lost_units = self._units(items[:kept]), self._units(items[kept:])
        self._own_items = self._own_items or kept > 0
        self._memory_units -= kept_units + lost_units
        self._spool_units += kept_units
        self._spooled += kept_units
        self._dropped += lost_units
        self._dropped_unspooled += lost_units
        if kept < len(items):
            log.error(
                "dropped %d records: the store is unreachable and the spool %s is full or "
                "cannot be written",
                len(items) - kept,
                self.spool.path,
            )

    def _claim(self, result: Flush) -> Flush:
        now = self._clock()
        if now < self._next_claim:
            return result
        path = self.spool.claim()
        with self._lock:
            if path is None or self._closed:
                self._next_claim = now + self.claim_every_s
                return result
            self._replay = Replay(self.spool.reader(path), own=False)
        log.info("claimed the spool %s left by a writer that is gone", path.name)
        return Flush(result.written, done=False)

    def _adopt(self, units: int) -> None:
        self._collected += units
        self._adopted += units

    def _owes_nothing(self) -> bool:
        with self._lock:
            return not (self._memory or self._inflight or self._replay or self._own_items)

    def _units(self, items: Sequence[ItemT]) -> int:
        return self._codec.units(items)


__all__ = ["Pipeline", "Write"]
