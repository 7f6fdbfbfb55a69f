"""The analyzer against synthetic traces whose answers are known exactly, up to a trace of
several hundred MB read in bounded memory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.traces.analyze import analyze_path
from tests.trace_gen import write_synthetic_trace


@pytest.mark.parametrize("float_timestamps", [True, False])
def test_every_figure_matches_the_generators_truth(tmp_path: Path, float_timestamps: bool) -> None:
    truth = write_synthetic_trace(
        tmp_path / "t.json.gz",
        steps=6,
        kernels_per_step=40,
        compress=True,
        with_nccl=True,
        float_timestamps=float_timestamps,
        seed=7,
    )
    (rank,) = analyze_path(truth.path).ranks
    assert [s.step for s in rank.steps] == list(truth.steps)
    for step in rank.steps:
        assert step.step is not None
        # start_us is an absolute trace time: float64 keeps it to about 0.25 µs at 1.7e15 µs.
        assert step.start_us * 1000 == pytest.approx(truth.step_start_ns[step.step], abs=1000)
        assert step.duration_us * 1000 == pytest.approx(truth.step_duration_ns[step.step], abs=1)
        assert step.gpu_busy_us * 1000 == pytest.approx(truth.step_gpu_busy_ns[step.step], abs=1)
        assert step.breakdown_us["dataloader"] * 1000 == pytest.approx(
            truth.step_dataloader_ns[step.step], abs=1
        )
        assert sum(step.breakdown_us.values()) == pytest.approx(step.duration_us)
    kernels = {k.name: k for k in rank.kernels if k.category != "memory"}
    assert {name: k.count for name, k in kernels.items()} == truth.kernel_count
    for name, total_ns in truth.kernel_time_ns.items():
        assert kernels[name].total_us * 1000 == pytest.approx(total_ns, abs=1)
    assert {n for n, k in kernels.items() if k.tensor_core} == truth.tensor_core_names
    (copy,) = rank.memcpy
    assert (copy.direction, copy.memory, copy.count) == ("HtoD", "pageable", truth.memcpy_count)
    assert copy.total_bytes == truth.memcpy_bytes
    assert rank.total.gpu_busy_us * 1000 == pytest.approx(truth.gpu_busy_ns, abs=len(truth.steps))
    assert rank.overlap is not None
    assert rank.overlap.communication_us * 1000 == pytest.approx(truth.nccl_time_ns, abs=1)


# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the forking (pytest) process.
RSS_PROBE = """
import json, sys
from monitor.traces.analyze import analyze_path
result = analyze_path(sys.argv[1])
rank = result.ranks[0]
status = open("/proc/self/status").read().split("VmHWM:")[1]
print(json.dumps({
    "peak_rss_bytes": int(status.split()[0]) * 1024,
    "steps": len(rank.steps),
    "kernels": sum(k.count for k in rank.kernels if k.category != "memory"),
    "gpu_busy_us": rank.total.gpu_busy_us,
}))
"""


@pytest.mark.slow
def test_a_trace_of_several_hundred_mb_is_read_in_bounded_memory(tmp_path: Path) -> None:
    truth = write_synthetic_trace(tmp_path / "big.json", steps=250, kernels_per_step=1000, seed=3)
    size = truth.path.stat().st_size
    assert size > 300 * 1024**2
    out = subprocess.run(
        [sys.executable, "-c", RSS_PROBE, str(truth.path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
    )
    found = json.loads(out.stdout)
    assert found["steps"] == len(truth.steps)
    assert found["kernels"] == sum(truth.kernel_count.values())
    assert found["gpu_busy_us"] * 1000 == pytest.approx(truth.gpu_busy_ns, abs=len(truth.steps))
    # The events are never all in memory: the whole process stays under a third of the file.
    print(f"trace {size / 2**20:.0f} MiB, peak RSS {found['peak_rss_bytes'] / 2**20:.0f} MiB")
    assert found["peak_rss_bytes"] < size / 3
