"""The bounded buffer between sampling and the store, with a spool file for long outages.

Counters obey ``collected == written + dropped + pending`` at all times, where ``pending`` is
what sits in memory plus what waits in the spool file. When the database is down the buffer
keeps up to ``capacity`` records in memory; beyond that the oldest go to the spool (JSON lines),
up to ``spool_max_bytes``; beyond that they are dropped and counted. When the database answers
again the spool is replayed first, then the memory buffer; rows are keyed, so a replay that is
interrupted and repeated stores nothing twice.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from monitor.core.errors import StoreError
from monitor.core.gpu_records import Record, record_from_dict, record_to_dict

log = logging.getLogger(__name__)

Writer = Callable[[Sequence[Record]], None]


@dataclass(frozen=True, slots=True)
class Counters:
    collected: int
    written: int
    dropped: int
    spooled: int
    pending: int


class Spool:
    """An append-only JSON-lines file of records waiting for the database."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.count = self._count_existing()

    def _count_existing(self) -> int:
        if not self.path.exists():
            return 0
        with self.path.open("rb") as handle:
            return sum(1 for line in handle if line.strip())

    def size(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def append(self, records: Sequence[Record]) -> int:
        """Append what fits under ``max_bytes``; returns how many records were kept."""
        lines = [json.dumps(record_to_dict(r), separators=(",", ":")) + "\n" for r in records]
        room = self.max_bytes - self.size()
        kept: list[str] = []
        for line in lines:
            room -= len(line)
            if room < 0:
                break
            kept.append(line)
        if kept:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.writelines(kept)
                handle.flush()
                os.fsync(handle.fileno())
            self.count += len(kept)
        return len(kept)

    def read_all(self) -> list[Record]:
        """Every record in the file; lines that do not parse (a torn last write) are skipped."""
        records: list[Record] = []
        with self.path.open(encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, 1):
                try:
                    records.append(record_from_dict(json.loads(line)))
                except ValueError:
                    log.warning("spool %s line %d is damaged; skipped", self.path, number)
        return records

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
        self.count = 0


class Buffer:
    """Thread-safe: the sample job calls :meth:`add`, the flush job :meth:`flush`."""

    def __init__(
        self,
        spool: Spool,
        *,
        capacity: int = 100_000,
        batch_size: int = 5_000,
    ) -> None:
        self.spool = spool
        self.capacity = capacity
        self.batch_size = batch_size
        self._records: deque[Record] = deque()
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        # Records left in the spool by an earlier run count as collected by this one.
        self._collected = spool.count
        self._written = 0
        self._dropped = 0
        self._spooled = 0

    def counters(self) -> Counters:
        with self._lock:
            pending = len(self._records) + self.spool.count
            return Counters(self._collected, self._written, self._dropped, self._spooled, pending)

    def add(self, records: Sequence[Record]) -> None:
        with self._lock:
            self._collected += len(records)
            self._records.extend(records)
        # While a flush runs it owns the head of the queue; it spills after itself.
        if self._flushing.acquire(blocking=False):
            try:
                self._spill_overflow()
            finally:
                self._flushing.release()

    def flush(self, write: Writer) -> int:
        """Write the spool, then the buffer, in batches. Returns the records written; raises
        :class:`StoreError` (after spilling what does not fit in memory) if the store fails."""
        with self._flushing:
            try:
                return self._replay_spool(write) + self._drain(write)
            finally:
                self._spill_overflow()

    def spill_all(self, lock_timeout: float | None = None) -> None:
        """Move everything in memory to the spool (at shutdown, when the store is gone).

        With ``lock_timeout`` it goes ahead even if a flush is stuck in a write: the process
        is ending, and a batch both written and spooled is stored once (rows are keyed).
        """
        acquired = self._flushing.acquire(timeout=-1 if lock_timeout is None else lock_timeout)
        try:
            self._spill(len(self._records))
        finally:
            if acquired:
                self._flushing.release()

    def _replay_spool(self, write: Writer) -> int:
        if self.spool.count == 0:
            return 0
        records = self.spool.read_all()
        for start in range(0, len(records), self.batch_size):
            write(records[start : start + self.batch_size])
        with self._lock:
            lost = self.spool.count - len(records)
            self._written += len(records)
            self._dropped += lost
            self.spool.clear()
        log.info("replayed %d spooled records", len(records))
        return len(records)

    def _drain(self, write: Writer) -> int:
        written = 0
        while True:
            with self._lock:
                batch = list(islice(self._records, 0, self.batch_size))
            if not batch:
                return written
            write(batch)
            with self._lock:
                for _ in batch:
                    self._records.popleft()
                self._written += len(batch)
            written += len(batch)

    def _spill_overflow(self) -> None:
        with self._lock:
            excess = len(self._records) - self.capacity
        if excess > 0:
            self._spill(excess)

    def _spill(self, count: int) -> None:
        # Under the lock throughout, so the counters never show records in flight.
        with self._lock:
            oldest = [self._records.popleft() for _ in range(min(count, len(self._records)))]
            if not oldest:
                return
            try:
                kept = self.spool.append(oldest)
            except OSError as exc:
                log.error("cannot write the spool %s: %s", self.spool.path, exc)
                kept = 0
            self._spooled += kept
            self._dropped += len(oldest) - kept
        if kept < len(oldest):
            log.error(
                "dropped %d records: the database is unreachable and the spool %s is full",
                len(oldest) - kept,
                self.spool.path,
            )


__all__ = ["Buffer", "Counters", "Spool", "StoreError"]
