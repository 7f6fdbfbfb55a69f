"""``on_trace_ready`` for a torch.profiler you drive yourself (:func:`trace_handler`; this
module is not named after it, so ``profiler_hooks.trace_handler`` is always the function)::

    with torch.profiler.profile(
        schedule=torch.profiler.schedule(wait=1, warmup=1, active=3),
        on_trace_ready=profiler_hooks.trace_handler("resnet"),
    ) as prof:
        for batch in loader:
            train_step(batch)
            prof.step()

Each ready trace is saved as ``<trace_dir>/<run_id>/window-<first>-<last>.pt.trace.json.gz``,
recorded as a profiler window of a run and analyzed in the background. Inside an open
:class:`~profiler_hooks.session.StepSession` (and without its own ``run_name``, ``db`` or
``sink``) the windows join the session's run; otherwise the handler records a run of its own,
ended by ``handler.close()`` or at interpreter exit.
"""

from __future__ import annotations

import atexit
import logging
import os
import time
import uuid
from typing import TYPE_CHECKING

from profiler_hooks.config import HooksConfig, resolve_config
from profiler_hooks.recorder import RunRecorder, describe_run
from profiler_hooks.session import active_session
from profiler_hooks.sink import RunSink
from profiler_hooks.step_timer import WallClock
from profiler_hooks.windows import capture_trace

if TYPE_CHECKING:
    import torch.profiler

log = logging.getLogger(__name__)


def trace_handler(
    run_name: str | None = None,
    *,
    db: str | None = None,
    trace_dir: str | os.PathLike[str] | None = None,
    analyze: bool = True,
    sink: RunSink | None = None,
) -> TraceHandler:
    """A torch-style ``on_trace_ready`` factory (see the module's docstring). Raises
    :class:`~monitor.core.errors.ConfigError` for a bad argument or variable."""
    config = resolve_config(
        run_name,
        db=db,
        trace_dir=trace_dir,
        analysis="process" if analyze else "off",
        has_sink=sink is not None,
    )
    joins_session = run_name is None and db is None and sink is None and trace_dir is None
    return TraceHandler(config, sink=sink, join_session=joins_session)


class TraceHandler:
    """Call it with a ``torch.profiler.profile`` whose trace is ready."""

    def __init__(
        self, config: HooksConfig, *, sink: RunSink | None = None, join_session: bool = True
    ) -> None:
        self.config = config
        self._sink = sink
        self._join_session = join_session
        self._own: RunRecorder | None = None
        self.run_id: str | None = None
        """The run of this handler's own (the latest one), once it has saved a trace."""

    def __call__(self, prof: torch.profiler.profile) -> None:
        try:
            first, last = traced_steps(prof)
            recorder = self._recorder()
            if recorder is not None:
                recorder.save_trace(capture_trace(prof, first, last, "manual"))
        except Exception as exc:
            log.warning("gpulens: cannot save the profiler trace: %s", exc, exc_info=True)

    def close(self) -> None:
        """End the handler's own run (if it made one), waiting for the writer; a trace after
        this starts a new run."""
        own, self._own = self._own, None
        if own is not None:
            atexit.unregister(self.close)
            own.close("finished")

    def _recorder(self) -> RunRecorder | None:
        if self._own is not None:
            return self._own
        session = active_session() if self._join_session else None
        if session is not None and session.recorder is not None:
            return session.recorder
        if not self.config.enabled:
            return None
        self._own = _start_run(self.config, self._sink)
        self.run_id = self._own.run_id
        atexit.register(self.close)
        return self._own


def traced_steps(prof: torch.profiler.profile) -> tuple[int, int]:
    """The first and last step of the cycle whose trace is ready, from the profiler's step
    count and schedule. Called from ``prof.step()`` the cycle ended a step ago; from
    ``prof.stop()`` it ends at the current step."""
    from torch.profiler import ProfilerAction

    step, schedule = prof.step_num, prof.schedule
    last = step - 1 if step > 0 and schedule(step - 1) == ProfilerAction.RECORD_AND_SAVE else step
    if not prof.record_steps:  # no schedule: one cycle from the start
        return 0, last
    first = last
    while first > 0 and schedule(first - 1) == ProfilerAction.RECORD:
        first -= 1
    return first, last


def _start_run(config: HooksConfig, sink: RunSink | None) -> RunRecorder:
    clock = WallClock(time.time(), time.perf_counter_ns())
    info = describe_run(config, uuid.uuid4().hex, clock, {"source": "trace_handler"})
    recorder = RunRecorder(config, info, clock, sink)
    recorder.start()
    return recorder
