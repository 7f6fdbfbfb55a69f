"""The demo's training runs: two real CPU runs of the seeded-bottleneck suite, one after the
other in a background thread, each advised when it ends.

The suite lives in the source checkout's ``examples/`` (not in the installed package): it is
imported from the working folder when that is a checkout's root, else loaded by file path from
the checkout this gpulens runs from (an editable install).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import subprocess
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import IO, Any

from monitor.cli.supervise import CHILD_STOP_SECONDS, stop_process
from monitor.store import Store

log = logging.getLogger(__name__)

DEMO_CASE = "starved_dataloader"
DEMO_VARIANTS = ("bottleneck", "clean")


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
        from monitor.services.runs import refresh_findings

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
    checkout = Path(__file__).resolve().parents[2]  # monitor/cli/demo_trainer.py
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
