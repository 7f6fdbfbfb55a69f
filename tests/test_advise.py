"""``gpulens advise`` and ``gpulens compare`` end to end, and the advisor on the real traces
of ../shared/traces (what it says there is checked by hand and listed in the README)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli import gpulens

from monitor.core.advisor.advice import advise
from monitor.services.gather import evidence_from_trace, gather_run
from monitor.store import Store
from monitor.traces.analyze import analyze_path

FINDING_KEYS = {
    "rule",
    "severity",
    "title",
    "evidence",
    "advice",
    "expected_gain",
    "confidence",
    "scope",
    "thresholds",
    "waste",
    "explained_by",
}

# trace -> (top finding's rule, rules that must be among the findings). Checked by hand
# against each trace; the README's table says why each is true.
EXPECTED = {
    "hta_alexnet_a100.json.gz": ("gpu_underused", {"h2d_copies"}),
    "hta_nccl_parser_a100_rank0.json.gz": ("gpu_underused", set()),
    "hta_ns_resolution_v100.pt.trace.json.gz": ("precision", {"host_sync"}),
    "param_resnet_rtx2080ti.json.gz": ("input_pipeline", {"precision", "h2d_copies"}),
    "tracelens_h100_qwen1.5_0.5b.json.gz": ("host_sync", set()),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_advisor_on_the_shared_traces(shared_traces: dict[str, Path], name: str) -> None:
    (evidence,) = evidence_from_trace(analyze_path(shared_traces[name]))
    findings = advise(evidence)
    top, present = EXPECTED[name]
    assert findings[0].rule == top
    assert present <= {f.rule for f in findings}
    assert findings[0].severity in ("warning", "critical")


def test_symptoms_on_the_resnet_trace_name_their_cause(shared_traces: dict[str, Path]) -> None:
    (evidence,) = evidence_from_trace(analyze_path(shared_traces["param_resnet_rtx2080ti.json.gz"]))
    findings = {f.rule: f for f in advise(evidence)}
    loader = findings["input_pipeline"]
    assert loader.severity == "critical"
    assert loader.evidence["dataloader_wait_percent"] == pytest.approx(41.2, abs=0.1)
    assert findings["gpu_underused"].explained_by == "input_pipeline"
    assert findings["precision"].evidence["compute_capability"] == "7.5"


def test_advise_json_on_a_trace(tmp_path: Path, shared_traces: dict[str, Path]) -> None:
    trace = shared_traces["param_resnet_rtx2080ti.json.gz"]
    done = gpulens(tmp_path, "advise", "--trace", str(trace), "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["subject"] == {"trace": trace.name, "ranks": 1}
    findings = document["findings"]
    assert findings[0]["rule"] == "input_pipeline"
    for finding in findings:
        assert set(finding) == FINDING_KEYS
        assert finding["severity"] in ("info", "warning", "critical")
        assert isinstance(finding["advice"], list) and finding["advice"]
        for used in finding["thresholds"]:
            assert used["source"]
    gain = findings[0]["expected_gain"]
    assert gain["max_speedup"] == pytest.approx(1 / (1 - gain["time_fraction"]))


def test_advise_text_reads_as_a_report(tmp_path: Path, shared_traces: dict[str, Path]) -> None:
    trace = shared_traces["param_resnet_rtx2080ti.json.gz"]
    done = gpulens(tmp_path, "advise", "--trace", str(trace))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[2].startswith("1. [CRITICAL] The step waits for the DataLoader")
    assert "expected gain: up to 1.70x faster steps" in done.stdout
    assert "num_workers" in done.stdout


def test_advise_a_stored_run_saves_its_findings(
    tmp_path: Path, shared_traces: dict[str, Path]
) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    trace = shared_traces["hta_ns_resolution_v100.pt.trace.json.gz"]
    assert gpulens(tmp_path, "import", str(trace), "--run", "v100", "--db", db).returncode == 0
    done = gpulens(tmp_path, "advise", "--run", "v100", "--db", db, "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["subject"]["name"] == "v100"
    rules = [f["rule"] for f in document["findings"]]
    assert rules[0] == "precision"
    store = Store.open(db)
    try:
        run_id = document["subject"]["run_id"]
        stored = store.findings(run_id=run_id)
        assert {item.finding.rule for item in stored} == set(rules)
        assert [f.rule for f in advise(gather_run(store, "v100"))] == rules
    finally:
        store.close()


def test_compare_two_stored_runs(tmp_path: Path, shared_traces: dict[str, Path]) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    for name, file in (
        ("before", "param_resnet_rtx2080ti.json.gz"),
        ("after", "hta_alexnet_a100.json.gz"),
    ):
        done = gpulens(tmp_path, "import", str(shared_traces[file]), "--run", name, "--db", db)
        assert done.returncode == 0, done.stderr
    done = gpulens(tmp_path, "compare", "before", "after", "--db", db, "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["a"]["name"] == "before" and document["b"]["name"] == "after"
    assert {"median_ratio", "ci_low", "ci_high", "verdict"} <= set(document["speedup"])
    checks = {item["rule"]: item for item in document["findings"]}
    assert "input_pipeline" in checks
    assert checks["input_pipeline"]["verdict"] in ("verified", "refuted", "inconclusive")
    assert any("breakdown" in note or "step" in note for note in document["notes"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--threshold", "gpu.nope=1"], "unknown advisor threshold gpu.nope"),
        (["--threshold", "gpu.busy_warning_percent"], "expected NAME=VALUE"),
        (["--run", "no-such-run"], "no run 'no-such-run'"),
        (["--price-per-kwh", "-1"], "cannot be negative"),
    ],
)
def test_advise_refuses_bad_input_clearly(tmp_path: Path, args: list[str], message: str) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    assert gpulens(tmp_path, "db", "upgrade", "--db", db).returncode == 0
    done = gpulens(tmp_path, "advise", "--db", db, *args)
    assert done.returncode == 2
    assert message in done.stderr


def test_advise_on_an_empty_store_says_what_to_run(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    assert gpulens(tmp_path, "db", "upgrade", "--db", db).returncode == 0
    done = gpulens(tmp_path, "advise", "--db", db)
    assert done.returncode == 2
    assert "no runs in the store yet" in done.stderr


def test_advise_lists_its_thresholds(tmp_path: Path) -> None:
    done = gpulens(tmp_path, "advise", "--thresholds")
    assert done.returncode == 0
    assert "input.dataloader_warning_percent" in done.stdout
    assert "torch_tb_profiler" in done.stdout


def test_advise_fleet_finds_idle_gpus_holding_memory(tmp_path: Path) -> None:
    from datetime import datetime, timedelta, timezone

    from monitor.core.gpu_records import GpuInfo, GpuSample, ProcessSample

    db = f"sqlite:///{tmp_path / 'store.db'}"
    now = datetime.now(timezone.utc)
    store = Store.open(db)
    try:
        records: list[object] = [
            GpuInfo(u, "node1", now, i, "H100", False, memory_total_bytes=80 * 1024**3)
            for i, u in enumerate(("GPU-idle", "GPU-busy"))
        ]
        for minute in range(40, -1, -1):
            ts = now - timedelta(minutes=minute)
            for uuid, util in (("GPU-idle", 0.0), ("GPU-busy", 90.0)):
                records.append(
                    GpuSample(uuid, "node1", ts, utilization_gpu_percent=util,
                              memory_used_bytes=20 * 1024**3, power_watts=65.0)
                )  # fmt: skip
        records.append(ProcessSample("GPU-idle", "node1", now, pid=9, name="python notebook"))
        store.write(records)  # type: ignore[arg-type]
    finally:
        store.close()
    done = gpulens(tmp_path, "advise", "--fleet", "--db", db, "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["subject"] == {"fleet": True, "gpus": 2, "hosts": 1}
    (finding,) = document["findings"]
    assert finding["rule"] == "idle_allocated"
    assert finding["scope"]["gpu_uuid"] == "GPU-idle"
    assert finding["evidence"]["processes"][0]["name"] == "python notebook"
    store = Store.open(db)
    try:
        (stored,) = store.findings()
        assert stored.run_id is None and stored.finding.scope.host == "node1"
    finally:
        store.close()
