"""gpulens profiler hooks: record a PyTorch training run step by step, with profiler windows.

::

    import profiler_hooks

    with profiler_hooks.profile_steps(run_name="resnet", batch_size=64) as session:
        for batch in session.wrap_dataloader(loader):
            train_step(batch)
            session.step()

Or, without editing the loop: ``profiler_hooks.attach(optimizer=opt, dataloader=loader)``.
With your own ``torch.profiler.profile``: ``on_trace_ready=profiler_hooks.trace_handler()``.

Importing this package imports neither torch nor the store; a session imports them when it
starts. ``GPULENS_DISABLE=1`` turns every session into a step counter.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from profiler_hooks.config import HooksConfig, ProfileSchedule
    from profiler_hooks.handler import TraceHandler, trace_handler
    from profiler_hooks.records import RunInfo, RunStatus, StepRecord, WindowRecord
    from profiler_hooks.session import SessionError, StepSession, attach, profile_steps
    from profiler_hooks.sink import RunSink, StoreSink
    from profiler_hooks.writer import HookStats

__all__ = [
    "HookStats",
    "HooksConfig",
    "ProfileSchedule",
    "RunInfo",
    "RunSink",
    "RunStatus",
    "SessionError",
    "StepRecord",
    "StepSession",
    "StoreSink",
    "TraceHandler",
    "WindowRecord",
    "attach",
    "profile_steps",
    "trace_handler",
]

_HOME = {
    "HooksConfig": "config",
    "ProfileSchedule": "config",
    "RunInfo": "records",
    "RunStatus": "records",
    "StepRecord": "records",
    "WindowRecord": "records",
    "HookStats": "writer",
    "SessionError": "session",
    "StepSession": "session",
    "attach": "session",
    "profile_steps": "session",
    "RunSink": "sink",
    "StoreSink": "sink",
    "TraceHandler": "handler",
    "trace_handler": "handler",
}


def __getattr__(name: str) -> Any:
    # Lazy: ``monitor.store`` imports profiler_hooks.records, which runs this file first.
    if name in _HOME:
        value = getattr(import_module(f"profiler_hooks.{_HOME[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'profiler_hooks' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
