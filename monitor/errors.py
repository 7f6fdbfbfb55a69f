"""The exception tree of gpulens. Every message says what went wrong and what to do.

::

    GpulensError
    ├── DriverUnavailable      NVML missing, driver not loaded, driver/library mismatch
    ├── GpuLostError           one GPU stopped answering (the others go on)
    ├── ConfigError            a bad option, URL or path given by the user
    ├── TraceError             a profiler trace that cannot be read (truncated, too big, hostile)
    └── StoreError             anything about the database
        ├── StoreUnavailable   the database cannot be reached (collector buffers and spools)
        └── SchemaOutOfDate    the database needs ``gpulens db upgrade``
"""

from __future__ import annotations


class GpulensError(Exception):
    """Base of every error gpulens raises on purpose."""


class DriverUnavailable(GpulensError):
    """The NVIDIA management library cannot be used on this machine."""


class GpuLostError(GpulensError):
    """A GPU fell off the bus or stopped answering."""

    def __init__(self, uuid: str, reason: str) -> None:
        super().__init__(f"GPU {uuid} is not answering: {reason}")
        self.uuid = uuid
        self.reason = reason


class ConfigError(GpulensError):
    """A user-supplied setting is invalid."""


class TraceError(GpulensError):
    """A profiler trace file cannot be read or is over a safety limit."""


class StoreError(GpulensError):
    """The store failed."""


class StoreUnavailable(StoreError):
    """The database cannot be reached right now."""


class SchemaOutOfDate(StoreError):
    """The database schema is older than this gpulens."""
