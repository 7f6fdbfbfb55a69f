"""What advising a run costs, against reading its step rows alone; and the run comparison's
bootstrap against brute-force resampling. Ratios come from the same run (noisy machines).

    python bench/advisor_cost.py [--steps 100000] [--db URL]

Seeds a SQLite store (or ``--db``) with one run of ``--steps`` steps (the hooks' every-step
records) and three hours of 1 Hz telemetry for its GPU, then times:
- baseline: ``Store.steps(run_id)``, the rows every figure starts from;
- ``gather_run`` (every query the advisor makes) and ``advise`` (every rule) on that run, and
  the use case the CLI and the dashboard call, ``advise_run`` (both, plus saving); then
  ``current_findings`` once the findings are stored and current (what a page view pays);
- ``compare_runs`` of two such runs (2,000 bootstrap resamples) against brute-force
  resampling of the medians (numpy, 2,000 x steps indices) on the same step times.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.core.advisor.advice import advise  # noqa: E402
from monitor.core.advisor.compare import compare_runs  # noqa: E402
from monitor.core.gpu_records import GpuInfo, GpuSample  # noqa: E402
from monitor.core.run_records import RunInfo, StepRecord  # noqa: E402
from monitor.services.gather import gather_run  # noqa: E402
from monitor.services.runs import advise_run, current_findings  # noqa: E402
from monitor.store import Store  # noqa: E402

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=timezone.utc)
UUID = "GPU-bench"


def seed(store: Store, run_id: str, steps: int, step_us: float) -> None:
    rng = np.random.default_rng(len(run_id))
    store.start_run(RunInfo(run_id, run_id, "bench", T0, gpu_uuids=(UUID,), status="finished"))
    durations = rng.lognormal(np.log(step_us), 0.05, steps)
    batch, start = [], T0
    for number, duration in enumerate(durations):
        batch.append(
            StepRecord(
                run_id,
                number,
                start,
                float(duration),
                dataloader_wait_us=float(duration) * 0.08,
                samples=64,
            )
        )
        start += timedelta(microseconds=float(duration))
        if len(batch) == 10_000:
            store.write_steps(batch)
            batch = []
    store.write_steps(batch)


def seed_telemetry(store: Store, seconds: int) -> None:
    records: list[object] = [
        GpuInfo(
            UUID,
            "bench",
            T0,
            0,
            "H100",
            False,
            memory_total_bytes=80 * 1024**3,
            power_limit_watts=700.0,
        )
    ]
    records += [
        GpuSample(
            UUID,
            "bench",
            T0 + timedelta(seconds=s),
            utilization_gpu_percent=90.0,
            power_watts=500.0,
            sm_clock_mhz=1980.0,
            memory_used_bytes=40 * 1024**3,
        )
        for s in range(seconds)
    ]
    store.write(records)  # type: ignore[arg-type]


def best_of(repeat: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--db", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.db or f"sqlite:///{Path(folder) / 'bench.db'}"
        store = Store.open(url)
        seed(store, "run-a", args.steps, 100_000.0)
        seed(store, "run-b", args.steps, 80_000.0)
        seed_telemetry(store, 3 * 3600)
        read = best_of(3, lambda: store.steps("run-a"))
        gather = best_of(3, lambda: gather_run(store, "run-a"))
        evidence_a = advise_run(store, "run-a").evidence
        evidence_b = advise_run(store, "run-b").evidence
        rules = best_of(3, lambda: advise(evidence_a))
        use_case = best_of(3, lambda: advise_run(store, "run-a"))
        current = best_of(3, lambda: current_findings(store, "run-a"))
        compare = best_of(3, lambda: compare_runs(evidence_a, evidence_b, [], []))
        steps = np.array([s.duration_us for s in evidence_a.steps])
        rng = np.random.default_rng(0)
        brute = best_of(
            1,
            lambda: [
                np.median(steps[rng.integers(0, steps.size, steps.size)]) for _ in range(2000)
            ],
        )
        store.close()
    print(
        f"advisor cost, one run of {args.steps:,} steps + 3 h of 1 Hz telemetry "
        f"({url.split(':')[0]})"
    )
    print(f"  baseline Store.steps(run)         {read * 1e3:9.1f} ms   1.00x")
    print(f"  gather_run (all advisor queries)  {gather * 1e3:9.1f} ms   {gather / read:.2f}x")
    print(f"  advise (every rule)               {rules * 1e3:9.1f} ms   {rules / read:.2f}x")
    print(f"  advise_run (gather, rules, save)  {use_case * 1e3:9.1f} ms   {use_case / read:.2f}x")
    print(f"  current_findings (stored, fresh)  {current * 1e3:9.1f} ms   {current / read:.2f}x")
    print(f"  compare_runs (2,000 resamples)    {compare * 1e3:9.1f} ms   {compare / read:.2f}x")
    print(
        f"  brute-force bootstrap, one run    {brute * 1e3:9.1f} ms   {brute / read:.2f}x"
        f"   ({brute / compare:.0f}x compare_runs)"
    )


if __name__ == "__main__":
    main()
