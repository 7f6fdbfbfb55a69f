"""Child processes that ``gpulens up`` and ``gpulens demo`` run beside the dashboard: the
collector (``gpulens collect`` in a child), and the stop that every child gets (SIGTERM, a
wait, then SIGKILL)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_SIMULATED_GPUS = 4
CHILD_STOP_SECONDS = 15.0  # the collector flushes within 10 s of SIGTERM


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
