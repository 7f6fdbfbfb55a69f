"""Ingest rate of GpuSample rows through ``Store.write`` against the raw driver, same run.

Rows are realistic samples (8 simulated GPUs at 1 Hz, through the sampler). Each path writes
them in batches of 5,000 rows, one transaction per batch (as the flush job does), into the
``gpu_samples`` table of a freshly migrated store (``Store.open``), so the table, its primary
key and its index are identical:

  SQLite    gpulens: ``Store.write(batch)``
            raw:     ``sqlite3`` ``executemany`` of ``INSERT OR IGNORE`` (same columns, WAL,
                     busy_timeout, synchronous=NORMAL), tuples built before the timer
  Postgres  gpulens: ``Store.write(batch)``
            raw:     psycopg 3 ``COPY gpu_samples (...) FROM STDIN`` with ``write_row`` (no
                     duplicate check at all), tuples built before the timer

The raw paths get their tuples for free (built outside the timer); gpulens starts from the
records. A second gpulens pass writes the same rows again (all duplicates, as a replayed spool
would): reported for reference, not part of the goal. Each measurement is repeated 3 times,
interleaved (gpulens and raw take turns to go first), and the median is reported. Wall time
(Postgres works in another process). Goal: gpulens >= 0.7x raw.

    .venv/bin/python bench/ingest.py [--quick] [--rows N] [--backend sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg
from common import (
    Report,
    median,
    postgres_available,
    remove_sqlite,
    scratch_postgres,
    simulated_samples,
    warn_if_loaded,
)
from sqlalchemy.engine import make_url

from monitor.core.gpu_records import GpuSample
from monitor.store import Store
from monitor.store.engine import SQLITE_BUSY_TIMEOUT_MS
from monitor.store.schema import gpu_samples

BATCH_ROWS = 5_000
GOAL_RATIO = 0.7
COLUMNS = [column.name for column in gpu_samples.columns]
TS_INDEX = COLUMNS.index("ts")


def batches(items: Sequence[Any]) -> list[Sequence[Any]]:
    return [items[i : i + BATCH_ROWS] for i in range(0, len(items), BATCH_ROWS)]


def as_tuples(samples: Sequence[GpuSample], *, epoch_ts: bool) -> list[tuple[Any, ...]]:
    rows = [tuple(getattr(s, name) for name in COLUMNS) for s in samples]
    if epoch_ts:  # SQLite stores ts as epoch seconds (monitor.store.schema.UtcDateTime)
        rows = [(*r[:TS_INDEX], r[TS_INDEX].timestamp(), *r[TS_INDEX + 1 :]) for r in rows]
    return rows


def count_rows(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM gpu_samples").scalar_one())


def gpulens_write(url: str, samples: list[GpuSample]) -> tuple[float, float]:
    """Seconds to write ``samples``, then to write them all again (a replayed spool: every
    row a duplicate, which takes Postgres's fallback path)."""
    store = Store.open(url)
    try:
        elapsed = []
        for _ in ("first", "replay"):
            start = time.perf_counter()
            for batch in batches(samples):
                store.write(batch)
            elapsed.append(time.perf_counter() - start)
            assert count_rows(store) == len(samples)
        return elapsed[0], elapsed[1]
    finally:
        store.close()


def sqlite_raw(path: Path, rows: list[tuple[Any, ...]]) -> float:
    Store.open(f"sqlite:///{path}").close()  # the same migrated table
    conn = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
    try:
        conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        marks = ", ".join("?" * len(COLUMNS))
        sql = f"INSERT OR IGNORE INTO gpu_samples ({', '.join(COLUMNS)}) VALUES ({marks})"
        start = time.perf_counter()
        for batch in batches(rows):
            conn.executemany(sql, batch)
            conn.commit()
        elapsed = time.perf_counter() - start
        assert conn.execute("SELECT count(*) FROM gpu_samples").fetchone()[0] == len(rows)
        return elapsed
    finally:
        conn.close()


def postgres_raw(url: str, rows: list[tuple[Any, ...]]) -> float:
    Store.open(url).close()  # the same migrated table
    parsed = make_url(url)
    conninfo = (
        f"host={parsed.host} port={parsed.port or 5432} user={parsed.username} "
        f"dbname={parsed.database} options='-c timezone=UTC'"
    )
    sql = f"COPY gpu_samples ({', '.join(COLUMNS)}) FROM STDIN"
    with psycopg.connect(conninfo) as conn:
        start = time.perf_counter()
        for batch in batches(rows):
            with conn.cursor() as cur, cur.copy(sql) as copy:
                for row in batch:
                    copy.write_row(row)
            conn.commit()
        elapsed = time.perf_counter() - start
        count = conn.execute("SELECT count(*) FROM gpu_samples").fetchone()
        assert count is not None and count[0] == len(rows)
        return elapsed


Timings = tuple[tuple[float, float], float]  # (gpulens first, gpulens replay), raw


def run_sqlite(samples: list[GpuSample], tmp: Path, raw_first: bool) -> Timings:
    rows = as_tuples(samples, epoch_ts=True)
    path = tmp / "ingest.db"

    def gpulens() -> tuple[float, float]:
        remove_sqlite(path)
        try:
            return gpulens_write(f"sqlite:///{path}", samples)
        finally:
            remove_sqlite(path)

    def raw() -> float:
        remove_sqlite(path)
        try:
            return sqlite_raw(path, rows)
        finally:
            remove_sqlite(path)

    if raw_first:
        raw_s = raw()
        return gpulens(), raw_s
    return gpulens(), raw()


def run_postgres(samples: list[GpuSample], _tmp: Path, raw_first: bool) -> Timings:
    rows = as_tuples(samples, epoch_ts=False)

    def gpulens() -> tuple[float, float]:
        with scratch_postgres() as url:
            return gpulens_write(url, samples)

    def raw() -> float:
        with scratch_postgres() as url:
            return postgres_raw(url, rows)

    if raw_first:
        raw_s = raw()
        return gpulens(), raw_s
    return gpulens(), raw()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="40k rows instead of 160k")
    parser.add_argument("--rows", type=int)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args(argv)
    rows = args.rows or (40_000 if args.quick else 160_000)
    warn_if_loaded()
    report = Report("ingest", argv)
    samples = simulated_samples(rows)
    report.line(
        f"# {len(samples)} GpuSample rows (8 simulated GPUs, 1 Hz), batches of "
        f"{BATCH_ROWS}, one transaction per batch; median of {args.repeats} "
        "interleaved runs, wall time"
    )
    backends: dict[str, Callable[[list[GpuSample], Path, bool], Timings]] = {}
    if args.backend in ("sqlite", "both"):
        backends["SQLite"] = run_sqlite
    if args.backend in ("postgres", "both"):
        why_not = postgres_available()
        if why_not is None:
            backends["Postgres"] = run_postgres
        else:
            report.line(f"# Postgres skipped: {why_not}")
    times: dict[str, tuple[list[float], list[float], list[float]]] = {
        k: ([], [], []) for k in backends
    }
    with tempfile.TemporaryDirectory(prefix="gpulens-bench-") as tmp:
        for repeat in range(args.repeats):
            for name, run in backends.items():
                # Alternate which goes first, so neither always gets the warmer machine.
                (gpulens, replay), raw = run(samples, Path(tmp), repeat % 2 == 1)
                times[name][0].append(gpulens)
                times[name][1].append(raw)
                times[name][2].append(replay)
            print(f"  run {repeat + 1}/{args.repeats} done", file=sys.stderr)
    table = []
    verdicts = []
    for name, (gpulens_s, raw_s, replay_s) in times.items():
        g_rate, r_rate = len(samples) / median(gpulens_s), len(samples) / median(raw_s)
        replay_rate = len(samples) / median(replay_s)
        ratio = g_rate / r_rate
        raw_label = "sqlite3 executemany" if name == "SQLite" else "psycopg COPY"
        table.append(
            [
                name,
                f"{g_rate:,.0f}",
                f"{r_rate:,.0f}",
                raw_label,
                f"{ratio:.2f}x",
                f"{replay_rate:,.0f}",
            ]
        )
        verdicts.append(f"{name} {'met' if ratio >= GOAL_RATIO else 'NOT met'} ({ratio:.2f}x)")
    report.line()
    report.table(
        [
            "database",
            "gpulens rows/s",
            "raw rows/s",
            "raw path",
            "gpulens/raw",
            "gpulens replay rows/s",
        ],
        table,
    )
    report.line()
    report.line(
        "replay: the same rows written again, every one a duplicate (a replayed spool,"
        " a retried flush); not part of the goal"
    )
    report.line()
    report.line(f"goal: gpulens >= {GOAL_RATIO}x raw: " + "; ".join(verdicts))
    report.save("" if rows == 160_000 else f"_{rows}rows")


if __name__ == "__main__":
    main(sys.argv[1:])
