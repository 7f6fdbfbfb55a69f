"""Small builders shared by tests: times, records, a scripted GPU source, hand-moved clocks
and subprocess probes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from monitor.core.gpu_records import GpuInfo, GpuSample, HostInfo
from monitor.core.source import DeviceFacts, GpuReading, Poll, SystemFacts

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
ROOT = Path(__file__).resolve().parent.parent


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def facts_records(host: str = "h1", uuids: tuple[str, ...] = ("GPU-a",)) -> list[object]:
    records: list[object] = [HostInfo(host, T0, is_simulated=True)]
    records += [GpuInfo(u, host, T0, i, "Test GPU", True) for i, u in enumerate(uuids)]
    return records


def samples(
    uuid: str, host: str, seconds: range, value: Callable[[int], float] = float
) -> list[GpuSample]:
    return [
        GpuSample(
            uuid,
            host,
            at(s),
            utilization_gpu_percent=value(s),
            power_watts=2 * value(s),
            energy_used_joules=1.0,
            memory_used_bytes=s,
        )
        for s in seconds
    ]


class ScriptedSource:
    """A GpuSource whose polls are produced by a function of the poll number."""

    def __init__(
        self,
        poll: Callable[[int], Poll],
        devices: tuple[str, ...] = ("GPU-a",),
        *,
        is_simulated: bool = True,
    ) -> None:
        self._poll = poll
        self.devices = devices
        self.polls = 0
        self.opened = 0
        self.closed = 0
        self._is_simulated = is_simulated

    @property
    def is_simulated(self) -> bool:
        return self._is_simulated

    def open(self) -> SystemFacts:
        self.opened += 1
        return SystemFacts(
            tuple(DeviceFacts(u, i, "Scripted GPU") for i, u in enumerate(self.devices)),
            driver_version="test",
        )

    def poll(self) -> Poll:
        result = self._poll(self.polls)
        self.polls += 1
        return result

    def close(self) -> None:
        self.closed += 1


def steady_poll(n: int, devices: tuple[str, ...] = ("GPU-a",)) -> Poll:
    return Poll(tuple(GpuReading(u, {"utilization_gpu_percent": 50.0}) for u in devices))


def count(store: Any, table: Any, **where: object) -> int:
    """Rows of ``table`` in ``store`` (a :class:`monitor.store.Store`), optionally filtered."""
    query = select(func.count()).select_from(table)
    for name, value in where.items():
        query = query.where(table.c[name] == value)
    with store.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


class ManualPerfClock:
    """Stands in for ``time.perf_counter_ns`` (the hooks' ``clock``): it moves only when the
    test says, so that every duration measured with it is exact."""

    def __init__(self, start_ns: int = 10**12) -> None:
        self.ns = start_ns

    def __call__(self) -> int:
        return self.ns

    def advance(self, seconds: float) -> None:
        self.ns += round(seconds * 1e9)


class ManualClock:
    """Stands in for ``time.monotonic`` (a ``clock=`` argument, seconds): it moves only when the
    test sets ``now``."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def dead_pid() -> int:
    """The pid of a process that has ended."""
    out = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout)


def modules_imported_by(code: str, modules: tuple[str, ...]) -> list[str]:
    """Which of ``modules`` a fresh interpreter has imported after running ``code`` (from the
    repository root): how a test shows that importing something stays light."""
    probe = (
        f"{code}\nimport sys\nprint(','.join(sorted(m for m in {modules!r} if m in sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return [name for name in done.stdout.strip().split(",") if name]
