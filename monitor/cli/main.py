"""The ``gpulens`` command line.

Entry point only: it parses arguments, builds the pieces with their production defaults and
turns :class:`monitor.core.errors.GpulensError` into one line on stderr and a non-zero exit code.
Heavy packages (torch, dash) are never imported on the collector's path.
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from monitor.core.errors import ConfigError, DriverUnavailable, GpulensError
from monitor.version import VERSION

log = logging.getLogger("gpulens")

EXIT_ERROR = 1
EXIT_USAGE = 2


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _gpu_count(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"simulated GPUs must be 1..64, got {text}")
    return value


def _add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        metavar="URL",
        help="SQLAlchemy URL of the store (default: $GPULENS_DB, else a SQLite file in "
        "$XDG_DATA_HOME/gpulens/)",
    )


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _add_serve(parser: argparse.ArgumentParser, *, db: bool = True) -> None:
    """Options of the verbs that serve the dashboard."""
    if db:
        _add_db(parser)
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=int, default=8050, metavar="P", help="port to listen on (default 8050)"
    )
    parser.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="serve on a non-loopback address without GPULENS_DASHBOARD_TOKEN or "
        "GPULENS_DASHBOARD_USER/GPULENS_DASHBOARD_PASSWORD",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gpulens", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"gpulens {VERSION}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    collect = verbs.add_parser("collect", help="sample the GPUs of this host into the store")
    _add_db(collect)
    collect.add_argument(
        "--interval",
        type=_positive,
        default=1.0,
        metavar="S",
        help="seconds between samples (default 1)",
    )
    collect.add_argument(
        "--simulate",
        type=_gpu_count,
        metavar="N",
        help="use N simulated GPUs instead of NVML (labelled simulated)",
    )
    collect.add_argument(
        "--simulate-if-no-driver",
        type=_gpu_count,
        metavar="N",
        help="use NVML, or N simulated GPUs where no NVIDIA driver is found",
    )
    collect.add_argument("--seed", type=int, default=0, help="seed of the simulated GPUs")
    collect.add_argument(
        "--duration", type=_positive, metavar="S", help="stop cleanly after S seconds"
    )
    collect.add_argument(
        "--metrics-port",
        type=int,
        metavar="P",
        help="serve Prometheus metrics at http://ADDR:P/metrics",
    )
    collect.add_argument(
        "--metrics-addr",
        default="127.0.0.1",
        metavar="ADDR",
        help="address for --metrics-port (default 127.0.0.1)",
    )
    collect.add_argument(
        "--dcgm-names",
        action="store_true",
        help="also export dcgm-exporter's metric names and labels",
    )
    collect.add_argument(
        "--host-name",
        default=socket.gethostname(),
        metavar="NAME",
        help="host identity in the store (default: this host's name)",
    )
    collect.add_argument(
        "--spool",
        type=Path,
        metavar="PATH",
        help="spool file for database outages (default: in the data folder)",
    )
    collect.add_argument(
        "--flush-interval",
        type=_positive,
        default=5.0,
        metavar="S",
        help="seconds between writes to the store (default 5)",
    )
    collect.add_argument(
        "--raw-days",
        type=_positive,
        default=7.0,
        metavar="D",
        help="keep raw samples D days (default 7)",
    )
    collect.add_argument(
        "--rollup-1m-days",
        type=_positive,
        default=90.0,
        metavar="D",
        help="keep 1-minute rollups D days (default 90)",
    )

    status = verbs.add_parser("status", help="hosts, GPUs, latest values, collector health")
    _add_db(status)
    status.add_argument("--json", action="store_true", help="print JSON (see README)")

    analyze = verbs.add_parser(
        "analyze", help="analyze a PyTorch profiler (Kineto) trace file or folder of ranks"
    )
    analyze.add_argument("trace", type=Path, metavar="TRACE|DIR")
    analyze.add_argument("--json", action="store_true", help="print JSON (see README)")

    imports = verbs.add_parser("import", help="store an existing trace as a run")
    imports.add_argument("trace", type=Path, metavar="TRACE|DIR")
    imports.add_argument("--run", required=True, metavar="NAME", help="the run's name")
    _add_db(imports)

    runs = verbs.add_parser("runs", help="training runs in the store")
    _add_db(runs)
    runs.add_argument("--name", metavar="TEXT", help="only runs whose name contains TEXT")
    runs.add_argument("--host", metavar="HOST", help="only runs on HOST")
    runs.add_argument("--status", metavar="STATUS", help="only runs with this status")
    runs.add_argument("--json", action="store_true", help="print JSON (see README)")

    advise = verbs.add_parser(
        "advise", help="bottlenecks of a training run, with evidence and the change to make"
    )
    _add_db(advise)
    target = advise.add_mutually_exclusive_group()
    target.add_argument("--run", metavar="ID|NAME", help="a stored run (default: the newest)")
    target.add_argument("--trace", metavar="FILE|DIR", help="a trace file or folder of ranks")
    target.add_argument(
        "--fleet", action="store_true", help="every GPU: idle while its processes hold memory"
    )
    advise.add_argument("--json", action="store_true", help="print JSON (see README)")
    advise.add_argument(
        "--no-save", action="store_true", help="do not store the findings with the run"
    )
    advise.add_argument(
        "--thresholds", action="store_true", help="list the thresholds and their sources"
    )
    from monitor.cli.verbs.advise import add_arguments as add_advisor_arguments

    add_advisor_arguments(advise)

    compare = verbs.add_parser(
        "compare", help="did the change work? run B's step time and findings against run A's"
    )
    compare.add_argument("run_a", metavar="RUN_A", help="the run before the change (id or name)")
    compare.add_argument("run_b", metavar="RUN_B", help="the run after the change (id or name)")
    _add_db(compare)
    compare.add_argument("--json", action="store_true", help="print JSON (see README)")
    compare.add_argument(
        "--seed", type=int, default=0, help="seed of the bootstrap confidence interval"
    )
    add_advisor_arguments(compare)

    dashboard = verbs.add_parser("dashboard", help="serve the web dashboard")
    _add_serve(dashboard)

    up = verbs.add_parser("up", help="the collector (child process) and the dashboard together")
    _add_serve(up)
    up.add_argument(
        "--simulate",
        type=_gpu_count,
        metavar="N",
        help="collect N simulated GPUs (default: NVML, or 4 simulated GPUs without a driver)",
    )

    demo = verbs.add_parser(
        "demo", help="`up` on a separate demo store, plus two CPU training runs to look at"
    )
    demo.add_argument(
        "--db",
        metavar="URL",
        help="SQLAlchemy URL of the store (default: a SQLite file in $XDG_DATA_HOME/gpulens/"
        "demo/, never $GPULENS_DB)",
    )
    _add_serve(demo, db=False)
    demo.add_argument(
        "--steps",
        type=_count,
        default=60,
        metavar="N",
        help="training steps of each demo run (default 60)",
    )

    db = verbs.add_parser("db", help="database maintenance")
    db_verbs = db.add_subparsers(dest="db_verb", required=True, metavar="VERB")
    upgrade = db_verbs.add_parser("upgrade", help="create or upgrade the gpulens schema")
    _add_db(upgrade)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Alembic narrates every plugin and migration step at INFO; upgrades are said by gpulens.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    try:
        if args.verb == "collect":
            from monitor.cli.verbs import collect

            return collect.run_collect(args)
        if args.verb == "status":
            from monitor.cli.verbs import status

            return status.run_status(args)
        if args.verb == "analyze":
            from monitor.cli.verbs import analyze as analyze_command

            return analyze_command.run_analyze(args)
        if args.verb == "import":
            from monitor.cli.verbs import analyze as analyze_command

            return analyze_command.run_import(args)
        if args.verb == "runs":
            from monitor.cli.verbs import runs as runs_command

            return runs_command.run_runs(args)
        if args.verb == "advise":
            from monitor.cli.verbs import advise as advise_command

            return advise_command.run_advise(args)
        if args.verb == "compare":
            from monitor.cli.verbs import compare as compare_command

            return compare_command.run_compare(args)
        if args.verb in ("dashboard", "up", "demo"):
            from monitor.cli.verbs import dashboard as dashboard_command

            serve = {
                "dashboard": dashboard_command.run_dashboard,
                "up": dashboard_command.run_up,
                "demo": dashboard_command.run_demo,
            }
            return serve[args.verb](args)
        if args.verb == "db":
            from monitor.cli.verbs import db

            return db.run_upgrade(args)
    except DriverUnavailable as exc:
        print(f"gpulens: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except ConfigError as exc:
        print(f"gpulens: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except GpulensError as exc:
        print(f"gpulens: {exc}", file=sys.stderr)
        return EXIT_ERROR
    raise AssertionError(f"unhandled verb {args.verb}")


if __name__ == "__main__":
    sys.exit(main())
