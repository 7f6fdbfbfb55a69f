"""The seeded-bottleneck suite on the CPU: real training scripts with the hooks attached, each
with one injected bottleneck and a clean twin. The advisor's top finding must be the injected
bottleneck, and no clean twin may raise a warning-level finding."""

from __future__ import annotations

from pathlib import Path

import pytest

from examples.bottlenecks.detection import Detection, detect, render_table, run_name
from examples.bottlenecks.suite import CASES, VARIANTS, Case, run_case
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
