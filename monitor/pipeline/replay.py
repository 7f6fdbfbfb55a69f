"""A spool file being written back to the store, and a batch on its way to the sink."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Generic

from monitor.pipeline.codec import Codec, ItemT
from monitor.pipeline.spool import Spool, SpoolReader

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Replay(Generic[ItemT]):
    """One spool file read back: the pipeline's own (its units were counted as they were
    spooled) or a claimed one (its units are counted as they are read). Read a batch ahead
    at most, so a replay needs no more memory than one batch."""

    reader: SpoolReader[ItemT]
    own: bool
    peek: deque[ItemT] = field(default_factory=deque)  # read, not yet handed to the sink
    units: int = 0  # a claimed file's units read and not yet written or dropped
    written: int = 0
    consumed: int = 0  # units written or dropped since the file was opened

    def fill(
        self, limit: int, units: Callable[[Sequence[ItemT]], int]
    ) -> tuple[int, int, OSError | None]:
        """Read until ``limit`` items wait (or the file ends); returns the units read, the
        damaged lines skipped, and the error that stopped the reading, if any (what was read
        before it is kept)."""
        read = damaged = 0
        while len(self.peek) < limit:
            try:
                items, bad = self.reader.read(limit - len(self.peek))
            except OSError as exc:
                return read, damaged, exc
            if not items and not bad:
                break
            read += units(items)
            damaged += bad
            self.peek.extend(items)
        return read, damaged, None

    def take(self, limit: int, codec: Codec[ItemT]) -> list[ItemT] | None:
        """The next batch from the front of what was read, or ``None`` at the end."""
        if not self.peek:
            return None
        head = list(islice(self.peek, limit))
        items = head[: codec.batch_length(head, limit)]
        for _ in items:
            self.peek.popleft()
        return items

    def remove(self, spool: Spool[ItemT]) -> None:
        """All of the file is written (or dropped and counted): delete it."""
        self.reader.close()
        try:
            if self.own:
                spool.clear()
            else:
                self.reader.path.unlink(missing_ok=True)
        except OSError as exc:  # replayed again later: keyed rows, stored once
            log.error("cannot remove the replayed spool %s: %s", self.reader.path, exc)
        if self.written:
            log.info("replayed %d spooled records from %s", self.written, self.reader.path)


@dataclass(frozen=True, slots=True, eq=False)
class Batch(Generic[ItemT]):
    """Items handed to the sink in one call, from memory (``replay is None``) or a file."""

    items: list[ItemT]
    units: int
    replay: Replay[ItemT] | None


__all__ = ["Batch", "Replay"]
