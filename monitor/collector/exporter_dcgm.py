"""dcgm-exporter's names, units and labels, for the exporter's ``--dcgm-names`` mode.

``dcgm_names=True`` (``--dcgm-names``) also exports dcgm-exporter's names, units and labels,
so NVIDIA's stock Grafana dashboard (grafana.com id 12239, ``grafana/dcgm-exporter-dashboard
.json``) works unchanged. Checked against NVIDIA/dcgm-exporter ``etc/default-counters.csv``,
``etc/dcp-metrics-included.csv`` and the dashboard: labels are ``gpu`` (index), ``UUID``,
``pci_bus_id``, ``device`` (``nvidia<index>``), ``modelName``, ``Hostname`` and, where known,
``DCGM_FI_DRIVER_VERSION`` (plus our ``simulated``); the dashboard filters on ``instance``
(added by Prometheus), ``Hostname`` and ``gpu``. Units: FB_* in MiB, TOTAL_ENERGY_CONSUMPTION
in mJ, POWER_* in W, clocks in MHz, temperatures in C, *_UTIL in percent, PROF_* as ratios
0..1, PCIE_*_THROUGHPUT in KB/s (NVML's ``nvmlDeviceGetPcieThroughput`` unit, KB = 1024 bytes;
the csv's help says "(in KB)" but the value is the driver's 20 ms rate). XID_ERRORS is the last
XID code. DCGM_FI_PROF_GR_ENGINE_ACTIVE (the current dashboard's "GPU Utilization" panel) is
derived from NVML's utilization.gpu / 100, which is not a DCP measurement (HELP says so).
Types: the csv's gauges are gauges. Its counters (energy, ECC, remapped rows, retired
pending, PCIe throughput) are exported *untyped*: dcgm-exporter writes ``# TYPE ... counter``
with no ``_total`` suffix, which prometheus_client cannot produce (its counters always end in
``_total``; in OpenMetrics, which Prometheus negotiates, a counter sample must), and a gauge
would claim the wrong semantics. Names stay byte-identical; ``rate()`` works on untyped series.
promtool flags dcgm-exporter's camelCase label ``modelName``; it is kept, as existing queries
written for dcgm-exporter use it. The full name list is :data:`DCGM_TABLE` (plus
:data:`DCGM_XID_NAME`); :mod:`monitor.collector.exporter` turns it into ``DCGM_SERIES``.
Not mapped: RETIRED_SBE/DBE (the catalogue keeps one total), ENC/DEC_UTIL, NVLink, MIG
labels ``GPU_I_ID``/``GPU_I_PROFILE``.
"""

from __future__ import annotations

from typing import Literal

from monitor.core.gpu_records import GpuInfo
from monitor.core.metrics import METRICS_BY_NAME

__all__ = [
    "DCGM_TABLE",
    "DCGM_XID_HELP",
    "DCGM_XID_NAME",
    "DcgmType",
    "dcgm_help",
    "dcgm_labels",
]

_MIB = float(1 << 20)
_NVML_KB = 1024.0  # NVML's PCIe throughput is KB/s with KB = 1024 bytes (as nvitop reads it)

DcgmType = Literal["gauge", "untyped"]
"""The exposition type of a dcgm-exporter series (``untyped`` for the csv's counters)."""

_U: DcgmType = "untyped"  # a counter in dcgm-exporter's csv: see the module docstring
_G: DcgmType = "gauge"
DCGM_TABLE: tuple[tuple[str, str, DcgmType, float, str], ...] = (
    # (catalogue metric, dcgm-exporter name, type, scale, dcgm-exporter's unit)
    ("utilization_gpu_percent", "DCGM_FI_DEV_GPU_UTIL", _G, 1, "%"),
    ("utilization_memory_percent", "DCGM_FI_DEV_MEM_COPY_UTIL", _G, 1, "%"),
    ("memory_used_bytes", "DCGM_FI_DEV_FB_USED", _G, 1 / _MIB, "MiB"),
    ("memory_free_bytes", "DCGM_FI_DEV_FB_FREE", _G, 1 / _MIB, "MiB"),
    ("memory_reserved_bytes", "DCGM_FI_DEV_FB_RESERVED", _G, 1 / _MIB, "MiB"),
    ("memory_total_bytes", "DCGM_FI_DEV_FB_TOTAL", _G, 1 / _MIB, "MiB"),
    ("power_watts", "DCGM_FI_DEV_POWER_USAGE", _G, 1, "W"),
    ("power_instant_watts", "DCGM_FI_DEV_POWER_USAGE_INSTANT", _G, 1, "W"),
    ("power_limit_watts", "DCGM_FI_DEV_POWER_MGMT_LIMIT", _G, 1, "W"),
    ("energy_joules", "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", _U, 1000, "mJ"),
    ("temperature_celsius", "DCGM_FI_DEV_GPU_TEMP", _G, 1, "C"),
    ("temperature_memory_celsius", "DCGM_FI_DEV_MEMORY_TEMP", _G, 1, "C"),
    ("sm_clock_mhz", "DCGM_FI_DEV_SM_CLOCK", _G, 1, "MHz"),
    ("memory_clock_mhz", "DCGM_FI_DEV_MEM_CLOCK", _G, 1, "MHz"),
    ("fan_speed_percent", "DCGM_FI_DEV_FAN_SPEED", _G, 1, "%"),
    ("performance_state", "DCGM_FI_DEV_PSTATE", _G, 1, ""),
    ("pcie_tx_bytes_per_second", "DCGM_FI_DEV_PCIE_TX_THROUGHPUT", _U, 1 / _NVML_KB, "KB/s"),
    ("pcie_rx_bytes_per_second", "DCGM_FI_DEV_PCIE_RX_THROUGHPUT", _U, 1 / _NVML_KB, "KB/s"),
    ("clock_event_reasons", "DCGM_FI_DEV_CLOCKS_EVENT_REASONS", _G, 1, ""),
    ("clock_event_reasons", "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", _G, 1, ""),
    ("ecc_corrected_volatile_count", "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", _U, 1, ""),
    ("ecc_uncorrected_volatile_count", "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", _U, 1, ""),
    ("retired_pages_pending_count", "DCGM_FI_DEV_RETIRED_PENDING", _U, 1, ""),
    ("remapped_rows_correctable_count", "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", _U, 1, ""),
    ("remapped_rows_uncorrectable_count", "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", _U, 1, ""),
    ("gpm_sm_active_percent", "DCGM_FI_PROF_SM_ACTIVE", _G, 0.01, "ratio"),
    ("gpm_sm_occupancy_percent", "DCGM_FI_PROF_SM_OCCUPANCY", _G, 0.01, "ratio"),
    ("gpm_tensor_active_percent", "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", _G, 0.01, "ratio"),
    ("gpm_dram_bandwidth_percent", "DCGM_FI_PROF_DRAM_ACTIVE", _G, 0.01, "ratio"),
    # The stock dashboard's "GPU Utilization" panel reads this name; not a DCP measurement.
    ("utilization_gpu_percent", "DCGM_FI_PROF_GR_ENGINE_ACTIVE", _G, 0.01, "ratio"),
)
"""Every mapped series: (catalogue metric, dcgm-exporter name, type, scale, unit)."""

DCGM_XID_NAME = "DCGM_FI_DEV_XID_ERRORS"
"""dcgm-exporter's name for the last XID code of a GPU (0 = none)."""
DCGM_XID_HELP = "Value of the last XID error."
"""dcgm-exporter's HELP text for :data:`DCGM_XID_NAME`."""


def dcgm_help(attr: str, name: str, unit: str) -> str:
    """The HELP text of one dcgm-exporter series: the catalogue's help and its unit."""
    text = METRICS_BY_NAME[attr].help + (f", in {unit}" if unit else "")
    if name == "DCGM_FI_PROF_GR_ENGINE_ACTIVE":
        text += ". Derived from NVML utilization.gpu / 100, not a DCP measurement"
    return text


def dcgm_labels(info: GpuInfo) -> dict[str, str]:
    """dcgm-exporter's labels of one GPU (plus ``simulated``); optional facts where known."""
    labels = {
        "gpu": str(info.index),
        "UUID": info.uuid,
        "device": f"nvidia{info.index}",
        "modelName": info.name,
        "Hostname": info.host,
        "simulated": "true" if info.is_simulated else "false",
    }
    if info.pci_bus_id is not None:
        labels["pci_bus_id"] = info.pci_bus_id
    if info.driver_version is not None:
        labels["DCGM_FI_DRIVER_VERSION"] = info.driver_version
    return labels
