"""Analyze trace files: the streaming reader feeding the pure analysis (an adapter).

A file is one rank; a folder holds one file per rank (the rank comes from each file's
``distributedInfo``, else its position in the sorted folder).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from monitor.core.analysis.events import EventTable
from monitor.core.analysis.ranks import analyze_rank, combine
from monitor.core.analysis.results import RankAnalysis, TraceAnalysis
from monitor.core.errors import TraceError
from monitor.traces.reader import TraceLimits, find_trace_files, read_trace

Progress = Callable[[str, int, int], None]


def analyze_path(
    path: str | os.PathLike[str],
    *,
    limits: TraceLimits | None = None,
    progress: Progress | None = None,
) -> TraceAnalysis:
    """Analyze a Kineto trace file (``.json`` or ``.json.gz``) or a folder of per-rank files.

    ``progress(file_name, bytes_read, file_bytes)`` is called as each file is read. Raises
    :class:`~monitor.core.errors.TraceError` with one clear message for unreadable input.
    """
    files = find_trace_files(Path(path))
    skipped: list[list[str]] = [[] for _ in files]
    analyses = [
        analyze_file(
            file, default_rank=index, limits=limits, progress=progress, skipped=skipped[index]
        )
        for index, file in enumerate(files)
    ]
    ranks = [item.rank for item in analyses]
    if len(set(ranks)) != len(ranks):
        raise TraceError(
            f"{path}: several files claim the same rank ({sorted(ranks)}); analyze them one at "
            "a time, or keep one file per rank in the folder"
        )
    notes = [
        f"rank {item.rank}: {line}" if len(files) > 1 else line
        for item, lines in zip(analyses, skipped, strict=True)
        for line in lines
    ]
    return combine(analyses, notes=notes + _notes(analyses))


def analyze_file(
    file: Path,
    *,
    default_rank: int = 0,
    limits: TraceLimits | None = None,
    progress: Progress | None = None,
    skipped: list[str] | None = None,
) -> RankAnalysis:
    """One rank's analysis, reading the file once, streaming; lines saying which events had bad
    values and were skipped are appended to ``skipped`` (see :mod:`monitor.traces.skips`)."""
    table = EventTable()
    report = None
    if progress is not None:
        name = file.name

        def report(done: int, size: int) -> None:
            progress(name, done, size)

    metadata: Mapping[str, Any] = read_trace(
        file, table.add, limits=limits or TraceLimits(), progress=report, skipped=skipped
    )
    try:
        return analyze_rank(table, metadata, default_rank=default_rank, source=file.name)
    except (ValueError, TypeError, KeyError) as error:
        raise TraceError(f"{file}: events are not in the Kineto shape ({error})") from None


def _notes(analyses: list[RankAnalysis]) -> list[str]:
    notes = []
    for item in analyses:
        if not item.steps:
            notes.append(
                f"rank {item.rank}: no ProfilerStep#N in the trace; figures are for the whole "
                "trace (torch.profiler adds steps when prof.step() is called each iteration)"
            )
        if item.device is None and item.temporal.span_us == 0:
            notes.append(f"rank {item.rank}: no GPU activity in the trace (a CPU-only run?)")
    return notes
