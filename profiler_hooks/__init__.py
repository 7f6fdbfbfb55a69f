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
    from monitor.core.errors import SessionError
    from monitor.core.run_records import RunInfo, RunStatus, StepRecord, WindowRecord
    from profiler_hooks.config import HookOptions, HooksConfig, ProfileSchedule
    from profiler_hooks.handler import TraceHandler, trace_handler
    from profiler_hooks.session import StepSession, attach, profile_steps
    from profiler_hooks.sink import RunSink, StoreSink
    from profiler_hooks.writer import HookStats

__all__ = [
    "HookOptions",
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
    "HookOptions": "profiler_hooks.config",
    "HooksConfig": "profiler_hooks.config",
    "ProfileSchedule": "profiler_hooks.config",
    "RunInfo": "monitor.core.run_records",
    "RunStatus": "monitor.core.run_records",
    "StepRecord": "monitor.core.run_records",
    "WindowRecord": "monitor.core.run_records",
    "HookStats": "profiler_hooks.writer",
    "SessionError": "monitor.core.errors",
    "StepSession": "profiler_hooks.session",
    "attach": "profiler_hooks.session",
    "profile_steps": "profiler_hooks.session",
    "RunSink": "profiler_hooks.sink",
    "StoreSink": "profiler_hooks.sink",
    "TraceHandler": "profiler_hooks.handler",
    "trace_handler": "profiler_hooks.handler",
}


def __getattr__(name: str) -> Any:
    # Lazy, so that importing the package costs nothing until a session starts.
    if name in _HOME:
        value = getattr(import_module(_HOME[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'profiler_hooks' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
