"""Prometheus scrape cost for 8 GPUs: gpulens's exporter against prometheus_client's own way.

CPU time (``time.process_time``) per scrape, each producing the exposition text, of:

  (a) the baseline: a ``CollectorRegistry`` of labelled ``Gauge``/``Counter`` objects, one per
      native gpulens series, each GPU's child ``set`` from the newest sample, then
      ``generate_latest`` (what a hand-written exporter does per scrape);
  (b) ``render(snapshot)``: gpulens's custom collector, native names;
  (c) ``render(snapshot, dcgm_names=True)``: also dcgm-exporter's names (``--dcgm-names``);
  (d) ``GpuCollector.collect()`` alone with dcgm names: the metric families, without the text.

The samples are the simulated source's (8 GPUs, after a minute of ticks). Median of 3
interleaved runs. Goal: (d) at most 5 ms of CPU per scrape of 8 GPUs. That was a wall-clock
assertion in tests/test_exporter.py; timing belongs here, not in the tests.

    .venv/bin/python bench/exporter_scrape.py [--quick] [--scrapes N]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from common import Report, median, warn_if_loaded
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from monitor.collector.exporter import NATIVE_SERIES, ExporterSnapshot, GpuCollector, render
from monitor.collector.sampler import Sampler
from monitor.collector.simulated import SimulatedSource
from monitor.core.gpu_records import GpuInfo, GpuSample

GPUS = 8
GOAL_MS = 5.0
LABELS = ("host", "uuid", "index", "model", "simulated")


def snapshot() -> ExporterSnapshot:
    sampler = Sampler(SimulatedSource(GPUS, seed=0, host="bench"), "bench")
    infos = [r for r in sampler.start() if isinstance(r, GpuInfo)]
    latest: dict[str, GpuSample] = {}
    for _ in range(60):
        latest |= {r.uuid: r for r in sampler.tick() if isinstance(r, GpuSample)}
    counters = {"collected": 1, "written": 1, "dropped": 0, "spooled": 0, "pending": 0}
    return ExporterSnapshot(
        gpus=tuple((info, latest[info.uuid]) for info in infos),
        xid_last={},
        xid_total={},
        counters={**counters, "poll_errors": 0},
        stale_since=None,
        host="bench",
        is_simulated=True,
    )


def baseline(snap: ExporterSnapshot) -> Callable[[], bytes]:
    registry = CollectorRegistry(auto_describe=False)
    metrics = {
        s.attr: (Counter if s.type == "counter" else Gauge)(
            s.name, s.help, LABELS, registry=registry
        )
        for s in NATIVE_SERIES
    }

    def scrape() -> bytes:
        for info, sample in snap.gpus:
            labels = (info.host, info.uuid, str(info.index), info.name, "true")
            for attr, metric in metrics.items():
                value = getattr(sample, attr)
                if value is None:
                    continue
                child = metric.labels(*labels)
                if isinstance(child, Gauge):
                    child.set(value)
                else:  # a counter cannot be set; the increment costs about the same
                    child.inc(0)
        return generate_latest(registry)

    return scrape


def collect_only(snap: ExporterSnapshot) -> Callable[[], bytes]:
    collector = GpuCollector(lambda: snap, dcgm_names=True)

    def scrape() -> bytes:
        return b"".join(family.name.encode() for family in collector.collect())

    return scrape


def cost(scrape: Callable[[], bytes], scrapes: int) -> float:
    scrape()  # label caches and the like, as in a long-running collector
    start = time.process_time()
    for _ in range(scrapes):
        scrape()
    return (time.process_time() - start) / scrapes


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 scrapes instead of 2000")
    parser.add_argument("--scrapes", type=int, help="scrapes per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    scrapes = args.scrapes or (200 if args.quick else 2000)
    warn_if_loaded()
    snap = snapshot()
    cases: dict[str, tuple[str, Callable[[], bytes]]] = {
        "a": ("(a) prometheus_client Gauges + generate_latest", baseline(snap)),
        "b": ("(b) gpulens render", lambda: render(lambda: snap)),
        "c": ("(c) gpulens render, dcgm names too", lambda: render(lambda: snap, dcgm_names=True)),
        "d": ("(d) gpulens collect() alone, dcgm names too", collect_only(snap)),
    }
    report = Report("exporter_scrape", argv)
    report.line(
        f"# {GPUS} simulated GPUs, {scrapes} scrapes per measurement, median of {args.repeats}"
    )
    seconds: dict[str, list[float]] = {key: [] for key in cases}
    for _ in range(args.repeats):
        for key, (_label, scrape) in cases.items():
            seconds[key].append(cost(scrape, scrapes))
    per_scrape_ms = {key: median(values) * 1e3 for key, values in seconds.items()}
    base = per_scrape_ms["a"]
    rows = [
        [label, f"{per_scrape_ms[key]:.3f}", f"{per_scrape_ms[key] / base:.2f}x", len(scrape())]
        for key, (label, scrape) in cases.items()
    ]
    report.line()
    report.table(["path", "CPU ms/scrape", "vs baseline", "bytes"], rows)
    collect_ms = per_scrape_ms["d"]
    verdict = "met" if collect_ms <= GOAL_MS else "NOT met"
    report.line()
    report.line(
        f"goal: collect() <= {GOAL_MS} ms of CPU for {GPUS} GPUs: {verdict} ({collect_ms:.3f} ms)"
    )
    report.save("" if scrapes == 2000 else f"_{scrapes}scrapes")


if __name__ == "__main__":
    main(sys.argv[1:])
