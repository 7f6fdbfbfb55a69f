"""Helpers shared by the benchmarks: realistic records, scratch databases, the result table.

Not a test and not part of the package: the scripts next to this file import it by its bare
name (``python bench/NAME.py`` puts ``bench/`` on ``sys.path``).
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from monitor.clock import ManualClock
from monitor.collector.sampler import Sampler
from monitor.collector.simulated import SimulatedSource
from monitor.core.gpu_records import GpuSample

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PG_ADMIN_URL = os.environ.get(
    "GPULENS_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def simulated_samples(rows: int, gpus: int = 8, *, host: str = "bench") -> list[GpuSample]:
    """``rows`` GpuSample records at 1 Hz from the simulated source, through the sampler."""
    clock = ManualClock(T0)
    sampler = Sampler(SimulatedSource(gpus, seed=0, host=host), host, clock)
    sampler.start()
    samples: list[GpuSample] = []
    while len(samples) < rows:
        samples += [r for r in sampler.tick() if isinstance(r, GpuSample)]
        clock.advance(1.0)
    return samples[:rows]


@contextlib.contextmanager
def scratch_postgres(prefix: str = "gpulens_bench") -> Iterator[str]:
    """URL of a new, empty Postgres database, dropped afterwards (even on error)."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def postgres_available() -> str | None:
    """``None`` when the server answers, else why not."""
    admin = create_engine(PG_ADMIN_URL)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    finally:
        admin.dispose()
    return None


def remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


class Report:
    """Lines printed as they come and saved to ``bench/results/NAME.txt`` at the end."""

    def __init__(self, name: str, argv: Sequence[str]) -> None:
        self.name = name
        self.lines: list[str] = []
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        self.line(f"# {name} — {stamp}")
        self.line(
            f"# python {platform.python_version()}, {platform.machine()}, "
            f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; "
            f"args: {' '.join(argv) or '(none)'}"
        )

    def line(self, text: str = "") -> None:
        print(text, flush=True)
        self.lines.append(text)

    def table(self, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
        widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

        def fmt(row: list[str]) -> str:
            first = row[0].ljust(widths[0])
            rest = [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
            return "  ".join([first, *rest]).rstrip()

        self.line(fmt(cells[0]))
        self.line("  ".join("-" * w for w in widths))
        for row in cells[1:]:
            self.line(fmt(row))

    def save(self, suffix: str = "") -> Path:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        path = RESULTS_DIR / f"{self.name}{suffix}.txt"
        path.write_text("\n".join(self.lines) + "\n", encoding="utf-8")
        shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
        print(f"(saved to {shown})")
        return path


class Stopwatch:
    """Wall time (``perf_counter``) and this process's CPU time (all threads) of a block."""

    def __init__(self) -> None:
        self.wall_s = 0.0
        self.cpu_s = 0.0

    def __enter__(self) -> Stopwatch:
        self._wall = time.perf_counter()
        self._cpu = time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_s = time.perf_counter() - self._wall
        self.cpu_s = time.process_time() - self._cpu


def day_range(days: float) -> tuple[datetime, datetime]:
    return T0, T0 + timedelta(days=days)


def warn_if_loaded() -> None:
    load = os.getloadavg()[0]
    if load > (os.cpu_count() or 1):
        print(
            f"note: load average {load:.1f} on {os.cpu_count()} CPUs; figures will be noisy",
            file=sys.stderr,
        )
