"""The seeded-bottleneck suite on the CPU: real training scripts with the hooks attached, each
with one injected bottleneck and a clean twin. The advisor's top finding must be the injected
bottleneck, and no clean twin may raise a warning-level finding."""

from __future__ import annotations

from pathlib import Path

import pytest

from examples.bottlenecks.detection import Detection, detect, render_table, run_name
from examples.bottlenecks.suite import CASES, VARIANTS, Case, run_case
from monitor.services.runs import current_findings
from monitor.store import Store

CPU_CASES = [case for case in CASES if case.shows_on_cpu]
STEPS = 60

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def suite_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    folder = tmp_path_factory.mktemp("suite")
    url = f"sqlite:///{folder / 'suite.db'}"
    for case in CPU_CASES:
        for variant in VARIANTS:
            run_case(
                case,
                variant,
                device="cpu",
                steps=STEPS,
                db=url,
                run_name=run_name(case, variant),
                trace_dir=str(folder / "traces"),
            )
    return Store.open(url)


@pytest.mark.parametrize("case", CPU_CASES, ids=lambda case: case.name)
def test_the_top_finding_is_the_injected_bottleneck(suite_store: Store, case: Case) -> None:
    found: Detection = detect(suite_store, case)
    if case.expected_rule is None:
        assert found.top_rule is None or found.top_severity == "info", found
    else:
        assert found.top_rule == case.expected_rule, found
        assert found.top_severity in ("warning", "critical")
        assert found.predicted_speedup is not None and found.predicted_speedup > 1.0
    assert found.clean_warnings == (), f"the clean twin of {case.name} warns: {found}"


def test_the_detection_table_renders(suite_store: Store) -> None:
    table = render_table([detect(suite_store, case) for case in CPU_CASES], "cpu")
    assert table.count("\n| ") == len(CPU_CASES) + 1
    assert "starved_dataloader | input_pipeline | input_pipeline" in table


def test_the_gpu_only_cases_are_declared() -> None:
    gpu_only = {case.name for case in CASES if not case.shows_on_cpu}
    assert gpu_only == {"host_sync", "launch_bound", "pageable_h2d", "fp32_gemm", "memory_limit"}


def test_suite_runs_from_the_repository_root() -> None:
    assert (Path(__file__).resolve().parent.parent / "examples" / "bottlenecks").is_dir()


def test_a_runs_findings_are_computed_on_first_read_and_stored(suite_store: Store) -> None:
    # The training job runs no advisor: the first reader (CLI or dashboard) computes the
    # findings from every window and stores them, for the next reader.
    name = "starved_dataloader-bottleneck"
    (run,) = [r for r in suite_store.runs(name_like=name) if r.name == name]
    current = current_findings(suite_store, run.run_id)
    assert current.stored and current.findings[0].rule == "input_pipeline"
    stored = suite_store.findings(run_id=run.run_id)
    assert stored[0].finding.rule == "input_pipeline"
    assert stored[0].run_name == name


def test_batch_to_forward_time_is_recorded_with_watch_model(suite_store: Store) -> None:
    times = {}
    for variant in VARIANTS:
        name = f"cpu_preprocessing-{variant}"
        (run,) = [r for r in suite_store.runs(name_like=name) if r.name == name]
        steps = suite_store.steps(run.run_id)[10:]
        shares = [s.pre_forward_us / s.duration_us for s in steps if s.pre_forward_us is not None]
        assert len(shares) == len(steps)
        times[variant] = sorted(shares)[len(shares) // 2]
    assert times["bottleneck"] > 0.3
    assert times["clean"] < 0.05
