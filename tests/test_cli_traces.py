"""``gpulens analyze``, ``gpulens import`` and ``gpulens runs`` as real processes."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from tests.cli import gpulens


def small_trace(path: Path, *, rank: int = 0, steps: int = 3, step_us: int = 1000) -> Path:
    events = []
    for n in range(steps):
        t0 = 1_700_000_000_000_000 + n * step_us
        events += [
            {
                "ph": "X",
                "cat": "user_annotation",
                "name": f"ProfilerStep#{n}",
                "pid": 1,
                "tid": 1,
                "ts": t0,
                "dur": step_us,
            },
            {
                "ph": "X",
                "cat": "cuda_runtime",
                "name": "cudaLaunchKernel",
                "pid": 1,
                "tid": 1,
                "ts": t0 + 10,
                "dur": 5,
                "args": {"correlation": n + 1},
            },
            {
                "ph": "X",
                "cat": "kernel",
                "name": "volta_h884gemm_64x64_ldg8_nn",
                "pid": 0,
                "tid": 7,
                "ts": t0 + 20,
                "dur": step_us // 2,
                "args": {"correlation": n + 1, "stream": 7, "device": 0},
            },
        ]
    document = {
        "schemaVersion": 1,
        "deviceProperties": [
            {
                "id": 0,
                "name": "Tesla V100",
                "computeMajor": 7,
                "computeMinor": 0,
                "totalGlobalMem": 32 * 2**30,
            }
        ],
        "distributedInfo": {"rank": rank, "world_size": 2},
        "traceEvents": events,
    }
    with gzip.open(path, "wt") as out:
        json.dump(document, out)
    return path


def test_analyze_prints_the_documented_json(tmp_path: Path) -> None:
    trace = small_trace(tmp_path / "rank0.json.gz")
    done = gpulens(tmp_path, "analyze", str(trace), "--json")
    assert done.returncode == 0, done.stderr
    (rank,) = json.loads(done.stdout)["ranks"]
    assert rank["device"] == "Tesla V100"
    assert [step["step"] for step in rank["steps"]] == [0, 1, 2]
    assert rank["steps"][0]["breakdown_us"]["kernel"] == 500
    assert rank["kernels"][0]["tensor_core"] is True


def test_analyze_reads_a_folder_of_ranks_and_the_text_form_reads_as_a_report(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "job"
    folder.mkdir()
    small_trace(folder / "a.json.gz", rank=0)
    small_trace(folder / "b.json.gz", rank=1, step_us=2000)
    done = gpulens(tmp_path, "analyze", str(folder))
    assert done.returncode == 0, done.stderr
    assert "Rank 0" in done.stdout and "Rank 1" in done.stdout
    assert "Step breakdown" in done.stdout
    assert "Stragglers: rank 1 (+100.0% mean step time)" in done.stdout


def test_a_broken_trace_is_one_clear_line(tmp_path: Path) -> None:
    trace = tmp_path / "cut.json"
    trace.write_text('{"traceEvents": [{"ph": "X", "name": "a", "ts": 1, "dur": 2}, {"ph": "X"')
    done = gpulens(tmp_path, "analyze", str(trace))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("gpulens: ") and len(done.stderr.strip().splitlines()) == 1


def test_import_stores_a_run_that_runs_lists(tmp_path: Path) -> None:
    trace = small_trace(tmp_path / "t.json.gz")
    db = f"sqlite:///{tmp_path / 'g.db'}"
    done = gpulens(tmp_path, "import", str(trace), "--run", "resnet-baseline", "--db", db)
    assert done.returncode == 0, done.stderr
    listed = gpulens(tmp_path, "runs", "--db", db, "--json")
    assert listed.returncode == 0, listed.stderr
    (run,) = json.loads(listed.stdout)["runs"]
    assert run["name"] == "resnet-baseline" and run["status"] == "imported"
    assert run["steps"] == 3
    assert run["mean_step_us"] == 1000
    assert run["gpu_busy_percent"] == 50
    text = gpulens(tmp_path, "runs", "--db", db)
    assert "resnet-baseline" in text.stdout
