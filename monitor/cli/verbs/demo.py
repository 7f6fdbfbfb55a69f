"""``gpulens demo``: ``gpulens up`` on a demo store of its own, plus two CPU training runs to
look at (:mod:`monitor.cli.demo_trainer`), started once the dashboard listens."""

from __future__ import annotations

import argparse

from monitor.cli.demo_trainer import DemoTrainer
from monitor.cli.options import Subparsers, add_db, add_serve, count
from monitor.cli.supervise import collector_process
from monitor.cli.verbs.dashboard import checked_auth, serve, stopped_on_signal, trace_roots
from monitor.store import Store
from monitor.store.engine import data_dir

DEFAULT_STEPS = 60


def register(verbs: Subparsers) -> None:
    """``gpulens demo``: its arguments, run by :func:`run_demo`."""
    parser = verbs.add_parser(
        "demo", help="`up` on a separate demo store, plus two CPU training runs to look at"
    )
    add_db(
        parser,
        help="SQLAlchemy URL of the store (default: a SQLite file in $XDG_DATA_HOME/gpulens/"
        "demo/, never $GPULENS_DB)",
    )
    add_serve(parser)
    parser.add_argument(
        "--steps",
        type=count,
        default=DEFAULT_STEPS,
        metavar="N",
        help=f"training steps of each demo run (default {DEFAULT_STEPS})",
    )
    parser.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    """Serve the dashboard on the demo store, with a collector child and the demo runs."""
    auth = checked_auth(args)
    folder = data_dir() / "demo"
    url = args.db or f"sqlite:///{folder / 'gpulens.db'}"  # never $GPULENS_DB: no real data
    store = Store.open(url)
    trainer = DemoTrainer(store, url, folder, steps=args.steps)
    try:
        with stopped_on_signal(), collector_process(url, None):
            serve(
                store,
                args,
                auth,
                trace_roots(),
                what="demo",
                store_note=" (the demo's own store, apart from your data)",
                on_listening=trainer.start,
            )
    except KeyboardInterrupt:
        pass
    finally:
        trainer.stop()
        store.close()
    return 0
