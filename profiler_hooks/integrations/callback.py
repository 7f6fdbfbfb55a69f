"""What the framework callbacks share: the hook options, one session per training run, and the
step records; each framework's module only maps its own events onto these methods.

This module imports no framework, so both callbacks (and their tests) can build on it.
"""

from __future__ import annotations

import atexit
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import profiler_hooks
from monitor.core.run_records import RunStatus
from profiler_hooks.config import check_options

if TYPE_CHECKING:
    from profiler_hooks.config import HookOptions
    from profiler_hooks.session import StepSession

    # Annotations only (never evaluated at run time): Python 3.10 needs no typing_extensions.
    if sys.version_info >= (3, 11):
        from typing import Unpack
    else:
        from typing_extensions import Unpack

__all__ = ["SessionCallback"]


class SessionCallback:
    """The options of :func:`profiler_hooks.profile_steps`
    (:class:`~profiler_hooks.config.HookOptions`), checked when the callback is made (an
    unknown keyword or a bad value raises :class:`~monitor.core.errors.ConfigError` there),
    and a :class:`~profiler_hooks.StepSession` per training run.

    Subclasses (mixed in before the framework's callback class) call :meth:`_open_run` when
    training starts, :meth:`_begin_step`/:meth:`_end_step` around each step and :meth:`close`
    when training ends.
    """

    closes_at_exit: ClassVar[bool] = False
    """Close a run still open when the interpreter exits, for frameworks that call no callback
    when training raises ("interrupted" after an uncaught ``KeyboardInterrupt``, else
    "failed")."""

    def __init__(self, run_name: str | None = None, /, **options: Unpack[HookOptions]) -> None:
        super().__init__()
        self._options = check_options(options, run_name)
        self.batch_size = self._options.get("batch_size")
        self.tokens_per_step = self._options.get("tokens_per_step")
        self.session: StepSession | None = None

    def close(self, status: RunStatus = "finished") -> None:
        """End the current run, if one is open, with ``status``."""
        session, self.session = self.session, None
        if session is not None:
            if self.closes_at_exit:
                atexit.unregister(self._close_at_exit)
            session.close(status)

    def _open_run(self, facts: Mapping[str, Any]) -> None:
        """Start a run; ``facts`` (framework, ranks, accumulation, ...) are kept in its config,
        under the user's own ``config`` entries, which win."""
        self.close("interrupted")  # a previous run that never reached its end
        options = self._options.copy()
        options["config"] = {**facts, **(self._options.get("config") or {})}
        self.session = profiler_hooks.profile_steps(**options).start()
        if self.closes_at_exit:
            atexit.register(self._close_at_exit)

    def _begin_step(self) -> None:
        if self.session is not None:
            self.session.begin_step()

    def _end_step(self, samples: int | None, tokens: int | None) -> None:
        if self.session is not None:
            self.session.step(samples=samples, tokens=tokens)

    def _close_at_exit(self) -> None:
        # Training raised past the callback; the interpreter keeps an uncaught exception in
        # sys.last_value.
        uncaught = getattr(sys, "last_value", None)
        self.close("interrupted" if isinstance(uncaught, KeyboardInterrupt) else "failed")
