"""Where the hooks' records go: the :class:`RunSink` protocol, the store behind it by default,
and the operations the writer queues for it.

:class:`monitor.store.Store` satisfies :class:`RunSink`; tests and integrations may pass any
object with these six methods. A sink signals "try again later" by raising
:class:`~monitor.core.errors.StoreError` (``StoreUnavailable`` when the database is down,
``SchemaOutOfDate`` when its schema is behind) or ``OSError``; the writer then keeps, retries
and, past its bounds, spools the records.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, TypeAlias

from monitor.core.analysis.results import TraceAnalysis
from monitor.core.run_records import RunInfo, RunStatus, StepRecord, WindowRecord

if TYPE_CHECKING:
    from monitor.store import Store


class RunSink(Protocol):
    """What the hooks write to. Each call is one unit: it happens entirely or raises."""

    def start_run(self, info: RunInfo) -> None: ...

    def end_run(self, run_id: str, ended_at: datetime, status: RunStatus) -> None: ...

    def write_steps(self, steps: Sequence[StepRecord]) -> int: ...

    def save_window(self, window: WindowRecord) -> None: ...

    def save_window_analysis(self, window_id: str, analysis: TraceAnalysis) -> None: ...

    def fail_window(self, window_id: str, error: str) -> None: ...


class StoreSink:
    """The default sink: :class:`monitor.store.Store` at ``url``, opened on first use, so the
    training thread never waits for a database (the writer thread makes every call).

    The training process never migrates a shared database: a Postgres store is only checked,
    and one whose schema is behind raises ``SchemaOutOfDate`` saying what to run (a
    ``StoreError``: the writer keeps and spools the records, and retries). Only the embedded
    SQLite default upgrades itself. Findings are not computed here: a run's end and each window
    analysis mark them stale, and the readers compute them again (``monitor.services.runs``).
    """

    def __init__(self, url: str, *, opener: Callable[[str], Store] | None = None) -> None:
        self.url = url
        self._opener = opener
        self._store: Store | None = None
        self._lock = threading.Lock()

    def store(self) -> Store:
        """The open store; raises ``StoreUnavailable``, ``SchemaOutOfDate`` (or
        ``ConfigError``) if it cannot be."""
        with self._lock:
            if self._store is None:
                self._store = (self._opener or open_hook_store)(self.url)
            return self._store

    def close(self) -> None:
        with self._lock:
            store, self._store = self._store, None
        if store is not None:
            store.close()

    def start_run(self, info: RunInfo) -> None:
        self.store().start_run(info)

    def end_run(self, run_id: str, ended_at: datetime, status: RunStatus) -> None:
        self.store().end_run(run_id, ended_at, status)

    def write_steps(self, steps: Sequence[StepRecord]) -> int:
        return self.store().write_steps(steps)

    def save_window(self, window: WindowRecord) -> None:
        self.store().save_window(window)

    def save_window_analysis(self, window_id: str, analysis: TraceAnalysis) -> None:
        self.store().save_window_analysis(window_id, analysis)

    def fail_window(self, window_id: str, error: str) -> None:
        self.store().fail_window(window_id, error)


def open_hook_store(url: str) -> Store:
    """The store at ``url`` as the training job's processes open it: SQLite upgraded in place
    (the embedded default, the user's own file), any other database checked only; raises
    ``SchemaOutOfDate`` with the ``gpulens db upgrade --db URL`` to run (password masked)."""
    from monitor.store import Store
    from monitor.store.engine import checked_url, is_shared, sqlite_file

    checked_url(url, source="the store URL of the hooks")  # a ConfigError naming a bad URL
    is_sqlite = sqlite_file(url) is not None or not is_shared(url)  # a file, or in memory
    return Store.open(url, upgrade=is_sqlite)


# -- operations the writer queues, in order, for the sink -------------------------------------


@dataclass(frozen=True, slots=True)
class StartRun:
    info: RunInfo

    def apply(self, sink: RunSink) -> None:
        sink.start_run(self.info)


@dataclass(frozen=True, slots=True)
class EndRun:
    run_id: str
    ended_at: datetime
    status: RunStatus

    def apply(self, sink: RunSink) -> None:
        sink.end_run(self.run_id, self.ended_at, self.status)


@dataclass(frozen=True, slots=True)
class SaveWindow:
    """Save the window; then, with ``analyze``, analyze its trace in the background."""

    window: WindowRecord
    analyze: bool = True

    def apply(self, sink: RunSink) -> None:
        sink.save_window(self.window)


@dataclass(frozen=True, slots=True)
class SaveAnalysis:
    window_id: str
    analysis: TraceAnalysis
    trace_path: str  # spooled as "analyze this trace again": the analysis is not kept on disk

    def apply(self, sink: RunSink) -> None:
        sink.save_window_analysis(self.window_id, self.analysis)


@dataclass(frozen=True, slots=True)
class FailWindow:
    window_id: str
    error: str

    def apply(self, sink: RunSink) -> None:
        sink.fail_window(self.window_id, self.error)


@dataclass(frozen=True, slots=True)
class AnalyzeWindow:
    """A window saved earlier whose analysis is still owed (read back from a spool file)."""

    window_id: str
    trace_path: str

    def apply(self, sink: RunSink) -> None:
        """Nothing to write: the writer hands the trace to its analyzer."""


@dataclass(frozen=True, slots=True)
class StepBatch:
    """Steps read back from a spool file (this run's or an earlier one's)."""

    steps: tuple[StepRecord, ...]

    def apply(self, sink: RunSink) -> None:
        sink.write_steps(self.steps)


SinkOp: TypeAlias = (
    StartRun | EndRun | SaveWindow | SaveAnalysis | FailWindow | AnalyzeWindow | StepBatch
)
