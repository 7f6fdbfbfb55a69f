"""Collector CPU cost per GPU-sample, with the simulated source (8 GPUs, 1 Hz).

CPU time (``time.process_time``: this process, all threads; SQLite runs in-process, so its
work counts too) of N ticks for each of:

  (a) ``SimulatedSource.poll()`` alone — the baseline of the ratios;
  (b) ``Sampler.tick()`` — poll + samples, process samples and events;
  (c) tick + ``Pipeline.add`` + ``Pipeline.flush(Store.write)`` every 5 ticks into a SQLite file,
      as the flush job does (5 s at 1 Hz);
  (d) the collector's own jobs (``Collector.sample`` with its poll thread, ``flush`` with the
      heartbeat every 5 ticks, ``rollup`` every 60), simulated time stepped 1 s per tick.

Each is measured 3 times, interleaved, and the median is printed. Goal: at most 0.1 % of one
core per GPU at 1 Hz, i.e. at most 1000 µs of CPU per GPU-sample.

    .venv/bin/python bench/collector_cost.py [--quick] [--ticks N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import T0, Report, median, warn_if_loaded

from monitor.clock import ManualClock
from monitor.collector.delivery import GPU_RECORDS, collector_pipeline
from monitor.collector.jobs import Collector, JobSettings
from monitor.collector.sampler import Sampler
from monitor.collector.simulated import SimulatedSource
from monitor.pipeline import Spool
from monitor.store import Store

GPUS = 8
FLUSH_EVERY_TICKS = 5
ROLLUP_EVERY_TICKS = 60
GOAL_PERCENT_PER_GPU = 0.1


def source() -> SimulatedSource:
    return SimulatedSource(GPUS, seed=0, host="bench")


def cpu_seconds(ticks: int, tick: Callable[[], object]) -> float:
    """Process CPU time of ``ticks`` calls of ``tick``."""
    start = time.process_time()
    for _ in range(ticks):
        tick()
    return time.process_time() - start


def cost_poll(ticks: int, _tmp: Path) -> float:
    src = source()
    src.open()
    return cpu_seconds(ticks, src.poll)


def cost_tick(ticks: int, _tmp: Path) -> float:
    sampler = Sampler(source(), "bench")
    sampler.start()
    return cpu_seconds(ticks, sampler.tick)


def cost_tick_write(ticks: int, tmp: Path) -> float:
    store = Store.open(f"sqlite:///{tmp / 'store.db'}")
    buffer = collector_pipeline(Spool(tmp / "spool.jsonl", GPU_RECORDS, claims=False))
    sampler = Sampler(source(), "bench")
    try:
        buffer.add(sampler.start())
        start = time.process_time()
        for n in range(1, ticks + 1):
            buffer.add(sampler.tick())
            if n % FLUSH_EVERY_TICKS == 0:
                buffer.flush(store.write)
        buffer.flush(store.write)
        return time.process_time() - start
    finally:
        store.close()


def cost_collector_jobs(ticks: int, tmp: Path) -> float:
    clock = ManualClock(T0)
    store = Store.open(f"sqlite:///{tmp / 'collector.db'}")
    collector = Collector(
        Sampler(source(), "bench", clock),
        collector_pipeline(
            Spool(tmp / "collector-spool.jsonl", GPU_RECORDS, claims=False), clock=clock.monotonic
        ),
        lambda: store,
        settings=JobSettings(),
        clock=clock,
    )
    try:
        collector.start()
        start = time.process_time()
        for n in range(1, ticks + 1):
            collector.sample()
            clock.advance(1.0)
            if n % FLUSH_EVERY_TICKS == 0:
                collector.flush()
            if n % ROLLUP_EVERY_TICKS == 0:
                collector.rollup()
        collector.flush()
        return time.process_time() - start
    finally:
        store.close()


CASES: dict[str, tuple[str, Callable[[int, Path], float]]] = {
    "a": ("(a) source poll alone", cost_poll),
    "b": ("(b) sampler tick (poll + records)", cost_tick),
    "c": ("(c) tick + buffer + Store.write/5 s", cost_tick_write),
    "d": ("(d) collector jobs (+thread, heartbeat, rollup)", cost_collector_jobs),
}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="600 ticks instead of 3600")
    parser.add_argument("--ticks", type=int, help="ticks per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    ticks = args.ticks or (600 if args.quick else 3600)
    warn_if_loaded()
    report = Report("collector_cost", argv)
    report.line(
        f"# {GPUS} simulated GPUs, {ticks} ticks per measurement "
        f"({ticks * GPUS} GPU-samples), median of {args.repeats} interleaved runs"
    )
    seconds: dict[str, list[float]] = {key: [] for key in CASES}
    for repeat in range(args.repeats):
        for key, (_label, measure) in CASES.items():
            with tempfile.TemporaryDirectory(prefix="gpulens-bench-") as tmp:
                seconds[key].append(measure(ticks, Path(tmp)))
        print(f"  run {repeat + 1}/{args.repeats} done", file=sys.stderr)
    per_sample_us = {k: median(v) / (ticks * GPUS) * 1e6 for k, v in seconds.items()}
    base = per_sample_us["a"]
    rows = []
    for key, (label, _measure) in CASES.items():
        us = per_sample_us[key]
        # CPU µs per GPU-sample at 1 Hz is CPU µs per GPU per second: µs / 1e6 s * 100 %.
        per_gpu_percent = us / 1e4
        rows.append(
            [
                label,
                f"{us:8.1f}",
                f"{us / base:5.2f}x",
                f"{per_gpu_percent:.4f}%",
                f"{per_gpu_percent * GPUS:.3f}%",
            ]
        )
    report.line()
    report.table(
        ["path", "CPU µs/GPU-sample", "vs poll", "core/GPU @1Hz", f"core/{GPUS} GPUs @1Hz"],
        rows,
    )
    write_us = per_sample_us["c"] - per_sample_us["b"]
    report.line()
    report.line(f"buffer + store write alone, by difference (c)-(b): {write_us:.1f} µs/GPU-sample")
    worst = max(per_sample_us.values()) / 1e4
    verdict = "met" if worst <= GOAL_PERCENT_PER_GPU else "NOT met"
    report.line(
        f"goal: <= {GOAL_PERCENT_PER_GPU}% of one core per GPU at 1 Hz "
        f"(<= 1000 µs/GPU-sample): {verdict} (worst path {worst:.4f}%)"
    )
    report.save("" if ticks == 3600 else f"_{ticks}ticks")


if __name__ == "__main__":
    main(sys.argv[1:])
