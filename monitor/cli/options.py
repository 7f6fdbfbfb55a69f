"""The command-line options several verbs share, declared once (the verbs' ``register``
functions add them), and the value types of their arguments.

Nothing here imports more than argparse: every verb's parser is built on every run, so the
collector's start path stays light.
"""

from __future__ import annotations

import argparse
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
        "--port", type=int, default=8050, metavar="P", help="port to listen on (default 8050)"
    )
    parser.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="serve on a non-loopback address without GPULENS_DASHBOARD_TOKEN or "
        "GPULENS_DASHBOARD_USER/GPULENS_DASHBOARD_PASSWORD",
    )


def positive(text: str) -> float:
    """An argument type: a number above 0."""
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
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
