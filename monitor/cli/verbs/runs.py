"""``gpulens runs``: the training runs in the store."""

from __future__ import annotations

import argparse
import dataclasses
import json
from datetime import datetime
from typing import Any

from monitor.cli.options import Subparsers, add_db, add_json
from monitor.core.run_records import RUN_STATUSES
from monitor.store import Store
from monitor.store.engine import resolve_url
from monitor.store.runs import contains_pattern


def register(verbs: Subparsers) -> None:
    """``gpulens runs``: its arguments, run by :func:`run_runs`."""
    parser = verbs.add_parser("runs", help="training runs in the store")
    add_db(parser)
    parser.add_argument("--name", metavar="TEXT", help="only runs whose name contains TEXT")
    parser.add_argument("--host", metavar="HOST", help="only runs on HOST")
    parser.add_argument(
        "--status",
        choices=RUN_STATUSES,
        metavar="STATUS",
        help=f"only runs with this status ({', '.join(RUN_STATUSES)})",
    )
    add_json(parser)
    parser.set_defaults(func=run_runs)


def run_runs(args: argparse.Namespace) -> int:
    store = Store.open(resolve_url(args.db), upgrade=False)
    try:
        name_like = None if args.name is None else contains_pattern(args.name)
        runs = store.runs(name_like=name_like, host=args.host, status=args.status)
    finally:
        store.close()
    rows = [_plain(dataclasses.asdict(run)) for run in runs]
    if args.json:
        print(json.dumps({"runs": rows}, indent=2))
        return 0
    if not rows:
        print("no runs yet: attach profiler_hooks to a training script, or gpulens import TRACE")
        return 0
    print(
        f"{'name':<24} {'status':<11} {'host':<16} {'rank':>4} {'steps':>7} {'mean step':>11} "
        f"{'GPU busy':>8}  started"
    )
    for row in rows:
        mean = row.get("mean_step_us")
        busy = row.get("gpu_busy_percent")
        print(
            f"{str(row['name'])[:24]:<24} {row['status']:<11} {str(row['host'])[:16]:<16} "
            f"{row['rank']:>4} {row.get('steps', 0):>7} "
            f"{f'{mean / 1000:.2f} ms' if mean is not None else '-':>11} "
            f"{f'{busy:.0f}%' if busy is not None else '-':>8}  {row['started_at']}"
        )
    return 0


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value
