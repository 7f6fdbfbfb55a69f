"""NVML clock event (throttle) reasons: the bit table and its decoding.

Pure: standard library only. The sampler (throttle events), the status command and the Prometheus
exporter (:mod:`monitor.collector.exporter`) all decode the driver's bitmask here, so a reason has
one name everywhere.

NVML reports why the clocks are below their maximum as a bitmask
(``nvmlDeviceGetCurrentClocksEventReasons``; before NVML 12 it was called
``...ClocksThrottleReasons`` with the same bits). The names here are the NVML constant names
in snake case (``nvmlClocksEventReasonSwThermalSlowdown`` -> ``sw_thermal_slowdown``):

======  ==========================  ========  ==============================================
bit     name                        slowdown  meaning
======  ==========================  ========  ==============================================
0x1     gpu_idle                    no        nothing runs, clocks dropped to save power
0x2     applications_clocks_setting no        capped by the application clocks setting
0x4     sw_power_cap                yes       the power limit is reached (software cap)
0x8     hw_slowdown                 yes       hardware slowdown (thermal, power brake, ...)
0x10    sync_boost                  yes       held down to match the GPUs of a sync group
0x20    sw_thermal_slowdown         yes       a temperature limit is reached (software)
0x40    hw_thermal_slowdown         yes       hardware thermal slowdown (too hot)
0x80    hw_power_brake_slowdown     yes       external power brake (e.g. the PSU asserted it)
0x100   display_clock_setting       no        capped by the display clock setting
======  ==========================  ========  ==============================================

"slowdown" marks the reasons that mean work runs slower than it could (what a user would call
throttling); the others are expected states.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ClockEventReason:
    """One bit of NVML's clock event reasons mask."""

    bit: int
    name: str
    is_slowdown: bool
    description: str


CLOCK_EVENT_REASONS: tuple[ClockEventReason, ...] = (
    ClockEventReason(0x1, "gpu_idle", False, "GPU idle"),
    ClockEventReason(0x2, "applications_clocks_setting", False, "application clocks setting"),
    ClockEventReason(0x4, "sw_power_cap", True, "software power cap"),
    ClockEventReason(0x8, "hw_slowdown", True, "hardware slowdown"),
    ClockEventReason(0x10, "sync_boost", True, "sync boost"),
    ClockEventReason(0x20, "sw_thermal_slowdown", True, "software thermal slowdown"),
    ClockEventReason(0x40, "hw_thermal_slowdown", True, "hardware thermal slowdown"),
    ClockEventReason(0x80, "hw_power_brake_slowdown", True, "hardware power brake slowdown"),
    ClockEventReason(0x100, "display_clock_setting", False, "display clock setting"),
)

CLOCK_EVENT_REASON_NAMES: tuple[str, ...] = tuple(r.name for r in CLOCK_EVENT_REASONS)
KNOWN_MASK: int = sum(r.bit for r in CLOCK_EVENT_REASONS)
SLOWDOWN_MASK: int = sum(r.bit for r in CLOCK_EVENT_REASONS if r.is_slowdown)


def decode_clock_event_reasons(mask: int) -> tuple[str, ...]:
    """The reason names set in ``mask``, lowest bit first.

    A set bit this table does not know (a newer driver) is named ``unknown_0x<bit>`` rather
    than dropped, so nothing the driver said is lost. ``0`` (NVML's "none") gives ``()``.
    Raises ``ValueError`` for a negative mask.
    """
    if mask < 0:
        raise ValueError(f"a clock event reasons mask is never negative, got {mask}")
    names = [r.name for r in CLOCK_EVENT_REASONS if mask & r.bit]
    unknown = mask & ~KNOWN_MASK
    bit = 1
    while unknown:
        if unknown & bit:
            names.append(f"unknown_{bit:#x}")
            unknown &= ~bit
        bit <<= 1
    return tuple(names)


def is_slowdown(mask: int) -> bool:
    """Whether ``mask`` holds a reason that makes work run slower (see the table above)."""
    return bool(mask & SLOWDOWN_MASK)


__all__ = [
    "CLOCK_EVENT_REASONS",
    "CLOCK_EVENT_REASON_NAMES",
    "KNOWN_MASK",
    "SLOWDOWN_MASK",
    "ClockEventReason",
    "decode_clock_event_reasons",
    "is_slowdown",
]
