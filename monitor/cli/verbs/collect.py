"""``gpulens collect``: build the collector from the command line and run the daemon."""

from __future__ import annotations

import argparse
import logging
import socket
from pathlib import Path

from monitor.cli.options import (
    MIN_INTERVAL_SECONDS,
    Subparsers,
    add_db,
    gpu_count,
    interval,
    port,
    positive,
)
from monitor.collector.daemon import DaemonOptions, run
from monitor.collector.delivery import collector_pipeline, collector_spool
from monitor.collector.jobs import Collector, JobSettings
from monitor.collector.sampler import Sampler
from monitor.core.errors import DriverUnavailable, StoreUnavailable
from monitor.core.resolution import RetentionPolicy
from monitor.core.source import GpuSource
from monitor.store import Store
from monitor.store.engine import create_store_engine, data_dir, describe_url, resolve_url
from monitor.version import VERSION

log = logging.getLogger(__name__)

SPOOL_MAX_BYTES = 256 * 1024 * 1024


def register(verbs: Subparsers) -> None:
    """``gpulens collect``: its arguments, run by :func:`run_collect`."""
    parser = verbs.add_parser("collect", help="sample the GPUs of this host into the store")
    add_db(parser)
    parser.add_argument(
        "--interval",
        type=interval,
        default=1.0,
        metavar="S",
        help=f"seconds between samples (default 1, at least {MIN_INTERVAL_SECONDS:g})",
    )
    parser.add_argument(
        "--simulate",
        type=gpu_count,
        metavar="N",
        help="use N simulated GPUs instead of NVML (labelled simulated)",
    )
    parser.add_argument(
        "--simulate-if-no-driver",
        type=gpu_count,
        metavar="N",
        help="use NVML, or N simulated GPUs where no NVIDIA driver is found",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated GPUs")
    parser.add_argument(
        "--duration", type=positive, metavar="S", help="stop cleanly after S seconds"
    )
    _add_exporter_arguments(parser)
    _add_store_arguments(parser)
    parser.set_defaults(func=run_collect)


def _add_exporter_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics-port",
        type=port,
        metavar="P",
        help="serve Prometheus metrics at http://ADDR:P/metrics",
    )
    parser.add_argument(
        "--metrics-addr",
        default="127.0.0.1",
        metavar="ADDR",
        help="address for --metrics-port (default 127.0.0.1)",
    )
    parser.add_argument(
        "--dcgm-names",
        action="store_true",
        help="also export dcgm-exporter's metric names and labels",
    )


def _add_store_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host-name",
        default=socket.gethostname(),
        metavar="NAME",
        help="host identity in the store (default: this host's name)",
    )
    parser.add_argument(
        "--take-over",
        action="store_true",
        help="start even if a live collector holds --host-name (one that is hung, or on a "
        "machine being replaced); by default a second collector refuses to start",
    )
    parser.add_argument(
        "--spool",
        type=Path,
        metavar="PATH",
        help="spool file for database outages (default: in the data folder)",
    )
    parser.add_argument(
        "--flush-interval",
        type=positive,
        default=5.0,
        metavar="S",
        help="seconds between writes to the store (default 5)",
    )
    parser.add_argument(
        "--raw-days",
        type=positive,
        default=7.0,
        metavar="D",
        help="keep raw samples D days (default 7)",
    )
    parser.add_argument(
        "--rollup-1m-days",
        type=positive,
        default=90.0,
        metavar="D",
        help="keep 1-minute rollups D days (default 90)",
    )


def _simulated(args: argparse.Namespace, count: int) -> GpuSource:
    from monitor.collector.simulated import SimulatedSource

    return SimulatedSource(
        count, seed=args.seed, host=args.host_name, interval_seconds=args.interval
    )


def _build(args: argparse.Namespace, source: GpuSource) -> Collector:
    url = resolve_url(args.db)
    create_store_engine(url).dispose()  # a malformed URL is a usage error, said now
    retention = RetentionPolicy(raw_days=args.raw_days, rollup_1m_days=args.rollup_1m_days)
    spool = collector_spool(
        url,
        args.host_name,
        directory=data_dir() / "spool",
        path=args.spool,
        max_bytes=SPOOL_MAX_BYTES,
    )
    settings = JobSettings(
        interval_seconds=args.interval,
        poll_deadline_seconds=max(5.0, 2 * args.interval),
        flush_seconds=args.flush_interval,
    )
    return Collector(
        Sampler(source, args.host_name, collector_version=VERSION),
        collector_pipeline(spool),
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
        collector.connect(take_over=args.take_over)
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
