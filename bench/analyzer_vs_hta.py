"""Trace analyzer vs Holistic Trace Analysis on the same traces, in one run.

Each measurement runs in a fresh child process, so peak RSS (``VmHWM``) is that side's own.
Timed: from the trace path to the numbers (HTA: parse + temporal + idle-time + kernel
breakdowns; gpulens: ``analyze_path``, which computes all of those and more). Imports are not
timed; the peak RSS is reported whole and as the growth above the post-import baseline.
Runs interleave (gpulens, HTA, gpulens, HTA, ...) and the table shows medians.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import Report, warn_if_loaded

SHARED_TRACES = Path(__file__).resolve().parents[2] / "shared" / "traces"


def _peak_kb() -> int:
    """This process's peak RSS (Linux's VmHWM; ru_maxrss would include the parent's, from
    before exec)."""
    with open("/proc/self/status") as status:
        return int(status.read().split("VmHWM:")[1].split()[0])


def child(side: str, trace: Path) -> None:
    if side == "hta":
        os.environ["HTA_DISABLE_NS_ROUNDING"] = "1"
        import logging

        from hta.trace_analysis import TraceAnalysis

        logging.disable(logging.WARNING)
        folder = Path(tempfile.mkdtemp())
        shutil.copy(trace, folder / trace.name)
        base_kb = _peak_kb()
        start = time.perf_counter()
        analysis = TraceAnalysis(trace_dir=str(folder))
        frame = analysis.get_temporal_breakdown(visualize=False)
        analysis.get_idle_time_breakdown(visualize=False)
        analysis.get_gpu_kernel_breakdown(visualize=False)
        wall = time.perf_counter() - start
        idle_pct = float(frame.iloc[0]["idle_time(us)"] / frame.iloc[0]["kernel_time(us)"] * 100)
        shutil.rmtree(folder)
    else:
        from monitor.traces.analyze import analyze_path

        base_kb = _peak_kb()
        start = time.perf_counter()
        result = analyze_path(trace)
        wall = time.perf_counter() - start
        temporal = result.ranks[0].temporal
        idle_pct = 100 * temporal.idle_us / temporal.span_us if temporal.span_us else 0.0
    peak_kb = _peak_kb()
    print(json.dumps({"wall": wall, "base_kb": base_kb, "peak_kb": peak_kb, "idle": idle_pct}))


def measure(side: str, trace: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", side, str(trace)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one run per side")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("SIDE", "TRACE"), help=argparse.SUPPRESS)
    parser.add_argument("traces", nargs="*", type=Path, help="default: the shared traces")
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    warn_if_loaded()
    traces = args.traces or sorted(SHARED_TRACES.glob("*.json.gz"))
    repeat = 1 if args.quick else args.repeat
    report = Report("analyzer_vs_hta", sys.argv[1:])
    rows = []
    for trace in traces:
        runs: dict[str, list[dict[str, float]]] = {"gpulens": [], "hta": []}
        for _ in range(repeat):
            for side in runs:
                runs[side].append(measure(side, trace))
        rows.append(_row(trace, runs))
    report.table(
        [
            "trace",
            "MB",
            "gpulens s",
            "HTA s",
            "speed-up",
            "gpulens RSS MB (+growth)",
            "HTA RSS MB (+growth)",
            "RSS ratio",
            "idle % ours/HTA",
        ],
        rows,
    )
    report.line()
    report.line("speed-up = HTA time / gpulens time; RSS ratio = gpulens peak / HTA peak")
    report.save("_quick" if args.quick else "")


def _row(trace: Path, runs: dict[str, list[dict[str, float]]]) -> list[object]:
    def med(side: str, key: str) -> float:
        return statistics.median(item[key] for item in runs[side])

    ours_s, hta_s = med("gpulens", "wall"), med("hta", "wall")
    ours_mb, hta_mb = med("gpulens", "peak_kb") / 1024, med("hta", "peak_kb") / 1024
    ours_growth = ours_mb - med("gpulens", "base_kb") / 1024
    hta_growth = hta_mb - med("hta", "base_kb") / 1024
    return [
        trace.name,
        f"{trace.stat().st_size / 1e6:.1f}",
        f"{ours_s:.3f}",
        f"{hta_s:.3f}",
        f"{hta_s / ours_s:.1f}x",
        f"{ours_mb:.0f} (+{ours_growth:.0f})",
        f"{hta_mb:.0f} (+{hta_growth:.0f})",
        f"{ours_mb / hta_mb:.2f}",
        f"{med('gpulens', 'idle'):.2f}/{med('hta', 'idle'):.2f}",
    ]


if __name__ == "__main__":
    main()
