"""``gpulens advise``: what holds a training run back, with evidence and the change to make."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from monitor.cli.options import Subparsers, add_db, add_json
from monitor.core.errors import ConfigError

if TYPE_CHECKING:
    from monitor.core.advisor.advice import AdvisorSettings
    from monitor.core.advisor.findings import Finding

# The advisor and the store (numpy, SQLAlchemy) are imported by the run functions, not here:
# every `gpulens` command builds every verb's parser, `gpulens collect` included.


def register(verbs: Subparsers) -> None:
    """``gpulens advise``: its arguments, run by :func:`run_advise`."""
    parser = verbs.add_parser(
        "advise", help="bottlenecks of a training run, with evidence and the change to make"
    )
    add_db(parser)
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--run", metavar="ID|NAME", help="a stored run (default: the newest)")
    target.add_argument("--trace", metavar="FILE|DIR", help="a trace file or folder of ranks")
    target.add_argument(
        "--fleet", action="store_true", help="every GPU: idle while its processes hold memory"
    )
    add_json(parser)
    parser.add_argument(
        "--no-save", action="store_true", help="do not store the findings with the run"
    )
    parser.add_argument(
        "--thresholds", action="store_true", help="list the thresholds and their sources"
    )
    add_arguments(parser)
    parser.set_defaults(func=run_advise)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``advise`` and ``compare``: thresholds and the energy price."""
    parser.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override an advisor threshold (repeatable; `gpulens advise --thresholds` lists them)",
    )
    parser.add_argument(
        "--price-per-kwh",
        type=float,
        default=None,
        metavar="PRICE",
        help="energy price for the cost figures (default: GPULENS_PRICE_PER_KWH, else none)",
    )
    parser.add_argument("--currency", default=os.environ.get("GPULENS_CURRENCY", "USD"))


def settings_from(args: argparse.Namespace) -> AdvisorSettings:
    from monitor.core.advisor.advice import AdvisorSettings
    from monitor.core.advisor.thresholds import Thresholds, parse_overrides

    price = args.price_per_kwh
    if price is None and os.environ.get("GPULENS_PRICE_PER_KWH"):
        try:
            price = float(os.environ["GPULENS_PRICE_PER_KWH"])
        except ValueError:
            raise ConfigError("GPULENS_PRICE_PER_KWH must be a number (price of 1 kWh)") from None
    if price is not None and price < 0:
        raise ConfigError("the energy price cannot be negative")
    thresholds = Thresholds(parse_overrides(args.threshold))
    return AdvisorSettings(thresholds=thresholds, price_per_kwh=price, currency=args.currency)


def run_advise(args: argparse.Namespace) -> int:
    from monitor.core.advisor.report import advice_to_json, render_advice, render_thresholds

    if args.thresholds:
        print(render_thresholds())
        return 0
    settings = settings_from(args)
    if args.trace is not None:
        findings, subject = _advise_trace(args.trace, settings)
    elif args.fleet:
        findings, subject = _advise_fleet(args, settings)
    else:
        findings, subject = _advise_store(args, settings)
    if args.json:
        print(json.dumps(advice_to_json(findings, subject), indent=2, allow_nan=False))
    else:
        print(render_advice(findings, _heading(subject)), end="")
    return 0


def _advise_trace(path: str, settings: AdvisorSettings) -> tuple[Sequence[Finding], dict[str, Any]]:
    from monitor.services.trace_advice import advise_trace

    advice = advise_trace(path, settings)
    return advice.findings, {"trace": advice.name, "ranks": advice.ranks}


def _advise_fleet(
    args: argparse.Namespace, settings: AdvisorSettings
) -> tuple[Sequence[Finding], dict[str, Any]]:
    """Every GPU in the store: idle but holding memory? Saved as each host's fleet findings."""
    from monitor.services.fleet import advise_fleet
    from monitor.store import Store
    from monitor.store.engine import resolve_url

    store = Store.open(resolve_url(args.db), upgrade=False)
    try:
        advice = advise_fleet(store, settings, save=not args.no_save)
    finally:
        store.close()
    return advice.findings, {"fleet": True, "gpus": advice.gpus, "hosts": advice.hosts}


def _advise_store(
    args: argparse.Namespace, settings: AdvisorSettings
) -> tuple[Sequence[Finding], dict[str, Any]]:
    from monitor.services.runs import advise_run
    from monitor.store import Store
    from monitor.store.engine import resolve_url

    store = Store.open(resolve_url(args.db), upgrade=False)
    try:
        ref = args.run
        if ref is None:
            newest = store.runs(limit=1)
            if not newest:
                raise ConfigError(
                    "no runs in the store yet: attach profiler_hooks to a training script, "
                    "or `gpulens advise --trace FILE` for a trace file"
                )
            ref = newest[0].run_id
        advice = advise_run(store, ref, settings, save=not args.no_save)
    finally:
        store.close()
    run = advice.run
    subject = {
        "run_id": run.run_id,
        "name": run.name,
        "host": run.host,
        "rank": run.rank,
        "world_size": run.world_size,
        "status": run.status,
        "steps": len(advice.evidence.steps),
    }
    return advice.findings, subject


def _heading(subject: dict[str, Any]) -> str:
    if "fleet" in subject:
        return f"gpulens advise: fleet ({subject['gpus']} GPUs on {subject['hosts']} host(s))"
    if "trace" in subject:
        return f"gpulens advise: trace {subject['trace']} ({subject['ranks']} rank(s))"
    return (
        f"gpulens advise: run {subject['name']} ({subject['run_id'][:12]}, rank "
        f"{subject['rank']}/{subject['world_size']}, {subject['steps']} steps, {subject['status']})"
    )
