"""What the pipeline reports: its counters, and what one flush did."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Counters:
    """Units (records, steps) through one pipeline; ``collected == written + dropped +
    pending`` and ``pending == in_memory + in_spool`` at every instant.

    ``spooled`` counts every unit that went to the spool (some are written since);
    ``replayed`` the written units that came back from a spool file; ``adopted`` the collected
    units found in spool files this pipeline did not write (left by an earlier run, or claimed
    from a writer that is gone); ``dropped_unspooled`` the dropped units that never reached the
    spool; ``write_errors`` the failed calls of the sink.
    """

    collected: int
    written: int
    dropped: int
    spooled: int
    pending: int
    in_memory: int = 0
    in_spool: int = 0
    replayed: int = 0
    adopted: int = 0
    dropped_unspooled: int = 0
    write_errors: int = 0


@dataclass(frozen=True, slots=True)
class Flush:
    """What one :meth:`~monitor.pipeline.delivery.Pipeline.flush` did.

    ``done``: nothing is owed any more; ``waiting``: nothing was tried (backing off after a
    failure, or another flush hangs in the sink); ``error``: the "try again" error that stopped
    it; ``refused``: the sink refused the item at the front (retried later, then dropped);
    ``recovered``: a write went through after a run of "try again" failures.
    """

    written: int
    done: bool
    error: Exception | None = None
    waiting: bool = False
    refused: bool = False
    recovered: bool = False


__all__ = ["Counters", "Flush"]
