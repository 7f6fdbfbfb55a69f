"""Where the hooks' records go: the :class:`RunSink` protocol, the store behind it by default,
and the operations the writer queues for it.

:class:`monitor.store.Store` satisfies :class:`RunSink`; tests and integrations may pass any
object with these six methods. A sink signals "try again later" by raising
:class:`~monitor.core.errors.StoreError` (``StoreUnavailable`` when the database is down) or
``OSError``; the writer then keeps, retries and, past its bounds, spools the records.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, TypeAlias

from monitor.core.analysis.model import TraceAnalysis
from monitor.core.run_records import RunInfo, RunStatus, StepRecord, WindowRecord

if TYPE_CHECKING:
    from monitor.store import Store

log = logging.getLogger(__name__)


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
    training thread never waits for a database (the writer thread makes every call)."""

    def __init__(self, url: str, *, opener: Callable[[str], Store] | None = None) -> None:
        self.url = url
        self._opener = opener
        self._store: Store | None = None
        self._lock = threading.Lock()

    def store(self) -> Store:
        """The open store; raises ``StoreUnavailable`` (or ``ConfigError``) if it cannot be."""
        with self._lock:
            if self._store is None:
                if self._opener is None:
                    from monitor.store import Store

                    self._opener = Store.open
                self._store = self._opener(self.url)
            return self._store

    def close(self) -> None:
        with self._lock:
            store, self._store = self._store, None
        if store is not None:
            store.close()

    def start_run(self, info: RunInfo) -> None:
        self.store().start_run(info)

    def end_run(self, run_id: str, ended_at: datetime, status: RunStatus) -> None:
        store = self.store()
        store.end_run(run_id, ended_at, status)
        from monitor.services.gather import refresh_findings

        try:  # the run's findings, for the dashboard; `gpulens advise` can always redo them
            refresh_findings(store, run_id)
        except Exception as exc:
            log.warning("gpulens: cannot store the advisor's findings for the run: %s", exc)

    def write_steps(self, steps: Sequence[StepRecord]) -> int:
        return self.store().write_steps(steps)

    def save_window(self, window: WindowRecord) -> None:
        self.store().save_window(window)

    def save_window_analysis(self, window_id: str, analysis: TraceAnalysis) -> None:
        self.store().save_window_analysis(window_id, analysis)

    def fail_window(self, window_id: str, error: str) -> None:
        self.store().fail_window(window_id, error)


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
