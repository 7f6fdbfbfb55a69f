"""Analyze one saved profiler window and store the result (the hooks' background process).

    GPULENS_DB=URL python -m profiler_hooks.analyze_window --window-id ID --spool-dir DIR TRACE

The store URL comes from ``GPULENS_DB`` (the environment, not the command line, which other
users can read). A trace that cannot be analyzed marks the window failed with the reason; a
store that cannot be reached, or whose schema is behind (``gpulens db upgrade``), leaves the
window in a spool file for a later session, with exit status 3.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from pathlib import Path

from monitor.core.errors import GpulensError
from profiler_hooks.analyzer import EXIT_SPOOLED, describe_error
from profiler_hooks.codec import hook_spool
from profiler_hooks.sink import AnalyzeWindow, FailWindow, SaveAnalysis, open_hook_store

log = logging.getLogger("gpulens.analysis")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m profiler_hooks.analyze_window")
    parser.add_argument("trace", help="the window's trace file (.json or .json.gz)")
    parser.add_argument("--window-id", required=True)
    parser.add_argument("--spool-dir", required=True, type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="gpulens analysis: %(message)s")
    with contextlib.suppress(OSError):
        os.nice(10)  # training comes first
    result = analyze(args.window_id, args.trace)
    try:
        store_result(os.environ.get("GPULENS_DB"), result)
    except (GpulensError, OSError) as exc:
        log.warning("cannot store the analysis of window %s: %s", args.window_id, exc)
        spool = hook_spool(
            args.spool_dir, f"analyze-{args.window_id}", store_url=os.environ.get("GPULENS_DB")
        )
        spool.append([AnalyzeWindow(args.window_id, args.trace)])
        return EXIT_SPOOLED
    return 0


def analyze(window_id: str, trace: str) -> SaveAnalysis | FailWindow:
    from monitor.traces.analyze import analyze_path

    try:
        return SaveAnalysis(window_id, analyze_path(trace), trace)
    except Exception as exc:
        log.warning("cannot analyze %s: %s", trace, exc)
        return FailWindow(window_id, describe_error(exc))


def store_result(url: str | None, result: SaveAnalysis | FailWindow) -> None:
    """Write the result. The store is opened as the training process opens it (a Postgres
    schema is checked, never migrated); the run's findings are not computed here: saving the
    analysis marks them stale and their readers compute them again, so this process ends as
    soon as the analysis is stored and the training process that waits for it is not held up
    by the advisor."""
    from monitor.store.engine import resolve_url

    store = open_hook_store(resolve_url(url))
    try:
        result.apply(store)
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(main())
