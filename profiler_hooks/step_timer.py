"""Step timing (pure: the caller reads the clocks and passes the numbers in).

A step runs from the end of the previous step (or the session's start, or a new pass over the
DataLoader) to the call of ``step()``. Its DataLoader wait is the time spent blocked on the
next batch within it. Durations come from a :data:`PerfClock` (``time.perf_counter_ns``, or a
fake a test advances by hand, so that durations are exact); one :class:`WallClock` anchor
turns them into UTC timestamps, so every step of a run shares one time base with no jumps.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol, TypeAlias

from monitor.core.run_records import StepRecord

RawStep: TypeAlias = tuple[
    int,  # step
    int,  # started, perf_counter_ns
    int,  # duration_ns
    int | None,  # dataloader wait, ns
    int | None,  # CUDA allocated bytes
    int | None,  # CUDA reserved bytes
    int | None,  # CUDA peak allocated bytes within the step
    int | None,  # samples
    int | None,  # tokens
    bool,  # traced by a profiler window
    int | None,  # batch handed over -> first forward call, ns (attach(model=))
]
"""What the training thread hands the writer: a plain tuple, the cheapest thing to build."""

PerfClock: TypeAlias = Callable[[], int]
"""A monotonic clock in nanoseconds, read like ``time.perf_counter_ns`` (its production value)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class StepTimer:
    """Boundaries and DataLoader wait of consecutive steps, from ``perf_counter_ns`` values."""

    __slots__ = ("_forward_ns", "_ready_ns", "_start_ns", "_wait_ns", "step")

    def __init__(self, now_ns: int, first_step: int = 0) -> None:
        self.step = first_step
        self._start_ns = now_ns
        self._wait_ns: int | None = None
        self._ready_ns: int | None = None  # the batch was handed over
        self._forward_ns: int | None = None  # the model's first forward call in this step

    @property
    def started_ns(self) -> int:
        """When the current step started."""
        return self._start_ns

    def restart(self, now_ns: int) -> None:
        """The current step starts again at ``now_ns`` (a new pass over the data begins; the
        time since the last step, an evaluation or a checkpoint, belongs to no step)."""
        self._start_ns = now_ns
        self._wait_ns = None
        self._ready_ns = self._forward_ns = None

    def add_wait(self, waited_ns: int, ready_ns: int | None = None) -> None:
        """``waited_ns`` more spent blocked on the DataLoader within the current step; the
        batch arrived at ``ready_ns``."""
        self._wait_ns = waited_ns if self._wait_ns is None else self._wait_ns + waited_ns
        if self._forward_ns is None and ready_ns is not None:
            self._ready_ns = ready_ns

    def forward(self, now_ns: int) -> None:
        """The model's forward was called (the first call of the step counts)."""
        if self._forward_ns is None:
            self._forward_ns = now_ns

    def pre_forward_ns(self) -> int | None:
        """From the batch's arrival (or the step's start) to the first forward call."""
        if self._forward_ns is None:
            return None
        return max(self._forward_ns - (self._ready_ns or self._start_ns), 0)

    def begin(self, now_ns: int) -> None:
        """The batch is in hand: the time since the step started was spent waiting for it
        (unless a wait was measured more closely already)."""
        if self._wait_ns is None:
            self._wait_ns = now_ns - self._start_ns
            self._ready_ns = now_ns

    def end(self, now_ns: int) -> tuple[int, int, int, int | None]:
        """Close the current step: ``(step, started_ns, duration_ns, wait_ns)``."""
        result = (self.step, self._start_ns, now_ns - self._start_ns, self._wait_ns)
        self.step += 1
        self._start_ns = now_ns
        self._wait_ns = None
        self._ready_ns = self._forward_ns = None
        return result


@dataclass(frozen=True, slots=True)
class WallClock:
    """One reading of ``time.time()`` and ``perf_counter_ns()`` taken together."""

    wall_s: float
    perf_ns: int

    def at(self, perf_ns: int) -> datetime:
        """The UTC time of a ``perf_counter_ns`` reading."""
        return _EPOCH + timedelta(microseconds=self.wall_s * 1e6 + (perf_ns - self.perf_ns) / 1e3)


def step_record(raw: RawStep, run_id: str, clock: WallClock) -> StepRecord:
    step, start_ns, duration_ns, wait_ns, allocated, reserved, peak, samples, tokens, traced = raw[
        :10
    ]
    pre_forward_ns = raw[10] if len(raw) > 10 else None
    return StepRecord(
        run_id=run_id,
        step=step,
        started_at=clock.at(start_ns),
        duration_us=duration_ns / 1e3,
        dataloader_wait_us=None if wait_ns is None else wait_ns / 1e3,
        cuda_allocated_bytes=allocated,
        cuda_reserved_bytes=reserved,
        cuda_peak_bytes=peak,
        samples=samples,
        tokens=tokens,
        is_profiled=traced,
        pre_forward_us=None if pre_forward_ns is None else pre_forward_ns / 1e3,
    )


class SlowStepDetector:
    """Flags a step that takes more than ``factor`` times the median of the last ``history``
    steps, once ``min_steps`` were seen, at most once per ``cooldown_steps`` steps."""

    __slots__ = ("_cooldown", "_factor", "_last_flagged", "_min_steps", "_recent", "_sorted")

    def __init__(
        self,
        *,
        factor: float = 3.0,
        history: int = 50,
        min_steps: int = 20,
        cooldown_steps: int = 500,
    ) -> None:
        if factor <= 1 or history < 1 or min_steps < 1 or cooldown_steps < 0:
            raise ValueError("slow-step detector: factor > 1, history and min_steps >= 1")
        self._factor = factor
        self._min_steps = min(min_steps, history)
        self._cooldown = cooldown_steps
        self._recent: deque[float] = deque(maxlen=history)
        self._sorted: list[float] = []
        self._last_flagged: int | None = None

    @property
    def median(self) -> float | None:
        values = self._sorted
        if not values:
            return None
        middle = len(values) // 2
        return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2

    def observe(self, step: int, duration: float) -> bool:
        """Add one step's duration (any unit, the same each time); True when it is slow and
        outside the cool-down, which then starts at ``step``."""
        slow = (
            len(self._sorted) >= self._min_steps
            and duration > self._factor * (self.median or 0.0)
            and (self._last_flagged is None or step - self._last_flagged >= self._cooldown)
        )
        if slow:
            self._last_flagged = step
        self._remember(duration)
        return slow

    def _remember(self, duration: float) -> None:
        recent = self._recent
        if len(recent) == recent.maxlen:
            oldest = recent[0]
            del self._sorted[bisect.bisect_left(self._sorted, oldest)]
        recent.append(duration)
        bisect.insort(self._sorted, duration)


class CudaMemoryApi(Protocol):
    """The part of ``torch.cuda`` read each step (a seam for tests without a GPU)."""

    def is_available(self) -> bool: ...
    def is_initialized(self) -> bool: ...
    def memory_stats(self) -> dict[str, Any]: ...
    def reset_peak_memory_stats(self) -> None: ...


NO_MEMORY: tuple[None, None, None] = (None, None, None)


class CudaMemory:
    """The caching allocator's bytes at the end of a step, and its peak within the step."""

    __slots__ = ("_cuda",)

    def __init__(self, cuda: CudaMemoryApi) -> None:
        self._cuda = cuda

    def read(self) -> tuple[int | None, int | None, int | None]:
        """``(allocated, reserved, peak)`` of the current device, then a new peak starts;
        all ``None`` until this process uses CUDA."""
        cuda = self._cuda
        if not cuda.is_initialized():
            return NO_MEMORY
        # One memory_stats() call: memory_allocated() and friends each build the whole dict.
        stats = cuda.memory_stats()
        cuda.reset_peak_memory_stats()
        return (
            stats.get("allocated_bytes.all.current"),
            stats.get("reserved_bytes.all.current"),
            stats.get("allocated_bytes.all.peak"),
        )
