"""``gpulens dashboard`` and ``gpulens up``: the web dashboard alone, or with a collector
beside it (in a child process, :mod:`monitor.cli.supervise`); the serving that ``gpulens demo``
shares.

Dash, Flask and waitress are imported inside these commands only, so the collector's path
stays free of them. The bind is checked before anything else: a dashboard on a non-loopback
address needs credentials (``GPULENS_DASHBOARD_TOKEN``, or ``GPULENS_DASHBOARD_USER`` and
``GPULENS_DASHBOARD_PASSWORD``) or an explicit ``--insecure-no-auth``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from monitor.cli.options import Subparsers, add_db, add_serve, gpu_count
from monitor.cli.supervise import collector_process
from monitor.core.errors import ConfigError
from monitor.store import Store
from monitor.store.engine import data_dir, resolve_url

if TYPE_CHECKING:
    from dashboard.auth import AuthConfig

log = logging.getLogger(__name__)

SERVER_THREADS = 8


def register(verbs: Subparsers) -> None:
    """``gpulens dashboard`` and ``gpulens up``: their arguments, run by :func:`run_dashboard`
    and :func:`run_up`."""
    dashboard = verbs.add_parser("dashboard", help="serve the web dashboard")
    add_db(dashboard)
    add_serve(dashboard)
    dashboard.set_defaults(func=run_dashboard)
    up = verbs.add_parser("up", help="the collector (child process) and the dashboard together")
    add_db(up)
    add_serve(up)
    up.add_argument(
        "--simulate",
        type=gpu_count,
        metavar="N",
        help="collect N simulated GPUs (default: NVML, or 4 simulated GPUs without a driver)",
    )
    up.set_defaults(func=run_up)


def run_dashboard(args: argparse.Namespace) -> int:
    """Serve the dashboard on the store until interrupted (Ctrl-C or SIGTERM)."""
    return _serve_until_stopped(args, what="dashboard", with_collector=False)


def run_up(args: argparse.Namespace) -> int:
    """Serve the dashboard with a collector child writing to the same store."""
    return _serve_until_stopped(args, what="up", with_collector=True)


def _serve_until_stopped(args: argparse.Namespace, *, what: str, with_collector: bool) -> int:
    auth = checked_auth(args)
    url = resolve_url(args.db)
    store = Store.open(url)  # schema created or upgraded here, before a collector starts
    collector: AbstractContextManager[object] = (
        collector_process(url, args.simulate) if with_collector else nullcontext()
    )
    try:
        with stopped_on_signal(), collector:
            serve(store, args, auth, trace_roots(), what=what)
    except KeyboardInterrupt:
        pass
    finally:
        store.close()
    return 0


def trace_roots(environ: Mapping[str, str] = os.environ) -> tuple[Path, ...]:
    """The folders traces are written to: the hooks' default (``GPULENS_TRACE_DIR``, else
    ``traces/`` in the data folder), the data folder's ``traces/`` (``gpulens import``) and
    the demo's."""
    folders = [data_dir(environ) / "traces", data_dir(environ) / "demo" / "traces"]
    if environ.get("GPULENS_TRACE_DIR"):
        folders.insert(0, Path(environ["GPULENS_TRACE_DIR"]).expanduser())
    return tuple(dict.fromkeys(folders))


def checked_auth(args: argparse.Namespace) -> AuthConfig | None:
    """The credentials from the environment, and the bind checked against them."""
    from dashboard.auth import check_bind, from_env, is_loopback

    auth = from_env()
    check_bind(args.host, auth, args.insecure_no_auth)
    if auth is None and not is_loopback(args.host):
        log.warning("serving on %s WITHOUT authentication (--insecure-no-auth)", args.host)
    return auth


def serve(
    store: Store,
    args: argparse.Namespace,
    auth: AuthConfig | None,
    roots: Sequence[Path],
    *,
    what: str,
    store_note: str = "",
    on_listening: Callable[[], None] | None = None,
) -> None:
    """Build the app and serve it with waitress until interrupted (never in debug mode)."""
    from waitress import create_server  # type: ignore[import-untyped]  # no stubs

    from dashboard.app import create_app

    app = create_app(store, auth=auth, trace_roots=roots)
    try:
        server: Any = create_server(
            app.server, host=args.host, port=args.port, threads=SERVER_THREADS
        )
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}; "
            "choose another port with --port"
        ) from None
    # One socket: a TcpWSGIServer; several ("localhost": IPv4 and IPv6): a MultiSocketServer.
    listening = getattr(server, "effective_listen", None) or [(args.host, server.effective_port)]
    url = _browser_url(args.host, listening[0][1])
    print(f"gpulens {what}: {url} {_login_hint(auth)}".rstrip())
    print(f"  store: {store.url}{store_note}", flush=True)
    if on_listening is not None:
        on_listening()
    server.run()  # returns on KeyboardInterrupt or SystemExit, after closing the sockets


def _browser_url(host: str, port: int) -> str:
    if host in ("", "0.0.0.0", "::"):
        host = socket.gethostname()  # every interface: this host's name is one way in
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


def _login_hint(auth: AuthConfig | None) -> str:
    if auth is None:
        return ""
    ways = []
    if auth.token is not None:
        ways.append("add ?token=$GPULENS_DASHBOARD_TOKEN once")
    if auth.username is not None:
        ways.append("log in as $GPULENS_DASHBOARD_USER")
    return f"({' or '.join(ways)})"


@contextmanager
def stopped_on_signal() -> Iterator[None]:
    """SIGTERM stops the server as Ctrl-C does, so the ``finally`` blocks run."""

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
