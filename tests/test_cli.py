"""The ``gpulens`` command end to end: real processes, a real SQLite file, real signals."""

from __future__ import annotations

import json
import socket
import time
import urllib.request

import pytest

from tests.cli import gpulens, gpulens_running, stop_gpulens

REQUIRED_METRICS = {
    "utilization_gpu_percent",
    "memory_used_bytes",
    "memory_total_bytes",
    "power_watts",
    "temperature_celsius",
    "sm_clock_mhz",
}


def nvml_driver_present() -> bool:
    import pynvml

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return False
    pynvml.nvmlShutdown()
    return True


def test_collect_simulated_then_status_json(tmp_path) -> None:
    db = f"sqlite:///{tmp_path / 'g.db'}"
    run = gpulens(
        tmp_path,
        "collect",
        "--simulate",
        "2",
        "--duration",
        "3",
        "--interval",
        "0.5",
        "--flush-interval",
        "1",
        "--db",
        db,
        "--host-name",
        "cli-host",
    )
    assert run.returncode == 0, run.stderr
    assert "SIMULATED" in run.stderr
    status = gpulens(tmp_path, "status", "--json", "--db", db)
    assert status.returncode == 0, status.stderr
    document = json.loads(status.stdout)
    assert len(document["gpus"]) == 2
    for gpu in document["gpus"]:
        assert gpu["simulated"] is True and gpu["host"] == "cli-host"
        assert gpu["uuid"].startswith("GPU-") and gpu["last_seen"]
        assert set(gpu["metrics"]) >= REQUIRED_METRICS
        assert gpu["metrics"]["memory_total_bytes"] > 0
    (collector,) = document["collectors"]
    counters = collector["counters"]
    assert collector["state"] == "stopped" and collector["health"] == "stopped"
    assert counters["collected"] == counters["written"] > 0 and counters["pending"] == 0
    table = gpulens(tmp_path, "status", "--db", db)
    assert "[simulated]" in table.stdout and "cli-host" in table.stdout


def test_collect_without_a_driver_says_what_to_do_in_one_line(tmp_path) -> None:
    if nvml_driver_present():
        pytest.skip("an NVIDIA driver is present on this machine")
    run = gpulens(tmp_path, "collect", "--duration", "1", "--db", f"sqlite:///{tmp_path / 'g.db'}")
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert "libnvidia-ml" in lines[0] and "--simulate" in lines[0]


def test_no_driver_falls_back_to_labelled_simulated_gpus_when_asked(tmp_path) -> None:
    if nvml_driver_present():
        pytest.skip("an NVIDIA driver is present on this machine")
    run = gpulens(tmp_path, "collect", "--simulate-if-no-driver", "1", "--duration", "1")
    assert run.returncode == 0, run.stderr
    assert "using 1 SIMULATED GPUs instead" in run.stderr
    assert (tmp_path / "data" / "gpulens" / "gpulens.db").exists()  # the embedded default


def test_a_bad_database_url_is_a_usage_error(tmp_path) -> None:
    run = gpulens(tmp_path, "collect", "--simulate", "1", "--db", "nonsense://")
    assert run.returncode == 2
    assert run.stderr.startswith("gpulens: ") and "Traceback" not in run.stderr


def test_status_without_a_database_says_how_to_get_one(tmp_path) -> None:
    run = gpulens(tmp_path, "status")
    assert run.returncode == 1
    assert "no gpulens database" in run.stderr and "gpulens collect" in run.stderr


def test_db_upgrade_creates_then_reports_current(tmp_path) -> None:
    db = f"sqlite:///{tmp_path / 'u.db'}"
    first = gpulens(tmp_path, "db", "upgrade", "--db", db)
    second = gpulens(tmp_path, "db", "upgrade", "--db", db)
    assert first.returncode == second.returncode == 0
    assert "upgraded from empty" in first.stdout and "already at revision" in second.stdout


def test_an_unreachable_database_spools_and_exits_cleanly(tmp_path) -> None:
    spool = tmp_path / "spool.jsonl"
    run = gpulens(
        tmp_path,
        "collect",
        "--simulate",
        "1",
        "--duration",
        "2",
        "--interval",
        "0.5",
        "--flush-interval",
        "0.5",
        "--spool",
        str(spool),
        "--db",
        "postgresql+psycopg://nobody@127.0.0.1:1/none",
    )
    assert run.returncode == 0, run.stderr
    assert "collecting anyway" in run.stderr
    records = [json.loads(line) for line in spool.read_text().splitlines()]
    assert any(r["type"] == "GpuSample" for r in records)
    assert records[-1]["kind"] == "collector_stop"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sigterm_flushes_and_exits_zero_while_serving_metrics(tmp_path) -> None:
    db = f"sqlite:///{tmp_path / 'g.db'}"
    port = free_port()
    with gpulens_running(
        tmp_path,
        "collect",
        "--simulate",
        "2",
        "--interval",
        "0.5",
        "--db",
        db,
        "--metrics-port",
        str(port),
        "--dcgm-names",
    ) as process:
        body = ""
        deadline = time.monotonic() + 60
        while "gpulens_gpu_power_watts{" not in body and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    body = r.read().decode()
            except OSError:
                time.sleep(0.2)
        assert "gpulens_gpu_power_watts{" in body and "DCGM_FI_DEV_FB_USED{" in body
        output = stop_gpulens(process)
    assert process.returncode == 0, output
    document = json.loads(gpulens(tmp_path, "status", "--json", "--db", db).stdout)
    (collector,) = document["collectors"]
    assert collector["state"] == "stopped" and collector["counters"]["pending"] == 0
