"""The one door every NVML call of a poll goes through.

NVML answers most questions with an error code instead of a value: a device that lacks a
sensor says ``NOT_SUPPORTED`` on every call, an old driver lacks whole functions, a busy
driver sometimes says ``UNKNOWN``, and a GPU that fell off the bus says ``GPU_IS_LOST``.
:class:`CallGuard` turns each of these into what the layers above expect:

=========================================  ==================================================
NVML says                                  the guard
=========================================  ==================================================
``NOT_SUPPORTED``, ``NO_PERMISSION``       ``None``; logged once at INFO, never asked again
``FUNCTION_NOT_FOUND`` (old driver)        the next fallback function, else as NOT_SUPPORTED
``NOT_FOUND``, ``NO_DATA``                 ``None`` ("nothing new"), not counted as an error
``GPU_IS_LOST``, ``UNINITIALIZED``, ...    raises :class:`DeviceLost` for the whole device
anything else (``UNKNOWN``, ``TIMEOUT``)   ``None``, counted in :attr:`CallGuard.error_count`
=========================================  ==================================================

The pynvml module is passed in (``lib``); this module never imports it.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["CallGuard", "DeviceLost"]

log = logging.getLogger(__name__)

# An intermittent error of one (device, reading) is logged the first time and then once
# every this many times, so a flaky sensor cannot flood the log.
_ERROR_LOG_EVERY = 100

# Codes after which the device handle is dead until found again by UUID.
_LOST_CODES = ("GPU_IS_LOST", "UNINITIALIZED", "GPU_NOT_FOUND", "RESET_REQUIRED")
_UNSUPPORTED_CODES = ("NOT_SUPPORTED", "NO_PERMISSION")
_NO_DATA_CODES = ("NOT_FOUND", "NO_DATA")
# A newer versioned function the driver does not have: try the older one.
_MISSING_CODES = ("FUNCTION_NOT_FOUND", "ARGUMENT_VERSION_MISMATCH")


class DeviceLost(Exception):
    """A call found the device gone; the caller stops reading it this poll."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _codes(lib: Any, names: tuple[str, ...]) -> frozenset[int]:
    # Older pynvml releases lack some codes (GPU_NOT_FOUND arrived late): skip those.
    return frozenset(
        getattr(lib, f"NVML_ERROR_{name}") for name in names if hasattr(lib, f"NVML_ERROR_{name}")
    )


class CallGuard:
    """Calls NVML functions by name, turning NVML errors into values (see the module doc).

    ``call(uuid, reading, (name, *args), (fallback_name, *args), ...)`` tries each attempt in
    order, moving on only when the function is missing from the driver or binding.
    ``reading`` names what is being read (a metric, or a group such as ``"memory"``); a
    ``(uuid, reading)`` that proved unsupported is skipped from then on.
    """

    def __init__(self, lib: Any) -> None:
        self._lib = lib
        self._lost = _codes(lib, _LOST_CODES)
        self._unsupported = _codes(lib, _UNSUPPORTED_CODES)
        # pynvml's nvmlDeviceGetProcessUtilization raises NVMLError(NVML_SUCCESS) when the
        # driver has no sample at all: that too is "nothing new".
        self._no_data = _codes(lib, _NO_DATA_CODES) | {lib.NVML_SUCCESS}
        # pynvml's unversioned wrappers raise this (not an NVMLError) for FUNCTION_NOT_FOUND.
        self._mismatch: type[Exception] | tuple[()] = getattr(lib, "NVMLLibraryMismatchError", ())
        self._missing = _codes(lib, _MISSING_CODES)
        self._unsupported_readings: set[tuple[str, str]] = set()
        # (reading, attempt position) found missing from the driver: library-wide, not per GPU.
        self._missing_attempts: set[tuple[str, int]] = set()
        self._error_counts: dict[tuple[str, str], int] = {}
        self.error_count = 0

    def start_poll(self) -> None:
        """Reset :attr:`error_count` for a new poll."""
        self.error_count = 0

    def is_unsupported(self, uuid: str, reading: str) -> bool:
        """Whether ``reading`` already proved unsupported on the device ``uuid``."""
        return (uuid, reading) in self._unsupported_readings

    def mark_unsupported(self, uuid: str, reading: str, why: str) -> None:
        """Remember ``reading`` as unsupported on ``uuid``, saying so once at INFO."""
        if (uuid, reading) not in self._unsupported_readings:
            self._unsupported_readings.add((uuid, reading))
            log.info("GPU %s: %s not available (%s); reported as empty", uuid, reading, why)

    def call(self, uuid: str, reading: str, *attempts: tuple[Any, ...]) -> Any:
        """The first attempt's result that NVML gives, or ``None`` (see the class doc).

        Raises :class:`DeviceLost` when NVML says the device is gone.
        """
        if self.is_unsupported(uuid, reading):
            return None
        for number, (name, *args) in enumerate(attempts):
            function = getattr(self._lib, name, None)
            # Keyed by position, not name: one wrapper can front two C functions
            # (nvmlDeviceGetMemoryInfo with a version calls nvmlDeviceGetMemoryInfo_v2).
            if function is None or (reading, number) in self._missing_attempts:
                continue
            try:
                return function(*args)
            except self._mismatch:
                self._missing_attempts.add((reading, number))
            except self._lib.NVMLError as error:
                if error.value not in self._missing:
                    return self._absorb(uuid, reading, error)
                self._missing_attempts.add((reading, number))
        self.mark_unsupported(uuid, reading, "the driver lacks the function")
        return None

    def _absorb(self, uuid: str, reading: str, error: Any) -> None:
        code = error.value
        if code in self._lost:
            raise DeviceLost(f"{reading}: {_describe(error)}")
        if code in self._unsupported:
            self.mark_unsupported(uuid, reading, _describe(error))
        elif code not in self._no_data:
            self.error_count += 1
            key = (uuid, reading)
            seen = self._error_counts.get(key, 0)
            self._error_counts[key] = seen + 1
            if seen % _ERROR_LOG_EVERY == 0:
                log.debug(
                    "GPU %s: %s failed (%s), %d time(s) so far",
                    uuid,
                    reading,
                    _describe(error),
                    seen + 1,
                )
        return None


def _describe(error: Any) -> str:
    # NVMLError.__str__ asks the C library for unknown codes, which fails without a driver.
    try:
        return str(error)
    except Exception:
        return f"NVML error {getattr(error, 'value', '?')}"
