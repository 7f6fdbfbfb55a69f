"""The NVML source against a fake pynvml (tests/fake_nvml.py), and once against the real one."""

from __future__ import annotations

import ctypes
import logging
import re
from pathlib import Path

import pynvml
import pytest

from monitor.collector.nvml import NvmlSource
from monitor.collector.procinfo import ProcReader
from monitor.core.errors import DriverUnavailable
from monitor.core.metrics import SOURCE_METRIC_NAMES
from monitor.core.source import Poll, ProcessReading, SystemFacts
from tests.fake_nvml import FakeDevice, FakeNvml

UUID0 = "GPU-00000000-1111-2222-3333-444444444444"
UUID1 = "GPU-11111111-1111-2222-3333-444444444444"
CID = "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899"
GPU_SAMPLES = pynvml.NVML_GPU_UTILIZATION_SAMPLES
MEM_SAMPLES = pynvml.NVML_MEMORY_UTILIZATION_SAMPLES
POWER_SAMPLES = pynvml.NVML_TOTAL_POWER_SAMPLES


def opened(*devices: FakeDevice, proc_root: Path | None = None) -> tuple[FakeNvml, NvmlSource]:
    fake = FakeNvml(list(devices))
    reader = ProcReader(str(proc_root)) if proc_root is not None else ProcReader("/nonexistent")
    source = NvmlSource(fake, reader)
    source.open()
    return fake, source


def metrics(poll: Poll, uuid: str = UUID0) -> dict[str, object]:
    (reading,) = [r for r in poll.readings if r.uuid == uuid]
    return dict(reading.metrics)


# -- lifecycle -------------------------------------------------------------------------------


def test_init_once_across_polls_and_a_second_open() -> None:
    fake, source = opened(FakeDevice(UUID0))
    first = source.open()
    for _ in range(3):
        source.poll()
    assert source.open() is first
    assert fake.init_count == 1
    source.close()
    source.close()
    assert fake.shutdown_count == 1
    assert fake.event_sets_freed == 1


def test_close_frees_gpm_samples_and_a_closed_source_opens_again() -> None:
    fake, source = opened(FakeDevice(UUID0))
    source.poll()
    source.close()
    assert fake.gpm_freed == 2
    source.open()
    assert fake.init_count == 2
    source.close()


def test_poll_before_open_is_a_programming_error() -> None:
    with pytest.raises(RuntimeError, match="open"):
        NvmlSource(FakeNvml([FakeDevice(UUID0)])).poll()


def test_open_reports_devices_and_versions() -> None:
    _, source = opened(FakeDevice(UUID0), FakeDevice(UUID1, index=1, pci_bus_id="00000000:41:00.0"))
    facts = source.open()
    assert isinstance(facts, SystemFacts)
    assert (facts.driver_version, facts.nvml_version) == ("550.54.15", "12.550.54.15")
    assert facts.cuda_driver_version == "12.4"
    first, second = facts.devices
    assert (first.uuid, first.index, first.name) == (UUID0, 0, "NVIDIA H100 80GB HBM3")
    assert (first.pci_bus_id, first.serial) == ("00000000:01:00.0", "1650123456789")
    assert first.memory_total_bytes == 80 * 2**30
    assert first.power_limit_watts == 700.0  # NVML gives 700000 mW
    assert first.compute_capability == "9.0"
    assert first.mig_mode is None  # MIG not supported on this device: unknown, not False
    assert (second.index, second.pci_bus_id) == (1, "00000000:41:00.0")
    assert source.is_simulated is False


def test_no_gpus_is_a_note_not_an_error() -> None:
    _, source = opened()
    facts = source.open()
    assert facts.devices == () and facts.notes == ("NVML found no GPUs on this machine",)
    assert source.poll() == Poll(readings=())


def test_only_monitor_nvml_imports_pynvml() -> None:
    package = Path(__file__).resolve().parent.parent / "monitor"
    importers = {
        path.relative_to(package.parent).as_posix()
        for path in package.rglob("*.py")
        if re.search(r"^\s*(import|from)\s+pynvml\b", path.read_text(), re.MULTILINE)
    }
    assert importers == {"monitor/collector/nvml.py"}


def test_a_device_unreadable_at_open_is_noted_and_skipped() -> None:
    _, source = opened(FakeDevice(UUID0), FakeDevice(UUID1, index=1, lost=True))
    facts = source.open()
    assert [d.uuid for d in facts.devices] == [UUID0]
    assert any("index 1" in note and "GPU is lost" in note for note in facts.notes)


# -- driver unavailable ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (
            pynvml.NVML_ERROR_LIBRARY_NOT_FOUND,
            "NVIDIA driver library (libnvidia-ml.so.1) not found: install the NVIDIA driver, "
            "or run with --simulate N for simulated GPUs",
        ),
        (pynvml.NVML_ERROR_DRIVER_NOT_LOADED, "not loaded"),
        (
            pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH,
            "driver/library version mismatch: the kernel module and libnvidia-ml differ — "
            "reboot or reload the nvidia module",
        ),
        (pynvml.NVML_ERROR_NO_PERMISSION, "no permission"),
        (pynvml.NVML_ERROR_UNKNOWN, "Unknown Error"),
    ],
)
def test_init_failure_is_one_clear_line(code: int, expected: str) -> None:
    fake = FakeNvml([FakeDevice(UUID0)], init_error=code)
    source = NvmlSource(fake)
    with pytest.raises(DriverUnavailable) as raised:
        source.open()
    message = str(raised.value)
    assert expected in message
    assert "\n" not in message
    assert isinstance(raised.value.__cause__, pynvml.NVMLError)
    source.close()  # nothing to shut down: must not call nvmlShutdown
    assert fake.shutdown_count == 0


def _driver_present() -> bool:
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return False
    return True


def test_real_pynvml_without_a_driver_says_so() -> None:
    source = NvmlSource()  # the real pynvml module, no fake
    if _driver_present():
        facts = source.open()  # on a GPU machine: it must simply work
        try:
            assert facts.devices
            assert source.poll().readings
        finally:
            source.close()
        return
    with pytest.raises(DriverUnavailable, match=r"libnvidia-ml\.so\.1\) not found"):
        source.open()


# -- values and units ------------------------------------------------------------------------


def test_units_are_converted_to_the_names_units() -> None:
    device = FakeDevice(UUID0, power_usage_mw=250_500, energy_mj=5_000_250)
    device.pcie_kb_per_second = {
        pynvml.NVML_PCIE_UTIL_TX_BYTES: 100,
        pynvml.NVML_PCIE_UTIL_RX_BYTES: 3,
    }
    _, source = opened(device)
    values = metrics(source.poll())
    assert values["power_watts"] == pytest.approx(250.5)  # mW -> W (instant fallback)
    assert values["power_instant_watts"] == pytest.approx(260.5)
    assert values["power_limit_watts"] == pytest.approx(700.0)
    assert values["energy_joules"] == pytest.approx(5000.25)  # mJ -> J
    assert values["pcie_tx_bytes_per_second"] == 100 * 1024  # KB/s -> B/s
    assert values["pcie_rx_bytes_per_second"] == 3 * 1024
    assert values["memory_used_bytes"] == 10 * 2**30
    assert values["memory_reserved_bytes"] == 2**29
    assert values["memory_total_bytes"] == 80 * 2**30
    assert values["memory_free_bytes"] == 80 * 2**30 - 10 * 2**30 - 2**29
    assert values["temperature_celsius"] == 45
    assert values["temperature_memory_celsius"] == 50
    assert (values["sm_clock_mhz"], values["memory_clock_mhz"]) == (1980, 2619)
    assert values["clock_event_reasons"] == pynvml.nvmlClocksEventReasonSwPowerCap
    assert values["ecc_corrected_volatile_count"] == 3
    assert values["performance_state"] == 0
    assert "energy_used_joules" not in values  # the sampler's job


def test_every_nvml_metric_is_reported_by_name() -> None:
    _, source = opened(FakeDevice(UUID0))
    assert set(metrics(source.poll())) == set(SOURCE_METRIC_NAMES)


def test_every_catalogue_metric_has_an_nvml_reader() -> None:
    # A device that supports everything: a metric of the catalogue that no reader fills would
    # stay None here (GPM needs a baseline sample, hence the second poll).
    device = FakeDevice(UUID0)
    device.gpm_values = dict.fromkeys(
        (
            pynvml.NVML_GPM_METRIC_SM_UTIL,
            pynvml.NVML_GPM_METRIC_SM_OCCUPANCY,
            pynvml.NVML_GPM_METRIC_ANY_TENSOR_UTIL,
            pynvml.NVML_GPM_METRIC_DRAM_BW_UTIL,
        ),
        1.0,
    )
    _, source = opened(device)
    source.poll()
    values = metrics(source.poll())
    assert [name for name in SOURCE_METRIC_NAMES if values[name] is None] == []


def test_retired_pages_and_remapped_rows() -> None:
    device = FakeDevice(UUID0, retired_pending=1, remapped_rows=(4, 1, 1, 0))
    device.retired_pages = {
        pynvml.NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS: [0x1000, 0x2000],
        pynvml.NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR: [0x3000],
    }
    _, source = opened(device)
    values = metrics(source.poll())
    assert (values["retired_pages_count"], values["retired_pages_pending_count"]) == (3, 1)
    assert values["remapped_rows_correctable_count"] == 4
    assert values["remapped_rows_uncorrectable_count"] == 1
    assert values["remapped_rows_pending_count"] == 1


def test_unknown_performance_state_is_none() -> None:
    _, source = opened(FakeDevice(UUID0, pstate=pynvml.NVML_PSTATE_UNKNOWN))
    assert metrics(source.poll())["performance_state"] is None


# -- unsupported, missing, intermittent ------------------------------------------------------


def test_unsupported_metric_is_none_logged_once_and_not_asked_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    device = FakeDevice(UUID0, unsupported={"nvmlDeviceGetFanSpeed"})
    _, source = opened(device)
    with caplog.at_level(logging.INFO, logger="monitor"):
        polls = [source.poll() for _ in range(3)]
    for poll in polls:
        assert metrics(poll)["fan_speed_percent"] is None
        assert metrics(poll)["temperature_celsius"] == 45
        assert poll.error_count == 0 and not poll.lost
    fan_lines = [r for r in caplog.records if "fan_speed_percent" in r.getMessage()]
    assert len(fan_lines) == 1 and fan_lines[0].levelno == logging.INFO
    assert device.calls["nvmlDeviceGetFanSpeed"] == 1


def test_a_device_supporting_nothing_reads_all_none_never_zero() -> None:
    device = FakeDevice(UUID0, power_instant_mw=None, memory_temperature=None)
    _, source = opened(device)
    device.unsupported = {
        name for name in dir(FakeNvml) if name.startswith(("nvmlDevice", "nvmlGpm"))
    }
    device.unsupported.add("nvmlDeviceGetMemoryInfo_v2")
    poll = source.poll()
    assert poll.error_count == 0 and not poll.lost
    assert set(metrics(poll).values()) == {None}


def test_unsupported_field_value_is_none_while_the_other_field_reads() -> None:
    device = FakeDevice(UUID0, memory_temperature=None)
    _, source = opened(device)
    source.poll()
    values = metrics(source.poll())
    assert values["temperature_memory_celsius"] is None
    assert values["power_instant_watts"] == pytest.approx(260.5)


def test_function_not_found_falls_back_to_the_old_throttle_reasons_api() -> None:
    device = FakeDevice(UUID0, missing={"nvmlDeviceGetCurrentClocksEventReasons"})
    _, source = opened(device)
    for _ in range(3):
        assert metrics(source.poll())["clock_event_reasons"] == device.clock_event_reasons
    assert device.calls["nvmlDeviceGetCurrentClocksEventReasons"] == 1  # learnt it is missing
    assert device.calls["nvmlDeviceGetCurrentClocksThrottleReasons"] == 3


def test_function_not_found_without_fallback_is_unsupported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    device = FakeDevice(UUID0, missing={"nvmlDeviceGetRemappedRows"})
    _, source = opened(device)
    with caplog.at_level(logging.INFO, logger="monitor"):
        source.poll()
        poll = source.poll()
    assert metrics(poll)["remapped_rows_correctable_count"] is None
    assert poll.error_count == 0
    assert device.calls["nvmlDeviceGetRemappedRows"] == 1
    assert sum("remapped_rows" in r.getMessage() for r in caplog.records) == 1


def test_memory_info_falls_back_to_v1_on_an_old_driver() -> None:
    device = FakeDevice(UUID0, missing={"nvmlDeviceGetMemoryInfo_v2"})
    _, source = opened(device)
    values = metrics(source.poll())
    assert values["memory_reserved_bytes"] is None  # v1 does not tell
    assert values["memory_used_bytes"] == 10 * 2**30 + 2**29  # v1 counts reserved as used
    assert values["memory_total_bytes"] == 80 * 2**30


def test_intermittent_unknown_errors_are_counted_not_raised() -> None:
    device = FakeDevice(UUID0, unknown_every=2)
    _, source = opened(device, FakeDevice(UUID1, index=1))
    source.poll()  # first calls of each function succeed
    poll = source.poll()  # second calls answer UNKNOWN
    assert poll.error_count > 0 and not poll.lost
    assert metrics(poll)["fan_speed_percent"] is None
    assert metrics(poll, UUID1)["fan_speed_percent"] == 30
    third = source.poll()  # an UNKNOWN is not "unsupported": asked again, and answered
    assert metrics(third)["fan_speed_percent"] == 30
    assert device.calls["nvmlDeviceGetFanSpeed"] == 3


# -- lost and found --------------------------------------------------------------------------


def test_a_lost_gpu_is_reported_and_the_others_still_read(caplog: pytest.LogCaptureFixture) -> None:
    lost = FakeDevice(UUID0)
    _fake, source = opened(lost, FakeDevice(UUID1, index=1))
    source.poll()
    lost.lost = True
    with caplog.at_level(logging.WARNING, logger="monitor"):
        poll = source.poll()
        again = source.poll()
    for each in (poll, again):
        assert set(each.lost) == {UUID0}
        assert "GPU is lost" in each.lost[UUID0]
        assert [r.uuid for r in each.readings] == [UUID1]
        assert metrics(each, UUID1)["temperature_celsius"] == 45
    # the first failing call ends the device's poll: no call after it is made
    assert lost.calls["nvmlDeviceGetMemoryInfo_v2"] == 1
    assert sum("stopped answering" in r.getMessage() for r in caplog.records) == 1


def test_a_lost_gpu_is_found_again_by_uuid_even_at_a_new_index() -> None:
    lost = FakeDevice(UUID0)
    _, source = opened(lost, FakeDevice(UUID1, index=1))
    lost.lost = True
    assert UUID0 in source.poll().lost
    lost.lost = False
    lost.index = 3  # came back at another index
    poll = source.poll()
    assert not poll.lost
    (facts,) = poll.reacquired
    assert (facts.uuid, facts.index) == (UUID0, 3)
    assert metrics(poll)["temperature_celsius"] == 45
    assert source.poll().reacquired == ()


# -- MIG -------------------------------------------------------------------------------------


def test_mig_instances_are_devices_with_their_parent_uuid() -> None:
    child0 = FakeDevice("MIG-aaaa", name="NVIDIA H100 MIG 3g.40gb", memory_total=40 * 2**30)
    child2 = FakeDevice("MIG-bbbb", name="NVIDIA H100 MIG 1g.10gb", memory_total=10 * 2**30)
    parent = FakeDevice(UUID0, mig_mode=pynvml.NVML_DEVICE_MIG_ENABLE)
    parent.mig_slots = [child0, None, child2]  # slot 1 is empty: NOT_FOUND
    _, source = opened(parent)
    facts = source.open()
    assert facts.devices[0].mig_mode is True
    by_uuid = {d.uuid: d for d in facts.devices}
    assert set(by_uuid) == {UUID0, "MIG-aaaa", "MIG-bbbb"}
    assert by_uuid["MIG-aaaa"].parent_uuid == UUID0 and by_uuid["MIG-aaaa"].index == 0
    assert by_uuid["MIG-bbbb"].parent_uuid == UUID0 and by_uuid["MIG-bbbb"].index == 2
    assert by_uuid["MIG-bbbb"].memory_total_bytes == 10 * 2**30
    poll = source.poll()
    assert metrics(poll, "MIG-bbbb")["memory_total_bytes"] == 10 * 2**30
    assert metrics(poll, "MIG-bbbb")["temperature_celsius"] is None
    assert child0.calls["nvmlGpmQueryDeviceSupport"] == 0


# -- processes -------------------------------------------------------------------------------


def _proc(root: Path, pid: int, name: str, cgroup: str) -> None:
    folder = root / str(pid)
    folder.mkdir(parents=True)
    stat = f"{pid} ({name}) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5555 0"
    (folder / "stat").write_text(stat)
    (folder / "comm").write_text(name + "\n")
    (folder / "cgroup").write_text(cgroup)


def test_processes_with_proc_details_and_quiet_none_for_invisible_pids(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _proc(tmp_path, 100, "python3", f"0::/slurm/uid_1000/job_42/step_0/docker-{CID}.scope\n")
    device = FakeDevice(UUID0)
    device.compute_processes = [(100, 4 * 2**30), (200, None)]  # 200: host pid, unseen here
    device.graphics_processes = [(300, 2**20)]
    device.process_samples = [(100, 10, 80, 30), (100, 20, 60, 10), (300, 20, 5, 1)]
    _, source = opened(device, proc_root=tmp_path)
    with caplog.at_level(logging.DEBUG):
        (reading,) = source.poll().readings
    assert reading.processes == (
        ProcessReading(
            pid=100,
            name="python3",
            used_memory_bytes=4 * 2**30,
            sm_percent=70.0,  # mean of the new samples
            memory_percent=20.0,
            process_type="compute",
            container_id=CID,
            cgroup=f"/slurm/uid_1000/job_42/step_0/docker-{CID}.scope",
            slurm_job_id="42",
        ),
        ProcessReading(pid=200, process_type="compute"),
        ProcessReading(
            pid=300,
            used_memory_bytes=2**20,
            sm_percent=5.0,
            memory_percent=1.0,
            process_type="graphics",
        ),
    )
    assert not [r for r in caplog.records if "200" in r.getMessage()]


def test_processes_on_a_pre_r510_driver_use_the_v2_call() -> None:
    device = FakeDevice(UUID0, missing={"nvmlDeviceGetComputeRunningProcesses_v3"})
    device.compute_processes = [(100, 2**20)]
    _, source = opened(device)
    for _ in range(2):
        (process,) = source.poll().readings[0].processes
        assert (process.pid, process.used_memory_bytes) == (100, 2**20)
    assert device.calls["nvmlDeviceGetComputeRunningProcesses"] == 1  # learnt it is missing
    assert device.calls["nvmlDeviceGetComputeRunningProcesses_v2"] == 2


def test_process_utilization_counts_only_new_samples() -> None:
    device = FakeDevice(UUID0)
    device.compute_processes = [(100, 2**20)]
    device.process_samples = [(100, 10, 80, 30)]
    _, source = opened(device)
    assert source.poll().readings[0].processes[0].sm_percent == 80.0
    (process,) = source.poll().readings[0].processes  # nothing new: NOT_FOUND
    assert process.sm_percent is None and process.used_memory_bytes == 2**20
    device.process_samples.append((100, 30, 40, 5))
    assert source.poll().readings[0].processes[0].sm_percent == 40.0


def test_a_process_that_vanished_between_polls_is_quiet(tmp_path: Path) -> None:
    _proc(tmp_path, 100, "python3", "0::/user.slice\n")
    device = FakeDevice(UUID0)
    device.compute_processes = [(100, 2**20)]
    _, source = opened(device, proc_root=tmp_path)
    assert source.poll().readings[0].processes[0].name == "python3"
    for path in (tmp_path / "100").iterdir():
        path.unlink()
    (tmp_path / "100").rmdir()
    assert source.poll().readings[0].processes[0].name is None


# -- the driver's sample buffers -------------------------------------------------------------


def test_sample_buffer_mean_and_max_over_only_the_new_samples() -> None:
    device = FakeDevice(UUID0)
    device.add_samples(GPU_SAMPLES, (1_000, 10), (2_000, 30), (3_000, 50))
    device.add_samples(MEM_SAMPLES, (1_000, 4), (2_000, 6))
    device.add_samples(POWER_SAMPLES, (1_000, 100_000), (2_000, 300_000))  # mW
    _, source = opened(device)
    values = metrics(source.poll())
    assert values["utilization_gpu_percent"] == pytest.approx(30.0)
    assert values["utilization_gpu_max_percent"] == 50
    assert values["utilization_memory_percent"] == pytest.approx(5.0)
    assert values["power_watts"] == pytest.approx(200.0)
    assert values["power_max_watts"] == pytest.approx(300.0)
    device.add_samples(GPU_SAMPLES, (4_000, 90), (5_000, 70))
    device.add_samples(POWER_SAMPLES, (4_000, 400_000))
    device.sample_requests.clear()
    values = metrics(source.poll())
    # NVML is asked only for samples newer than the last one seen
    assert (GPU_SAMPLES, 3_000) in device.sample_requests
    assert (POWER_SAMPLES, 2_000) in device.sample_requests
    assert values["utilization_gpu_percent"] == pytest.approx(80.0)  # not the old 10, 30, 50
    assert values["utilization_gpu_max_percent"] == 90
    assert values["power_watts"] == pytest.approx(400.0)
    # memory had nothing new (NOT_FOUND): the instant rate stands in, and the buffer is asked again
    assert values["utilization_memory_percent"] == 40
    assert device.calls["nvmlDeviceGetUtilizationRates"] >= 1


def test_no_new_samples_is_not_unsupported() -> None:
    device = FakeDevice(UUID0, utilization=(55, 11))
    _, source = opened(device)
    values = metrics(source.poll())
    assert (values["utilization_gpu_percent"], values["utilization_gpu_max_percent"]) == (55, 55)
    assert values["power_watts"] == pytest.approx(250.0)
    before = device.calls["nvmlDeviceGetSamples"]
    device.add_samples(GPU_SAMPLES, (7_000, 99))
    assert metrics(source.poll())["utilization_gpu_percent"] == 99
    assert device.calls["nvmlDeviceGetSamples"] == 2 * before  # still asked every poll


def test_unsupported_samples_fall_back_and_are_not_asked_again() -> None:
    device = FakeDevice(UUID0, unsupported={"nvmlDeviceGetSamples"}, utilization=(12, 34))
    _, source = opened(device)
    for _ in range(2):
        values = metrics(source.poll())
        assert (values["utilization_gpu_percent"], values["utilization_memory_percent"]) == (12, 34)
    assert device.calls["nvmlDeviceGetSamples"] == 3  # once per sample type, then never again


def test_sample_values_are_read_through_the_union_member_of_their_type() -> None:
    device = FakeDevice(UUID0, sample_value_type=pynvml.NVML_VALUE_TYPE_DOUBLE)
    device.add_samples(GPU_SAMPLES, (1_000, 12.5), (2_000, 37.5))
    _, source = opened(device)
    assert metrics(source.poll())["utilization_gpu_percent"] == pytest.approx(25.0)


# -- XID events ------------------------------------------------------------------------------


def test_xids_are_drained_without_blocking() -> None:
    first, second = FakeDevice(UUID0), FakeDevice(UUID1, index=1)
    fake, source = opened(first, second)
    fake.events = [(first, 79), (second, 48), (first, 94)]
    poll = source.poll()
    assert [(x.uuid, x.xid) for x in poll.xids] == [(UUID0, 79), (UUID1, 48), (UUID0, 94)]
    assert set(fake.event_wait_timeouts) == {0}  # never waits
    assert source.poll().xids == ()


def test_xid_events_not_supported_is_a_note() -> None:
    device = FakeDevice(UUID0, unsupported={"nvmlDeviceRegisterEvents"})
    _, source = opened(device)
    facts = source.open()
    assert any("XID events not supported" in note and UUID0 in note for note in facts.notes)
    assert source.poll().readings


# -- GPM -------------------------------------------------------------------------------------


def test_gpm_first_poll_none_then_values_between_samples() -> None:
    device = FakeDevice(UUID0)
    device.gpm_values = {
        pynvml.NVML_GPM_METRIC_SM_UTIL: 61.5,
        pynvml.NVML_GPM_METRIC_SM_OCCUPANCY: 33.0,
        pynvml.NVML_GPM_METRIC_ANY_TENSOR_UTIL: 20.25,
        pynvml.NVML_GPM_METRIC_DRAM_BW_UTIL: 48.0,
    }
    _, source = opened(device)
    assert source.open().notes == ()
    first = metrics(source.poll())
    assert first["gpm_sm_active_percent"] is None and first["gpm_dram_bandwidth_percent"] is None
    second = metrics(source.poll())
    assert second["gpm_sm_active_percent"] == pytest.approx(61.5)
    assert second["gpm_sm_occupancy_percent"] == pytest.approx(33.0)
    assert second["gpm_tensor_active_percent"] == pytest.approx(20.25)
    assert second["gpm_dram_bandwidth_percent"] == pytest.approx(48.0)
    device.gpm_values[pynvml.NVML_GPM_METRIC_SM_UTIL] = 10.0
    assert metrics(source.poll())["gpm_sm_active_percent"] == pytest.approx(10.0)


def test_gpm_unsupported_device_gets_a_note_and_empty_columns() -> None:
    device = FakeDevice(UUID0, name="NVIDIA A10", gpm_supported=False)
    fake, source = opened(device)
    assert source.open().notes == (
        f"GPM metrics not supported on NVIDIA A10 ({UUID0}): gpm_* columns stay empty",
    )
    for _ in range(2):
        assert metrics(source.poll())["gpm_sm_active_percent"] is None
    assert device.calls["nvmlGpmSampleGet"] == 0
    source.close()
    assert fake.gpm_freed == 0
