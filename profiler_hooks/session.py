"""StepSession: what a training script holds while gpulens records its steps.

Use::

    with profiler_hooks.profile_steps(run_name="resnet", batch_size=64) as session:
        for batch in session.wrap_dataloader(loader):
            loss = model(batch).sum(); loss.backward(); optimizer.step()
            session.step()

or, leaving the loop as it is, ``profiler_hooks.attach(optimizer=..., dataloader=...)``.

On the training thread ``step()`` reads the clock, builds one tuple and appends it to the
writer's deque; between profiler windows it does nothing else (with CUDA in use it also reads
the allocator's counters). Failures inside gpulens are logged, never raised into the loop;
only wrong usage raises (bad arguments, a second open session, see :class:`SessionError`).
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from monitor.core.errors import SessionError
from monitor.core.run_records import RunStatus
from profiler_hooks.config import HookOptions, HooksConfig, resolve_config
from profiler_hooks.loader_timing import TimedIterator, time_each_pass
from profiler_hooks.recorder import RunRecorder, describe_run
from profiler_hooks.sink import RunSink
from profiler_hooks.step_timer import (
    NO_MEMORY,
    CudaMemory,
    CudaMemoryApi,
    PerfClock,
    RawStep,
    SlowStepDetector,
    StepTimer,
    WallClock,
)
from profiler_hooks.windows import WindowManager
from profiler_hooks.writer import HookStats

if TYPE_CHECKING:
    import torch

    # Annotations only (never evaluated at run time): Python 3.10 needs no typing_extensions.
    if sys.version_info >= (3, 11):
        from typing import Unpack
    else:
        from typing_extensions import Unpack

log = logging.getLogger(__name__)
T = TypeVar("T")

_slot = threading.Lock()
_open_session: StepSession | None = None


def active_session() -> StepSession | None:
    """The session open in this process, if any."""
    return _open_session


class StepSession:
    """One training run recorded step by step (make it with :func:`profile_steps`).

    ``sink``, ``cuda`` and ``clock`` are seams with production defaults (the config's store,
    ``torch.cuda``, ``time.perf_counter_ns``): tests pass stand-ins, e.g. a clock they advance
    by hand so that every step, DataLoader wait and pre-forward time is exact."""

    def __init__(
        self,
        config: HooksConfig,
        *,
        sink: RunSink | None = None,
        cuda: CudaMemoryApi | None = None,
        clock: PerfClock = time.perf_counter_ns,
    ) -> None:
        self.config = config
        self.run_id = uuid.uuid4().hex
        self.steps_recorded = 0
        self._sink = sink
        self._cuda = cuda  # torch.cuda unless a test passes a stand-in
        self._state: Literal["new", "open", "closed"] = "new"
        self._off = True  # nothing to record: not started, disabled, closed or broken
        self._warned = False
        self._recorder: RunRecorder | None = None
        self._add_step: Callable[[RawStep], None] = _ignore
        # Every reading of this session (steps, waits, forwards) comes from it; step() pays
        # one attribute load for it, no more than a module global would cost.
        self._clock = clock
        self._timer = StepTimer(clock())
        self._memory: CudaMemory | None = None
        self._windows: WindowManager | None = None
        self._samples = config.batch_size
        self._tokens = config.tokens_per_step
        self._undo: list[Callable[[], None]] = []  # optimizer hooks, loader class swaps

    # -- lifetime ---------------------------------------------------------------------------

    def __enter__(self) -> StepSession:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close(_status_for(exc))

    def start(self) -> StepSession:
        """Open the session: the run is announced and the first step begins now."""
        global _open_session
        if self._state != "new":
            raise SessionError(f"this session was started before ({self._state}); make a new one")
        with _slot:
            if _open_session is not None:
                raise SessionError(
                    f"a gpulens session (run {_open_session.config.run_name!r}) is already "
                    "open in this process; close it first (torch.profiler cannot nest)"
                )
            _open_session = self
        self._state = "open"
        if self.config.enabled:
            try:
                self._start_recording()
            except Exception as exc:
                log.warning("gpulens: recording is off for this run: %s", exc, exc_info=True)
                self._off = True
        return self

    def close(self, status: RunStatus = "finished") -> None:
        """End the run with ``status``; flush the writer (within ``close_timeout_s``).
        Closing again does nothing."""
        global _open_session
        if self._state == "closed":
            return
        was_open, self._state, self._off = self._state == "open", "closed", True
        atexit.unregister(self._close_at_exit)
        try:
            self._detach_all()
            if self._windows is not None:
                self._windows.close(self._timer.step - 1 if self._timer.step else None)
            if self._recorder is not None:
                self._recorder.close(status)
        except Exception as exc:
            log.warning("gpulens: closing the run failed: %s", exc, exc_info=True)
        finally:
            with _slot:
                if was_open and _open_session is self:
                    _open_session = None

    def _start_recording(self) -> None:
        import torch

        clock = WallClock(time.time(), self._clock())
        info = describe_run(self.config, self.run_id, clock, self.config.describe())
        recorder = RunRecorder(self.config, info, clock, self._sink)
        recorder.start()
        self._recorder = recorder
        self._add_step = recorder.add_step
        cuda = self._cuda if self._cuda is not None else torch.cuda
        if cuda.is_available():
            self._memory = CudaMemory(cuda)
        self._timer = StepTimer(self._clock())
        if self.config.profile:
            detector = SlowStepDetector() if self.config.slow_step_trigger else None
            self._windows = WindowManager(self.config, recorder.save_trace, detector=detector)
            self._windows.begin()
        self._off = False

    def _close_at_exit(self) -> None:
        # The interpreter ends: an uncaught exception, if any, was printed and kept in sys.
        self.close(_status_for(getattr(sys, "last_value", None)))

    # -- the training loop ------------------------------------------------------------------

    def begin_step(self) -> None:
        """The batch is in hand: the time since the previous step ended is the DataLoader
        wait (unless :meth:`wrap_dataloader` measured it already)."""
        if not self._off:
            self._timer.begin(self._clock())

    def step(self, *, samples: int | None = None, tokens: int | None = None) -> None:
        """End the current step and record it; ``samples``/``tokens`` default to the
        session's ``batch_size``/``tokens_per_step``."""
        now = self._clock()
        if self._off:
            self._step_while_off()
            return
        self.steps_recorded += 1
        try:
            pre_forward = self._timer.pre_forward_ns()
            step, started, duration, waited = self._timer.end(now)
            windows = self._windows
            traced = windows is not None and windows.traced(step)
            memory = self._memory.read() if self._memory is not None else NO_MEMORY
            self._add_step(
                (
                    step,
                    started,
                    duration,
                    waited,
                    memory[0],
                    memory[1],
                    memory[2],
                    self._samples if samples is None else samples,
                    self._tokens if tokens is None else tokens,
                    traced,
                    pre_forward,
                )
            )
            if windows is not None:
                windows.after_step(step, duration)
        except Exception as exc:
            self._off = True
            log.warning("gpulens: step recording stopped: %s", exc, exc_info=True)

    def wrap_dataloader(self, loader: Iterable[T]) -> Iterator[T]:
        """Iterate ``loader``, timing each wait for a batch as the DataLoader wait of the
        current step (several batches per step add up). A new pass starts a new step: the
        time between passes (evaluation, checkpoints) belongs to no step."""
        if self._off:
            return iter(loader)
        return TimedIterator(loader, self._new_pass, self._waited, clock=self._clock)

    def attach(
        self,
        *,
        optimizer: torch.optim.Optimizer | None = None,
        dataloader: Iterable[Any] | None = None,
        model: torch.nn.Module | None = None,
    ) -> StepSession:
        """Start the session and record a loop left as it is, until :meth:`close` or the
        interpreter's exit: what :func:`attach` does with a new session. Returns the session."""
        self.start()
        try:
            if optimizer is not None:
                self.attach_optimizer(optimizer)
            if dataloader is not None:
                self.attach_dataloader(dataloader)
            if model is not None:
                self.watch_model(model)
        except BaseException:
            self.close("failed")
            raise
        atexit.register(self._close_at_exit)
        return self

    def attach_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        """Record a step after each ``optimizer.step()`` (until the session closes)."""
        self._check_open()

        def stepped(_optimizer: Any, _args: Any, _kwargs: Any) -> None:
            self.step()

        self._undo.append(optimizer.register_step_post_hook(stepped).remove)

    def attach_dataloader(self, loader: Iterable[Any]) -> None:
        """Time the waits of every pass over ``loader`` without changing the loop (its class
        is swapped for a subclass whose ``__iter__`` wraps the original, until close)."""
        self._check_open()
        try:
            self._undo.append(time_each_pass(loader, self.wrap_dataloader))
        except TypeError:
            raise SessionError(
                f"cannot time the iteration of a {type(loader).__name__}; "
                "use `for batch in session.wrap_dataloader(loader)` instead"
            ) from None

    def watch_model(self, model: torch.nn.Module) -> None:
        """Time each step's host work between the batch's arrival and the model's forward
        (``pre_forward_us``: preprocessing on the training thread) with a forward pre-hook,
        and note the model's wrapper (DataParallel, DistributedDataParallel) with the run."""
        self._check_open()
        clock = self._clock

        def forwarding(_module: Any, _args: Any) -> None:
            if not self._off:
                self._timer.forward(clock())

        self._undo.append(model.register_forward_pre_hook(forwarding).remove)
        wrapper = type(model).__name__
        if self._recorder is not None and wrapper in ("DataParallel", "DistributedDataParallel"):
            self._recorder.annotate(model_wrapper=wrapper)

    @property
    def recorder(self) -> RunRecorder | None:
        """The run's writer while recording (trace handlers inside the session use it)."""
        return self._recorder

    @property
    def stats(self) -> HookStats:
        """Counters of this session's steps (all 0 while nothing is recorded)."""
        return self._recorder.stats() if self._recorder is not None else HookStats()

    # -- internals --------------------------------------------------------------------------

    def _new_pass(self, now_ns: int) -> None:
        if not self._off:
            self._timer.restart(now_ns)

    def _waited(self, waited_ns: int, arrived_ns: int) -> None:
        if not self._off:
            self._timer.add_wait(waited_ns, arrived_ns)

    def _step_while_off(self) -> None:
        if self._state == "open":
            self.steps_recorded += 1
        elif not self._warned:
            self._warned = True
            log.warning("gpulens: step() on a session that is %s; ignored", self._state)

    def _check_open(self) -> None:
        if self._state == "closed":
            raise SessionError("this session is closed; make a new one")

    def _detach_all(self) -> None:
        while self._undo:
            self._undo.pop()()


def _ignore(_raw: RawStep) -> None:
    pass


def _status_for(exc: BaseException | None) -> RunStatus:
    if exc is None:
        return "finished"
    return "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"


def profile_steps(run_name: str | None = None, /, **options: Unpack[HookOptions]) -> StepSession:
    """A session recording every step of a training run, started by ``with`` or ``start()``.

    The options (``db``, ``sink``, ``batch_size``, ``schedule``, ``profile``, ...) are
    :class:`~profiler_hooks.config.HookOptions`; ``run_name`` may also come first, unnamed.
    Raises :class:`~monitor.core.errors.ConfigError` for an unknown keyword, a bad value or a
    bad ``GPULENS_*`` variable.
    """
    return StepSession(resolve_config(run_name, **options), sink=options.get("sink"))


def attach(
    *,
    optimizer: torch.optim.Optimizer | None = None,
    dataloader: Iterable[Any] | None = None,
    model: torch.nn.Module | None = None,
    **options: Unpack[HookOptions],
) -> StepSession:
    """Record a training loop without editing it: a step per ``optimizer.step()``, and the
    DataLoader's waits timed on every pass over ``dataloader``, and (``model``) the host time
    from each batch's arrival to the forward call. ``options`` are those of
    :func:`profile_steps` (:class:`~profiler_hooks.config.HookOptions`). The session ends at
    ``session.close()`` or when the interpreter exits ("failed" after an uncaught exception,
    "interrupted" after Ctrl-C)."""
    session = profile_steps(**options)
    return session.attach(optimizer=optimizer, dataloader=dataloader, model=model)
