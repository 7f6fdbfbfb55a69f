"""Bad events of a trace, skipped and counted or fatal, and where each one is in the file.

Bad values inside well-formed JSON are judged by the consumer of
:func:`monitor.traces.reader.read_trace`: its ``on_events`` may return the events of the batch
it rejects, as ``(index in the batch, what is wrong, fatal)``. The rule the analyzer's
:class:`~monitor.core.analysis.events.EventTable` applies:

- one event with an unusable ``ts``/``dur`` (NaN, Infinity, null, a string, an object, a boolean,
  out of range such as 1e300, 2**70 or 1e999999999), a missing ``ts``, a negative ``dur``,
  ``args`` that are not an object, or a name that is not valid Unicode (a lone surrogate) is
  **skipped and counted**: one bad event must not void a 1 GB trace. ``read_trace`` appends one
  line per kind of problem to ``skipped`` ("skipped 3 events with a bad ts; the first: event 12
  ("aten::mm") at byte 1,234 has a bad ts (NaN)");
- a bad ``ProfilerStep#N`` (the step boundaries every per-step figure hangs on) is **fatal**:
  one :class:`~monitor.core.errors.TraceError` naming the event, its byte offset and the value.

Offsets are found again only for those events: the reader's buffer keeps the text of the batch
not yet handed over (one batch's worth more), and :class:`EventStarts` rescans it from the
batch's first event to the one rejected.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

Rejection = tuple[int, str, bool]
"""An event ``on_events`` refuses: its index in the batch, what is wrong (a noun phrase such as
``"a bad ts (NaN)"``), and whether it voids the trace (else it is skipped and counted)."""

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_NAME_CHARS = 80  # of an event's name, in messages


class SkippedEvents:
    """The events skipped so far, by kind of problem: how many, and where the first one is."""

    def __init__(self) -> None:
        self._skips: dict[str, list[Any]] = {}  # kind: [count, the first one's description]

    def judge(
        self,
        batch: list[dict[str, Any]],
        first: int,
        rejected: Sequence[Rejection],
        locate: Callable[[int], str],
    ) -> str | None:
        """Count the batch's rejected events (``first``: the event number of ``batch[0]``,
        from 0; ``locate(index)``: where that event is, "at byte N"); the description of the
        first fatal one, for the caller to raise, else ``None``."""
        for index, problem, fatal in sorted(rejected):
            kind = problem.partition(" (")[0]
            skip = self._skips.get(kind)
            if skip is not None and not fatal:
                skip[0] += 1
                continue
            where = f"event {first + index + 1:,} ({event_name(batch[index])}) {locate(index)}"
            where += f" has {problem}"
            if fatal:
                return where
            self._skips[kind] = [1, where]
        return None

    def notes(self) -> list[str]:
        """One line per kind of problem among the events skipped."""
        notes = []
        for kind, (count, where) in self._skips.items():
            if count == 1:
                notes.append(f"skipped 1 event with {kind}: {where}")
            else:
                notes.append(f"skipped {count:,} events with {kind}; the first: {where}")
        return notes


class EventStarts:
    """Where the events of a batch start in the text, found again by rescanning it."""

    def __init__(self, scan: Any, buf: str, start: int) -> None:
        self._scan, self._buf = scan, buf
        self._starts = [start]

    def of(self, index: int) -> int:
        buf, starts, blank = self._buf, self._starts, _WHITESPACE.match
        while len(starts) <= index:
            _, end = self._scan(buf, starts[-1])
            end = blank(buf, end).end()  # type: ignore[union-attr]
            starts.append(blank(buf, end + 1).end())  # type: ignore[union-attr]
        return starts[index]


def event_name(event: dict[str, Any]) -> str:
    """An event's name for a message: printable whatever it holds (lone surrogates escaped)."""
    name = event.get("name")
    if not isinstance(name, str):
        return "no name" if name is None else f"name {str(name)[:_NAME_CHARS]}"
    if len(name) > _NAME_CHARS:
        name = name[: _NAME_CHARS - 3] + "..."
    return repr(name)  # repr escapes what cannot be printed, lone surrogates included


__all__ = ["EventStarts", "Rejection", "SkippedEvents", "event_name"]
