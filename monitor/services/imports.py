"""Import a Kineto trace into the store (``gpulens import TRACE``): one run per rank.

Each rank becomes a run with status ``imported``, its profiled steps, and one analyzed window
whose trace is a gzip copy kept beside the store's data (the dashboard serves it from there).
The runs' findings are computed when first read (:func:`monitor.services.runs.current_findings`).
"""

from __future__ import annotations

import gzip
import shutil
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from monitor.core.analysis.results import TraceAnalysis
from monitor.core.errors import StoreError
from monitor.core.run_records import AnalyzedRun, RunInfo, StepRecord, WindowRecord
from monitor.services.runs import Clock, utc_now
from monitor.store import Store
from monitor.store.engine import data_dir
from monitor.traces.analyze import Progress, analyze_path
from monitor.traces.reader import find_trace_files
from monitor.version import VERSION

COPY_CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ImportedRank:
    """One rank of an imported trace, stored as run ``run_id``."""

    rank: int
    run_id: str


def import_trace(
    store: Store,
    path: str | Path,
    name: str,
    *,
    progress: Progress | None = None,
    copies: Path | None = None,
    clock: Clock = utc_now,
) -> list[ImportedRank]:
    """Analyze the trace file or folder at ``path`` and store each rank as a run named
    ``name``; the traces are copied under ``copies`` (default: the data folder's ``traces``).

    All or nothing: the whole trace is analyzed before anything is written, then every rank
    is stored in one transaction; on a failure no run and no trace copy is left behind.

    Raises :class:`~monitor.core.errors.TraceError` for an unreadable trace and
    :class:`~monitor.core.errors.StoreError` when the store fails.
    """
    files = find_trace_files(Path(path))
    analysis = analyze_path(path, progress=progress)
    folder = copies if copies is not None else data_dir() / "traces"
    now = clock()
    kept: list[Path] = []
    try:
        analyzed = [
            _analyzed_rank(name, files, analysis, index, folder, now, kept)
            for index in range(len(analysis.ranks))
        ]
        store.save_analyzed_runs(analyzed, analyzed_at=now)
    except ValueError as exc:  # a string longer than its column (the run's name)
        _remove(kept)
        raise StoreError(f"cannot store the trace as run {name[:40]!r}: {exc}") from exc
    except BaseException:
        _remove(kept)
        raise
    return [ImportedRank(item.info.rank, item.info.run_id) for item in analyzed]


def _analyzed_rank(
    name: str,
    files: list[Path],
    analysis: TraceAnalysis,
    index: int,
    copies: Path,
    now: datetime,
    kept: list[Path],
) -> AnalyzedRun:
    """Rank ``index`` as a run to store; its trace copy is made (and listed in ``kept``)."""
    item = analysis.ranks[index]
    source = next((file for file in files if file.name == item.source), files[0])
    run_id = uuid.uuid4().hex
    started = wall_time(item.total.start_us) or now
    kept.append(copies / run_id)
    trace_copy = keep_copy(source, copies / run_id)
    info = RunInfo(
        run_id=run_id,
        name=name,
        host=socket.gethostname(),
        started_at=started,
        rank=item.rank,
        world_size=len(analysis.ranks),
        status="imported",
        ended_at=now,
        config={"imported_from": source.name, "device": item.device},
        versions={"gpulens": VERSION},
        source="import",
    )
    steps = tuple(
        StepRecord(
            run_id=run_id,
            step=step.step if step.step is not None else 0,
            started_at=wall_time(step.start_us) or started,
            duration_us=step.duration_us,
            is_profiled=True,
        )
        for step in item.steps
    )
    numbers = [step.step for step in steps] or [0]
    window = WindowRecord(
        window_id=uuid.uuid4().hex,
        run_id=run_id,
        first_step=min(numbers),
        last_step=max(numbers),
        started_at=started,
        trace_path=str(trace_copy),
        status="analyzing",
        trigger="import",
    )
    return AnalyzedRun(info, steps, window, TraceAnalysis(ranks=(item,), notes=analysis.notes))


def _remove(folders: list[Path]) -> None:
    """The trace copies of an import that was not stored."""
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def wall_time(trace_us: float) -> datetime | None:
    """Kineto timestamps are µs since the epoch in most traces; newer ones are relative to
    ``baseTimeNanoseconds`` (not kept here), and then the import time is used instead."""
    if trace_us > 1e15:  # after 2001-09-09 in epoch µs
        return datetime.fromtimestamp(trace_us / 1e6, timezone.utc)
    return None


def keep_copy(source: Path, folder: Path) -> Path:
    """A gzip copy of the trace in ``folder``, so the dashboard can serve it."""
    folder.mkdir(parents=True, exist_ok=True)
    name = source.name if source.name.endswith(".gz") else source.name + ".gz"
    target = folder / name
    with source.open("rb") as raw:
        is_gzip = raw.read(2) == b"\x1f\x8b"
    if is_gzip:
        shutil.copyfile(source, target)
    else:
        with source.open("rb") as plain, gzip.open(target, "wb", compresslevel=6) as packed:
            shutil.copyfileobj(plain, packed, COPY_CHUNK_BYTES)
    return target


__all__ = ["ImportedRank", "import_trace", "keep_copy", "wall_time"]
