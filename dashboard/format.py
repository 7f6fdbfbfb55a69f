"""Text with units for the dashboard's cards and tables (pure: no Dash, no clock).

Every formatter takes the value in the unit its name says and returns a short string with the
unit; ``None`` (and NaN) reads "n/a": the device does not support the metric, or it was not
measured. Never 0: a missing metric is not a zero.

Metric names carry their unit as a suffix (:mod:`monitor.core.metrics`); :func:`metric_value_text`
and :func:`metric_label` read it from there, and :func:`metric_scale` says how to turn a stored
value into the unit :func:`metric_label` names (bytes are shown in GiB, energy in kJ).
"""

from __future__ import annotations

import math

NOT_AVAILABLE = "n/a"

_BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
_JOULES_PER_KWH = 3.6e6

# suffix -> (axis unit, stored units per axis unit); the longest suffix first.
_UNIT_SUFFIXES: tuple[tuple[str, str, float], ...] = (
    ("_bytes_per_second", "MiB/s", float(2**20)),
    ("_bytes", "GiB", float(2**30)),
    ("_watts", "W", 1.0),
    ("_celsius", "°C", 1.0),
    ("_mhz", "MHz", 1.0),
    ("_percent", "%", 1.0),
    ("_joules", "kJ", 1e3),
    ("_count", "", 1.0),
)

_LABELS: dict[str, str] = {
    "utilization_gpu_percent": "GPU utilization",
    "utilization_gpu_max_percent": "GPU utilization (peak)",
    "utilization_memory_percent": "Memory controller utilization",
    "utilization_memory_max_percent": "Memory controller utilization (peak)",
    "memory_used_bytes": "Memory used",
    "memory_free_bytes": "Memory free",
    "memory_reserved_bytes": "Memory reserved",
    "memory_total_bytes": "Memory total",
    "power_watts": "Power",
    "power_max_watts": "Power (peak)",
    "power_instant_watts": "Power (instant)",
    "power_limit_watts": "Power limit",
    "energy_joules": "Energy since driver load",
    "energy_used_joules": "Energy used",
    "temperature_celsius": "Temperature",
    "temperature_memory_celsius": "Memory temperature",
    "sm_clock_mhz": "SM clock",
    "memory_clock_mhz": "Memory clock",
    "graphics_clock_mhz": "Graphics clock",
    "fan_speed_percent": "Fan speed",
    "performance_state": "Performance state",
    "pcie_tx_bytes_per_second": "PCIe transmit",
    "pcie_rx_bytes_per_second": "PCIe receive",
    "clock_event_reasons": "Clock event reasons",
    "ecc_corrected_volatile_count": "ECC errors, corrected",
    "ecc_uncorrected_volatile_count": "ECC errors, uncorrected",
    "retired_pages_count": "Retired pages",
    "retired_pages_pending_count": "Retired pages pending",
    "remapped_rows_correctable_count": "Remapped rows, correctable",
    "remapped_rows_uncorrectable_count": "Remapped rows, uncorrectable",
    "remapped_rows_pending_count": "Remapped rows pending",
    "gpm_sm_active_percent": "SM active",
    "gpm_sm_occupancy_percent": "SM occupancy",
    "gpm_tensor_active_percent": "Tensor core active",
    "gpm_dram_bandwidth_percent": "DRAM bandwidth",
}


def _missing(value: float | None) -> bool:
    return value is None or math.isnan(value)


def bytes_text(n: float | None) -> str:
    """``n`` bytes in binary units: "512 B", "1.5 KiB", "12.3 GiB", "123 GiB"."""
    if n is None or _missing(float(n)):
        return NOT_AVAILABLE
    size, unit = float(n), _BINARY_UNITS[0]
    for unit in _BINARY_UNITS:
        if abs(size) < 1024 or unit == _BINARY_UNITS[-1]:
            break
        size /= 1024
    if unit == "B":
        return f"{size:,.0f} B"
    return f"{size:.1f} {unit}" if abs(size) < 100 else f"{size:,.0f} {unit}"


def watts_text(w: float | None) -> str:
    """Power: "245 W"."""
    return NOT_AVAILABLE if _missing(w) else f"{w:,.0f} W"


def celsius_text(c: float | None) -> str:
    """Temperature: "67 °C"."""
    return NOT_AVAILABLE if _missing(c) else f"{c:,.0f} °C"


def mhz_text(m: float | None) -> str:
    """Clock: "1,980 MHz"."""
    return NOT_AVAILABLE if _missing(m) else f"{m:,.0f} MHz"


def percent_text(p: float | None) -> str:
    """Share: "42 %"."""
    return NOT_AVAILABLE if _missing(p) else f"{p:,.0f} %"


def duration_us_text(us: float | None) -> str:
    """A duration given in µs: "3.2 µs", "850 µs", "12.3 ms", "4.20 s", "3 min 20 s",
    "2 h 5 min"."""
    if us is None or _missing(us):
        return NOT_AVAILABLE
    sign, us = ("-" if us < 0 else ""), abs(us)
    if round(us, 1) < 10:
        return f"{sign}{us:.1f} µs"
    if round(us) < 1000:
        return f"{sign}{us:.0f} µs"
    if round(us / 1e3, 1) < 1000:
        return f"{sign}{us / 1e3:.1f} ms"
    if round(us / 1e6, 2) < 60:
        return f"{sign}{us / 1e6:.2f} s"
    seconds = round(us / 1e6)
    if seconds < 3600:
        return f"{sign}{seconds // 60} min {seconds % 60} s"
    minutes = round(seconds / 60)
    return f"{sign}{minutes // 60:,} h {minutes % 60} min"


def energy_text(joules: float | None) -> str:
    """Energy: "850 J", "12.5 kJ", and "3.4 kWh" from 1 kWh on."""
    if joules is None or _missing(joules):
        return NOT_AVAILABLE
    if abs(joules) >= _JOULES_PER_KWH:
        return f"{joules / _JOULES_PER_KWH:,.1f} kWh"
    if round(abs(joules)) >= 1000:
        return f"{joules / 1e3:,.1f} kJ"
    return f"{joules:.0f} J"


def ago_text(seconds: float | None) -> str:
    """How long ago: "just now" (under a second, or a clock slightly ahead), "12 s ago",
    "3 min ago", "2 h ago", "5 d ago"."""
    if seconds is None or _missing(seconds):
        return NOT_AVAILABLE
    if seconds < 1:
        return "just now"
    whole = int(seconds)  # floored: "59 s ago" until a full minute has passed
    if whole < 60:
        return f"{whole} s ago"
    if whole < 3600:
        return f"{whole // 60} min ago"
    if whole < 86400:
        return f"{whole // 3600} h ago"
    return f"{whole // 86400:,} d ago"


def _unit_of(name: str) -> tuple[str, str, float] | None:
    for suffix, unit, scale in _UNIT_SUFFIXES:
        if name.endswith(suffix):
            return suffix, unit, scale
    return None


def metric_label(name: str) -> tuple[str, str]:
    """A metric's label and the unit its figures use, from its name:
    ``"utilization_gpu_percent"`` -> ``("GPU utilization", "%")``; bytes -> ``"GiB"``,
    bytes per second -> ``"MiB/s"``, joules -> ``"kJ"``; no unit suffix -> ``""``."""
    found = _unit_of(name)
    unit = found[1] if found else ""
    label = _LABELS.get(name)
    if label is None:
        stem = name.removesuffix(found[0]) if found else name
        label = stem.replace("_", " ").strip().capitalize() or name
    return label, unit


def metric_scale(name: str) -> float:
    """What a stored value of metric ``name`` is divided by to read in :func:`metric_label`'s
    unit (``2**30`` for ``_bytes``, 1 for watts)."""
    found = _unit_of(name)
    return found[2] if found else 1.0


def metric_value_text(name: str, value: float | None) -> str:
    """``value`` of metric ``name`` as text, formatted by the unit suffix of the name."""
    if value is None or _missing(float(value)):
        return NOT_AVAILABLE
    found = _unit_of(name)
    suffix = found[0] if found else ""
    if suffix == "_bytes_per_second":
        return f"{bytes_text(value)}/s"
    formatter = {
        "_bytes": bytes_text,
        "_watts": watts_text,
        "_celsius": celsius_text,
        "_mhz": mhz_text,
        "_percent": percent_text,
        "_joules": energy_text,
    }.get(suffix)
    if formatter is not None:
        return formatter(value)
    if suffix == "_count" or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.3g}"


__all__ = [
    "NOT_AVAILABLE",
    "ago_text",
    "bytes_text",
    "celsius_text",
    "duration_us_text",
    "energy_text",
    "metric_label",
    "metric_scale",
    "metric_value_text",
    "mhz_text",
    "percent_text",
    "watts_text",
]
