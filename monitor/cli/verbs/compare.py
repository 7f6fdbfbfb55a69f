"""``gpulens compare RUN_A RUN_B``: is B's step faster than A's, and did B fix what the advisor
found in A? (Closing the loop after ``gpulens advise``.)"""

from __future__ import annotations

import argparse
import json

from monitor.cli.verbs.advise import settings_from
from monitor.core.advisor.compare import compare_runs, comparison_to_json, render_comparison
from monitor.core.advisor.engine import advise
from monitor.core.advisor.evidence import RunEvidence
from monitor.services.gather import gather_run
from monitor.store import Store
from monitor.store.engine import resolve_url


def run_compare(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    store = Store.open(resolve_url(args.db), upgrade=False)
    try:
        run_a = gather_run(store, args.run_a, thresholds=settings.thresholds)
        run_b = gather_run(store, args.run_b, thresholds=settings.thresholds)
    finally:
        store.close()
    comparison = compare_runs(
        run_a,
        run_b,
        advise(run_a, settings),
        advise(run_b, settings),
        thresholds=settings.thresholds,
        seed=args.seed,
    )
    if args.json:
        print(json.dumps(comparison_to_json(comparison), indent=2, allow_nan=False))
    else:
        print(f"gpulens compare: A {_label(run_a)} vs B {_label(run_b)}")
        print(render_comparison(comparison), end="")
    return 0


def _label(evidence: RunEvidence) -> str:
    run = evidence.run
    if run is None:
        return "(unknown run)"
    return f"{run.name} ({run.run_id[:12]}, rank {run.rank})"
