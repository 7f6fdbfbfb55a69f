"""A spool: one writer's JSON-lines file of items waiting for the store, and the claiming of
files left by writers that are gone.

A writer appends only to its own file (named as :mod:`monitor.pipeline.spool_names` says), each
append fsynced and kept under ``max_bytes``; an append that fails half-way is cut back, so a
line is either whole or absent. Reading skips damaged lines (a torn write from a crash) and
says how many. Files of other writers are claimed by renaming them (atomic: two writers never
replay the same file), only when their writer is gone and only when they are meant for the
same store. The spool does I/O only; :class:`monitor.pipeline.delivery.Pipeline` counts, and
serialises the calls (a spool is not thread-safe on its own).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Generic

from monitor.pipeline.codec import Codec, ItemT, json_line
from monitor.pipeline.spool_names import (
    HOST,
    SpoolName,
    is_live_here,
    mark_live,
    mark_released,
    process_alive,
)

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 64 * 1024 * 1024

# A file another machine may still be appending to (a shared folder) is left alone this long.
FOREIGN_QUIET_S = 600.0


class Spool(Generic[ItemT]):
    """One writer's spool file ``path``, and (with ``claims``) the files in its folder it may
    claim. A spool named by the user (``gpulens collect --spool PATH``) claims nothing: a file
    left at ``path`` by an earlier run is its own.

    ``key`` names the store the items are meant for (:func:`spool_names.store_key`); ``None``
    for a sink without a URL. With ``accept_unkeyed`` files without a key (older versions, a
    caller's own sink) are claimed too.
    """

    def __init__(
        self,
        path: Path,
        codec: Codec[ItemT],
        *,
        key: str | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        claims: bool = True,
        accept_unkeyed: bool = False,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.directory = path.parent
        self.codec = codec
        self.key = key
        self.max_bytes = max_bytes
        self.claims = claims
        self.accept_unkeyed = accept_unkeyed
        self._wall = wall
        self._tail_checked = False
        mark_live(path)

    @classmethod
    def own(
        cls,
        directory: Path,
        stem: str,
        codec: Codec[ItemT],
        *,
        key: str | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        accept_unkeyed: bool = False,
    ) -> Spool[ItemT]:
        """This process's spool named ``stem`` in ``directory``, claiming files left there."""
        path = directory / str(SpoolName(stem, key, HOST, os.getpid()))
        return cls(path, codec, key=key, max_bytes=max_bytes, accept_unkeyed=accept_unkeyed)

    # -- the own file ---------------------------------------------------------------------

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def append(self, items: Sequence[ItemT]) -> int:
        """Append what fits under ``max_bytes``, oldest first; returns how many of ``items``
        were kept (a prefix). Raises ``OSError`` if the file cannot be written; then none is."""
        size = self.size()
        room = self.max_bytes - size
        chunks: list[bytes] = []
        for item in items:
            data = "".join(json_line(row) for row in self.codec.encode(item)).encode()
            room -= len(data)
            if room < 0:
                break
            chunks.append(data)
        if chunks:
            self._write(size, chunks)
        return len(chunks)

    def _write(self, size: int, chunks: list[bytes]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            if size and not self._tail_checked and not _ends_with_newline(self.path, size):
                chunks = [b"\n", *chunks]  # a torn line left by a crash must not swallow ours
            data = memoryview(b"".join(chunks))
            while data:
                data = data[os.write(fd, data) :]
            os.fsync(fd)
        except OSError:
            # Disk full half-way: cut back, so nothing counted dropped is replayed later.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise
        finally:
            os.close(fd)
        self._tail_checked = True  # from here on every line of the file is whole

    def count_units(self, path: Path | None = None) -> int:
        """The units in ``path`` (the own file by default); a damaged line counts as one."""
        total = 0
        try:
            with (path or self.path).open("rb") as handle:
                for raw in handle:
                    if raw.strip():
                        row = _row(raw)
                        total += 1 if row is None else self.codec.row_units(row)
        except OSError:  # none yet, or an unusable folder (appends will say so)
            return 0
        return total

    def reader(self, path: Path | None = None) -> SpoolReader[ItemT]:
        """A reader of ``path`` (the own file by default) from its first line."""
        return SpoolReader(path or self.path, self.codec)

    def clear(self) -> None:
        """The own file's items are stored (or dropped and counted): remove it."""
        self.path.unlink(missing_ok=True)

    def release(self) -> None:
        """This writer is done: a later one (in this process too) may replay its file."""
        mark_released(self.path)

    # -- files of others --------------------------------------------------------------------

    def claim(self) -> Path | None:
        """Claim one file left by a writer that is gone and meant for this store, or ``None``."""
        if not self.claims:
            return None
        try:
            candidates = sorted(self.directory.iterdir())
        except OSError:  # no folder yet (nothing was ever spooled), or not a folder
            return None
        for path in candidates:
            name = SpoolName.parse(path.name)
            if path != self.path and name is not None and self._abandoned(path, name):
                claimed = self._rename(path, name)
                if claimed is not None:
                    return claimed
        return None

    def items(self, path: Path) -> Iterator[ItemT]:
        """Every item of a file, damaged lines skipped (reading a claimed file in one go)."""
        reader = self.reader(path)
        try:
            while batch := reader.read(1000)[0]:
                yield from batch
        finally:
            reader.close()

    def _rename(self, path: Path, name: SpoolName) -> Path | None:
        stem = f"{name.stem}-{uuid.uuid4().hex[:8]}"
        claimed = path.with_name(str(SpoolName(stem, name.key, HOST, os.getpid(), "claimed")))
        try:
            path.rename(claimed)
        except FileNotFoundError:  # gone, or another writer claimed it first
            return None
        return claimed

    def _abandoned(self, path: Path, name: SpoolName) -> bool:
        if name.key != self.key and not (name.key is None and self.accept_unkeyed):
            return False
        if name.host == HOST and name.pid == os.getpid():
            return name.suffix == "jsonl" and not is_live_here(path)
        if name.host == HOST:
            return not process_alive(name.pid)
        try:
            return self._wall() - path.stat().st_mtime > FOREIGN_QUIET_S
        except FileNotFoundError:
            return False


class SpoolReader(Generic[ItemT]):
    """Reads a spool file from the front, a batch at a time. The own file may grow at its end
    while it is read (appends and reads are serialised by the pipeline)."""

    def __init__(self, path: Path, codec: Codec[ItemT]) -> None:
        self.path = path
        self._codec = codec
        self._handle: IO[bytes] | None = None
        self._line = 0
        self._opened = False

    def read(self, count: int) -> tuple[list[ItemT], int]:
        """Up to ``count`` items from where the last read stopped, and how many damaged lines
        were skipped on the way; no items and no damage at the end of the file."""
        handle = self._open()
        items: list[ItemT] = []
        damaged = 0
        while handle is not None and len(items) < count:
            raw = handle.readline()
            if not raw:
                break
            self._line += 1
            if not raw.strip():
                continue
            item = self._decode(raw)
            if item is None:
                damaged += 1
            else:
                items.append(item)
        return items, damaged

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def _open(self) -> IO[bytes] | None:
        if not self._opened:
            self._opened = True
            try:
                self._handle = self.path.open("rb")
            except FileNotFoundError:
                self._handle = None
        return self._handle

    def _decode(self, raw: bytes) -> ItemT | None:
        row = _row(raw)
        try:
            if row is not None:
                return self._codec.decode(row)
        except ValueError as exc:
            log.warning(
                "spool %s line %d is not a record (%s); skipped", self.path, self._line, exc
            )
            return None
        log.warning("spool %s line %d is damaged; skipped", self.path, self._line)
        return None


def _row(raw: bytes) -> dict[str, object] | None:
    try:
        row = json.loads(raw)
    except ValueError:  # a torn write, or bytes that are not UTF-8
        return None
    return row if isinstance(row, dict) else None


def _ends_with_newline(path: Path, size: int) -> bool:
    with path.open("rb") as probe:
        probe.seek(size - 1)
        return probe.read(1) == b"\n"


__all__ = ["DEFAULT_MAX_BYTES", "FOREIGN_QUIET_S", "Spool", "SpoolReader"]
