"""Analyzing saved profiler windows away from the training thread.

Modes (``analysis=`` of :func:`profiler_hooks.profile_steps`):

- ``"process"`` (default): one child process at a time, ``python -m
  profiler_hooks.analyze_window``, at low priority; it reads the trace, writes the analysis to
  the store itself (or spools the window for a later session when the store is down) and so
  finishes even after the training process has ended. Parsing a trace takes seconds of CPU
  that would otherwise compete with training for the GIL. Needs a store another process can
  open: with a caller's own sink, or in-memory SQLite, this mode runs as ``"inline"``.
- ``"inline"``: in the hooks' writer thread (tests; small traces).
- ``"off"``: traces are saved and never analyzed here (``gpulens import TRACE`` later).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from profiler_hooks.config import AnalysisMode
from profiler_hooks.sink import AnalyzeWindow, FailWindow, SaveAnalysis, SinkOp

log = logging.getLogger(__name__)

EXIT_SPOOLED = 3
"""The analysis process's status when the store was down and the window was spooled."""

# ``python -m profiler_hooks.analyze_window``, also where gpulens is not installed but only
# on this process's sys.path (appended: it never shadows what the child finds by itself).
_CHILD_MAIN = (
    f"import sys; sys.path.append({str(Path(__file__).resolve().parent.parent)!r}); "
    "from profiler_hooks.analyze_window import main; sys.exit(main(sys.argv[1:]))"
)


@dataclass
class _Child:
    window_id: str
    process: subprocess.Popen[bytes]
    stderr: IO[bytes]


class WindowAnalyzer:
    """Runs analyses one at a time and reports results through ``emit`` (the writer's queue).

    Only the writer thread calls it.
    """

    def __init__(
        self,
        mode: AnalysisMode,
        *,
        emit: Callable[[SinkOp], None],
        store_url: str | None = None,
        spool_dir: Path | None = None,
    ) -> None:
        from monitor.store.engine import is_shared  # SQLAlchemy: only once a run starts

        shared = store_url is not None and is_shared(store_url)
        self.mode: AnalysisMode = "inline" if mode == "process" and not shared else mode
        self._emit = emit
        self._store_url = store_url
        self._spool_dir = spool_dir
        self._queue: deque[AnalyzeWindow] = deque()
        self._child: _Child | None = None

    @property
    def busy(self) -> bool:
        return self._child is not None or bool(self._queue)

    def submit(self, window_id: str, trace_path: str) -> None:
        """Analyze the window's trace (now, or when the running analysis is done)."""
        if self.mode == "off":
            return
        if self.mode == "inline":
            self._analyze_inline(window_id, trace_path)
            return
        self._queue.append(AnalyzeWindow(window_id, trace_path))
        self.poll()

    def poll(self) -> None:
        """Reap a finished child; start the next queued analysis."""
        child = self._child
        if child is not None:
            status = child.process.poll()
            if status is None:
                return
            self._child = None
            self._reap(child, status)
        while self._queue and self._child is None:
            self._start(self._queue.popleft())

    def wait(self, deadline: float) -> list[AnalyzeWindow]:
        """Let analyses run until ``deadline`` (``time.monotonic``); returns the queued ones
        never started. A child still running then goes on alone and writes its own result."""
        while self.busy and time.monotonic() < deadline:
            self.poll()
            time.sleep(0.02)
        self.poll()
        if self._child is not None:
            log.info(
                "gpulens: the analysis of window %s goes on in process %d",
                self._child.window_id,
                self._child.process.pid,
            )
        left = list(self._queue)
        self._queue.clear()
        return left

    def _start(self, job: AnalyzeWindow) -> None:
        if not Path(job.trace_path).exists():
            self._emit(FailWindow(job.window_id, f"trace file not found: {job.trace_path}"))
            return
        assert self._store_url is not None and self._spool_dir is not None
        env = dict(os.environ, GPULENS_DB=self._store_url)  # not argv: URLs hold passwords
        stderr = tempfile.TemporaryFile()  # noqa: SIM115  # closed when the child is reaped
        command = [sys.executable, "-c", _CHILD_MAIN]
        command += ["--window-id", job.window_id, "--spool-dir", str(self._spool_dir)]
        try:
            process = subprocess.Popen(
                [*command, job.trace_path],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,  # a Ctrl-C of the training script does not stop it
            )
        except OSError as exc:
            stderr.close()
            log.warning("gpulens: cannot start the analysis process (%s); analyzing here", exc)
            self._analyze_inline(job.window_id, job.trace_path)
            return
        self._child = _Child(job.window_id, process, stderr)

    def _reap(self, child: _Child, status: int) -> None:
        with child.stderr:
            child.stderr.seek(0)
            lines = child.stderr.read().decode(errors="replace").strip().splitlines()
        if status == 0:
            return
        if status == EXIT_SPOOLED:
            log.warning("gpulens: window %s waits in the spool for its analysis", child.window_id)
            return
        detail = lines[-1] if lines else "no message"
        self._emit(
            FailWindow(child.window_id, f"the analysis process exited with {status}: {detail}")
        )

    def _analyze_inline(self, window_id: str, trace_path: str) -> None:
        from monitor.traces.analyze import analyze_path

        try:
            analysis = analyze_path(trace_path)
        except Exception as exc:
            log.warning("gpulens: cannot analyze %s: %s", trace_path, exc)
            self._emit(FailWindow(window_id, describe_error(exc)))
            return
        self._emit(SaveAnalysis(window_id, analysis, trace_path))


def describe_error(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
