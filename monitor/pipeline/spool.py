"""JSON-lines files of hook records waiting for the store (an outage outlived the memory
buffer, or the session closed while the store was down).

Each writer appends only to its own file, ``<run_id>.<host>.<pid>.jsonl`` in the spool folder;
an analysis process that cannot reach the store leaves ``analyze-<window_id>.<host>.<pid>.jsonl``.
A writer replays its own file before anything else when the store answers again (the oldest
records go first, so a run is stored before its steps), and removes it once all of it is
stored. Files of processes that are gone are replayed by the next session that reaches a
store: it claims one by renaming it (atomic, so two sessions never replay the same file),
reads it and deletes it. Rows are keyed, so a file replayed twice
stores nothing twice.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeAlias

from monitor.core.run_records import RunInfo, StepRecord, WindowRecord
from profiler_hooks.sink import (
    AnalyzeWindow,
    EndRun,
    FailWindow,
    SaveWindow,
    SinkOp,
    StartRun,
    StepBatch,
)

log = logging.getLogger(__name__)

Item: TypeAlias = StepRecord | SinkOp
"""What the writer keeps in memory and spools: one step, or one operation."""

# A file another host may still be appending to (a shared folder) is left alone this long.
FOREIGN_QUIET_S = 600.0

_HOST_CHARS = re.compile(r"[^A-Za-z0-9_-]+")

# Own files of the writers alive in this process (a session, a trace handler's run).
_live_files: set[str] = set()
_live_lock = threading.Lock()


class HookSpool:
    """One writer's spool file, and the claiming of files left by others."""

    def __init__(
        self,
        directory: Path,
        prefix: str,
        *,
        max_bytes: int = 64 * 1024 * 1024,
        batch_steps: int = 2_000,
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.batch_steps = batch_steps
        self.host = _HOST_CHARS.sub("_", socket.gethostname()) or "host"
        self.path = directory / f"{prefix}.{self.host}.{os.getpid()}.jsonl"
        self.items = _count_lines(self.path)  # in the own file (one left by a crash counts)
        self._lock = threading.Lock()
        with _live_lock:
            _live_files.add(self.path.name)

    def release(self) -> None:
        """This writer is done: a later one (in this process too) may replay its file."""
        with _live_lock:
            _live_files.discard(self.path.name)

    def append(self, items: Sequence[Item]) -> int:
        """Append what fits under ``max_bytes``, oldest first; returns how many of ``items``
        were kept (a prefix). Raises ``OSError`` if the file cannot be written."""
        with self._lock:
            room = self.max_bytes - (self.path.stat().st_size if self.path.exists() else 0)
            chunks: list[str] = []
            for item in items:
                text = "".join(_line(row) for row in encode(item))
                room -= len(text.encode())
                if room < 0:
                    break
                chunks.append(text)
            if chunks:
                self.directory.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as handle:
                    handle.writelines(chunks)
                    handle.flush()
                    os.fsync(handle.fileno())
                self.items += len(chunks)
            return len(chunks)

    def read_own(self) -> list[Item]:
        """Everything in this writer's own file (steps grouped in batches); the file stays
        until :meth:`clear_own`, so a failed replay costs no rewrite."""
        with self._lock:
            if not self.path.exists():
                self.items = 0
                return []
            return list(group_steps(read_rows(self.path), self.batch_steps))

    def clear_own(self) -> None:
        """The own file's items are stored: remove it."""
        with self._lock:
            self.path.unlink(missing_ok=True)
            self.items = 0

    def claim_foreign(self) -> Path | None:
        """Claim one file left by another writer that is gone, or ``None``."""
        try:
            candidates = sorted(self.directory.iterdir())
        except FileNotFoundError:
            return None
        for path in candidates:
            if path != self.path and self._abandoned(path):
                claimed = self._claim(path)
                if claimed is not None:
                    return claimed
        return None

    def read_claimed(self, path: Path) -> list[Item]:
        """The items of a claimed file (steps grouped in batches), which is then deleted."""
        items = list(group_steps(read_rows(path), self.batch_steps))
        path.unlink(missing_ok=True)
        return items

    def _claim(self, path: Path) -> Path | None:
        stem = path.name.split(".", 1)[0]
        claimed = path.with_name(f"{stem}-{uuid.uuid4().hex[:8]}.{self.host}.{os.getpid()}.claimed")
        try:
            path.rename(claimed)
        except FileNotFoundError:  # gone, or another session claimed it first
            return None
        return claimed

    def _abandoned(self, path: Path) -> bool:
        parts = _name_parts(path.name)
        if parts is None:
            return False
        host, pid = parts
        if host == self.host and pid == os.getpid():
            with _live_lock:
                return path.suffix == ".jsonl" and path.name not in _live_files
        if host == self.host:
            return not _process_alive(pid)
        try:
            return time.time() - path.stat().st_mtime > FOREIGN_QUIET_S
        except FileNotFoundError:
            return False


def encode(item: Item) -> list[dict[str, Any]]:
    """The JSON rows of one item (a step batch gives one row per step)."""
    if isinstance(item, StepRecord):
        return [{"k": "step", **_fields(item)}]
    if isinstance(item, StepBatch):
        return [{"k": "step", **_fields(step)} for step in item.steps]
    if isinstance(item, StartRun):
        return [{"k": "run", **_fields(item.info)}]
    if isinstance(item, EndRun):
        return [{"k": "end", **_fields(item)}]
    if isinstance(item, SaveWindow):
        return [{"k": "window", "analyze": item.analyze, **_fields(item.window)}]
    if isinstance(item, FailWindow):
        return [{"k": "fail_window", **_fields(item)}]
    # SaveAnalysis or AnalyzeWindow: the analysis is redone from the trace file.
    return [{"k": "analyze", "window_id": item.window_id, "trace_path": item.trace_path}]


def decode(row: Mapping[str, Any]) -> Item:
    """Inverse of :func:`encode` for one row; raises ``ValueError`` for a malformed row."""
    try:
        kind = row["k"]
        fields = {key: value for key, value in row.items() if key != "k"}
        if kind == "step":
            return StepRecord(**_dates(fields, "started_at"))
        if kind == "run":
            fields["gpu_uuids"] = tuple(fields.get("gpu_uuids", ()))
            return StartRun(RunInfo(**_dates(fields, "started_at", "ended_at")))
        if kind == "end":
            return EndRun(**_dates(fields, "ended_at"))
        if kind == "window":
            # "analyse": the spelling of spool files written before 0.1.1
            analyze = bool(fields.pop("analyze", fields.pop("analyse", False)))
            return SaveWindow(WindowRecord(**_dates(fields, "started_at")), analyze)
        if kind == "fail_window":
            return FailWindow(**fields)
        if kind in ("analyze", "analyse"):
            return AnalyzeWindow(**fields)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a gpulens hook record: {exc}") from exc
    raise ValueError(f"not a gpulens hook record: unknown kind {kind!r}")


def read_rows(path: Path) -> Iterator[Item]:
    """Every item of a spool file; damaged lines (a torn last write) are skipped."""
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                yield decode(json.loads(line))
            except ValueError:
                log.warning("gpulens: spool %s line %d is damaged; skipped", path, number)


def group_steps(items: Iterator[Item], batch_steps: int) -> Iterator[Item]:
    """Runs of consecutive steps become :class:`StepBatch` items of at most ``batch_steps``."""
    batch: list[StepRecord] = []
    for item in items:
        if isinstance(item, StepRecord):
            batch.append(item)
            if len(batch) < batch_steps:
                continue
            item_after: Item | None = None
        else:
            item_after = item
        if batch:
            yield StepBatch(tuple(batch))
            batch = []
        if item_after is not None:
            yield item_after
    if batch:
        yield StepBatch(tuple(batch))


def _fields(record: Any) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for item in dataclasses.fields(record):
        value = getattr(record, item.name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, Mapping):
            value = dict(value)
        row[item.name] = value
    return row


def _dates(fields: dict[str, Any], *names: str) -> dict[str, Any]:
    for name in names:
        if fields.get(name) is not None:
            fields[name] = datetime.fromisoformat(fields[name])
    return fields


def _line(row: Mapping[str, Any]) -> str:
    return json.dumps(row, separators=(",", ":"), default=str) + "\n"


def _name_parts(name: str) -> tuple[str, int] | None:
    """``(host, pid)`` of ``<stem>.<host>.<pid>.jsonl`` or ``.claimed``; hosts hold no dots."""
    parts = name.split(".")
    if len(parts) != 4 or parts[3] not in ("jsonl", "claimed") or not parts[2].isdigit():
        return None
    return parts[1], int(parts[2])


def _count_lines(path: Path) -> int:
    try:
        with path.open("rb") as handle:
            return sum(1 for line in handle if line.strip())
    except OSError:  # none yet, or an unusable folder (appends will say so)
        return 0


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True
