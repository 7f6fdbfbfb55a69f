"""``gpulens collect``: build the collector from the command line and run the daemon."""

from __future__ import annotations

import argparse
import logging
import re

from monitor.collector.daemon import DaemonOptions, run
from monitor.collector.jobs import Collector, JobSettings
from monitor.collector.sampler import Sampler
from monitor.core.errors import DriverUnavailable, StoreUnavailable
from monitor.core.resolution import RetentionPolicy
from monitor.core.source import GpuSource
from monitor.pipeline.buffer import Buffer, Spool
from monitor.store import Store
from monitor.store.engine import create_store_engine, data_dir, describe_url, resolve_url
from monitor.version import VERSION

log = logging.getLogger(__name__)

SPOOL_MAX_BYTES = 256 * 1024 * 1024


def _simulated(args: argparse.Namespace, count: int) -> GpuSource:
    from monitor.collector.simulated import SimulatedSource

    return SimulatedSource(
        count, seed=args.seed, host=args.host_name, interval_seconds=args.interval
    )


def _build(args: argparse.Namespace, source: GpuSource) -> Collector:
    url = resolve_url(args.db)
    create_store_engine(url).dispose()  # a malformed URL is a usage error, said now
    retention = RetentionPolicy(raw_days=args.raw_days, rollup_1m_days=args.rollup_1m_days)
    safe_host = re.sub(r"[^A-Za-z0-9_.-]", "_", args.host_name)
    spool = Spool(args.spool or data_dir() / "spool" / f"{safe_host}.jsonl", SPOOL_MAX_BYTES)
    settings = JobSettings(
        interval_seconds=args.interval,
        poll_deadline_seconds=max(5.0, 2 * args.interval),
        flush_seconds=args.flush_interval,
    )
    return Collector(
        Sampler(source, args.host_name, collector_version=VERSION),
        Buffer(spool),
        lambda: Store.open(url, retention=retention),
        settings=settings,
        version=VERSION,
    )


def _started_collector(args: argparse.Namespace) -> Collector:
    if args.simulate:
        collector = _build(args, _simulated(args, args.simulate))
        collector.start()
        return collector
    from monitor.collector.nvml import NvmlSource

    collector = _build(args, NvmlSource())
    try:
        collector.start()
    except DriverUnavailable as exc:
        if not args.simulate_if_no_driver:
            raise
        log.warning("%s — using %d SIMULATED GPUs instead", exc, args.simulate_if_no_driver)
        collector = _build(args, _simulated(args, args.simulate_if_no_driver))
        collector.start()
    return collector


def run_collect(args: argparse.Namespace) -> int:
    collector = _started_collector(args)
    url = describe_url(resolve_url(args.db))
    try:
        collector.connect()
    except StoreUnavailable as exc:
        log.error("%s — collecting anyway; records are buffered until it answers", exc)
    facts = collector.sampler.facts
    count = len(facts.devices) if facts else 0
    kind = "SIMULATED GPUs" if collector.sampler.source.is_simulated else "GPUs"
    log.info(
        "collecting %d %s on host %s every %g s into %s",
        count,
        kind,
        args.host_name,
        args.interval,
        url,
    )
    for note in facts.notes if facts else ():
        log.info("%s", note)
    options = DaemonOptions(
        duration_seconds=args.duration,
        metrics_port=args.metrics_port,
        metrics_addr=args.metrics_addr,
        dcgm_names=args.dcgm_names,
    )
    return run(collector, options)
