"""Timing the waits for batches: an iterator that reports the time blocked in each ``next``,
and the class swap that puts it behind a loader's own ``__iter__`` (``attach(dataloader=)``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

from profiler_hooks.step_timer import PerfClock

T = TypeVar("T")


class TimedIterator(Generic[T]):
    """Iterates ``iterable``; ``on_pass(now_ns)`` when the pass begins (the first ``next``),
    ``on_wait(waited_ns, arrived_ns)`` after each batch arrives; times read from ``clock``."""

    __slots__ = ("_clock", "_iterable", "_iterator", "_on_pass", "_on_wait")

    def __init__(
        self,
        iterable: Iterable[T],
        on_pass: Callable[[int], None],
        on_wait: Callable[[int, int], None],
        *,
        clock: PerfClock = time.perf_counter_ns,
    ) -> None:
        self._iterable = iterable
        self._iterator: Iterator[T] | None = None
        self._on_pass = on_pass
        self._on_wait = on_wait
        self._clock = clock

    def __iter__(self) -> TimedIterator[T]:
        return self

    def __next__(self) -> T:
        clock = self._clock
        started = clock()
        iterator = self._iterator
        if iterator is None:  # iter() is timed too: it starts a DataLoader's workers
            self._on_pass(started)
            iterator = self._iterator = iter(self._iterable)
        item = next(iterator)
        arrived = clock()  # one reading: the end of the wait is when the batch was handed over
        self._on_wait(arrived - started, arrived)
        return item

    def __len__(self) -> int:
        return len(self._iterable)  # type: ignore[arg-type]  # TypeError where it has none


def time_each_pass(
    loader: Iterable[Any], wrap: Callable[[Iterable[Any]], Iterator[Any]]
) -> Callable[[], None]:
    """Make ``for batch in loader`` iterate ``wrap(<the loader's own iterator>)`` by swapping
    the object's class for a subclass (Python looks ``__iter__`` up on the class, so patching
    the instance would do nothing). Returns the undo. Raises ``TypeError`` for objects whose
    class cannot be swapped (built-in types, ``__slots__`` layouts)."""
    original = type(loader)

    def __iter__(this: Any) -> Iterator[Any]:
        return wrap(original.__iter__(this))

    namespace = {"__iter__": __iter__, "__module__": original.__module__}
    loader.__class__ = type(original.__name__, (original,), namespace)

    def undo() -> None:
        loader.__class__ = original

    return undo
