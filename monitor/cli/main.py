"""The ``gpulens`` command line.

Entry point only: it builds the parser from the verb modules (each module's ``register``
declares its verbs and their arguments and names the function that runs them), calls that
function, and turns :class:`monitor.core.errors.GpulensError` into one line on stderr and a
non-zero exit code. Heavy packages (torch, dash) are never imported on the collector's path.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from importlib import import_module

from monitor.core.errors import ConfigError, DriverUnavailable, GpulensError
from monitor.version import VERSION

log = logging.getLogger("gpulens")

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a writer whose reader left

# The modules of monitor.cli.verbs, in the order their verbs are listed in ``gpulens --help``.
# Imported when the parser is built, not with this module: a few import numpy at their top.
VERB_MODULES = (
    "collect",  # collect
    "status",  # status
    "analyze",  # analyze, import
    "runs",  # runs
    "advise",  # advise
    "compare",  # compare
    "dashboard",  # dashboard, up
    "demo",  # demo
    "db",  # db upgrade
)


def build_parser() -> argparse.ArgumentParser:
    """The ``gpulens`` parser: the options every verb shares, then each verb module's verbs."""
    parser = argparse.ArgumentParser(prog="gpulens", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"gpulens {VERSION}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for name in VERB_MODULES:
        import_module(f"monitor.cli.verbs.{name}").register(verbs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``gpulens ARGV``; returns the exit code (2 for usage errors, argparse's own too)."""
    args = build_parser().parse_args(argv)
    _configure_logging(verbose=args.verbose)
    try:
        status: int = args.func(args)
    except DriverUnavailable as exc:
        print(f"gpulens: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except ConfigError as exc:
        print(f"gpulens: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except GpulensError as exc:
        print(f"gpulens: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        # The reader went away (`gpulens analyze T | head`): not an error of ours. Point stdout
        # at /dev/null so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    return status


def _configure_logging(*, verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Alembic narrates every plugin and migration step at INFO; upgrades are said by gpulens.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


if __name__ == "__main__":
    sys.exit(main())
