"""The hooks' items in the delivery pipeline: steps and the operations around them.

One row per step (a :class:`~profiler_hooks.sink.StepBatch` gives one per step) under
``"k": "step"``; one row per operation under its kind. Only steps are counted units; the
operations (a run's start and end, windows, analyses) travel in the same order but count 0.
Consecutive steps go to the sink in one ``write_steps`` call; an operation goes alone.
A :class:`~profiler_hooks.sink.SaveAnalysis` is spooled as "analyze this trace again": the
analysis itself is not kept on disk. Rows written before 0.1.1 (``"analyse"``) still decode.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeAlias

from monitor.core.run_records import RunInfo, StepRecord, WindowRecord
from monitor.pipeline import DEFAULT_MAX_BYTES, Spool, store_key
from profiler_hooks.sink import (
    AnalyzeWindow,
    EndRun,
    FailWindow,
    SaveWindow,
    SinkOp,
    StartRun,
    StepBatch,
)

HookItem: TypeAlias = StepRecord | SinkOp
"""What the writer keeps in memory and spools: one step, or one operation."""


class HookCodec:
    """The :class:`~monitor.pipeline.Codec` of :data:`HookItem`."""

    family = "hooks"

    def encode(self, item: HookItem) -> list[dict[str, Any]]:
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

    def decode(self, row: Mapping[str, Any]) -> HookItem:
        """Inverse of :meth:`encode` for one row; raises ``ValueError`` for a malformed row."""
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
                analyze = bool(fields.pop("analyze", fields.pop("analyse", False)))
                return SaveWindow(WindowRecord(**_dates(fields, "started_at")), analyze)
            if kind == "fail_window":
                return FailWindow(**fields)
            if kind in ("analyze", "analyse"):
                return AnalyzeWindow(**fields)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a gpulens hook record: {exc}") from exc
        raise ValueError(f"not a gpulens hook record: unknown kind {kind!r}")

    def units(self, items: Sequence[HookItem]) -> int:
        """Steps, whether alone or in a batch; the operations count 0."""
        count = 0
        for item in items:
            kind = type(item)
            if kind is StepRecord:
                count += 1
            elif kind is StepBatch:
                count += len(item.steps)  # type: ignore[union-attr]  # StepBatch, by its type
        return count

    def row_units(self, row: Mapping[str, Any]) -> int:
        return 1 if row.get("k") == "step" else 0

    def batch_length(self, head: Sequence[HookItem], limit: int) -> int:
        """Consecutive steps together (up to ``limit``), an operation alone."""
        if not isinstance(head[0], StepRecord):
            return 1
        count = 0
        for item in head[:limit]:
            if not isinstance(item, StepRecord):
                break
            count += 1
        return count


HOOK_ITEMS = HookCodec()


def hook_spool(
    directory: Path,
    stem: str,
    *,
    store_url: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Spool[HookItem]:
    """The spool of one writer (a run, or an analysis process) in ``directory``, keyed by the
    store at ``store_url`` (``None``: a caller's own sink). Files without a key, of older
    versions or of a caller's own sink, are replayed by any writer."""
    key = None if store_url is None else store_key(HOOK_ITEMS.family, store_url)
    return Spool.own(directory, stem, HOOK_ITEMS, key=key, max_bytes=max_bytes, accept_unkeyed=True)


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


__all__ = ["HOOK_ITEMS", "HookCodec", "HookItem", "hook_spool"]
