"""Running the real ``gpulens`` command in a subprocess, with its data folder in a temp dir."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def gpulens_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    env.pop("GPULENS_DB", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def gpulens(tmp_path: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor.cli.main", *args],
        env=gpulens_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_gpulens(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "monitor.cli.main", *args],
        env=gpulens_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@contextmanager
def gpulens_running(tmp_path: Path, *args: str) -> Iterator[subprocess.Popen[str]]:
    """``gpulens *args`` started for the ``with`` block, killed if it is still running at the
    end (a failed check must not leave a server behind)."""
    process = start_gpulens(tmp_path, *args)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()  # reaped, its pipe closed: no ResourceWarning after a failure


def stop_gpulens(process: subprocess.Popen[str], *, timeout: float = 30) -> str:
    """Stop ``process`` as a service manager would (SIGTERM) and wait: the rest of its output.
    The caller checks ``process.returncode``."""
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=timeout)
    return output
