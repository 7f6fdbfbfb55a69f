"""``gpulens advise``: what holds a training run back, with evidence and the change to make."""

from __future__ import annotations

import argparse
import json
import os
from datetime import datetime, timedelta, timezone
from typing import Any

from monitor.core.advisor.engine import AdvisorSettings, advise
from monitor.core.advisor.fleet import idle_allocated
from monitor.core.advisor.model import Finding, rank_findings
from monitor.core.advisor.report import advice_to_json, render_advice, render_thresholds
from monitor.core.advisor.thresholds import Thresholds, parse_overrides
from monitor.core.errors import ConfigError
from monitor.services.gather import evidence_from_trace, gather_run
from monitor.store import Store
from monitor.store.engine import resolve_url


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


def _advise_trace(path: str, settings: AdvisorSettings) -> tuple[list[Finding], dict[str, Any]]:
    from monitor.traces.analyze import analyze_path

    analysis = analyze_path(path)
    found: dict[tuple[str, int | None, str], Finding] = {}
    for evidence in evidence_from_trace(analysis):
        for finding in advise(evidence, settings):
            # The straggler finding comes out of every rank's evidence; keep it once.
            found.setdefault((finding.rule, finding.scope.rank, finding.title), finding)
    subject = {"trace": os.path.basename(os.path.normpath(path)), "ranks": len(analysis.ranks)}
    return rank_findings(list(found.values())), subject


def _advise_fleet(
    args: argparse.Namespace, settings: AdvisorSettings
) -> tuple[list[Finding], dict[str, Any]]:
    """Every GPU in the store: idle but holding memory? Saved as each host's fleet findings."""
    now = datetime.now(timezone.utc)
    since = now - timedelta(minutes=settings.thresholds.value("fleet.idle_minutes"))
    store = Store.open(resolve_url(args.db), upgrade=False)
    try:
        gpus = store.gpus()
        samples = {gpu.uuid: store.samples(gpu.uuid, since, now) for gpu in gpus}
        processes = {gpu.uuid: store.process_spans(gpu.uuid, since, now) for gpu in gpus}
        findings = idle_allocated(gpus, samples, processes, now, settings.thresholds)
        if not args.no_save:
            for host in sorted({gpu.host for gpu in gpus}):
                mine = [f for f in findings if f.scope.host == host]
                store.save_findings(None, mine, at=now, host=host)
    finally:
        store.close()
    subject = {"fleet": True, "gpus": len(gpus), "hosts": len({gpu.host for gpu in gpus})}
    return rank_findings(findings), subject


def _advise_store(
    args: argparse.Namespace, settings: AdvisorSettings
) -> tuple[list[Finding], dict[str, Any]]:
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
        evidence = gather_run(store, ref, thresholds=settings.thresholds)
        findings = advise(evidence, settings)
        if not args.no_save and evidence.run is not None:
            store.save_findings(evidence.run.run_id, findings, at=datetime.now(timezone.utc))
    finally:
        store.close()
    run = evidence.run
    assert run is not None
    subject = {
        "run_id": run.run_id,
        "name": run.name,
        "host": run.host,
        "rank": run.rank,
        "world_size": run.world_size,
        "status": run.status,
        "steps": len(evidence.steps),
    }
    return findings, subject


def _heading(subject: dict[str, Any]) -> str:
    if "fleet" in subject:
        return f"gpulens advise: fleet ({subject['gpus']} GPUs on {subject['hosts']} host(s))"
    if "trace" in subject:
        return f"gpulens advise: trace {subject['trace']} ({subject['ranks']} rank(s))"
    return (
        f"gpulens advise: run {subject['name']} ({subject['run_id'][:12]}, rank "
        f"{subject['rank']}/{subject['world_size']}, {subject['steps']} steps, {subject['status']})"
    )
