"""``gpulens dashboard``, ``gpulens up`` and ``gpulens demo``: the web dashboard alone, with a
collector beside it, or with a collector and two demo training runs.

Dash, Flask and waitress are imported inside these commands only, so the collector's path
stays free of them. The bind is checked before anything else: a dashboard on a non-loopback
address needs credentials (``GPULENS_DASHBOARD_TOKEN``, or ``GPULENS_DASHBOARD_USER`` and
``GPULENS_DASHBOARD_PASSWORD``) or an explicit ``--insecure-no-auth``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType, ModuleType
from typing import IO, TYPE_CHECKING, Any

from monitor.core.errors import ConfigError
from monitor.store import Store
from monitor.store.engine import data_dir, resolve_url

if TYPE_CHECKING:
    from dashboard.auth import AuthConfig

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8050
SERVER_THREADS = 8
DEFAULT_SIMULATED_GPUS = 4
DEFAULT_DEMO_STEPS = 60
CHILD_STOP_SECONDS = 15.0  # the collector flushes within 10 s of SIGTERM
DEMO_CASE = "starved_dataloader"
DEMO_VARIANTS = ("bottleneck", "clean")


def run_dashboard(args: argparse.Namespace) -> int:
    auth = _checked_auth(args)
    store = Store.open(resolve_url(args.db))
    try:
        with _stopped_on_signal():
            _serve(store, args, auth, trace_roots(), what="dashboard")
    except KeyboardInterrupt:
        pass
    finally:
        store.close()
    return 0


def run_up(args: argparse.Namespace) -> int:
    auth = _checked_auth(args)
    url = resolve_url(args.db)
    store = Store.open(url)  # schema created or upgraded here, before the collector starts
    try:
        with _stopped_on_signal(), collector_process(url, args.simulate):
            _serve(store, args, auth, trace_roots(), what="up")
    except KeyboardInterrupt:
        pass
    finally:
        store.close()
    return 0


def run_demo(args: argparse.Namespace) -> int:
    auth = _checked_auth(args)
    folder = data_dir() / "demo"
    url = args.db or f"sqlite:///{folder / 'gpulens.db'}"  # never $GPULENS_DB: no real data
    store = Store.open(url)
    trainer = DemoTrainer(store, url, folder, steps=args.steps)
    try:
        with _stopped_on_signal(), collector_process(url, None):
            _serve(
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


def trace_roots(environ: Mapping[str, str] = os.environ) -> tuple[Path, ...]:
    """The folders traces are written to: the hooks' default (``GPULENS_TRACE_DIR``, else
    ``traces/`` in the data folder), the data folder's ``traces/`` (``gpulens import``) and
    the demo's."""
    folders = [data_dir(environ) / "traces", data_dir(environ) / "demo" / "traces"]
    if environ.get("GPULENS_TRACE_DIR"):
        folders.insert(0, Path(environ["GPULENS_TRACE_DIR"]).expanduser())
    return tuple(dict.fromkeys(folders))


def _checked_auth(args: argparse.Namespace) -> AuthConfig | None:
    """The credentials from the environment, and the bind checked against them."""
    from dashboard.auth import check_bind, from_env, is_loopback

    auth = from_env()
    check_bind(args.host, auth, args.insecure_no_auth)
    if auth is None and not is_loopback(args.host):
        log.warning("serving on %s WITHOUT authentication (--insecure-no-auth)", args.host)
    return auth


def _serve(
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
def _stopped_on_signal() -> Iterator[None]:
    """SIGTERM stops the server as Ctrl-C does, so the ``finally`` blocks run."""

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def collector_process(url: str, simulate: int | None) -> Iterator[subprocess.Popen[bytes]]:
    """``gpulens collect`` in a child process for the duration; SIGTERM and a wait after.

    The URL goes in the child's environment, not its command line, where ``ps`` would show
    a password. Without ``simulate`` the child uses NVML, or simulated GPUs (labelled so in
    the store and on every page) where this host has no NVIDIA driver.
    """
    command = [sys.executable, "-m", "monitor.cli.main", "collect"]
    if simulate:
        command += ["--simulate", str(simulate)]
    else:
        command += ["--simulate-if-no-driver", str(DEFAULT_SIMULATED_GPUS)]
    env = {**os.environ, "GPULENS_DB": url}
    child = subprocess.Popen(command, env=env)
    gpus = (
        f"{simulate} SIMULATED GPUs"
        if simulate
        else f"this host's GPUs, or {DEFAULT_SIMULATED_GPUS} SIMULATED GPUs where there is no "
        "NVIDIA driver (its first lines say which)"
    )
    print(f"  collector: pid {child.pid}, {gpus}", flush=True)
    stopping = threading.Event()
    threading.Thread(
        target=_watch_child, args=(child, stopping), name="gpulens-collector-watch", daemon=True
    ).start()
    try:
        yield child
    finally:
        stopping.set()
        stop_process(child, "collector")


def _watch_child(child: subprocess.Popen[bytes], stopping: threading.Event) -> None:
    status = child.wait()
    if not stopping.is_set():
        log.error(
            "the collector stopped (exit status %d); the dashboard goes on showing what is stored",
            status,
        )


def stop_process(child: subprocess.Popen[Any], what: str) -> None:
    """SIGTERM, a wait of :data:`CHILD_STOP_SECONDS`, then SIGKILL."""
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(CHILD_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        log.warning("the %s did not stop within %g s; killing it", what, CHILD_STOP_SECONDS)
        child.kill()
        child.wait()


class DemoTrainer:
    """Two real CPU training runs of the seeded-bottleneck suite (``starved_dataloader``,
    its bottleneck then its clean variant), each advised when it ends, in a background
    thread; their output goes to ``FOLDER/logs/``."""

    def __init__(self, store: Store, url: str, folder: Path, *, steps: int) -> None:
        self.store = store
        self.url = url
        self.folder = folder
        self.steps = steps
        self._stopping = threading.Event()
        self._child: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        suite = bottleneck_suite()
        if suite is None:
            print(
                "  demo runs: skipped, the example training scripts are not here; run "
                "`gpulens demo` from a source checkout (git clone, then `make run`) for them"
            )
            return
        if importlib.util.find_spec("torch") is None:
            print("  demo runs: skipped, torch is not installed (pip install 'gpulens[torch]')")
            return
        names = ", ".join(f"demo-{DEMO_CASE}-{v}" for v in DEMO_VARIANTS)
        print(f"  demo runs: training {names} on the CPU ({self.steps} steps each)", flush=True)
        self._thread = threading.Thread(
            target=self._train, args=(suite,), name="gpulens-demo-runs", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            child = self._child
        if child is not None:
            stop_process(child, "demo training run")
        if self._thread is not None:
            self._thread.join(CHILD_STOP_SECONDS)

    def _train(self, suite: ModuleType) -> None:
        from monitor.services.gather import refresh_findings

        case = suite.case_named(DEMO_CASE)
        for variant in DEMO_VARIANTS:
            name = f"demo-{DEMO_CASE}-{variant}"
            if self._stopping.is_set() or not self._run(suite, case, variant, name):
                return
            try:
                findings = refresh_findings(self.store, name)
            except Exception as exc:  # a demo thread must not take the dashboard down
                log.error("demo: cannot advise %s: %s", name, exc)
                return
            print(f"  demo runs: {name} done, {len(findings)} finding(s)", flush=True)

    def _run(self, suite: ModuleType, case: Any, variant: str, name: str) -> bool:
        command: list[str] = suite.case_command(
            case,
            variant,
            device="cpu",
            steps=self.steps,
            db=self.url,
            run_name=name,
            trace_dir=str(self.folder / "traces"),
        )
        output = self.folder / "logs" / f"{name}.log"
        output.parent.mkdir(parents=True, exist_ok=True)
        with output.open("wb") as sink:
            status = self._wait(command, suite.ROOT, sink)
        if status != 0 and not self._stopping.is_set():
            log.error("demo: %s failed (exit status %s); its output is in %s", name, status, output)
        return status == 0

    def _wait(self, command: list[str], cwd: Path, sink: IO[bytes]) -> int:
        with self._lock:
            if self._stopping.is_set():
                return -1
            # Its own session: Ctrl-C is for the dashboard, which then stops it (stop()).
            self._child = subprocess.Popen(
                command, cwd=cwd, stdout=sink, stderr=sink, start_new_session=True
            )
        status = self._child.wait()
        with self._lock:
            self._child = None
        return status


def bottleneck_suite() -> ModuleType | None:
    """``examples.bottlenecks.suite``: importable from a source checkout's root, else loaded
    from the checkout this gpulens runs from (an editable install); ``None`` elsewhere."""
    try:
        return importlib.import_module("examples.bottlenecks.suite")
    except ImportError:
        pass
    checkout = Path(__file__).resolve().parents[2]
    path = checkout / "examples" / "bottlenecks" / "suite.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("gpulens_demo_suite", path)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
