"""Unions and overlaps of time intervals, vectorised (pure; integer nanoseconds).

An interval set is a pair of int64 arrays ``(starts, ends)``; *merged* sets are sorted and
disjoint, which is what every function here returns.
"""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
import numpy.typing as npt

Ints: TypeAlias = npt.NDArray[np.int64]
Intervals: TypeAlias = tuple[Ints, Ints]

EMPTY: Intervals = (np.zeros(0, np.int64), np.zeros(0, np.int64))


def merge(starts: Ints, ends: Ints) -> Intervals:
    """The union of possibly overlapping intervals as a sorted, disjoint set."""
    if len(starts) == 0:
        return EMPTY
    order = np.argsort(starts, kind="stable")
    s = starts[order]
    reach = np.maximum.accumulate(ends[order])
    opens = np.empty(len(s), dtype=bool)
    opens[0] = True
    np.greater(s[1:], reach[:-1], out=opens[1:])
    first = np.flatnonzero(opens)
    last = np.append(first[1:] - 1, len(s) - 1)
    return s[first], reach[last]


def union(*sets: Intervals) -> Intervals:
    """The union of merged sets."""
    starts = np.concatenate([item[0] for item in sets]) if sets else EMPTY[0]
    ends = np.concatenate([item[1] for item in sets]) if sets else EMPTY[1]
    return merge(starts, ends)


def length(merged: Intervals) -> int:
    """Total time covered by a merged set."""
    return int((merged[1] - merged[0]).sum())


def clip(merged: Intervals, lo: int, hi: int) -> Intervals:
    """The part of a merged set inside ``[lo, hi]``."""
    starts, ends = merged
    first = int(np.searchsorted(ends, lo, side="right"))
    stop = int(np.searchsorted(starts, hi, side="left"))
    if stop <= first:
        return EMPTY
    return np.clip(starts[first:stop], lo, hi), np.clip(ends[first:stop], lo, hi)


def overlap(a: Intervals, b: Intervals) -> int:
    """Time covered by both merged sets: |A| + |B| - |A or B|."""
    return length(a) + length(b) - length(union(a, b))


def new_time(role: Intervals, covered: Intervals) -> tuple[int, Intervals]:
    """Time of ``role`` not already ``covered``, and the union of both."""
    both = union(role, covered)
    return length(both) - length(covered), both
