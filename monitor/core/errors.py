"""The exception tree of gpulens. Every message says what went wrong and what to do.

::

    GpulensError
    ├── DriverUnavailable      NVML missing, driver not loaded, driver/library mismatch
    ├── ConfigError            a bad option, URL or path given by the user
    ├── TraceError             a profiler trace that cannot be read (truncated, too big, hostile)
    ├── SessionError           profiler hooks used the wrong way (two sessions, a reused one)
    └── StoreError             anything about the database
        ├── StoreUnavailable   the database cannot be reached (collector buffers and spools)
        ├── StoreFileReplaced  the SQLite file was deleted or replaced while it was open
        └── SchemaOutOfDate    the database needs ``gpulens db upgrade``

A GPU that stops answering is not an exception: the collector records it as a ``lost`` event
and goes on with the other GPUs. A metric a device does not support is ``None``, not an error.
"""

from __future__ import annotations


class GpulensError(Exception):
    """Base of every error gpulens raises on purpose."""


class DriverUnavailable(GpulensError):
    """The NVIDIA management library cannot be used on this machine."""


class ConfigError(GpulensError):
    """A user-supplied setting is invalid."""


class TraceError(GpulensError):
    """A profiler trace file cannot be read or is over a safety limit."""


class SessionError(GpulensError):
    """A session used the wrong way (a second session while one is open, a closed one
    reused, a loader whose iteration cannot be measured)."""


class StoreError(GpulensError):
    """The store failed."""


class StoreUnavailable(StoreError):
    """The database cannot be reached right now."""


class StoreFileReplaced(StoreError):
    """The SQLite file the store opened is no longer at its path (deleted, moved or replaced):
    what was just written went to a file nobody will read. Open the store again (a new file)
    and write it again."""


class SchemaOutOfDate(StoreError):
    """The database schema is older than this gpulens."""
