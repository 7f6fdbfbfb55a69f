"""The Prometheus exporter: exposition text, promtool, and a real Prometheus scrape."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from monitor.collector.exporter import (
    DCGM_SERIES,
    NATIVE_SERIES,
    SKIPPED,
    ExporterSnapshot,
    GpuCollector,
    render,
    serve,
)
from monitor.core.gpu_records import GpuInfo, GpuSample
from monitor.core.metrics import METRICS
from monitor.core.throttle import CLOCK_EVENT_REASON_NAMES

TS = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
MIB = 1 << 20
COUNTERS = {"collected": 40, "written": 30, "dropped": 2, "spooled": 5, "pending": 3}


def gpu(index: int, **facts: Any) -> GpuInfo:
    return GpuInfo(f"GPU-{index}", "node1", TS, index, "NVIDIA H100 80GB HBM3", False, **facts)


def sample(index: int, **metrics: float | int | None) -> GpuSample:
    return GpuSample.from_metrics(f"GPU-{index}", "node1", TS, metrics)


def snapshot(
    *gpus: tuple[GpuInfo, GpuSample | None],
    counters: dict[str, int] | None = None,
    stale_since: float | None = None,
    xid_last: dict[str, int] | None = None,
    xid_total: dict[str, int] | None = None,
    is_simulated: bool = False,
) -> ExporterSnapshot:
    return ExporterSnapshot(
        gpus=tuple(gpus),
        xid_last=xid_last or {},
        xid_total=xid_total or {},
        counters=COUNTERS if counters is None else counters,
        stale_since=stale_since,
        host="node1",
        is_simulated=is_simulated,
    )


def full_sample(index: int) -> GpuSample:
    """Every catalogue metric set, so every exported family appears."""
    return sample(index, **{m.name: 7 if m.is_integer else 7.5 for m in METRICS})


def text_of(snap: ExporterSnapshot, *, dcgm_names: bool = False) -> str:
    return render(lambda: snap, dcgm_names=dcgm_names).decode()


def values(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """(sample name, labels) -> value, via prometheus_client's own parser."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def types(text: str) -> dict[str, str]:
    """Name in ``# TYPE`` lines -> type, as written on the wire."""
    return {
        line.split()[2]: line.split()[3] for line in text.splitlines() if line.startswith("# TYPE")
    }


def sample_names(text: str) -> set[str]:
    return {name for name, _ in values(text)}


def value_of(text: str, name: str, **labels: str) -> float:
    found = [v for (n, lab), v in values(text).items() if n == name and set(labels.items()) <= lab]
    assert len(found) == 1, f"{name}{labels}: {found}"
    return found[0]


NATIVE_LABELS = {
    "host": "node1",
    "uuid": "GPU-0",
    "index": "0",
    "model": "NVIDIA H100 80GB HBM3",
    "simulated": "false",
}


# --- native names -------------------------------------------------------------------------


def test_native_names_labels_and_base_units() -> None:
    text = text_of(
        snapshot(
            (
                gpu(0),
                sample(
                    0,
                    power_watts=312.5,
                    memory_used_bytes=40 * 2**30,
                    temperature_celsius=61.0,
                    utilization_gpu_percent=87.0,
                    sm_clock_mhz=1980.0,
                    pcie_rx_bytes_per_second=1.5e9,
                ),
            )
        )
    )
    labels = frozenset(NATIVE_LABELS.items())
    got = values(text)
    assert got[("gpulens_gpu_power_watts", labels)] == 312.5
    assert got[("gpulens_gpu_memory_used_bytes", labels)] == 40 * 2**30
    assert got[("gpulens_gpu_temperature_celsius", labels)] == 61.0
    assert got[("gpulens_gpu_utilization_gpu_percent", labels)] == 87.0
    assert got[("gpulens_gpu_sm_clock_hertz", labels)] == 1.98e9  # MHz -> hertz
    assert got[("gpulens_gpu_pcie_rx_bytes_per_second", labels)] == 1.5e9
    assert "gpulens_gpu_sm_clock_mhz" not in text


def test_none_is_omitted_never_zero() -> None:
    text = text_of(
        snapshot(
            (gpu(0), sample(0, power_watts=100.0, temperature_celsius=None)),
            (gpu(1), sample(1, power_watts=None, temperature_celsius=55.0)),
            (gpu(2), None),  # no sample yet
        )
    )
    power = {
        dict(lab)["uuid"]: v for (n, lab), v in values(text).items() if n.endswith("power_watts")
    }
    temps = {
        dict(lab)["uuid"]: v
        for (n, lab), v in values(text).items()
        if n == "gpulens_gpu_temperature_celsius"
    }
    assert power == {"GPU-0": 100.0}
    assert temps == {"GPU-1": 55.0}
    assert "gpulens_gpu_fan_speed_percent" not in text  # reported by no GPU: no family at all
    assert 'uuid="GPU-2"' in text  # still listed (info, XID counters) before its first sample
    assert value_of(text, "gpulens_gpu_info", uuid="GPU-2") == 1.0
    assert {n for n, lab in values(text) if ("uuid", "GPU-2") in lab} == {
        "gpulens_gpu_info",
        "gpulens_gpu_xid_errors_total",
        "gpulens_gpu_xid_last_code",
    }


def test_counters_are_counters_and_levels_gauges() -> None:
    text = text_of(snapshot((gpu(0), full_sample(0))))
    wire = types(text)
    assert wire["gpulens_gpu_energy_joules_total"] == "counter"
    assert value_of(text, "gpulens_gpu_energy_joules_total") == 7.5
    for name in (
        "ecc_corrected_volatile",
        "ecc_uncorrected_volatile",
        "retired_pages",
        "remapped_rows_correctable",
        "remapped_rows_uncorrectable",
    ):
        assert wire[f"gpulens_gpu_{name}_total"] == "counter"
    assert wire["gpulens_gpu_retired_pages_pending"] == "gauge"
    assert wire["gpulens_gpu_remapped_rows_pending"] == "gauge"
    assert wire["gpulens_gpu_power_watts"] == "gauge"
    assert wire["gpulens_gpu_xid_errors_total"] == "counter"
    # every counter ends in _total, nothing else does; nothing ends in the reserved _count
    assert all(n.endswith("_total") == (t == "counter") for n, t in wire.items())
    assert not [n for n in wire if n.endswith("_count")]


def test_every_catalogue_metric_is_exported_or_skipped_with_a_reason() -> None:
    exported = {s.attr for s in NATIVE_SERIES}
    for spec in METRICS:
        assert (spec.name in exported) != (spec.name in SKIPPED), spec.name
    assert all(SKIPPED.values())
    text = text_of(snapshot((gpu(0), full_sample(0))))
    assert {s.sample_name for s in NATIVE_SERIES} <= sample_names(text)
    assert "gpulens_gpu_energy_used_joules" not in text


def test_clock_event_reasons_raw_and_decoded() -> None:
    text = text_of(snapshot((gpu(0), sample(0, clock_event_reasons=0x20 | 0x4))))
    assert value_of(text, "gpulens_gpu_clock_event_reasons") == 0x24
    decoded = {
        dict(lab)["reason"]: v
        for (n, lab), v in values(text).items()
        if n == "gpulens_gpu_clock_event_reason"
    }
    assert set(decoded) == set(CLOCK_EVENT_REASON_NAMES)
    assert {r for r, v in decoded.items() if v == 1.0} == {"sw_power_cap", "sw_thermal_slowdown"}
    assert {v for r, v in decoded.items() if r not in ("sw_power_cap", "sw_thermal_slowdown")} == {
        0.0
    }
    assert value_of(text, "gpulens_gpu_clock_event_reason", reason="sw_thermal_slowdown") == 1.0


def test_unknown_mask_gives_no_decoded_series() -> None:
    text = text_of(snapshot((gpu(0), sample(0, power_watts=1.0))))
    assert "gpulens_gpu_clock_event_reason" not in text


def test_collector_health_and_xids() -> None:
    snap = snapshot(
        (gpu(0), sample(0, power_watts=1.0)),
        (gpu(1), sample(1, power_watts=2.0)),
        counters={**COUNTERS, "poll_errors": 4},
        xid_last={"GPU-1": 79},
        xid_total={"GPU-1": 2},
        is_simulated=True,
    )
    text = text_of(snap)
    for state in ("collected", "written", "dropped", "spooled"):
        assert value_of(text, "gpulens_collector_records_total", state=state) == COUNTERS[state]
    assert value_of(text, "gpulens_collector_pending_records") == 3
    assert value_of(text, "gpulens_collector_poll_errors_total") == 4
    assert value_of(text, "gpulens_collector_info", host="node1", simulated="true") == 1
    assert value_of(text, "gpulens_gpu_xid_errors_total", uuid="GPU-1") == 2
    assert value_of(text, "gpulens_gpu_xid_errors_total", uuid="GPU-0") == 0
    assert value_of(text, "gpulens_gpu_xid_last_code", uuid="GPU-1") == 79
    assert types(text)["gpulens_collector_records_total"] == "counter"
    assert "gpulens_collector_stale_since_seconds" not in text
    stale = text_of(snapshot((gpu(0), None), stale_since=1_790_000_000.0))
    assert value_of(stale, "gpulens_collector_stale_since_seconds") == 1_790_000_000.0


def test_simulated_gpus_are_labelled() -> None:
    info = GpuInfo("SIM-0", "node1", TS, 0, "Simulated H100", True)
    text = text_of(snapshot((info, sample(0, power_watts=5.0))), dcgm_names=True)
    assert value_of(text, "gpulens_gpu_info", uuid="SIM-0", simulated="true") == 1
    assert value_of(text, "DCGM_FI_DEV_XID_ERRORS", UUID="SIM-0", simulated="true") == 0


def test_registering_does_not_call_the_snapshot_and_render_is_pure() -> None:
    calls: list[int] = []

    def snap() -> ExporterSnapshot:
        calls.append(1)
        return snapshot((gpu(0), full_sample(0)))

    CollectorRegistry(auto_describe=True).register(GpuCollector(snap))
    assert calls == []
    assert render(snap, dcgm_names=True) == render(snap, dcgm_names=True)
    assert len(calls) == 2


# --- dcgm-exporter names ------------------------------------------------------------------


DCGM_LABELS = {
    "gpu": "0",
    "UUID": "GPU-0",
    "device": "nvidia0",
    "modelName": "NVIDIA H100 80GB HBM3",
    "Hostname": "node1",
    "pci_bus_id": "00000000:0D:00.0",
    "DCGM_FI_DRIVER_VERSION": "580.95.05",
}


def dcgm_text() -> str:
    info = gpu(0, pci_bus_id="00000000:0D:00.0", driver_version="580.95.05")
    s = sample(
        0,
        memory_used_bytes=81_559 * MIB,
        memory_free_bytes=1_024 * MIB + MIB // 2,
        energy_joules=123_456.789,
        power_watts=312.5,
        utilization_gpu_percent=87.0,
        sm_clock_mhz=1980.0,
        pcie_tx_bytes_per_second=2048.0 * 1024,
        gpm_tensor_active_percent=42.0,
        clock_event_reasons=0x4,
        ecc_corrected_volatile_count=3,
    )
    return text_of(snapshot((info, s), xid_last={"GPU-0": 79}), dcgm_names=True)


def test_dcgm_names_only_when_asked() -> None:
    text = text_of(snapshot((gpu(0), full_sample(0))))
    assert "DCGM_" not in text


def test_dcgm_names_units_and_labels() -> None:
    text = dcgm_text()
    got = values(text)
    labels = frozenset({**DCGM_LABELS, "simulated": "false"}.items())
    assert got[("DCGM_FI_DEV_FB_USED", labels)] == 81_559  # MiB
    assert got[("DCGM_FI_DEV_FB_FREE", labels)] == 1_024.5
    assert got[("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", labels)] == pytest.approx(123_456_789)
    assert got[("DCGM_FI_DEV_POWER_USAGE", labels)] == 312.5  # W
    assert got[("DCGM_FI_DEV_GPU_UTIL", labels)] == 87.0  # percent
    assert got[("DCGM_FI_PROF_GR_ENGINE_ACTIVE", labels)] == pytest.approx(0.87)  # ratio
    assert got[("DCGM_FI_DEV_SM_CLOCK", labels)] == 1980.0  # MHz
    assert got[("DCGM_FI_DEV_PCIE_TX_THROUGHPUT", labels)] == 2048.0  # KB/s
    assert got[("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", labels)] == pytest.approx(0.42)
    assert got[("DCGM_FI_DEV_CLOCKS_EVENT_REASONS", labels)] == 4
    assert got[("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", labels)] == 4
    assert got[("DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", labels)] == 3
    assert got[("DCGM_FI_DEV_XID_ERRORS", labels)] == 79
    # the native names are still there
    assert value_of(text, "gpulens_gpu_power_watts") == 312.5


def test_dcgm_types_follow_the_csv_and_names_have_no_suffix() -> None:
    wire = types(dcgm_text())
    dcgm = {n: t for n, t in wire.items() if n.startswith("DCGM_")}
    assert dcgm["DCGM_FI_DEV_GPU_UTIL"] == "gauge"
    assert dcgm["DCGM_FI_DEV_FB_USED"] == "gauge"
    assert dcgm["DCGM_FI_DEV_XID_ERRORS"] == "gauge"
    # counters in dcgm-exporter's csv: untyped, so the name stays without _total
    assert dcgm["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"] == "untyped"
    assert dcgm["DCGM_FI_DEV_PCIE_TX_THROUGHPUT"] == "untyped"
    assert not [n for n in dcgm if n.endswith("_total")]
    assert set(dcgm) <= {s.name for s in DCGM_SERIES} | {"DCGM_FI_DEV_XID_ERRORS"}


def test_dcgm_labels_without_optional_facts() -> None:
    text = text_of(snapshot((gpu(3), sample(3, power_watts=1.0))), dcgm_names=True)
    (labels,) = [
        dict(lab) for (n, lab), _ in values(text).items() if n == "DCGM_FI_DEV_POWER_USAGE"
    ]
    assert labels == {
        "gpu": "3",
        "UUID": "GPU-3",
        "device": "nvidia3",
        "modelName": "NVIDIA H100 80GB HBM3",
        "Hostname": "node1",
        "simulated": "false",
    }


# --- promtool -----------------------------------------------------------------------------


def promtool_problems(promtool: str, text: str) -> list[str]:
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = (result.stdout + result.stderr).splitlines()
    problems = [line for line in lines if line.strip()]
    assert result.returncode in (0, 3), f"promtool failed: {result.returncode} {lines}"
    assert (result.returncode == 0) == (not problems), lines
    return problems


@pytest.mark.prometheus
def test_promtool_native_names_are_clean(require_tool: Any) -> None:
    promtool = require_tool("promtool")
    snap = snapshot(
        (gpu(0), full_sample(0)),
        (gpu(1), None),
        counters={**COUNTERS, "poll_errors": 1},
        stale_since=1_790_000_000.0,
        xid_total={"GPU-0": 1},
    )
    assert promtool_problems(promtool, text_of(snap)) == []


@pytest.mark.prometheus
def test_promtool_dcgm_mode_complains_only_about_dcgm_exporter_labels(require_tool: Any) -> None:
    promtool = require_tool("promtool")
    info = gpu(0, pci_bus_id="00000000:0D:00.0", driver_version="580.95.05")
    problems = promtool_problems(
        promtool, text_of(snapshot((info, full_sample(0))), dcgm_names=True)
    )
    # dcgm-exporter's own label names (modelName) are camelCase; the stock dashboard needs them.
    assert problems
    expected = "label names should be written in 'snake_case' not 'camelCase'"
    assert [p for p in problems if not (p.startswith("DCGM_") and p.endswith(expected))] == []


# --- a real scrape ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str) -> bytes:
    assert url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(url, timeout=5) as response:  # loopback only (asserted above)
        body: bytes = response.read()
    return body


def query(api: str, promql: str) -> list[dict[str, Any]]:
    body = http_get(f"{api}/api/v1/query?{urllib.parse.urlencode({'query': promql})}")
    reply = json.loads(body)
    assert reply["status"] == "success", reply
    result: list[dict[str, Any]] = reply["data"]["result"]
    return result


@pytest.fixture
def exporter() -> Iterator[int]:
    snap = snapshot(
        (
            gpu(0),
            sample(0, power_watts=312.5, memory_used_bytes=2048 * MIB, energy_joules=1000.0),
        )
    )
    server = serve(0, GpuCollector(lambda: snap, dcgm_names=True), registry=CollectorRegistry())
    try:
        assert server.address[0] == "127.0.0.1"
        yield server.port
    finally:
        server.shutdown()


def test_serve_answers_on_loopback(exporter: int) -> None:
    text = http_get(f"http://127.0.0.1:{exporter}/metrics").decode()
    assert value_of(text, "gpulens_gpu_power_watts", **NATIVE_LABELS) == 312.5
    assert value_of(text, "DCGM_FI_DEV_FB_USED") == 2048


@pytest.mark.prometheus
@pytest.mark.slow
def test_real_prometheus_scrapes_the_exporter(
    exporter: int, tmp_path: Path, require_tool: Any
) -> None:
    prometheus = require_tool("prometheus")
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n"
        "  - job_name: gpulens\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{exporter}']\n"
    )
    log_path = tmp_path / "prometheus.log"
    api = f"http://127.0.0.1:{port}"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            power, up, fb, energy = _wait_for_scrape(api, process, log_path)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
    assert float(power["value"][1]) == 312.5
    assert power["metric"]["uuid"] == "GPU-0"
    assert power["metric"]["job"] == "gpulens"
    assert float(up["value"][1]) == 1.0
    assert float(fb["value"][1]) == 2048.0  # MiB
    assert fb["metric"]["gpu"] == "0"
    assert fb["metric"]["Hostname"] == "node1"
    assert float(energy["value"][1]) == 1_000_000.0  # mJ, untyped, name unchanged


def _wait_for_scrape(
    api: str, process: subprocess.Popen[bytes], log_path: Path
) -> tuple[dict[str, Any], ...]:
    deadline = time.monotonic() + 20
    last_error: object = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"prometheus exited {process.returncode}: {log_path.read_text()[-3000:]}")
        try:
            power = query(api, "gpulens_gpu_power_watts")
            up = query(api, 'up{job="gpulens"} == 1')
            fb = query(api, "DCGM_FI_DEV_FB_USED")
            energy = query(api, "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION")
            if power and up and fb and energy:
                return power[0], up[0], fb[0], energy[0]
            last_error = (power, up, fb, energy)
        except OSError as exc:  # not listening yet
            last_error = exc
        time.sleep(0.25)
    pytest.fail(f"no scrape within 20 s ({last_error}): {log_path.read_text()[-3000:]}")
