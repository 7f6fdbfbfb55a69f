"""Profiler windows: a few steps traced with torch.profiler, on a schedule or after a slow step.

Each window is its own ``torch.profiler.profile``, created just before its first warm-up step
and finished after its last traced step, so between windows ``step()`` never touches the
profiler. The steps inside a window are marked ``ProfilerStep#N`` with the session's own step
numbers (torch's marks would restart at 0 in every window), which is how the trace's steps
line up with the run's step rows.

:func:`scheduled_window` is pure and follows ``torch.profiler.schedule`` exactly: after
``skip_first`` steps, cycles of ``wait`` + ``warmup`` + ``active`` steps, ``repeat`` of them.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from profiler_hooks.config import HooksConfig, ProfileSchedule
from profiler_hooks.recorder import TraceCapture, WindowTrigger
from profiler_hooks.step_timer import SlowStepDetector, WallClock

if TYPE_CHECKING:
    import torch.profiler

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WindowPlan:
    """A window's steps: warm-up from ``start_step``, traced ``first_step..last_step``."""

    start_step: int
    first_step: int
    last_step: int
    trigger: WindowTrigger = "schedule"

    @classmethod
    def starting_at(
        cls, step: int, warmup: int, active: int, trigger: WindowTrigger = "schedule"
    ) -> WindowPlan:
        return cls(step, step + warmup, step + warmup + active - 1, trigger)


def scheduled_window(schedule: ProfileSchedule, not_before: int) -> WindowPlan | None:
    """The schedule's first window that starts (warm-up included) at ``not_before`` or later;
    ``None`` once its ``repeat`` cycles are over."""
    cycle = schedule.cycle_steps
    offset = schedule.skip_first + schedule.wait
    index = max(0, math.ceil((not_before - offset) / cycle))
    if schedule.repeat and index >= schedule.repeat:
        return None
    start = offset + index * cycle
    return WindowPlan.starting_at(start, schedule.warmup, schedule.active)


def capture_trace(
    prof: torch.profiler.profile,
    first_step: int,
    last_step: int,
    trigger: WindowTrigger,
) -> TraceCapture:
    """What the writer needs of a profile whose trace is ready (called in on_trace_ready)."""
    inner: Any = prof.profiler  # torch.autograd.profiler.profile; its export is untyped
    clock = WallClock(time.time(), time.perf_counter_ns())
    started_ns = getattr(inner, "profiling_start_time_ns", 0) or clock.perf_ns
    return TraceCapture(
        export=inner.export_chrome_trace,
        first_step=first_step,
        last_step=last_step,
        started_at=clock.at(started_ns),
        trigger=trigger,
    )


class ProfilerWindow:
    """One window's ``torch.profiler.profile``, driven step by step (training thread)."""

    def __init__(
        self, plan: WindowPlan, config: HooksConfig, on_ready: Callable[[TraceCapture], None]
    ) -> None:
        self.plan = plan
        self._config = config
        self._on_ready = on_ready
        self._warmup = plan.first_step - plan.start_step
        self._length = plan.last_step - plan.start_step + 1
        self._last = plan.last_step
        self._prof: torch.profiler.profile | None = None
        self._mark: Any = None

    def open(self) -> None:
        """Start the profiler; the next step is ``plan.start_step``."""
        import torch
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU]
        if torch.cuda.is_available():
            activities.append(ProfilerActivity.CUDA)
        prof = profile(
            activities=activities,
            schedule=self._action,
            on_trace_ready=self._ready,
            record_shapes=self._config.record_shapes,
            profile_memory=self._config.profile_memory,
            with_stack=self._config.with_stack,
        )
        prof.record_steps = False  # the steps are marked with the session's numbers instead
        self._prof = prof
        prof.start()
        self._enter_step(self.plan.start_step)

    def advance(self, ended_step: int) -> bool:
        """Step ``ended_step`` ended; True when the window is over (its trace handed on)."""
        assert self._prof is not None
        self._exit_step()
        self._prof.step()
        if ended_step >= self.plan.last_step:
            _finish(self._prof)
            self._prof = None
            return True
        self._enter_step(ended_step + 1)
        return False

    def abort(self, last_ended: int | None) -> None:
        """The session closes inside the window: keep the traced steps that ended, if any."""
        if self._prof is None:
            return
        self._exit_step()
        self._last = last_ended if last_ended is not None else -1
        prof, self._prof = self._prof, None
        _finish(prof)

    def _action(self, local_step: int) -> torch.profiler.ProfilerAction:
        from torch.profiler import ProfilerAction

        if local_step < self._warmup:
            return ProfilerAction.WARMUP
        if local_step < self._length - 1:
            return ProfilerAction.RECORD
        if local_step == self._length - 1:
            return ProfilerAction.RECORD_AND_SAVE
        return ProfilerAction.NONE

    def _ready(self, prof: torch.profiler.profile) -> None:
        last = min(self._last, self.plan.last_step)
        if last < self.plan.first_step:
            return  # closed before a traced step ended: nothing worth keeping
        self._on_ready(capture_trace(prof, self.plan.first_step, last, self.plan.trigger))

    def _enter_step(self, step: int) -> None:
        from torch.autograd.profiler import record_function

        self._mark = record_function(f"ProfilerStep#{step}")
        self._mark.__enter__()

    def _exit_step(self) -> None:
        mark, self._mark = self._mark, None
        if mark is not None:
            mark.__exit__(None, None, None)


class WindowManager:
    """Decides, after each step, whether a window starts, runs on or ends (training thread).

    Steps are never timed for the slow-step detector while a window runs, nor the step right
    after it (it pays for stopping the profiler).
    """

    def __init__(
        self,
        config: HooksConfig,
        on_ready: Callable[[TraceCapture], None],
        *,
        detector: SlowStepDetector | None = None,
    ) -> None:
        self._config = config
        self._on_ready = on_ready
        self._detector = detector
        self._next = scheduled_window(config.schedule, 0)
        self._window: ProfilerWindow | None = None
        self._traced = range(0)
        self._quiet_until = -1
        self._warned = False

    @property
    def active(self) -> WindowPlan | None:
        return self._window.plan if self._window is not None else None

    def begin(self) -> None:
        """Before step 0: a window planned from step 0 starts now."""
        if self._next is not None and self._next.start_step == 0:
            self._open(self._next)
            self._next = scheduled_window(self._config.schedule, 1)

    def traced(self, step: int) -> bool:
        return step in self._traced

    def after_step(self, step: int, duration_ns: int) -> None:
        if self._window is not None:
            self._advance(self._window, step)
        elif (
            self._detector is not None
            and step > self._quiet_until
            and self._detector.observe(step, duration_ns)
        ):
            schedule = self._config.schedule
            plan = WindowPlan.starting_at(step + 1, schedule.warmup, schedule.active, "slow_step")
            self._open(plan)
        upcoming = self._next
        if upcoming is not None and upcoming.start_step <= step + 1:
            if self._window is None and upcoming.start_step == step + 1:
                self._open(upcoming)
            self._next = scheduled_window(self._config.schedule, step + 2)

    def close(self, last_ended: int | None) -> None:
        window, self._window = self._window, None
        self._traced = range(0)
        if window is not None:
            try:
                window.abort(last_ended)
            except Exception as exc:
                log.warning("gpulens: cannot stop the profiler window: %s", exc)

    def _advance(self, window: ProfilerWindow, step: int) -> None:
        try:
            done = window.advance(step)
        except Exception as exc:
            log.warning("gpulens: profiler window failed at step %d: %s", step, exc)
            self.close(None)
            done = True
        if done:
            self._window = None
            self._quiet_until = step + 1

    def _open(self, plan: WindowPlan) -> None:
        if _profiler_running():
            self._warn_once("another torch.profiler is running; gpulens skips its windows")
            return
        self._window = window = ProfilerWindow(plan, self._config, self._on_ready)
        try:
            window.open()
        except Exception as exc:
            self._warn_once(f"cannot start torch.profiler: {exc}")
            self.close(None)
            return
        self._traced = range(plan.first_step, plan.last_step + 1)
        self._quiet_until = plan.last_step + 1

    def _warn_once(self, message: str) -> None:
        if not self._warned:
            log.warning("gpulens: %s", message)
            self._warned = True


def _finish(prof: torch.profiler.profile) -> None:
    """Leave the profile as ``with`` would (stop, and forget its step counter)."""
    exit_: Any = prof.__exit__  # untyped in torch
    exit_(None, None, None)


def _profiler_running() -> bool:
    from torch._C._autograd import _profiler_enabled

    return _profiler_enabled()
