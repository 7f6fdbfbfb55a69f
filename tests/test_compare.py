"""The run comparison (``gpulens compare``): step-time bootstrap, breakdown and kernel deltas,
and the verdict on each finding of run A, on hand-built evidence with known numbers."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta

import numpy as np
import pytest

from monitor.core.advisor import compare
from monitor.core.advisor.compare import (
    Comparison,
    compare_runs,
    comparison_to_json,
    diff_kernels,
    render_comparison,
)
from monitor.core.advisor.evidence import RunEvidence
from monitor.core.advisor.findings import Finding, Gain, Scope
from monitor.core.analysis.results import CATEGORIES, KernelStat
from monitor.core.run_records import RunInfo, StepRecord
from monitor.core.run_views import StepBreakdownRow
from tests.helpers import T0


def spread(center_us: float, count: int = 200, relative: float = 0.05) -> list[float]:
    """``count`` step times evenly spread over ``center ± relative``, shuffled (median exact)."""
    values = np.linspace(center_us * (1 - relative), center_us * (1 + relative), count)
    np.random.default_rng(7).shuffle(values)
    return [float(value) for value in values]


def evidence(
    durations_us: Sequence[float],
    *,
    run_id: str = "run-a",
    breakdowns: Sequence[StepBreakdownRow] = (),
    kernels: Sequence[KernelStat] = (),
    samples: int | None = None,
) -> RunEvidence:
    steps = tuple(
        StepRecord(run_id, index, T0 + timedelta(seconds=index), duration, samples=samples)
        for index, duration in enumerate(durations_us)
    )
    run = RunInfo(run_id=run_id, name=f"name-{run_id}", host="h1", started_at=T0)
    return RunEvidence(run=run, steps=steps, breakdowns=tuple(breakdowns), kernels=tuple(kernels))


def row(
    step: int | None, duration_us: float, gpu_busy_us: float, **parts: float
) -> StepBreakdownRow:
    return StepBreakdownRow("w1", 0, step, 0.0, duration_us, dict(parts), gpu_busy_us)


def kernel(name: str, count: int, total_us: float, *, tensor_core: bool = False) -> KernelStat:
    mean_us = total_us / count
    return KernelStat(name, "computation", count, total_us, mean_us, mean_us, mean_us, tensor_core)


def finding(rule: str, fraction: float | None, *, rank: int | None = 0) -> Finding:
    gain = Gain(fraction, "step breakdown") if fraction is not None else None
    return Finding(
        rule=rule,
        severity="warning",
        title=f"{rule} costs time",
        evidence={},
        advice=("fix it",),
        expected_gain=gain,
        scope=Scope(rank=rank),
    )


A = evidence(spread(100_000.0), run_id="run-a")
B_FASTER = evidence(spread(80_000.0), run_id="run-b")
B_SAME = evidence(spread(100_000.0), run_id="run-b")
B_SLOWER = evidence(spread(103_000.0), run_id="run-b")


def test_speedup_of_a_faster_run_is_its_median_ratio_with_an_interval_above_one() -> None:
    result = compare_runs(A, B_FASTER, [], [])
    assert result.a.median_us == pytest.approx(100_000.0)
    assert result.b.median_us == pytest.approx(80_000.0)
    assert result.a.steps == result.b.steps == 200
    assert result.a.p90_us == pytest.approx(float(np.percentile(spread(100_000.0), 90)))
    assert result.a.mean_us == pytest.approx(100_000.0)
    speedup = result.speedup
    assert speedup.median_ratio == pytest.approx(1.25)
    assert 1.0 < speedup.ci_low < 1.25 < speedup.ci_high < 1.3
    assert speedup.verdict == "faster"
    assert result.difference.delta_us == pytest.approx(-20_000.0)
    assert result.difference.ci_low_us < -20_000.0 < result.difference.ci_high_us < 0


def test_identical_distributions_are_no_significant_change() -> None:
    result = compare_runs(A, B_SAME, [], [])
    assert result.speedup.median_ratio == pytest.approx(1.0)
    assert result.speedup.ci_low < 1.0 < result.speedup.ci_high
    assert result.speedup.verdict == "no significant change"
    assert result.difference.ci_low_us < 0 < result.difference.ci_high_us


def test_a_slower_run_is_slower() -> None:
    result = compare_runs(A, B_SLOWER, [], [])
    assert result.speedup.median_ratio == pytest.approx(100 / 103)
    assert result.speedup.ci_high < 1.0
    assert result.speedup.verdict == "slower"


def test_warmup_steps_are_left_out() -> None:
    warm = evidence([2_000_000.0, 1_500_000.0, 900_000.0, *spread(100_000.0)])
    result = compare_runs(warm, B_FASTER, [], [])
    assert result.a.warmup_steps == 3
    assert result.a.steps == 200
    assert result.a.median_us == pytest.approx(100_000.0)
    assert result.a.p99_us < 106_000.0
    assert result.speedup.median_ratio == pytest.approx(1.25)


def test_the_bootstrap_is_deterministic_for_a_seed() -> None:
    def dump(result: Comparison) -> str:
        return json.dumps(comparison_to_json(result), sort_keys=True)

    first = compare_runs(A, B_FASTER, [], [], seed=3)
    assert dump(first) == dump(compare_runs(A, B_FASTER, [], [], seed=3))
    other = compare_runs(A, B_FASTER, [], [], seed=4)
    assert (first.speedup.ci_low, first.speedup.ci_high) != (
        other.speedup.ci_low,
        other.speedup.ci_high,
    )


@pytest.mark.parametrize("size", [101, 100])
def test_the_order_statistic_shortcut_matches_brute_force_resampling(size: int) -> None:
    rng = np.random.default_rng(11)
    values = np.sort(rng.lognormal(11.5, 0.4, size))  # skewed, like step times
    brute = np.median(values[rng.integers(0, size, (20_000, size))], axis=1)
    fast = compare._resampled_medians(values, 20_000, np.random.default_rng(12))
    for q in (2.5, 25, 50, 75, 97.5):
        assert np.percentile(fast, q) == pytest.approx(np.percentile(brute, q), rel=0.01)
    if size % 2:  # an odd resample's median is one of the values
        assert set(np.unique(fast)) <= set(values)


def test_a_long_run_costs_no_more_than_a_short_one() -> None:
    long_a = evidence(spread(100_000.0, 200_000))
    long_b = evidence(spread(80_000.0, 200_000))
    result = compare_runs(long_a, long_b, [], [], resamples=2000)
    assert 1.24 < result.speedup.ci_low < 1.25 < result.speedup.ci_high < 1.26


def test_a_trace_only_run_uses_its_profiled_step_breakdowns() -> None:
    rows = [row(step, duration, 0.0) for step, duration in enumerate(spread(80_000.0, 40))]
    trace_only = RunEvidence(breakdowns=tuple(rows), source="trace")
    result = compare_runs(A, trace_only, [], [])
    assert result.b.sample == "breakdowns"
    assert result.b.steps == 40
    assert result.speedup.median_ratio == pytest.approx(1.25)
    assert result.speedup.verdict == "faster"
    assert any("profiled step breakdowns stand in" in note for note in result.notes)


def test_too_few_steps_give_no_verdict_and_valid_json() -> None:
    short = evidence([100_000.0, 101_000.0, 99_000.0])
    result = compare_runs(A, short, [finding("input.dataloader", 0.2)], [])
    assert result.speedup.verdict == "not enough data"
    assert result.findings[0].verdict == "inconclusive"
    assert "too few steps" in result.findings[0].reason
    assert any("fewer than 5" in note for note in result.notes)
    document = comparison_to_json(result)
    assert document["speedup"]["ci_low"] is None
    json.dumps(document, allow_nan=False)
    assert "not enough step times" in render_comparison(result)


BREAKDOWN_A = [
    row(1, 100_000.0, 60_000.0, kernel=60_000.0, dataloader=30_000.0, other=10_000.0),
    row(2, 100_000.0, 60_000.0, kernel=60_000.0, dataloader=30_000.0, other=10_000.0),
    row(None, 250_000.0, 1_000.0, kernel=1_000.0, other=249_000.0),  # ignored: steps exist
]
BREAKDOWN_B = [
    row(None, 80_000.0, 60_000.0, kernel=60_000.0, dataloader=10_000.0, other=10_000.0),
]


def test_breakdown_deltas_per_category() -> None:
    a = evidence(spread(100_000.0), breakdowns=BREAKDOWN_A)
    b = evidence(spread(80_000.0), breakdowns=BREAKDOWN_B)
    result = compare_runs(a, b, [], [])
    assert [item.category for item in result.breakdown] == list(CATEGORIES)
    by_name = {item.category: item for item in result.breakdown}
    loader = by_name["dataloader"]
    assert (loader.a_us, loader.b_us, loader.delta_us) == (30_000.0, 10_000.0, -20_000.0)
    assert loader.a_percent == pytest.approx(30.0)
    assert loader.b_percent == pytest.approx(12.5)
    assert loader.delta_points == pytest.approx(-17.5)
    assert by_name["kernel"].delta_us == 0.0
    assert by_name["kernel"].delta_points == pytest.approx(15.0)
    assert by_name["memcpy"].a_us == by_name["memcpy"].b_us == 0.0
    assert result.a.gpu_busy_percent == pytest.approx(60.0)
    assert result.b.gpu_busy_percent == pytest.approx(75.0)
    assert any("B's trace has no step markers" in note for note in result.notes)


def test_no_breakdown_means_no_deltas_and_a_note() -> None:
    result = compare_runs(A, B_FASTER, [], [])
    assert result.breakdown == ()
    assert result.a.gpu_busy_percent is None
    assert any("no step breakdown for run A and B" in note for note in result.notes)


def test_kernel_diff_per_step_marks_added_removed_and_changed() -> None:
    two_steps = BREAKDOWN_A[:2]
    a = evidence(
        [],
        breakdowns=two_steps,
        kernels=[kernel("sgemm", 10, 12_000.0), kernel("sgemm", 10, 8_000.0),
                 kernel("relu", 20, 2_000.0), kernel("same", 2, 100.0)],
    )  # fmt: skip
    b = evidence(
        [],
        breakdowns=BREAKDOWN_B,  # one whole-trace row: per trace
        kernels=[kernel("sgemm", 10, 4_000.0, tensor_core=True), kernel("flash_fwd", 4, 3_000.0),
                 kernel("same", 1, 50.0)],
    )  # fmt: skip
    rows = {item.name: item for item in diff_kernels(a, b)}
    gemm = rows["sgemm"]
    assert (gemm.change, gemm.a_us_per_step, gemm.b_us_per_step) == ("changed", 10_000.0, 4_000.0)
    assert gemm.delta_us == -6_000.0
    assert (gemm.a_calls_per_step, gemm.b_calls_per_step) == (10.0, 10.0)
    assert (gemm.tensor_core_a, gemm.tensor_core_b) == (False, True)
    assert (rows["relu"].change, rows["relu"].delta_us) == ("removed", -1_000.0)
    assert rows["relu"].tensor_core_b is None
    assert (rows["flash_fwd"].change, rows["flash_fwd"].delta_us) == ("added", 3_000.0)
    assert rows["same"].delta_us == 0.0
    ordered = [item.name for item in diff_kernels(a, b)]
    assert ordered == ["sgemm", "flash_fwd", "relu", "same"]
    assert [item.name for item in diff_kernels(a, b, limit=2)] == ["sgemm", "flash_fwd"]


def verdicts(
    b: RunEvidence, findings_a: list[Finding], findings_b: list[Finding], a: RunEvidence = A
) -> dict[str, tuple[str, str]]:
    result = compare_runs(a, b, findings_a, findings_b)
    return {check.rule: (check.verdict, check.reason) for check in result.findings}


def test_a_fixed_bottleneck_and_a_faster_run_verify_the_finding() -> None:
    found = verdicts(B_FASTER, [finding("input.dataloader", 0.25)], [])
    assert found["input.dataloader"] == ("verified", "gone in B and B is significantly faster")


def test_a_speedup_beyond_the_amdahl_bound_says_other_changes_helped() -> None:
    found = verdicts(B_FASTER, [finding("sync", 0.1)], [])
    verdict, reason = found["sync"]
    assert verdict == "verified"
    assert "1.11x" in reason and "other changes helped too" in reason


def test_a_fraction_halved_counts_as_addressed() -> None:
    found = verdicts(
        B_FASTER, [finding("input.dataloader", 0.3)], [finding("input.dataloader", 0.1)]
    )
    assert found["input.dataloader"][0] == "verified"
    assert "down to 10% of step in B" in found["input.dataloader"][1]


def test_a_fixed_bottleneck_without_a_speedup_refutes_the_finding() -> None:
    found = verdicts(B_SLOWER, [finding("input.dataloader", 0.2)], [])
    verdict, reason = found["input.dataloader"]
    assert verdict == "refuted"
    assert "did not speed up" in reason and "1.25x" in reason


def test_a_finding_still_present_in_b_is_inconclusive() -> None:
    found = verdicts(
        B_FASTER, [finding("input.dataloader", 0.2)], [finding("input.dataloader", 0.15)]
    )
    assert found["input.dataloader"] == (
        "inconclusive",
        "B still has this finding (A 20%, B 15% of step)",
    )


def test_a_wide_interval_holding_one_is_inconclusive() -> None:
    noisy = spread(100_000.0, count=11, relative=0.3)
    a, b = evidence(noisy), evidence(noisy[::-1], run_id="run-b")
    found = verdicts(b, [finding("input.dataloader", 0.2)], [], a=a)
    assert found["input.dataloader"] == (
        "inconclusive",
        "gone in B, but the speed-up's interval holds 1",
    )


def test_a_finding_without_a_predicted_gain_cannot_be_refuted() -> None:
    found = verdicts(B_SLOWER, [finding("memory.unused", None)], [])
    assert found["memory.unused"][0] == "inconclusive"
    assert "predicted no step-time gain" in found["memory.unused"][1]
    still = verdicts(B_FASTER, [finding("memory.unused", None)], [finding("memory.unused", None)])
    assert still["memory.unused"] == ("inconclusive", "B still has this finding")


def test_findings_match_by_rule_and_rank_and_new_ones_are_listed() -> None:
    a_findings = [finding("input.dataloader", 0.2, rank=0)]
    b_findings = [finding("input.dataloader", 0.2, rank=1), finding("precision", 0.3, rank=0)]
    result = compare_runs(A, B_FASTER, a_findings, b_findings)
    check = result.findings[0]
    assert (check.verdict, check.fraction_in_b) == ("verified", None)
    assert check.predicted_max_speedup == pytest.approx(1.25)
    assert check.realized_speedup == pytest.approx(1.25)
    assert check.realized_ci == (result.speedup.ci_low, result.speedup.ci_high)
    assert [item.rule for item in result.new_findings] == ["precision", "input.dataloader"]
    unscoped = compare_runs(A, B_FASTER, [finding("input.dataloader", 0.2, rank=None)], b_findings)
    assert unscoped.findings[0].fraction_in_b == pytest.approx(0.2)
    assert [item.rule for item in unscoped.new_findings] == ["precision"]


def test_a_change_of_batch_size_is_noted() -> None:
    a = evidence(spread(100_000.0), samples=32)
    b = evidence(spread(80_000.0), samples=64)
    result = compare_runs(a, b, [], [])
    assert any("32 samples, of B 64" in note for note in result.notes)


def test_json_shape() -> None:
    a = evidence(spread(100_000.0), breakdowns=BREAKDOWN_A, kernels=[kernel("sgemm", 2, 10.0)])
    b = evidence(spread(80_000.0), breakdowns=BREAKDOWN_B, kernels=[kernel("relu", 2, 10.0)])
    result = compare_runs(a, b, [finding("input.dataloader", 0.2)], [finding("precision", 0.3)])
    document = json.loads(json.dumps(comparison_to_json(result), allow_nan=False))
    assert set(document) == {
        "a", "b", "speedup", "difference_us", "breakdown", "kernels", "findings",
        "new_findings", "notes",
    }  # fmt: skip
    assert set(document["a"]) == {
        "run_id", "name", "steps", "warmup_steps", "sample", "median_us", "mean_us", "p90_us",
        "p99_us", "gpu_busy_percent",
    }  # fmt: skip
    assert set(document["speedup"]) == {
        "median_ratio", "ci_low", "ci_high", "confidence", "resamples", "seed", "verdict",
    }  # fmt: skip
    assert document["speedup"]["verdict"] == "faster"
    assert set(document["difference_us"]) == {"median_b_minus_a", "ci_low", "ci_high"}
    assert document["difference_us"]["median_b_minus_a"] == pytest.approx(-20_000.0)
    assert len(document["breakdown"]) == len(CATEGORIES)
    assert set(document["breakdown"][0]) == {
        "category", "a_us", "b_us", "a_percent", "b_percent", "delta_us", "delta_points",
    }  # fmt: skip
    assert {item["change"] for item in document["kernels"]} == {"added", "removed"}
    assert set(document["findings"][0]) == {
        "rule", "title", "severity", "predicted_time_fraction", "predicted_max_speedup",
        "realized_speedup", "realized_ci", "fraction_in_b", "verdict", "reason",
    }  # fmt: skip
    assert document["findings"][0]["verdict"] == "verified"
    assert document["new_findings"][0]["rule"] == "precision"
    assert isinstance(document["notes"], list)


def test_render_shows_the_headline_breakdown_kernels_and_verdicts() -> None:
    a = evidence(spread(100_000.0), breakdowns=BREAKDOWN_A, kernels=[kernel("sgemm", 2, 10.0)])
    b = evidence(spread(80_000.0), breakdowns=BREAKDOWN_B, kernels=[kernel("relu", 2, 10.0)])
    result = compare_runs(a, b, [finding("input.dataloader", 0.2)], [finding("precision", 0.3)])
    text = render_comparison(result)
    assert text.startswith("B is 1.25x faster than A (median step 100.00 ms -> 80.00 ms; 95% CI")
    assert "per step -20.00 ms" in text
    assert "dataloader" in text and "-20.00 ms" in text and "-17.5" in text
    assert "added" in text and "removed" in text and "relu" in text
    assert "verified     input.dataloader: input.dataloader costs time" in text
    assert "predicted up to 1.25x (20%), realized 1.25x" in text
    assert "New in B" in text and "precision" in text
    same = render_comparison(compare_runs(A, B_SAME, [], []))
    assert same.startswith("no significant change: 1.00x")


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        compare_runs(A, B_SAME, [], [], confidence=1.0)
    with pytest.raises(ValueError):
        compare_runs(A, B_SAME, [], [], resamples=0)
