"""``gpulens status``."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone

from monitor.cli.options import Subparsers, add_db, add_json
from monitor.core.errors import StoreUnavailable
from monitor.core.status_report import format_status, status_document
from monitor.store import Store
from monitor.store.engine import describe_url, resolve_url, sqlite_file


def register(verbs: Subparsers) -> None:
    """``gpulens status``: its arguments, run by :func:`run_status`."""
    parser = verbs.add_parser("status", help="hosts, GPUs, latest values, collector health")
    add_db(parser)
    add_json(parser)
    parser.set_defaults(func=run_status)


def run_status(args: argparse.Namespace) -> int:
    url = resolve_url(args.db)
    file = sqlite_file(url)
    if file is not None and not file.exists():
        raise StoreUnavailable(
            f"no gpulens database at {describe_url(url)} yet: start a collector "
            "(gpulens collect) or point --db / GPULENS_DB at one"
        )
    store = Store.open(url, upgrade=False)
    try:
        document = status_document(store.latest(), store.collectors(), datetime.now(timezone.utc))
    finally:
        store.close()
    print(json.dumps(document, indent=2) if args.json else format_status(document))
    return 0
