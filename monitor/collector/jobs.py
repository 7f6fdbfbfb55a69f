"""The collector's jobs: sample, flush, rollup, retention — plain methods, no scheduler.

The daemon (:mod:`monitor.collector.daemon`) calls these on a schedule; tests call them directly.
A poll runs in its own daemon thread with a deadline: a hung NVML call marks the collection
"stale since" the poll began and never blocks the other jobs or the shutdown. How a poll is
waited for is an argument (:data:`PollWait`, by default :func:`join_poll`), so tests decide which
poll hangs instead of racing a real deadline. Records go to the store through the delivery
pipeline (:mod:`monitor.pipeline`): kept in memory, spooled at the first failed flush, replayed
exactly once; the final flush has a deadline, whatever the database does, and what it could not
write is spooled.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from monitor.clock import Clock, SystemClock
from monitor.collector.exporter import ExporterSnapshot
from monitor.collector.sampler import Sampler, new_event
from monitor.core.errors import ConfigError, StoreError, StoreFileReplaced, StoreUnavailable
from monitor.core.gpu_records import CollectorStatus, Event, GpuInfo, GpuSample, Record
from monitor.core.status_report import collector_health
from monitor.pipeline import Flush, Pipeline
from monitor.pipeline.spool_names import process_alive
from monitor.store import Store
from monitor.store.maintenance import floor_time

log = logging.getLogger(__name__)

StoreOpener = Callable[[], Store]


@dataclass(frozen=True, slots=True)
class JobSettings:
    interval_seconds: float = 1.0
    poll_deadline_seconds: float = 5.0
    flush_seconds: float = 5.0
    rollup_seconds: float = 60.0
    retention_seconds: float = 3600.0


PollWait = Callable[[threading.Thread, datetime, float], bool]
"""``wait(thread, started, timeout_seconds)``: wait up to ``timeout_seconds`` for the poll running
in ``thread`` (begun at ``started``) to end, and say whether it has."""


def join_poll(thread: threading.Thread, started: datetime, timeout_seconds: float) -> bool:
    """The production :data:`PollWait`: a thread join with the real deadline."""
    thread.join(timeout_seconds)
    return not thread.is_alive()


class _Poll:
    """One poll running in a daemon thread (a hung driver call cannot hold the process)."""

    def __init__(
        self, tick: Callable[[], list[Record]], started: datetime, wait_for: PollWait
    ) -> None:
        self.started = started
        self._wait_for = wait_for
        self.records: list[Record] | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(tick,), daemon=True, name="gpulens-poll"
        )
        self._thread.start()

    def _run(self, tick: Callable[[], list[Record]]) -> None:
        try:
            self.records = tick()
        except BaseException as exc:  # reported by the sample job, never lost silently
            self.error = exc

    def wait(self, timeout_seconds: float) -> bool:
        return self._wait_for(self._thread, self.started, timeout_seconds)


class Collector:
    """State shared by the jobs of one collector process.

    ``wait_for_poll`` waits for a poll with its deadline (:func:`join_poll`, a thread join);
    tests pass one that says which poll hangs.
    """

    def __init__(
        self,
        sampler: Sampler,
        pipeline: Pipeline[Record],
        open_store: StoreOpener,
        *,
        settings: JobSettings | None = None,
        clock: Clock | None = None,
        version: str | None = None,
        wait_for_poll: PollWait = join_poll,
    ) -> None:
        self.sampler = sampler
        self.pipeline = pipeline
        self.settings = settings or JobSettings()
        self.clock = clock or SystemClock()
        self.version = version
        self._open_store = open_store
        self._store: Store | None = None
        self._store_down_logged = False
        self._facts_owed = False  # a recreated SQLite file lacks the host and GPU facts
        self._wait_for_poll = wait_for_poll
        self._poll: _Poll | None = None
        self.stale_since: datetime | None = None
        self.started_at = self.clock.wall()
        # Every heartbeat states this: a flush job that outlives stop() then says "stopped" too.
        self._state = "running"
        self._gpus: dict[str, GpuInfo] = {}
        self._latest: dict[str, GpuSample] = {}
        self._xid_last: dict[str, int] = {}
        self._xid_total: dict[str, int] = {}
        self._rolled_until: datetime | None = None
        self._dirty_since: datetime | None = None
        self._lock = threading.Lock()

    @property
    def host(self) -> str:
        return self.sampler.host

    # -- jobs -----------------------------------------------------------------------------

    def start(self) -> None:
        """Open the source (may raise ``DriverUnavailable``) and queue the start records."""
        self._accept(self.sampler.start())

    def connect(self, *, take_over: bool = False) -> None:
        """Open the store now (raises ``StoreUnavailable`` if it cannot be reached); unless
        ``take_over``, raise ``ConfigError`` when a live collector of another process holds
        this host name (both would write under the same GPU ids, one's counters hidden)."""
        store = self._connected_store()
        if take_over:
            return
        holder = next((c for c in store.collectors() if c.host == self.host), None)
        if holder is None or holder.pid == os.getpid():
            return
        if self.host == socket.gethostname() and not process_alive(holder.pid):
            return  # killed on this machine (a restart after SIGKILL): its row is not a rival
        now = self.clock.wall()
        # Live as `gpulens status` says it: running, a heartbeat within 3 flushes (30 s at least).
        if collector_health(holder, now, self.settings.flush_seconds) in ("ok", "stale"):
            age_s = max(0.0, (now - holder.heartbeat_at).total_seconds())
            raise ConfigError(
                f"host name {self.host} is in use by a live collector (pid {holder.pid}, "
                f"started {holder.started_at:%Y-%m-%d %H:%M:%S %Z}, heartbeat {age_s:.0f} s "
                "ago); stop it, choose another --host-name, or pass --take-over"
            )

    def sample(self) -> None:
        """One tick: harvest a finished poll, start the next, wait up to the deadline."""
        if self._poll is not None:
            if not self._poll.wait(0):
                self._mark_stale(self._poll.started)
                return
            self._harvest()  # a poll that hung has returned: keep its records
        self._poll = _Poll(self.sampler.tick, self.clock.wall(), self._wait_for_poll)
        if self._poll.wait(self.settings.poll_deadline_seconds):
            self._harvest()
        else:
            self._mark_stale(self._poll.started)

    def flush(self) -> None:
        """Write what is buffered (the spool first); on a database outage keep it, spooled."""
        self._harvest_finished()
        self._flushed(self.pipeline.flush(self._write))

    def _flushed(self, result: Flush) -> None:
        if result.waiting:  # backing off after a failure
            return
        if result.error is not None:
            self._store_failed(result.error)
            return
        try:
            self._connected_store().heartbeat(self.status(self._state))
        except StoreError as exc:
            self._store_failed(exc)
            return
        if self._store_down_logged:
            log.warning("database reachable again; buffered records written")
            self._store_down_logged = False

    def rollup(self) -> None:
        """Roll this host's new (and late) samples up into 1-min and 1-h buckets."""
        now = self.clock.wall()
        with self._lock:
            dirty, self._dirty_since = self._dirty_since, None
        since_candidates = [t for t in (dirty, self._rolled_until) if t is not None]
        if not since_candidates:
            return
        since, until = min(since_candidates), floor_time(now, 60)
        try:
            self._connected_store().rollup(self.host, since, until)
        except StoreError as exc:
            with self._lock:
                self._dirty_since = (
                    since if self._dirty_since is None else min(since, self._dirty_since)
                )
            self._store_failed(exc)
            return
        self._rolled_until = max(until, self._rolled_until or until)

    def apply_retention(self) -> None:
        try:
            deleted = self._connected_store().apply_retention(self.clock.wall())
        except StoreError as exc:
            self._store_failed(exc)
            return
        if any(deleted.values()):
            log.info("retention removed %s", deleted)

    def stop(self, reason: str, flush_deadline_seconds: float = 10.0) -> None:
        """Final records, a last flush within the deadline (a hung database cannot hold it
        longer), then spool what is left."""
        self._harvest_finished()
        self._state = "stopped"
        self.pipeline.add(self.sampler.stop(reason))
        deadline = self.pipeline.clock() + flush_deadline_seconds
        flusher = threading.Thread(
            target=self._final_flush, args=(deadline,), daemon=True, name="gpulens-final-flush"
        )
        flusher.start()
        flusher.join(flush_deadline_seconds)
        self.pipeline.close()  # memory and a write still in flight go to the spool
        if self.pipeline.counters().pending:
            log.warning("unflushed records kept in the spool %s", self.pipeline.spool.path)
        if not flusher.is_alive() and self._store is not None:
            with contextlib.suppress(StoreError):
                self._store.heartbeat(self.status(self._state))
            self._store.close()

    def _final_flush(self, deadline: float) -> None:
        result = self.pipeline.flush(self._write, force=True, deadline=deadline, claim=False)
        if result.error is not None:
            self._store_failed(result.error)

    # -- state for status and the exporter -------------------------------------------------

    def status(self, state: str) -> CollectorStatus:
        counters = self.pipeline.counters()
        return CollectorStatus(
            self.host,
            os.getpid(),
            state,
            self.sampler.source.is_simulated,
            self.version,
            self.settings.interval_seconds,
            self.started_at,
            self.clock.wall(),
            self.stale_since,
            counters.collected,
            counters.written,
            counters.dropped,
            counters.spooled,
            counters.pending,
            self.sampler.poll_errors,
        )

    def snapshot(self) -> ExporterSnapshot:
        counters = self.pipeline.counters()
        with self._lock:
            gpus = tuple((info, self._latest.get(uuid)) for uuid, info in self._gpus.items())
            xid_last, xid_total = dict(self._xid_last), dict(self._xid_total)
        return ExporterSnapshot(
            gpus=gpus,
            xid_last=xid_last,
            xid_total=xid_total,
            counters={
                "collected": counters.collected,
                "written": counters.written,
                "dropped": counters.dropped,
                "spooled": counters.spooled,
                "pending": counters.pending,
                "poll_errors": self.sampler.poll_errors,
            },
            stale_since=None if self.stale_since is None else self.stale_since.timestamp(),
            host=self.host,
            is_simulated=self.sampler.source.is_simulated,
        )

    # -- internals ------------------------------------------------------------------------

    def _harvest_finished(self) -> None:
        if self._poll is not None and self._poll.wait(0):
            self._harvest()

    def _harvest(self) -> None:
        poll, self._poll = self._poll, None
        assert poll is not None
        if poll.error is not None:
            log.error("poll failed: %s", poll.error, exc_info=poll.error)
            return
        records = poll.records or []
        if self.stale_since is not None:
            records.append(
                new_event(
                    self.clock.wall(),
                    self.host,
                    "collection_recovered",
                    detail=f"stale since {self.stale_since.isoformat()}",
                )
            )
            log.warning("collection recovered after a poll that hung")
            self.stale_since = None
        self._accept(records)

    def _accept(self, records: list[Record]) -> None:
        with self._lock:
            for record in records:
                if isinstance(record, GpuSample):
                    self._latest[record.uuid] = record
                elif isinstance(record, GpuInfo):
                    self._gpus[record.uuid] = record
                elif isinstance(record, Event) and record.kind == "xid" and record.uuid:
                    self._xid_last[record.uuid] = int(record.value or 0)
                    self._xid_total[record.uuid] = self._xid_total.get(record.uuid, 0) + 1
        self.pipeline.add(records)

    def _mark_stale(self, since: datetime) -> None:
        if self.stale_since is None:
            self.stale_since = since
            log.error(
                "a poll started at %s has not returned within %.1f s; collection is stale "
                "(NVML call hung?) — other jobs go on",
                since.isoformat(),
                self.settings.poll_deadline_seconds,
            )
            self.pipeline.add(
                [
                    new_event(
                        self.clock.wall(),
                        self.host,
                        "collection_stale",
                        detail=f"poll started {since.isoformat()} hung",
                    )
                ]
            )

    def _write(self, records: Sequence[Record]) -> None:
        """The pipeline's write: one batch into the store (opened on first use)."""
        try:
            self._write_batch(records)
        except StoreFileReplaced as exc:
            self._recreate_store(exc, len(records))
            self._write_batch(records)  # what fails now stays pending
        sample_times = [r.ts for r in records if isinstance(r, GpuSample)]
        if sample_times:
            earliest = min(sample_times)
            with self._lock:
                if self._dirty_since is None or earliest < self._dirty_since:
                    self._dirty_since = earliest

    def _connected_store(self) -> Store:
        if self._store is None:
            self._store = self._open_store()
        return self._store

    def _write_batch(self, records: Sequence[Record]) -> None:
        if self._facts_owed:  # a new file: the host and GPU facts first, in the same commit
            self._connected_store().write([*self.sampler.facts_records(), *records])
            self._facts_owed = False
        else:
            self._connected_store().write(records)

    def _recreate_store(self, exc: StoreFileReplaced, count: int) -> None:
        """The SQLite file went away under the collector: close the old engine first (its last
        connection checkpoints into the lost file and removes the -wal file beside the path),
        then the next write opens, creates and upgrades a new file."""
        log.warning(
            "%s; what it held is gone with it; recreating it and writing the last %d records "
            "again (counted written once they are in the new file)",
            exc,
            count,
        )
        store, self._store = self._store, None
        self._facts_owed = True
        if store is not None:
            store.close()

    def _store_failed(self, exc: Exception) -> None:
        if not self._store_down_logged:
            pending = self.pipeline.counters().pending
            log.error("%s — buffering (%d records pending), retrying", exc, pending)
            self._store_down_logged = True
        if isinstance(exc, StoreUnavailable):
            return
        log.debug("store error", exc_info=exc)


__all__ = ["Collector", "JobSettings", "PollWait", "join_poll"]
