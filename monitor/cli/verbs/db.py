"""``gpulens db upgrade``."""

from __future__ import annotations

import argparse

from monitor.store import migrate
from monitor.store.engine import create_store_engine, describe_url, resolve_url


def run_upgrade(args: argparse.Namespace) -> int:
    engine = create_store_engine(resolve_url(args.db))
    try:
        before = migrate.current_revision(engine)
        migrate.upgrade(engine)
        after = migrate.current_revision(engine)
    finally:
        engine.dispose()
    where = describe_url(engine.url)
    if before == after:
        print(f"{where}: already at revision {after}")
    else:
        print(f"{where}: upgraded from {before or 'empty'} to {after}")
    return 0
