"""Running the real ``gpulens`` command in a subprocess, with its data folder in a temp dir."""

from __future__ import annotations

import os
import subprocess
import sys
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
