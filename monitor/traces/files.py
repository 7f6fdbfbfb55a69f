"""Trace files as text: finding them, size limits, gunzip and UTF-8 decoding (an adapter: file
I/O). The JSON layer above this is :mod:`monitor.traces.reader`."""

from __future__ import annotations

import codecs
import stat
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from monitor.core.errors import TraceError

__all__ = [
    "DEFAULT_LIMITS",
    "TraceLimits",
    "TraceText",
    "file_size",
    "find_trace_files",
    "human_size",
]

_GZIP_MAGIC = b"\x1f\x8b"
_TRACE_SUFFIXES = (".json", ".json.gz")


@dataclass(frozen=True, slots=True)
class TraceLimits:
    """Safety limits for one trace file; the defaults suit real traces of any size."""

    max_file_bytes: int = 4 * 1024**3  # size on disk
    max_decoded_bytes: int = 32 * 1024**3  # bytes after gunzip (gzip bombs)
    max_event_bytes: int = 64 * 1024**2  # one event; one metadata value; all metadata together
    # JSON nesting inside one event / value (the event itself is 1). Real events nest under 10
    # levels; events shorter than 2 * max_depth + 1 characters cannot break the limit and skip
    # the check, so a generous limit keeps the check off the hot path.
    max_depth: int = 400
    chunk_bytes: int = 4 * 1024**2  # read size


DEFAULT_LIMITS = TraceLimits()


def find_trace_files(path: Path) -> list[Path]:
    """``[path]`` for a file; a folder's ``*.json`` and ``*.json.gz`` files, sorted by name."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise TraceError(
            f"{path} does not exist: give a trace file (.json or .json.gz) or a folder"
        )
    found = sorted(
        p for p in path.iterdir() if p.name.lower().endswith(_TRACE_SUFFIXES) and p.is_file()
    )
    if not found:
        raise TraceError(
            f"no trace files in {path}: looked for *.json and *.json.gz (torch.profiler writes "
            "*.pt.trace.json[.gz]); give the folder your trace handler wrote to, or one file"
        )
    return found


def file_size(path: Path, limits: TraceLimits) -> int:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise TraceError(f"{path} does not exist: give a trace file (.json or .json.gz)") from None
    except OSError as exc:
        raise TraceError(f"{path} cannot be read ({exc.strerror}): check the path") from None
    if stat.S_ISDIR(info.st_mode):
        raise TraceError(f"{path} is a folder: give one trace file (find_trace_files lists them)")
    if info.st_size > limits.max_file_bytes:
        raise TraceError(
            f"{path} is {human_size(info.st_size)}, over the "
            f"{human_size(limits.max_file_bytes)} limit "
            "(TraceLimits.max_file_bytes): record fewer steps per trace, or raise the limit"
        )
    if info.st_size == 0 and stat.S_ISREG(info.st_mode):
        raise TraceError(f"{path} is empty: it was never written or was cut off; re-record it")
    return info.st_size


def _gunzip(raw: IO[bytes], size: int, path: Path) -> Iterator[bytes]:
    """Decompress gzip members one after another, never more than ``size`` bytes at a time."""
    decompressor = zlib.decompressobj(wbits=31)
    in_member = False
    data = b""
    while data or (data := raw.read(max(1, size // 4))):  # gzip expands text 5-20 times
        if not in_member:
            data = data.lstrip(b"\0")  # zero padding between members, as gzip(1) allows
            if not data:
                continue
            decompressor, in_member = zlib.decompressobj(wbits=31), True
        try:
            out = decompressor.decompress(data, size)
        except zlib.error as exc:
            raise TraceError(
                f"{path}: the gzip data is corrupt near compressed byte {raw.tell():,} ({exc}): "
                "copy or re-record the file"
            ) from None
        data = decompressor.unconsumed_tail
        if decompressor.eof:
            data, in_member = decompressor.unused_data, False
        if out:
            yield out
    if in_member:
        out = decompressor.flush()  # output held back by the size cap: a few bytes at most
        if not decompressor.eof:
            raise TraceError(
                f"{path}: the gzip stream ends early, at compressed byte {raw.tell():,}: the file "
                "was cut off while being written or copied; re-record or copy it again"
            )
        if out:
            yield out


class TraceText:
    """The file's text, piece by piece (gunzipped, UTF-8 checked), with byte counts."""

    def __init__(
        self,
        raw: IO[bytes],
        path: Path,
        file_bytes: int,
        limits: TraceLimits,
        progress: Callable[[int, int], None] | None,
    ) -> None:
        self.path, self.bytes_read = path, 0  # bytes_read: decoded bytes taken so far
        self.gzipped = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        self._chunks = (
            _gunzip(raw, limits.chunk_bytes, path)
            if self.gzipped
            else iter(lambda: raw.read(limits.chunk_bytes), b"")
        )
        self._raw, self._file_bytes, self._limits, self._progress = (
            raw,
            file_bytes,
            limits,
            progress,
        )
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self._done = False

    def read(self) -> str | None:
        """The next piece of text, or ``None`` at the end of the file."""
        while not self._done:
            try:
                data = next(self._chunks, b"")
            except OSError as exc:
                raise TraceError(f"{self.path}: reading failed ({exc}): check the disk") from None
            self._done = not data
            start = self.bytes_read - len(self._decoder.getstate()[0])
            self.bytes_read += len(data)
            if self.bytes_read > self._limits.max_decoded_bytes:
                raise TraceError(
                    f"{self.path}: the trace decompresses to more than "
                    f"{human_size(self._limits.max_decoded_bytes)} "
                    "(TraceLimits.max_decoded_bytes): "
                    "it is probably a gzip bomb; raise the limit only for a file you trust"
                )
            if self._progress is not None and data:
                self._progress(self._raw.tell(), self._file_bytes)
            try:
                text = self._decoder.decode(data, self._done)
            except UnicodeDecodeError as exc:
                raise TraceError(
                    f"{self.path}: not UTF-8 text {self.at(start + exc.start)} ({exc.reason}): "
                    "a JSON trace is UTF-8; the file is corrupt or not a trace"
                ) from None
            if text:
                return text
        return None

    def at(self, byte: int) -> str:
        """Where ``byte`` is, for messages."""
        return f"at byte {byte:,}" + (" of the gunzipped text" if self.gzipped else "")


def human_size(n_bytes: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}".replace(".0 ", " ")
    return f"{n_bytes} bytes"
