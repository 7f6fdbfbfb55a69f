"""``gpulens db upgrade``."""

from __future__ import annotations

import argparse

from monitor.cli.options import Subparsers, add_db
from monitor.store import migrate
from monitor.store.engine import create_store_engine, describe_url, resolve_url


def register(verbs: Subparsers) -> None:
    """``gpulens db upgrade``: its arguments, run by :func:`run_upgrade`."""
    parser = verbs.add_parser("db", help="database maintenance")
    db_verbs = parser.add_subparsers(dest="db_verb", required=True, metavar="VERB")
    upgrade = db_verbs.add_parser("upgrade", help="create or upgrade the gpulens schema")
    add_db(upgrade)
    upgrade.set_defaults(func=run_upgrade)


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
