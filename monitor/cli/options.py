"""The command-line options several verbs share, declared once (the verbs' ``register``
functions add them), and the value types of their arguments.

Nothing here imports more than argparse: every verb's parser is built on every run, so the
collector's start path stays light.
"""

from __future__ import annotations

import argparse
import math
from typing import TypeAlias

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""What ``ArgumentParser.add_subparsers`` returns; each verb module's ``register`` adds to it."""

DB_HELP = (
    "SQLAlchemy URL of the store (default: $GPULENS_DB, else a SQLite file in "
    "$XDG_DATA_HOME/gpulens/)"
)


def add_db(parser: argparse.ArgumentParser, *, help: str = DB_HELP) -> None:
    """``--db URL``: the store (every verb that opens one)."""
    parser.add_argument("--db", metavar="URL", help=help)


def add_json(parser: argparse.ArgumentParser) -> None:
    """``--json``: print the result as JSON, in the shape the README documents."""
    parser.add_argument("--json", action="store_true", help="print JSON (see README)")


def add_serve(parser: argparse.ArgumentParser) -> None:
    """Options of the verbs that serve the dashboard (``dashboard``, ``up``, ``demo``)."""
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=port, default=8050, metavar="P", help="port to listen on (default 8050)"
    )
    parser.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="serve on a non-loopback address without GPULENS_DASHBOARD_TOKEN or "
        "GPULENS_DASHBOARD_USER/GPULENS_DASHBOARD_PASSWORD",
    )


# The shortest sampling interval ``collect`` accepts. NVML answers a full poll of a GPU in a
# few milliseconds, and the simulated source faster still, but every tick also costs a
# scheduler wake-up and a buffer append per GPU: below 0.1 s the ticks overlap (APScheduler
# skips them as "maximum number of running instances reached") and the store fills with
# ~10^4 rows per GPU per minute that NVML's own ~100 ms counter refresh does not back.
MIN_INTERVAL_SECONDS = 0.1


def positive(text: str) -> float:
    """An argument type: a finite number above 0."""
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def interval(text: str) -> float:
    """An argument type: a sampling interval, finite and at least :data:`MIN_INTERVAL_SECONDS`."""
    value = float(text)
    if not math.isfinite(value) or value < MIN_INTERVAL_SECONDS:
        raise argparse.ArgumentTypeError(
            f"must be a number of seconds, at least {MIN_INTERVAL_SECONDS:g}, got {text}"
        )
    return value


def port(text: str) -> int:
    """An argument type: a TCP port, 0..65535 (0: any free port)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number 0..65535, got {text}")
    return value


def count(text: str) -> int:
    """An argument type: a whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def gpu_count(text: str) -> int:
    """An argument type: a number of simulated GPUs, 1 to 64."""
    value = int(text)
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"simulated GPUs must be 1..64, got {text}")
    return value
