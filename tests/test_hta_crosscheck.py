"""Our numbers on real GPU traces against Holistic Trace Analysis's (the independent tool).

The temporal breakdown must agree within 0.5 percentage points on every shared trace, with
HTA's nanosecond rounding off (``HTA_DISABLE_NS_ROUNDING=1``). Deliberate differences of
definition (README, "Differences from HTA"): ``cuda_sync`` rows are host waits, not GPU busy
time; gaps between two events on one stream never count negative; times are exact integer
nanoseconds rather than float64 µs.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from monitor.traces.analyze import analyze_path

TOLERANCE_PP = 0.5


def hta_results(trace: Path, folder: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("HTA_DISABLE_NS_ROUNDING", "1")
    from hta.trace_analysis import TraceAnalysis

    folder.mkdir()
    shutil.copy(trace, folder / trace.name)
    analysis = TraceAnalysis(trace_dir=str(folder))
    temporal = analysis.get_temporal_breakdown(visualize=False).iloc[0]
    idle, _ = analysis.get_idle_time_breakdown(visualize=False)
    by_cause = idle.groupby("idle_category")["idle_time"].sum()
    return {
        "span": float(temporal["kernel_time(us)"]),
        "idle": float(temporal["idle_time(us)"]),
        "compute": float(temporal["compute_time(us)"]),
        "non_compute": float(temporal["non_compute_time(us)"]),
        "idle_total": float(by_cause.sum()),
    }


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")
@pytest.mark.parametrize(
    "name",
    [
        "hta_alexnet_a100.json.gz",
        "hta_nccl_parser_a100_rank0.json.gz",
        "hta_ns_resolution_v100.pt.trace.json.gz",
        "param_resnet_rtx2080ti.json.gz",
        "tracelens_h100_qwen1.5_0.5b.json.gz",
    ],
)
def test_temporal_breakdown_agrees_with_hta(
    name: str, shared_traces: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if name not in shared_traces:
        pytest.fail(f"{name} is missing from the shared traces")
    expected = hta_results(shared_traces[name], tmp_path / "hta", monkeypatch)
    (ours,) = analyze_path(shared_traces[name]).ranks
    temporal = ours.temporal
    for key, value in [
        ("idle", temporal.idle_us),
        ("compute", temporal.compute_us),
        ("non_compute", temporal.non_compute_us),
    ]:
        our_pct = 100 * value / temporal.span_us
        hta_pct = 100 * expected[key] / expected["span"]
        assert our_pct == pytest.approx(hta_pct, abs=TOLERANCE_PP), key
    # Idle time by cause: the same gaps, summed over streams (the split between host and kernel
    # wait can differ by a few float64 roundings near equal timestamps).
    idle = ours.idle_breakdown_us
    ours_total = idle.host_wait + idle.kernel_wait + idle.other
    assert ours_total == pytest.approx(expected["idle_total"], rel=0.005)
