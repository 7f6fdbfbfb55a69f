"""The dashboard's server side on a month of telemetry: every page and live callback, timed.

Seeds a store with ``--gpus`` GPUs (4 per host) at 1 Hz for ``--days`` days (30 by default:
20.7 M raw rows, generated inside the database by ``series_query.py``'s seed, with three more
of the GPU page's metrics), rolls the range up (``Store.rollup``: 1-min and 1-h buckets), adds
the process samples that raw retention keeps (the last 7 days, one process per busy second), a
few events, and 50 training runs of 2,000 steps (5 with an analyzed profiler window from a
synthetic trace, findings from ``refresh_findings`` for every finished run). The store's
retention is the product default (raw for 7 days, 1-min rollups for 90, 1-h forever), so the
planner sends long ranges to the rollups. Then, per backend:

  pages       ``render(ctx, path, search)`` of /, /gpu/UUID?range=15m|1h|24h|7d|30d, /runs,
              /run/ID, /compare?a=&b= and /advice;
  callbacks   fleet.refresh (a live tick), gpu.change_range to 30d, gpu.live_update (a tick
              on 1h), runs.filtered by name, compare.comparison_view;
  naive       the dashboard without rollups: the GPU page's range as raw rows (the 8 metrics
              it shows, SQLAlchemy Core, ordered by ts), timed in turn with the GPU page.

Times: wall, median of ``--repeats`` warm calls after one warm-up. ``points``: the most x
values of any trace in the figures a call returns. ``JSON``: encoding the result as Dash does
(``to_json_plotly``), not part of the call's time. Calls over 300 ms are then profiled once
(cProfile): own time by package, and the top functions of the slowest.

    .venv/bin/python bench/dashboard_pages.py [--days 30] [--gpus 8]
        [--backends sqlite,postgres] > bench/results/dashboard_pages.txt
"""

from __future__ import annotations

import argparse
import cProfile
import math
import pstats
import random
import sys
import tempfile
import time
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from common import T0, Report, median, postgres_available, scratch_postgres, warn_if_loaded
from series_query import _POSTGRES_SEED, _SQLITE_SEED, SEEDED, gpu_uuid
from sqlalchemy import and_, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.trace_gen

import dash  # noqa: E402
from dash.development.base_component import Component  # noqa: E402
from plotly.io.json import to_json_plotly  # noqa: E402

from dashboard.app import render  # noqa: E402
from dashboard.context import PageContext  # noqa: E402
from dashboard.pages import compare, fleet, gpu, runs  # noqa: E402
from monitor.core.gpu_records import CollectorStatus, Event, GpuInfo, HostInfo, Record  # noqa: E402
from monitor.core.resolution import RetentionPolicy  # noqa: E402
from monitor.core.run_records import RunInfo, StepRecord, WindowRecord  # noqa: E402
from monitor.services.runs import refresh_findings  # noqa: E402
from monitor.store import Store  # noqa: E402
from monitor.store.schema import gpu_samples  # noqa: E402
from monitor.traces.analyze import analyze_path  # noqa: E402
from tests.trace_gen import FIRST_STEP, write_synthetic_trace  # noqa: E402

GPUS_PER_HOST = 4
RUNS, STEPS, WINDOW_STEPS = 50, 2000, 4
ANALYZED = (0, 4, 8, 12, 16)  # llama runs (GPUs 0 and 4) with an analyzed window
GOAL_MS, GOAL_POINTS = 300.0, 2000
RETENTION = RetentionPolicy(raw_days=7)  # the product default, spelled out
GPU_RANGES = ("15m", "1h", "24h", "7d", "30d")
# series_query's seed fills 7 columns; the GPU page shows these three more.
EXTRA_METRICS = {
    "utilization_memory_percent": "CASE WHEN busy THEN 40 + r1 * 25 ELSE r1 * 2 END",
    "pcie_rx_bytes_per_second": "CASE WHEN busy THEN 2000000000 + r2 * 800000000 ELSE 2e6 END",
    "pcie_tx_bytes_per_second": "CASE WHEN busy THEN 400000000 + r1 * 200000000 ELSE 1e6 END",
}
_PROCESSES = """
INSERT INTO process_samples (uuid, ts, pid, host, name, used_memory_bytes, process_type)
SELECT uuid, ts, 40000 + {block} % 20000, host, 'python', memory_used_bytes - 1200000000,
       'compute'
FROM gpu_samples WHERE ts >= {since} AND utilization_gpu_percent >= 50
"""
FAMILIES = (  # name, step seconds, DataLoader wait seconds (llama is input-bound)
    ("llama-7b-finetune", 1.00, 0.35),
    ("resnet50-imagenet", 0.30, 0.01),
    ("bert-large-pretrain", 0.60, 0.03),
    ("vit-b16-sweep", 0.45, 0.12),
)


@dataclass(frozen=True)
class Fleet:
    """What is seeded: ``gpus`` GPUs at 1 Hz over ``[start, end)``; ``end`` is noon UTC, so
    the fleet's energy-today sums half a day (and never an empty range at midnight)."""

    gpus: int
    start: datetime
    end: datetime

    @classmethod
    def of(cls, gpus: int, days: float) -> Fleet:
        end = T0 + timedelta(days=math.ceil(days), hours=12)
        return cls(gpus, end - timedelta(seconds=int(days * 86400)), end)

    @property
    def seconds(self) -> int:
        return int((self.end - self.start).total_seconds())

    @property
    def hosts(self) -> list[str]:
        return sorted({host_of(i) for i in range(self.gpus)})


def progress(text: str) -> None:
    print(f"  .. {text}", file=sys.stderr, flush=True)


def host_of(index: int) -> str:
    return f"node-{index // GPUS_PER_HOST + 1:02d}"


def is_busy(gpu: int, second: int) -> bool:
    """series_query's busy pattern: 7 of 10 half-hour blocks."""
    return ((second // 1800) * 7919 + gpu * 104729) % 10 < 7


def seed_sql(dialect: str) -> str:
    """series_query's seed with :data:`EXTRA_METRICS` added (checked, not guessed)."""
    base = _SQLITE_SEED if dialect == "sqlite" else _POSTGRES_SEED
    columns, last = f"{SEEDED})", "85520809984\nFROM"
    if base.count(columns) != 1 or base.count(last) != 1:
        raise RuntimeError("series_query's seed SQL changed: update seed_sql()")
    names, values = ", ".join(EXTRA_METRICS), ", ".join(EXTRA_METRICS.values())
    sql = base.replace(columns, f"{SEEDED}, {names})")
    return sql.replace(last, f"85520809984, {values}\nFROM")


def seed_telemetry(store: Store, fleet: Fleet) -> None:
    """Raw samples of every GPU, then the process samples raw retention keeps (7 days)."""
    dialect = store.engine.dialect.name
    since = max(fleet.start, fleet.end - timedelta(days=7))
    if dialect == "sqlite":
        block, bound = "CAST(ts / 1800 AS INTEGER)", str(since.timestamp())
    else:
        block, bound = "CAST(floor(extract(epoch FROM ts) / 1800) AS bigint)", f"'{since}'"
    raw = store.engine.raw_connection()
    try:
        cursor = raw.cursor()
        for index in range(fleet.gpus):
            cursor.execute(seed_sql(dialect), {
                "uuid": gpu_uuid(index), "gpu": index, "count": fleet.seconds,
                "host": host_of(index), "t0": fleet.start.timestamp()})  # fmt: skip
            raw.commit()
            progress(f"seeded GPU {index + 1}/{fleet.gpus}")
        cursor.execute(_PROCESSES.format(block=block, since=bound))
        raw.commit()
        cursor.close()
    finally:
        raw.close()


def tidy(store: Store) -> None:
    """As series_query does: a short WAL (SQLite), fresh statistics (Postgres)."""
    raw = store.engine.raw_connection()
    try:
        cursor = raw.cursor()
        is_sqlite = store.engine.dialect.name == "sqlite"
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)" if is_sqlite else "ANALYZE")
        raw.commit()
        cursor.close()
    finally:
        raw.close()


def seed_hosts(store: Store, fleet: Fleet) -> None:
    """Hosts, GPUs, a throttling episode per GPU and day, one XID, and the heartbeats."""
    start, end = fleet.start, fleet.end
    records: list[Record] = [HostInfo(h, start, False, "570.133.20") for h in fleet.hosts]
    records += [
        GpuInfo(gpu_uuid(i), host_of(i), start, i % GPUS_PER_HOST, "NVIDIA H100 80GB HBM3",
                False, memory_total_bytes=85520809984, power_limit_watts=700.0)
        for i in range(fleet.gpus)
    ]  # fmt: skip
    for i in range(fleet.gpus):
        uuid, host = gpu_uuid(i), host_of(i)
        for day in range(math.ceil(fleet.seconds / 86400)):
            at = start + timedelta(days=day, hours=3 + i)
            if at + timedelta(minutes=5) < end:
                records.append(Event(uuidlib.uuid4().hex, at, host, "throttle_start", uuid,
                                     0x24, "sw_power_cap,sw_thermal_slowdown"))  # fmt: skip
                records.append(Event(uuidlib.uuid4().hex, at + timedelta(minutes=4), host,
                                     "throttle_end", uuid))  # fmt: skip
    records.append(Event(uuidlib.uuid4().hex, start + (end - start) / 2, host_of(0), "xid",
                         gpu_uuid(0), 13, "XID 13: Graphics Engine Exception"))  # fmt: skip
    store.write(records)
    for host in fleet.hosts:
        store.heartbeat(CollectorStatus(host, 1200, "running", False, "0.1.0", 1.0, start, end,
                                        None, 0, 0, 0, 0, 0, 0))  # fmt: skip


def run_steps(run: RunInfo, family: tuple[str, float, float], seed: int) -> list[StepRecord]:
    """2,000 steps back to back (3 slow warm-up steps); steps 10-13 profiled when analyzed."""
    _name, step_s, wait_s = family
    rng, steps, at = random.Random(seed), [], run.started_at
    for number in range(STEPS):
        wait = max(0.0, rng.gauss(wait_s, wait_s * 0.15))
        compute = max(0.02, rng.gauss(step_s - wait_s, 0.02 * step_s)) * (2.5 if number < 3 else 1)
        duration_us = round((wait + compute) * 1e6, 1)
        profiled = seed in ANALYZED and 0 <= number - FIRST_STEP < WINDOW_STEPS
        steps.append(StepRecord(run.run_id, number, at, duration_us, round(wait * 1e6, 1),
                                cuda_allocated_bytes=52 * 2**30, cuda_peak_bytes=58 * 2**30,
                                samples=32, is_profiled=profiled))  # fmt: skip
        at += timedelta(microseconds=duration_us)
    return steps


def run_start(k: int, fleet: Fleet, family: tuple[str, float, float]) -> datetime:
    """Spread over the range, at the start of a busy half hour of the run's GPU; the last run
    is still running at the end."""
    length = timedelta(seconds=STEPS * family[1] * 1.05 + 10)
    if k == RUNS - 1:
        return fleet.end - length
    block = int((k + 0.5) / RUNS * fleet.seconds) // 1800
    while not is_busy(k % fleet.gpus, block * 1800):
        block += 1
    latest = fleet.end - length - timedelta(minutes=5)
    return min(fleet.start + timedelta(seconds=block * 1800), latest)


def seed_runs(store: Store, fleet: Fleet, analyses: list[Any]) -> list[str]:
    """The runs, their steps, analyzed windows and findings; returns the run ids."""
    run_ids = []
    for k in range(RUNS):
        family = FAMILIES[k % len(FAMILIES)]
        run = RunInfo(uuidlib.uuid4().hex, f"{family[0]}-{k:02d}", host_of(k % fleet.gpus),
                      run_start(k, fleet, family), (gpu_uuid(k % fleet.gpus),))  # fmt: skip
        steps = run_steps(run, family, k)
        store.start_run(run)
        store.write_steps(steps)
        if k in ANALYZED:
            window = WindowRecord(uuidlib.uuid4().hex, run.run_id, FIRST_STEP,
                                  FIRST_STEP + WINDOW_STEPS - 1, steps[FIRST_STEP].started_at,
                                  status="analyzing")  # fmt: skip
            store.save_window(window)
            analysis = analyses[ANALYZED.index(k) % 2]
            when = window.started_at + timedelta(minutes=1)
            store.save_window_analysis(window.window_id, analysis, analyzed_at=when)
        if k != RUNS - 1:
            last = steps[-1]
            ended = last.started_at + timedelta(microseconds=last.duration_us + 1e6)
            store.end_run(run.run_id, ended, "finished")
            refresh_findings(store, run.run_id)
        run_ids.append(run.run_id)
    return run_ids


def trace_analyses() -> list[Any]:
    """Two small synthetic traces (runs A and B of the comparison differ), analyzed."""
    with tempfile.TemporaryDirectory(prefix="gpulens-bench-") as tmp:
        found = []
        for seed, kernels in ((7, 60), (8, 40)):
            path = Path(tmp) / f"window-{seed}.pt.trace.json"
            write_synthetic_trace(path, steps=WINDOW_STEPS, kernels_per_step=kernels, seed=seed)
            found.append(analyze_path(path))
        return found


def seed(report: Report, store: Store, fleet: Fleet) -> list[str]:
    begin = time.perf_counter()
    seed_telemetry(store, fleet)
    seeded_s = time.perf_counter() - begin
    for host in fleet.hosts:
        store.rollup(host, fleet.start, fleet.end)
        progress(f"rolled up {host}")
    rolled_s = time.perf_counter() - begin - seeded_s
    seed_hosts(store, fleet)
    run_ids = seed_runs(store, fleet, trace_analyses())
    tidy(store)
    runs_s = time.perf_counter() - begin - seeded_s - rolled_s
    days = fleet.seconds / 86400
    report.line(f"seeded {fleet.gpus * fleet.seconds:,} raw rows and the process samples of "
                f"the last {min(days, 7):g} days: {seeded_s:.0f} s; Store.rollup over {days:g} "
                f"days: {rolled_s:.0f} s; {RUNS} runs x {STEPS:,} steps with findings: "
                f"{runs_s:.0f} s")  # fmt: skip
    return run_ids


def naive_fetch(store: Store, uuid: str, start: datetime, end: datetime) -> int:
    """The dashboard without rollups: every raw row of the GPU page's metrics, in time order."""
    table = gpu_samples
    query = (
        select(table.c.ts, *(table.c[name] for name in gpu.SHOWN_METRICS))
        .where(and_(table.c.uuid == uuid, table.c.ts >= start, table.c.ts < end))
        .order_by(table.c.ts)
    )
    with store.engine.connect() as conn:
        return len(conn.execute(query).all())


def points(value: Any) -> int:
    """The most x values of any trace in the figures (or extendData) within ``value``."""
    if isinstance(value, list | tuple):
        return max((points(item) for item in value), default=0)
    if isinstance(value, dict):
        xs = value.get("x")
        return len(xs[0]) if isinstance(xs, list) and xs and isinstance(xs[0], list) else 0
    if not isinstance(value, Component):
        return 0
    found = points(getattr(value, "children", None))
    for trace in getattr(getattr(value, "figure", None), "data", ()):
        found = max(found, len(trace.x) if trace.x is not None else 0)
    return found


def payload(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [payload(item) for item in value]
    return None if value is dash.no_update else value


class Case:
    """One timed call: its label, the call, its times, points and JSON cost (of the last)."""

    def __init__(self, label: str, call: Callable[[], Any]) -> None:
        self.label, self.call = label, call
        self.ms: list[float] = []
        self.points, self.json_ms, self.kb = 0, 0.0, 0.0

    def run(self) -> None:
        begin = time.perf_counter()
        result = self.call()
        self.ms.append((time.perf_counter() - begin) * 1000)
        if isinstance(result, int):  # a naive fetch: its row count
            self.points = result
            return
        self.points = points(result)
        begin = time.perf_counter()
        self.kb = len(to_json_plotly(payload(result))) / 1024
        self.json_ms = (time.perf_counter() - begin) * 1000

    @property
    def median_ms(self) -> float:
        return median(self.ms)

    @property
    def is_met(self) -> bool:
        return self.median_ms <= GOAL_MS and self.points <= GOAL_POINTS


def cases(ctx: PageContext, run_ids: list[str]) -> list[Case]:
    uuid, a, b = gpu_uuid(0), run_ids[ANALYZED[0]], run_ids[ANALYZED[1]]
    children, _ = gpu.graphs(ctx, uuid, "1h")
    tick = gpu.live_state(children, ctx.now() - timedelta(seconds=5))
    pages = [("/", ""), *((f"/gpu/{uuid}", f"?range={r}") for r in GPU_RANGES), ("/runs", ""),
             (f"/run/{a}", ""), ("/compare", f"?a={a}&b={b}"), ("/advice", "")]  # fmt: skip
    found = [
        Case(f"render {path.replace(uuid, 'UUID').replace(a, 'ID')}"
             f"{search.replace(a, 'A').replace(b, 'B')}",
             lambda path=path, search=search: render(ctx, path, search))
        for path, search in pages
    ]  # fmt: skip
    return [
        *found,
        Case("fleet.refresh (live tick)", lambda: fleet.refresh(ctx, "host", "")),
        Case("gpu.change_range to 30d", lambda: gpu.change_range(ctx, uuid, "30d")),
        Case("gpu.live_update (tick on 1h)", lambda: gpu.live_update(ctx, uuid, "1h", tick)),
        Case("runs.filtered name=llama", lambda: runs.filtered(ctx, "llama", "", "")),
        Case("compare.comparison_view", lambda: compare.comparison_view(ctx.store, a, b)),
    ]


def naive_cases(ctx: PageContext, found: list[Case]) -> dict[str, Case]:
    """The naive fetch of each GPU page range, keyed by the GPU page's label."""
    result = {}
    for case in found:
        if "range=" in case.label:
            start, end = gpu.window(ctx, case.label.rsplit("=", 1)[1])
            result[case.label] = Case(
                "naive", lambda s=start, e=end: naive_fetch(ctx.store, gpu_uuid(0), s, e)
            )
    return result


def measure(found: list[Case], naive: dict[str, Case], repeats: int) -> None:
    """Each call warmed once, then timed ``repeats`` times; a GPU page range takes turns with
    its naive fetch."""
    for case in found:
        pair = [case, naive[case.label]] if case.label in naive else [case]
        for item in pair:
            item.run()
            item.ms.clear()
        for _ in range(repeats):
            for item in pair:
                item.run()
        progress(f"{case.label}: {case.median_ms:,.0f} ms")


def report_cases(report: Report, found: list[Case], naive: dict[str, Case]) -> None:
    report.table(["call", "ms", "JSON ms", "KB", "points", "goal met"], [
        [case.label, f"{case.median_ms:,.1f}", f"{case.json_ms:,.1f}", f"{case.kb:,.0f}",
         f"{case.points:,}" if case.points else "-", "yes" if case.is_met else "NO"]
        for case in found])  # fmt: skip
    report.line()
    rows = []
    for case in (c for c in found if c.label in naive):
        base = naive[case.label]
        rows.append([case.label.rsplit("=", 1)[1], f"{case.median_ms:,.1f}", f"{case.points:,}",
                     f"{base.median_ms:,.1f}", f"{base.points:,}",
                     f"{case.median_ms / base.median_ms:.3f}x",
                     f"{case.points / base.points:.4f}x"])  # fmt: skip
    report.line("The GPU page against the naive dashboard (its raw fetch alone, no figures):")
    report.table(["GPU page range", "gpulens ms", "points", "naive ms", "naive points",
                  "time gpulens/naive", "points gpulens/naive"], rows)  # fmt: skip


def where(file: str, function: str) -> tuple[str, str]:
    """(package, name without the machine's folders) of a profiled function."""
    if file == "~":  # C functions
        return ("sqlite3" if "sqlite3" in function else "built-ins"), function
    path = Path(file)
    if "site-packages" in path.parts:
        parts = path.parts[path.parts.index("site-packages") + 1 :]
    elif path.is_relative_to(ROOT):
        parts = path.relative_to(ROOT).parts
    else:
        parts = ("stdlib", path.name)
    area = parts[0].replace("_plotly_utils", "plotly").replace("psycopg_binary", "psycopg")
    return area, f"{'/'.join(parts)}({function})"


def report_profile(report: Report, found: list[Case], top: int = 12) -> None:
    """Each call over the goal, profiled once: own time by package; for the slowest, the
    gpulens functions with the most time under them."""
    slow = sorted((c for c in found if c.median_ms > GOAL_MS), key=lambda c: -c.median_ms)
    for number, case in enumerate(slow):
        profiler = cProfile.Profile()
        profiler.runcall(case.call)
        stats: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
        total = sum(entry[2] for entry in stats.values()) or 1.0
        areas: dict[str, float] = {}
        for (file, _line, function), entry in stats.items():
            area = where(file, function)[0]
            areas[area] = areas.get(area, 0.0) + entry[2]
        ranked = sorted(areas.items(), key=lambda kv: -kv[1])
        shares = ", ".join(f"{name} {s / total:.0%}" for name, s in ranked if s / total >= 0.02)
        report.line(f"profile of {case.label} ({total * 1000:,.0f} ms under cProfile), own "
                    f"time by package: {shares}")  # fmt: skip
        if number == 0:
            named = [(where(key[0], key[2]), entry) for key, entry in stats.items()]
            ours = sorted((e[3], n[1]) for n, e in named if n[0] in ("dashboard", "monitor"))
            shown = ours[-2 : -top - 2 : -1]  # the largest, after the call itself
            report.table(["gpulens function (slowest call)", "ms under it (cProfile)"],
                         [[name, f"{seconds * 1000:,.0f}"] for seconds, name in shown])  # fmt: skip
            own = sorted(named, key=lambda item: -item[1][2])[:6]
            report.line("most own time: " + "; ".join(
                f"{n[1]} {e[2] * 1000:,.0f} ms ({e[1]:,} calls)" for n, e in own))  # fmt: skip


def backend(report: Report, name: str, url: str, fleet: Fleet, repeats: int) -> list[Case]:
    report.line(f"## {name}")
    store = Store.open(url, retention=RETENTION)
    try:
        run_ids = seed(report, store, fleet)
        ctx = PageContext(store, now=lambda: fleet.end)
        found = cases(ctx, run_ids)
        naive = naive_cases(ctx, found)
        measure(found, naive, repeats)
        report_cases(report, found, naive)
        report.line()
        report_profile(report, found)
        report.line()
        return found
    finally:
        store.close()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--backends", default="sqlite,postgres", help="sqlite,postgres")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="--days 2")
    args = parser.parse_args(argv)
    fleet = Fleet.of(args.gpus, 2.0 if args.quick else args.days)
    days = fleet.seconds / 86400
    if RETENTION.rollup_1m_days is not None and RETENTION.rollup_1m_days < days:
        raise SystemExit("the retention policy keeps less than the whole range of rollups")
    warn_if_loaded()
    report = Report("dashboard_pages", argv)
    report.line(f"# {fleet.gpus} GPUs ({GPUS_PER_HOST} per host) at 1 Hz for {days:g} days, "
                f"{RUNS} runs x {STEPS:,} steps; 'now' is the last sample, noon UTC. Wall time, "
                f"median of {args.repeats} warm calls; goal: <= {GOAL_MS:.0f} ms and <= "
                f"{GOAL_POINTS:,} points per series")  # fmt: skip
    report.line()
    results: dict[str, list[Case]] = {}
    for chosen in args.backends.split(","):
        if chosen == "sqlite":
            with tempfile.TemporaryDirectory(prefix="gpulens-bench-") as tmp:
                url = f"sqlite:///{tmp}/pages.db"
                results["SQLite"] = backend(report, "SQLite", url, fleet, args.repeats)
        elif chosen == "postgres":
            why_not = postgres_available()
            if why_not is not None:
                report.line(f"## Postgres skipped: {why_not}")
                continue
            with scratch_postgres("gpulens_bench_pages") as url:
                results["Postgres"] = backend(report, "Postgres", url, fleet, args.repeats)
        else:
            raise SystemExit(f"unknown backend {chosen!r}: sqlite or postgres")
    if len(results) > 1:
        names = list(results)
        report.table(["call (ms)", *names, "points"], [
            [case.label, *(f"{results[n][i].median_ms:,.1f}" for n in names),
             f"{case.points:,}" if case.points else "-"]
            for i, case in enumerate(results[names[0]])])  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
