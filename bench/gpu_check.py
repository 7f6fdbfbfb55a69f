"""The seeded-bottleneck suite on a device, and the advisor's detection table.

    python bench/gpu_check.py --device cuda     # what `make gpu-check` runs
    python bench/gpu_check.py --device cpu      # the cases that show on a CPU

Runs every case that shows on the device (both variants) into a fresh SQLite store, advises
each run, and writes ``bench/results/detection_<device>.md``: case, expected rule, top
finding, predicted gain (Amdahl bound), realized gain (bottleneck vs clean twin, median time
per sample), clean twin warnings. Recorded traces stay in the temporary folder unless
``--keep-traces DIR`` says where to copy the smallest of each case.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from examples.bottlenecks.detection import detect, render_table, run_name  # noqa: E402
from examples.bottlenecks.suite import CASES, VARIANTS, CaseNeedsCuda, run_case  # noqa: E402
from monitor.store import Store  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda")
    parser.add_argument("--steps", type=int, default=None, help="default: 60 cpu, 200 cuda")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--keep-traces", type=Path, default=None, metavar="DIR")
    args = parser.parse_args()
    steps = args.steps or (60 if args.device == "cpu" else 200)
    cases = [c for c in CASES if c.shows_on_cpu or args.device == "cuda"]
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'suite.db'}"
        traces = Path(folder) / "traces"
        ran = []
        for case in cases:
            started = time.perf_counter()
            try:
                for variant in VARIANTS:
                    run_case(
                        case,
                        variant,
                        device=args.device,
                        steps=steps,
                        db=url,
                        run_name=run_name(case, variant),
                        trace_dir=str(traces),
                    )
            except CaseNeedsCuda as exc:
                print(f"{case.name}: skipped, {exc}", file=sys.stderr)
                continue
            ran.append(case)
            print(f"{case.name}: both variants in {time.perf_counter() - started:.1f} s")
        store = Store.open(url)
        try:
            detections = [detect(store, case) for case in ran]
        finally:
            store.close()
        if args.keep_traces is not None:
            _keep_smallest(traces, args.keep_traces)
    table = render_table(detections, f"{args.device} ({steps} steps per run)")
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / f"detection_{args.device}.md"
    target.write_text(table)
    print(table)
    print(f"written to {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}")
    return 0 if all(d.is_detected and d.is_clean_quiet for d in detections) else 1


def _keep_smallest(traces: Path, target: Path) -> None:
    """Copy the smallest window trace of each run folder (fixtures for later tests)."""
    target.mkdir(parents=True, exist_ok=True)
    for run in sorted(p for p in traces.iterdir() if p.is_dir()):
        files = sorted(run.glob("*.json.gz"), key=lambda p: p.stat().st_size)
        if files:
            shutil.copy(files[0], target / f"{run.name}-{files[0].name}")


if __name__ == "__main__":
    sys.exit(main())
