"""``gpulens analyze`` and ``gpulens import``: read Kineto traces; print or store the analysis."""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import socket
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from monitor.core.analysis import to_json
from monitor.core.analysis.model import TraceAnalysis
from monitor.core.analysis.report import format_analysis
from monitor.core.run_records import RunInfo, StepRecord, WindowRecord
from monitor.store import Store
from monitor.store.engine import data_dir, resolve_url
from monitor.traces.analyze import analyze_path
from monitor.traces.reader import find_trace_files
from monitor.version import VERSION

# Files at least this big show progress on stderr while they are read.
PROGRESS_MIN_BYTES = 32 * 1024 * 1024


def run_analyze(args: argparse.Namespace) -> int:
    analysis = analyze_path(args.trace, progress=_progress_printer(sys.stderr))
    if args.json:
        print(json.dumps(to_json(analysis), indent=2))
    else:
        print(format_analysis(analysis))
    return 0


def run_import(args: argparse.Namespace) -> int:
    files = find_trace_files(Path(args.trace))
    analysis = analyze_path(args.trace, progress=_progress_printer(sys.stderr))
    store = Store.open(resolve_url(args.db))
    try:
        run_ids = [
            _store_rank(store, args.run, files, analysis, index)
            for index in range(len(analysis.ranks))
        ]
    finally:
        store.close()
    for run_id, item in zip(run_ids, analysis.ranks, strict=True):
        print(f"imported rank {item.rank} of {args.trace} as run {args.run!r} (id {run_id})")
    return 0


def _store_rank(
    store: Store, name: str, files: list[Path], analysis: TraceAnalysis, index: int
) -> str:
    item = analysis.ranks[index]
    source = next((file for file in files if file.name == item.source), files[0])
    run_id = uuid.uuid4().hex
    now = datetime.now(timezone.utc)
    started = _wall_time(item.total.start_us) or now
    trace_copy = _keep_copy(source, run_id)
    store.start_run(
        RunInfo(
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
    )
    steps = [
        StepRecord(
            run_id=run_id,
            step=step.step if step.step is not None else 0,
            started_at=_wall_time(step.start_us) or started,
            duration_us=step.duration_us,
            is_profiled=True,
        )
        for step in item.steps
    ]
    store.write_steps(steps)
    numbers = [step.step for step in steps] or [0]
    window_id = uuid.uuid4().hex
    store.save_window(
        WindowRecord(
            window_id=window_id,
            run_id=run_id,
            first_step=min(numbers),
            last_step=max(numbers),
            started_at=started,
            trace_path=str(trace_copy),
            status="analyzing",
            trigger="import",
        )
    )
    store.save_window_analysis(window_id, TraceAnalysis(ranks=(item,), notes=analysis.notes))
    return run_id


def _wall_time(trace_us: float) -> datetime | None:
    """Kineto timestamps are µs since the epoch in most traces; newer ones are relative to
    ``baseTimeNanoseconds`` (not kept here), and then the import time is used instead."""
    if trace_us > 1e15:  # after 2001-09-09 in epoch µs
        return datetime.fromtimestamp(trace_us / 1e6, timezone.utc)
    return None


def _keep_copy(source: Path, run_id: str) -> Path:
    """A gzip copy of the trace beside the store's data, so the dashboard can serve it."""
    folder = data_dir() / "traces" / run_id
    folder.mkdir(parents=True, exist_ok=True)
    name = source.name if source.name.endswith(".gz") else source.name + ".gz"
    target = folder / name
    with source.open("rb") as raw:
        is_gzip = raw.read(2) == b"\x1f\x8b"
    if is_gzip:
        shutil.copyfile(source, target)
    else:
        with source.open("rb") as plain, gzip.open(target, "wb", compresslevel=6) as packed:
            shutil.copyfileobj(plain, packed, 1024 * 1024)
    return target


def _progress_printer(stream: IO[str]):  # type: ignore[no-untyped-def]
    last: dict[str, int] = {}

    def show(name: str, done: int, size: int) -> None:
        if size < PROGRESS_MIN_BYTES:
            return
        tenth = 10 * done // max(size, 1)
        if last.get(name) != tenth:
            last[name] = tenth
            print(f"reading {name}: {100 * done // max(size, 1)}%", file=stream, flush=True)

    return show
