"""``gpulens status``."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy.engine import make_url

from monitor.core.errors import StoreUnavailable
from monitor.core.status_report import format_status, status_document
from monitor.store import Store
from monitor.store.engine import describe_url, resolve_url


def run_status(args: argparse.Namespace) -> int:
    url = resolve_url(args.db)
    parsed = make_url(url)
    is_sqlite_file = parsed.get_backend_name() == "sqlite" and bool(parsed.database)
    if is_sqlite_file and not Path(str(parsed.database)).expanduser().exists():
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
