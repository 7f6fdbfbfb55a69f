"""Streaming reader of PyTorch profiler (Kineto) and Chrome trace files (an adapter: file I/O).

A trace is a JSON object ``{"traceEvents": [...], ...other keys}`` or a bare array of events,
plain or gzip-compressed (told apart by the gzip magic bytes, not by the name).
:func:`read_trace` hands the events to a callback in batches while it reads and returns the other
top-level keys at the end, so memory stays near one read chunk plus one batch however big the
file is.

Speed: the C JSON scanner decodes one event per call straight out of the text buffer; a compiled
regex steps over the comma to the next event. Float literals come back as their exact text by
default (``parse_float=str``): Kineto writes microsecond timestamps near 1.7e15 with nanosecond
digits, more than a float64 keeps.

Hostile input: every problem is one :class:`~monitor.core.errors.TraceError` saying what is wrong,
where (byte offset, event number) and what to do. The limits in :class:`TraceLimits` bound the
file size, the gunzipped size (gzip bombs), the size of one event and its nesting depth.

Bad values inside well-formed JSON are judged by the consumer: ``on_events`` may return the
events of the batch it rejects; the rule (skip and count, or fatal) and how their byte offsets
are found are in :mod:`monitor.traces.skips`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from json.scanner import make_scanner
from pathlib import Path
from typing import Any

from monitor.core.errors import TraceError
from monitor.traces.files import (
    DEFAULT_LIMITS,
    TraceLimits,
    TraceText,
    file_size,
    find_trace_files,
    human_size,
)
from monitor.traces.skips import EventStarts, Rejection, SkippedEvents

__all__ = ["BATCH_EVENTS", "TraceLimits", "find_trace_files", "read_trace"]

BATCH_EVENTS = 4096
"""Events per ``on_events`` call (the last batch may be shorter)."""

OnEvents = Callable[[list[dict[str, Any]]], Sequence[Rejection] | None]

_WHITESPACE = re.compile(r"[ \t\n\r]*")
# The hot path between two events: the comma, and a look at the next event's opening brace.
_NEXT_EVENT = re.compile(r"[ \t\n\r]*,[ \t\n\r]*(?=\{)")
# The C scanner looks at most a few characters past the token it fails on (``\uXXXX``, ``true``),
# so a failure closer than this to the end of the buffer may just need more text.
_LOOKAHEAD_CHARS = 16
_KINDS = {'"': "a string", "t": "a boolean", "f": "a boolean", "n": "null", "{": "an object"}
_KINDS["["] = "an array"
# What a JSON token cut off by the end of the file can end in (``tru``, ``-1.5e``).
_TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-."
_NUMBER_STARTS = frozenset("-0123456789")
_BATCH_CHARS = 32 * 1024**2  # a batch of long events is handed over once it holds this much
_MAX_METADATA_KEYS = 10_000  # Kineto writes a few dozen top-level keys


def read_trace(
    path: Path,
    on_events: OnEvents,
    *,
    limits: TraceLimits = DEFAULT_LIMITS,
    progress: Callable[[int, int], None] | None = None,
    parse_float: Callable[[str], Any] = str,
    skipped: list[str] | None = None,
) -> dict[str, Any]:
    """Stream the events of the trace at ``path`` to ``on_events``; return its other keys.

    Events arrive in file order, in lists of up to :data:`BATCH_EVENTS`, before the metadata is
    returned (keys after ``traceEvents`` are read last). ``progress(bytes_read, file_bytes)``
    follows the file on disk after each chunk. Integers stay ``int``; floats go through
    ``parse_float``. A bare array (Chrome's JSON array format) gives ``{}`` as metadata and, as
    that format allows, may lack its closing ``]``. Raises :class:`TraceError` for bad input,
    and for an event ``on_events`` rejects as fatal; the events it rejects otherwise are counted
    in lines appended to ``skipped`` (see the module's docstring).
    """
    file_bytes = file_size(path, limits)
    try:
        raw = path.open("rb")
    except OSError as exc:
        raise TraceError(f"{path} cannot be opened ({exc.strerror}): check it") from None
    with raw:
        text = TraceText(raw, path, file_bytes, limits, progress)
        parser = _Parser(text, limits, parse_float, on_events)
        metadata = parser.document()
    if skipped is not None:
        skipped.extend(parser.skipped.notes())
    return metadata


class _Parser:
    """A pull parser over :class:`TraceText` for the top level; the C scanner does each value."""

    def __init__(
        self,
        text: TraceText,
        limits: TraceLimits,
        parse_float: Callable[[str], Any],
        on_events: OnEvents,
    ) -> None:
        self._text, self._limits, self._on_events = text, limits, on_events
        # typeshed types the scanner's context as the scanner itself (a TODO there).
        self._scan = make_scanner(json.JSONDecoder(parse_float=parse_float))  # type: ignore[arg-type]
        self._buf, self._pos, self._base = "", 0, 0  # _base: byte offset of _buf[0]
        self._eof = False
        self._chars_dropped = self._metadata_chars = 0
        self._batch: list[dict[str, Any]] = []
        self._batch_chars = 0  # text of the batch's long events (short ones are bounded anyway)
        self._events_done = 0
        self._batch_start = 0  # where the batch's first event starts in _buf
        self.skipped = SkippedEvents()
        # Text this short can be neither too deep (depth D needs D+1 brackets on each side) nor
        # too big (a character is at most 4 UTF-8 bytes): most events skip the checks entirely.
        self._short_chars = min(2 * limits.max_depth + 1, limits.max_event_bytes // 4)

    def document(self) -> dict[str, Any]:
        """Parse the whole file; return the top-level keys other than ``traceEvents``."""
        if self._fill() and self._buf.startswith("\ufeff"):
            self._pos = 1  # a UTF-8 byte-order mark
        first = self._peek("the file", eof_ok=True)
        metadata: dict[str, Any] = {}
        if first == "[":
            self._pos += 1
            self._events(bare=True)
        elif first == "{":
            self._pos += 1
            metadata = self._object()
        elif first == "":
            raise self._error("holds no JSON, only whitespace: it was never written; re-record it")
        elif first in _KINDS or first in _NUMBER_STARTS:
            raise self._error(
                f"the JSON is {_kind(first)}, not an object or array: it is not a Kineto/Chrome "
                "trace"
            )
        else:
            raise self._error(
                f"is not JSON: it starts with {first!r} {self._at(self._pos)}; expected a "
                "Kineto/Chrome trace (.json or .json.gz)"
            )
        if self._peek("", eof_ok=True):
            raise self._error(
                f"unexpected data after the end of the trace {self._at(self._pos)}: the file is "
                "corrupt (two traces joined?); re-record it"
            )
        return metadata

    def _object(self) -> dict[str, Any]:
        metadata: dict[str, Any] = {}
        has_events = False
        where = "the top-level object"
        char = self._peek(where)
        while char != "}":
            if char != '"':
                raise self._syntax(self._pos, "Expecting a key in double quotes", where)
            key = self._value("a top-level key")
            self._expect(":", where)
            if key == "traceEvents":
                self._events(bare=False)
                has_events = True
            else:
                self._add_metadata(metadata, key)
            char = self._peek(where)
            if char == ",":
                self._pos += 1
                if (char := self._peek(where)) == "}":
                    raise self._syntax(self._pos, "Expecting a key after ','", where)
            elif char != "}":
                raise self._syntax(self._pos, "Expecting ',' or '}'", where)
        self._pos += 1
        if not has_events:
            keys = ", ".join(repr(k) for k in list(metadata)[:8]) or "none"
            raise self._error(
                f'the JSON object has no "traceEvents" list (its keys: {keys}): it is not a '
                "PyTorch profiler (Kineto) or Chrome trace"
            )
        return metadata

    def _add_metadata(self, metadata: dict[str, Any], key: str) -> None:
        start = self._chars_dropped + self._pos
        metadata[key] = self._value(f"the value of the top-level key {key!r}")
        self._metadata_chars += self._chars_dropped + self._pos - start
        limit = self._limits.max_event_bytes
        if self._metadata_chars > limit or len(metadata) > _MAX_METADATA_KEYS:
            raise self._error(
                f"the top-level keys besides traceEvents hold over {human_size(limit)} of text "
                f"(TraceLimits.max_event_bytes) or over {_MAX_METADATA_KEYS:,} keys "
                f"({len(metadata):,} read): the file is corrupt or hostile"
            )

    def _events(self, *, bare: bool) -> None:
        """Stream the event array (at the cursor, or just past its ``[`` if ``bare``)."""
        if not bare and (char := self._peek('the value of "traceEvents"')) != "[":
            raise self._error(
                f'"traceEvents" {self._at(self._pos)} is {_kind(char)}, not a list of events: '
                "this is not a Kineto/Chrome trace"
            )
        self._pos += not bare
        char = self._peek(self._event_where(), eof_ok=bare)
        while char not in ("]", ""):
            if char != "{":
                raise self._error(
                    f"{self._event_where()} {self._at(self._pos)} is {_kind(char)}, not a JSON "
                    "object: this is not a Kineto/Chrome trace event list"
                )
            self._run_events()
            char = self._peek(self._event_where(), eof_ok=bare)
            if char == ",":
                self._pos += 1
                char = self._peek(self._event_where(), eof_ok=bare)
            elif char not in ("]", ""):
                raise self._syntax(self._pos, "Expecting ',' or ']'", self._event_where())
        self._pos += char == "]"
        self._flush()

    def _run_events(self) -> None:
        """Decode events while each follows its comma directly: the hot loop, one C call each."""
        scan, next_event, short_chars = self._scan, _NEXT_EVENT.match, self._short_chars
        while True:
            buf, pos, batch = self._buf, self._pos, self._batch
            if not batch:
                self._batch_start = pos
            try:
                while True:
                    event, end = scan(buf, pos)
                    if end - pos > short_chars:
                        batch = self._long_event(event, pos, end)
                    batch.append(event)
                    found = next_event(buf, end)
                    if len(batch) >= BATCH_EVENTS:
                        self._flush()
                        batch = self._batch
                        if found is not None:
                            self._batch_start = found.end()
                    if found is None:
                        self._pos = end
                        return
                    pos = found.end()
            except StopIteration as exc:
                failure = exc.value, "Expecting value"
            except json.JSONDecodeError as exc:
                failure = exc.pos, exc.msg
            except RecursionError:
                self._pos = pos
                raise self._too_deep(self._event_where()) from None
            self._pos = pos  # outside the handlers, so errors carry no chained traceback
            self._recover(*failure, self._event_where())

    def _value(self, what: str) -> Any:
        """Decode the next JSON value, reading on until it is complete."""
        self._peek(what)
        while True:
            buf, pos = self._buf, self._pos
            try:
                value, end = self._scan(buf, pos)
            except StopIteration as exc:
                failure = exc.value, "Expecting value"
            except json.JSONDecodeError as exc:
                failure = exc.pos, exc.msg
            except RecursionError:
                raise self._too_deep(what) from None
            else:
                if len(buf) - end < _LOOKAHEAD_CHARS and not self._eof:
                    self._fill()  # a number may go on in the next piece ("12" of "12.5e3")
                    continue
                if end - pos > self._short_chars:
                    self._check_limits(value, pos, end, lambda: what)
                self._pos = end
                return value
            self._recover(*failure, what)

    def _recover(self, error_pos: int, message: str, what: str) -> None:
        """After a failed scan: read more text if the value may just be cut short, else raise."""
        unterminated = message.startswith("Unterminated string")
        if self._eof:
            rest = self._buf[error_pos:].rstrip()
            if unterminated or (len(rest) < _LOOKAHEAD_CHARS and not rest.strip(_TOKEN_CHARS)):
                raise self._cut_off(what)
            raise self._syntax(error_pos, message, what)
        if error_pos < len(self._buf) - _LOOKAHEAD_CHARS and not unterminated:
            raise self._syntax(error_pos, message, what)
        # Read until the pending text doubles, so that a value spanning many chunks is
        # rescanned only a logarithmic number of times.
        target = 2 * (len(self._buf) - self._pos)
        while self._fill():
            pending = len(self._buf) - self._pos
            if pending > self._limits.max_event_bytes // 4:
                self._check_size(self._pos, len(self._buf), what)
            if pending >= target:
                return

    def _long_event(self, event: Any, start: int, end: int) -> list[dict[str, Any]]:
        """Limits and batch accounting for an event of more than ``_short_chars``; the batch."""
        buf, max_depth = self._buf, self._limits.max_depth
        if (
            end - start > self._limits.max_event_bytes // 4
            or buf.count("{", start, end) + buf.count("[", start, end) > max_depth
        ):
            self._check_limits(event, start, end, self._event_where)
        if self._batch_chars > _BATCH_CHARS:  # long events: fewer per batch, memory bounded
            self._flush()
            self._batch_start = start
        self._batch_chars += end - start
        return self._batch

    def _check_limits(self, value: Any, start: int, end: int, what: Callable[[], str]) -> None:
        """Size and depth checks for a decoded value longer than ``_short_chars``."""
        if end - start > self._limits.max_event_bytes // 4:
            self._check_size(start, end, what())
        buf, max_depth = self._buf, self._limits.max_depth
        brackets = buf.count("{", start, end) + buf.count("[", start, end)
        if brackets > max_depth and _deeper_than(value, max_depth):
            self._pos = start
            raise self._too_deep(what())

    def _check_size(self, start: int, end: int, what: str) -> None:
        if _utf8_len(self._buf[start:end]) > self._limits.max_event_bytes:
            raise self._error(
                f"{what} {self._at(start)} is over {human_size(self._limits.max_event_bytes)} "
                "(TraceLimits.max_event_bytes): the file is corrupt or hostile; raise the limit "
                "only for a file you trust"
            )

    def _fill(self) -> bool:
        """Drop the text before the cursor and append the next piece; False at the end.

        Positions held across a call are stale afterwards, even when it returns False.
        """
        buf, pos = self._buf, self._pos
        if self._batch:  # keep the batch's text: rejected events' offsets are found in it
            pos = min(pos, self._batch_start)
        self._base += pos if buf.isascii() else _utf8_len(buf[:pos])
        self._chars_dropped += pos
        self._batch_start -= pos
        self._buf, self._pos = buf[pos:], self._pos - pos  # let the old buffer go first
        del buf
        text = None if self._eof else self._text.read()
        if text is None:
            self._eof = True
            return False
        self._buf = self._buf + text if self._buf else text
        return True

    def _peek(self, what: str, *, eof_ok: bool = False) -> str:
        """The next non-blank character (``""`` at the end if ``eof_ok``), cursor on it."""
        while True:
            self._pos = _WHITESPACE.match(self._buf, self._pos).end()  # type: ignore[union-attr]
            if self._pos < len(self._buf):
                return self._buf[self._pos]
            if not self._fill():
                if eof_ok:
                    return ""
                raise self._cut_off(what)

    def _expect(self, char: str, where: str) -> None:
        if self._peek(where) != char:
            raise self._syntax(self._pos, f"Expecting {char!r}", where)
        self._pos += 1

    def _flush(self) -> None:
        self._batch_chars = 0
        if self._batch:
            batch, self._batch = self._batch, []
            first = self._events_done
            self._events_done += len(batch)
            rejected = self._on_events(batch)
            if rejected:
                self._reject(batch, first, rejected)

    def _reject(
        self, batch: list[dict[str, Any]], first: int, rejected: Sequence[Rejection]
    ) -> None:
        """Raise for a fatal rejection; count the others, locating the first of each kind."""
        starts = EventStarts(self._scan, self._buf, self._batch_start)
        fatal = self.skipped.judge(batch, first, rejected, lambda index: self._at(starts.of(index)))
        if fatal is not None:
            raise self._error(
                f"{fatal}: the step boundaries cannot be trusted; the file is corrupt, re-record it"
            )

    def _event_where(self) -> str:
        return f"event {self._events_done + len(self._batch) + 1:,} of the event list"

    def _at(self, pos: int) -> str:
        buf = self._buf
        return self._text.at(self._base + (pos if buf.isascii() else _utf8_len(buf[:pos])))

    def _error(self, message: str) -> TraceError:
        return TraceError(f"{self._text.path}: {message}")

    def _cut_off(self, what: str) -> TraceError:
        return self._error(
            f"the file ends inside {what} {self._text.at(self._text.bytes_read)}: it was probably "
            "cut off while being written; re-record it"
        )

    def _syntax(self, pos: int, message: str, what: str) -> TraceError:
        return self._error(
            f"invalid JSON in {what} {self._at(pos)} ({message}): the file is corrupt; re-record it"
        )

    def _too_deep(self, what: str) -> TraceError:
        return self._error(
            f"{what} {self._at(self._pos)} nests deeper than {self._limits.max_depth} levels "
            "(TraceLimits.max_depth): the file is corrupt or hostile"
        )


def _kind(char: str) -> str:
    """What JSON value starts with ``char``."""
    return _KINDS.get(char, "a number" if char in _NUMBER_STARTS else repr(char))


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether containers nest more than ``limit`` levels in ``value`` (itself level 1)."""
    stack: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))
