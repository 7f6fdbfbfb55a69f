"""The NVML clock event reasons table and its decoding (pure)."""

from __future__ import annotations

import pytest

from monitor.core.throttle import (
    CLOCK_EVENT_REASON_NAMES,
    CLOCK_EVENT_REASONS,
    KNOWN_MASK,
    SLOWDOWN_MASK,
    decode_clock_event_reasons,
    is_slowdown,
)

# The constants of nvml.h (nvmlClocksEventReason*), written out so a typo in the table shows.
NVML_BITS = {
    "gpu_idle": 0x1,
    "applications_clocks_setting": 0x2,
    "sw_power_cap": 0x4,
    "hw_slowdown": 0x8,
    "sync_boost": 0x10,
    "sw_thermal_slowdown": 0x20,
    "hw_thermal_slowdown": 0x40,
    "hw_power_brake_slowdown": 0x80,
    "display_clock_setting": 0x100,
}


def test_table_matches_nvml_constants() -> None:
    assert {r.name: r.bit for r in CLOCK_EVENT_REASONS} == NVML_BITS
    assert tuple(NVML_BITS) == CLOCK_EVENT_REASON_NAMES
    assert KNOWN_MASK == 0x1FF


def test_bits_are_single_and_distinct() -> None:
    bits = [r.bit for r in CLOCK_EVENT_REASONS]
    assert len(set(bits)) == len(bits)
    assert all(bit & (bit - 1) == 0 for bit in bits)


def test_zero_means_no_reason() -> None:
    assert decode_clock_event_reasons(0) == ()


@pytest.mark.parametrize(("name", "bit"), NVML_BITS.items())
def test_each_bit_decodes_to_its_name(name: str, bit: int) -> None:
    assert decode_clock_event_reasons(bit) == (name,)


def test_several_bits_lowest_first() -> None:
    assert decode_clock_event_reasons(0x20 | 0x4 | 0x1) == (
        "gpu_idle",
        "sw_power_cap",
        "sw_thermal_slowdown",
    )
    assert decode_clock_event_reasons(KNOWN_MASK) == CLOCK_EVENT_REASON_NAMES


def test_unknown_bits_are_named_not_dropped() -> None:
    assert decode_clock_event_reasons(0x400 | 0x4) == ("sw_power_cap", "unknown_0x400")
    assert decode_clock_event_reasons(0x200 | 0x1000) == ("unknown_0x200", "unknown_0x1000")


def test_negative_mask_is_an_error() -> None:
    with pytest.raises(ValueError, match="never negative"):
        decode_clock_event_reasons(-1)


def test_slowdown_reasons() -> None:
    assert not is_slowdown(0)
    assert not is_slowdown(0x1 | 0x2 | 0x100)  # idle and clock settings are expected states
    for bit in (0x4, 0x8, 0x10, 0x20, 0x40, 0x80):
        assert is_slowdown(bit)
    assert SLOWDOWN_MASK == 0xFC
