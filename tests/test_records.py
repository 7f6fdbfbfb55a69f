"""One GPU record family: the metric catalogue, the record fields and the table columns agree,
the sampler's records are built by name from what a source tells, and the spool's JSON shape
is the one older collectors wrote."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone
from typing import Any

import pytest
from sqlalchemy import BigInteger, Float

from monitor.core import metrics as catalogue
from monitor.core.gpu_records import (
    GpuInfo,
    GpuSample,
    ProcessSample,
    _told_fields,
    gpu_info,
    process_sample,
    record_from_dict,
    record_to_dict,
)
from monitor.core.metrics import METRIC_NAMES, METRICS, SAMPLE_KEY, SOURCE_METRIC_NAMES
from monitor.core.source import DeviceFacts, ProcessReading
from monitor.store.schema import gpu_rollups_1m, gpu_samples

TS = datetime(2026, 11, 22, 12, 0, 5, tzinfo=timezone.utc)


def test_the_sample_record_is_its_key_then_the_catalogue_in_order() -> None:
    fields = dataclasses.fields(GpuSample)
    assert tuple(f.name for f in fields) == SAMPLE_KEY + METRIC_NAMES
    types = {f.name: f.type for f in fields}
    for spec in METRICS:
        assert types[spec.name] == ("int | None" if spec.is_integer else "float | None")


def test_the_gpu_samples_columns_are_the_catalogue_in_order() -> None:
    columns = list(gpu_samples.columns)
    assert {c.name for c in columns if c.primary_key} == {"uuid", "ts"}
    metric_columns = [c for c in columns if c.name not in SAMPLE_KEY]
    assert [c.name for c in metric_columns] == list(METRIC_NAMES)
    assert {c.name for c in columns} == {f.name for f in dataclasses.fields(GpuSample)}
    for column, spec in zip(metric_columns, METRICS, strict=True):
        assert isinstance(column.type, BigInteger if spec.is_integer else Float), spec.name


def test_every_rolled_up_metric_has_its_rollup_columns() -> None:
    rollup_names = {c.name for c in gpu_rollups_1m.columns}
    for spec in METRICS:
        wanted = {catalogue.rollup_column(spec.name, a) for a in spec.aggregates}
        assert wanted <= rollup_names, spec.name
        assert bool(wanted) == (spec.kind != "bitmask"), spec.name


def test_sources_read_every_metric_but_the_derived_ones() -> None:
    derived = [spec.name for spec in METRICS if spec.is_derived]
    # Each derived metric is computed in monitor.collector.sampler: a new one needs code there.
    assert derived == ["energy_used_joules"]
    assert tuple(n for n in METRIC_NAMES if n not in derived) == SOURCE_METRIC_NAMES


def test_a_sample_field_without_a_catalogue_entry_is_refused() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Untyped:
        uuid: str
        host: str
        ts: datetime
        power_watts: float | None = None  # no gauge(...): kind and help unknown

    @dataclasses.dataclass(frozen=True, slots=True)
    class Stringly:
        uuid: str
        host: str
        ts: datetime
        power_watts: str | None = catalogue.gauge("Board power")

    @dataclasses.dataclass(frozen=True, slots=True)
    class Keyless:
        host: str
        ts: datetime
        power_watts: float | None = catalogue.gauge("Board power")

    assert catalogue._catalogue(GpuSample) == METRICS
    for record, problem in (
        (Untyped, "Untyped.power_watts: a metric field"),
        (Stringly, "Stringly.power_watts: a metric field"),
        (Keyless, "must start with its key"),
    ):
        with pytest.raises(TypeError, match=problem):
            catalogue._catalogue(record)


def test_records_are_frozen_and_slotted() -> None:
    sample = GpuSample("GPU-a", "h1", TS, power_watts=1.0)
    assert not hasattr(sample, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        sample.power_watts = 2.0  # type: ignore[misc]


def every_field_set(cls: type, **overrides: Any) -> Any:
    """An instance of ``cls`` with a distinct, non-default value in every field."""
    values: dict[str, Any] = {}
    for n, f in enumerate(dataclasses.fields(cls)):
        kind = str(f.type)
        if kind.startswith("bool"):
            values[f.name] = True
        elif kind.startswith("int"):
            values[f.name] = 100 + n
        elif kind.startswith("float"):
            values[f.name] = 100.5 + n
        else:
            values[f.name] = f"{f.name}-{n}"
    return cls(**{**values, **overrides})


def test_gpu_info_carries_every_fact_the_source_told_by_name() -> None:
    device = every_field_set(DeviceFacts)
    info = gpu_info(
        device,
        host="h1",
        ts=TS,
        is_simulated=True,
        driver_version="550.54.15",
        cuda_driver_version="12.4",
    )
    for f in dataclasses.fields(DeviceFacts):
        assert getattr(info, f.name) == getattr(device, f.name), f.name
    assert (info.host, info.ts, info.is_simulated) == ("h1", TS, True)
    assert (info.driver_version, info.cuda_driver_version) == ("550.54.15", "12.4")


def test_process_sample_carries_every_field_the_source_told_by_name() -> None:
    process = every_field_set(ProcessReading)
    sample = process_sample(process, uuid="GPU-a", host="h1", ts=TS)
    for f in dataclasses.fields(ProcessReading):
        assert getattr(sample, f.name) == getattr(process, f.name), f.name
    assert (sample.uuid, sample.host, sample.ts) == ("GPU-a", "h1", TS)


def test_a_source_type_that_drifts_from_its_record_is_refused() -> None:
    told = [
        (f.name, f.type, dataclasses.field(default=f.default))
        for f in dataclasses.fields(ProcessReading)
    ]
    # A field the source would tell but process_samples has no column for:
    extra = ("numa_node", "int | None", dataclasses.field(default=None))
    drifted = dataclasses.make_dataclass("ProcessWithExtra", [*told, extra], frozen=True)
    reordered = dataclasses.make_dataclass(
        "ProcessReordered", [told[0], told[2], told[1], *told[3:]]
    )

    assert _told_fields(ProcessReading, ProcessSample, ("uuid", "host", "ts"))
    with pytest.raises(TypeError, match="numa_node"):
        _told_fields(drifted, ProcessSample, ("uuid", "host", "ts"))
    with pytest.raises(TypeError, match="in order"):
        _told_fields(reordered, ProcessSample, ("uuid", "host", "ts"))


# Lines as the collector's spool wrote them before the catalogue became the sample's fields.
OLD_SPOOL_LINES = (
    '{"type": "GpuSample", "uuid": "GPU-a", "host": "h1", "ts": "2026-11-22T12:00:05+00:00", '
    '"utilization_gpu_percent": null, "utilization_gpu_max_percent": null, '
    '"utilization_memory_percent": null, "utilization_memory_max_percent": null, '
    '"memory_used_bytes": 1073741824, "memory_free_bytes": null, "memory_reserved_bytes": null, '
    '"memory_total_bytes": null, "power_watts": 301.5, "power_max_watts": null, '
    '"power_instant_watts": null, "power_limit_watts": null, "energy_joules": null, '
    '"energy_used_joules": null, "temperature_celsius": null, '
    '"temperature_memory_celsius": null, "sm_clock_mhz": null, "memory_clock_mhz": null, '
    '"graphics_clock_mhz": null, "fan_speed_percent": null, "performance_state": null, '
    '"pcie_tx_bytes_per_second": null, "pcie_rx_bytes_per_second": null, '
    '"clock_event_reasons": 4, "ecc_corrected_volatile_count": null, '
    '"ecc_uncorrected_volatile_count": null, "retired_pages_count": null, '
    '"retired_pages_pending_count": null, "remapped_rows_correctable_count": null, '
    '"remapped_rows_uncorrectable_count": null, "remapped_rows_pending_count": null, '
    '"gpm_sm_active_percent": null, "gpm_sm_occupancy_percent": null, '
    '"gpm_tensor_active_percent": null, "gpm_dram_bandwidth_percent": null}',
    '{"type": "GpuInfo", "uuid": "GPU-a", "host": "h1", "ts": "2026-11-22T12:00:05+00:00", '
    '"index": 0, "name": "NVIDIA H100 80GB HBM3", "is_simulated": false, "pci_bus_id": null, '
    '"serial": null, "memory_total_bytes": 85899345920, "power_limit_watts": null, '
    '"compute_capability": null, "driver_version": null, "cuda_driver_version": null, '
    '"mig_mode": false, "parent_uuid": null}',
    '{"type": "ProcessSample", "uuid": "GPU-a", "host": "h1", '
    '"ts": "2026-11-22T12:00:05+00:00", "pid": 4242, "name": "python", '
    '"used_memory_bytes": 1073741824, "sm_percent": 95.0, "memory_percent": null, '
    '"process_type": "compute", "container_id": null, "cgroup": null, "slurm_job_id": null}',
)
OLD_SPOOL_RECORDS = (
    GpuSample("GPU-a", "h1", TS, power_watts=301.5, memory_used_bytes=2**30, clock_event_reasons=4),
    GpuInfo(
        "GPU-a",
        "h1",
        TS,
        0,
        "NVIDIA H100 80GB HBM3",
        False,
        memory_total_bytes=80 * 2**30,
        mig_mode=False,
    ),
    ProcessSample(
        "GPU-a", "h1", TS, 4242, "python", 2**30, sm_percent=95.0, process_type="compute"
    ),
)


@pytest.mark.parametrize(
    ("line", "record"), list(zip(OLD_SPOOL_LINES, OLD_SPOOL_RECORDS, strict=True))
)
def test_old_spool_lines_decode_and_the_shape_is_unchanged(line: str, record: Any) -> None:
    assert record_from_dict(json.loads(line)) == record
    assert json.dumps(record_to_dict(record)) == line
