"""``gpulens compare RUN_A RUN_B``: is B's step faster than A's, and did B fix what the advisor
found in A? (Closing the loop after ``gpulens advise``.)"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from monitor.cli.options import Subparsers, add_db, add_json
from monitor.cli.verbs.advise import add_arguments, settings_from

if TYPE_CHECKING:
    from monitor.core.advisor.evidence import RunEvidence


def register(verbs: Subparsers) -> None:
    """``gpulens compare RUN_A RUN_B``: its arguments, run by :func:`run_compare`."""
    parser = verbs.add_parser(
        "compare", help="did the change work? run B's step time and findings against run A's"
    )
    parser.add_argument("run_a", metavar="RUN_A", help="the run before the change (id or name)")
    parser.add_argument("run_b", metavar="RUN_B", help="the run after the change (id or name)")
    add_db(parser)
    add_json(parser)
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the bootstrap confidence interval"
    )
    add_arguments(parser)
    parser.set_defaults(func=run_compare)


def run_compare(args: argparse.Namespace) -> int:
    from monitor.core.advisor.compare import comparison_to_json, render_comparison
    from monitor.services.runs import compare
    from monitor.store import Store
    from monitor.store.engine import resolve_url

    settings = settings_from(args)
    store = Store.open(resolve_url(args.db), upgrade=False)
    try:
        # The runs' current findings, as the dashboard's Compare page shows them.
        result = compare(store, args.run_a, args.run_b, settings, seed=args.seed)
    finally:
        store.close()
    if args.json:
        print(json.dumps(comparison_to_json(result.comparison), indent=2, allow_nan=False))
    else:
        print(f"gpulens compare: A {_label(result.a)} vs B {_label(result.b)}")
        print(render_comparison(result.comparison), end="")
    return 0


def _label(evidence: RunEvidence) -> str:
    run = evidence.run
    if run is None:
        return "(unknown run)"
    return f"{run.name} ({run.run_id[:12]}, rank {run.rank})"
