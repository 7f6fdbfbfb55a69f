"""``gpulens analyze`` and ``gpulens import``: read Kineto traces; print or store the analysis."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING

from monitor.cli.options import Subparsers, add_db, add_json

if TYPE_CHECKING:
    from monitor.traces.analyze import Progress

# Files at least this big show progress on stderr while they are read.
PROGRESS_MIN_BYTES = 32 * 1024 * 1024


def register(verbs: Subparsers) -> None:
    """``gpulens analyze TRACE`` and ``gpulens import TRACE``: their arguments, run by
    :func:`run_analyze` and :func:`run_import`."""
    analyze = verbs.add_parser(
        "analyze", help="analyze a PyTorch profiler (Kineto) trace file or folder of ranks"
    )
    analyze.add_argument("trace", type=Path, metavar="TRACE|DIR")
    add_json(analyze)
    analyze.set_defaults(func=run_analyze)
    imports = verbs.add_parser("import", help="store an existing trace as a run")
    imports.add_argument("trace", type=Path, metavar="TRACE|DIR")
    imports.add_argument("--run", required=True, metavar="NAME", help="the run's name")
    add_db(imports)
    imports.set_defaults(func=run_import)


def run_analyze(args: argparse.Namespace) -> int:
    from monitor.core.analysis import to_json
    from monitor.core.analysis.report import format_analysis
    from monitor.traces.analyze import analyze_path

    analysis = analyze_path(args.trace, progress=_progress_printer(sys.stderr))
    if args.json:
        print(json.dumps(to_json(analysis), indent=2))
    else:
        print(format_analysis(analysis))
    return 0


def run_import(args: argparse.Namespace) -> int:
    from monitor.services.imports import import_trace
    from monitor.store import Store
    from monitor.store.engine import resolve_url

    store = Store.open(resolve_url(args.db))
    try:
        imported = import_trace(store, args.trace, args.run, progress=_progress_printer(sys.stderr))
    finally:
        store.close()
    for item in imported:
        print(f"imported rank {item.rank} of {args.trace} as run {args.run!r} (id {item.run_id})")
    return 0


def _progress_printer(stream: IO[str]) -> Progress:
    last: dict[str, int] = {}

    def show(name: str, done: int, size: int) -> None:
        if size < PROGRESS_MIN_BYTES:
            return
        tenth = 10 * done // max(size, 1)
        if last.get(name) != tenth:
            last[name] = tenth
            print(f"reading {name}: {100 * done // max(size, 1)}%", file=stream, flush=True)

    return show
