"""When the pipeline tries the sink again, and when it gives up on one item.

Two kinds of failure. A "try again" error keeps everything and retries after an exponential
back-off: the store is down, slow or full, or cannot be opened until someone fixes a setting
or upgrades its schema (``StoreError``, ``ConfigError``, ``OSError`` by default). Any other
error is the sink refusing the item at the front: it is retried a few times ("strikes"), then
dropped, so one poisonous record cannot hold back the rest.
"""

from __future__ import annotations

from collections.abc import Callable

from monitor.core.errors import ConfigError, StoreError

RETRY_ON: tuple[type[BaseException], ...] = (StoreError, ConfigError, OSError)
MAX_BACKOFF_S = 60.0
STRIKES = 3


class Retry:
    """Back-off and strikes, read with an injected monotonic clock (tests step it by hand)."""

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        retry_on: tuple[type[BaseException], ...] = RETRY_ON,
        backoff_s: float = 1.0,
        max_backoff_s: float = MAX_BACKOFF_S,
        strikes: int = STRIKES,
    ) -> None:
        self.clock = clock
        self.retry_on = retry_on
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.strikes = strikes
        self.failures = 0  # "try again" failures in a row
        self.down_since: float | None = None  # when this run of failures began
        self._retry_at = float("-inf")
        self._struck: object | None = None
        self._strike_count = 0

    @property
    def down(self) -> bool:
        """The last attempt failed with a "try again" error."""
        return self.down_since is not None

    def due(self) -> bool:
        """The back-off after the last failure is over."""
        return self.clock() >= self._retry_at

    def is_transient(self, exc: BaseException) -> bool:
        return isinstance(exc, self.retry_on)

    def failed(self, exc: BaseException) -> None:
        """A "try again" failure: wait twice as long as after the previous one."""
        now = self.clock()
        self.failures += 1
        if self.down_since is None:
            self.down_since = now
        delay = self.backoff_s * 2.0 ** min(self.failures - 1, 30)
        self._retry_at = now + min(self.max_backoff_s, delay)

    def strike(self, item: object) -> bool:
        """The sink refused ``item`` (the front of the queue); True once it has used up its
        strikes. The same object refused again counts on; another one starts at one."""
        self._strike_count = self._strike_count + 1 if item is self._struck else 1
        self._struck = item
        self._retry_at = self.clock() + self.backoff_s
        if self._strike_count < self.strikes:
            return False
        self.forgive()
        return True

    def forgive(self) -> None:
        self._struck, self._strike_count = None, 0

    def succeeded(self) -> bool:
        """A write went through; True if it ends a run of "try again" failures."""
        was_down = self.down
        self.failures = 0
        self.down_since = None
        self._retry_at = float("-inf")
        self.forgive()
        return was_down

    def outage_s(self) -> float:
        """Seconds since this run of "try again" failures began (0 when the store answers)."""
        return 0.0 if self.down_since is None else self.clock() - self.down_since


__all__ = ["MAX_BACKOFF_S", "RETRY_ON", "STRIKES", "Retry"]
