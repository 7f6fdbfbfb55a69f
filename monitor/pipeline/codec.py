"""What a producer brings to the delivery pipeline: the codec of its record kinds.

The pipeline never looks inside an item. A codec says how an item becomes JSON rows for the
spool file and back, how many counted units it holds (the collector counts every record; the
hooks count steps, not the operations around them), and how many items at the front of the
queue go to the sink in one call.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Generic, Protocol, TypeVar

ItemT = TypeVar("ItemT")


class Codec(Protocol[ItemT]):
    """Encoding, decoding, counting and batching of one producer's items."""

    @property
    def family(self) -> str:
        """A short name of the producer (``"gpu"``, ``"hooks"``), part of spool file names."""
        ...

    def encode(self, item: ItemT) -> list[dict[str, Any]]:
        """The JSON-ready rows of ``item`` (at least one)."""
        ...

    def decode(self, row: Mapping[str, Any]) -> ItemT:
        """The item of one row; raises ``ValueError`` for a row that is not one."""
        ...

    def units(self, items: Sequence[ItemT]) -> int:
        """How many counted units ``items`` hold (an item that is not counted holds 0). One
        call for many items: this runs for every item added and written."""
        ...

    def row_units(self, row: Mapping[str, Any]) -> int:
        """How many units one row holds, without decoding it (counting a spool file)."""
        ...

    def batch_length(self, head: Sequence[ItemT], limit: int) -> int:
        """How many of ``head`` (the front of the queue, at most ``limit``, never empty) go to
        the sink in one call; at least 1."""
        ...


class OneRowPerItem(Generic[ItemT]):
    """The counting and batching of a codec whose every item is one row and one unit, and any
    items of which go to the sink together: a codec adds ``family``, ``encode`` and
    ``decode``."""

    def units(self, items: Sequence[ItemT]) -> int:
        return len(items)

    def row_units(self, row: Mapping[str, Any]) -> int:
        return 1

    def batch_length(self, head: Sequence[ItemT], limit: int) -> int:
        return min(len(head), limit)


def json_line(row: Mapping[str, Any]) -> str:
    """One spool line. Values JSON cannot hold (a user's config object) are written as text."""
    return json.dumps(row, separators=(",", ":"), default=str) + "\n"


__all__ = ["Codec", "ItemT", "OneRowPerItem", "json_line"]
