"""One delivery pipeline for every producer (the collector, the hooks): bounded memory buffer
-> spool file -> exactly-once replay, with counters ``collected == written + dropped +
pending``. A producer brings a :class:`Codec` for its items and a write function for its sink;
see :mod:`monitor.pipeline.delivery` for the rules.
"""

from __future__ import annotations

from monitor.pipeline.codec import Codec, OneRowPerItem
from monitor.pipeline.delivery import Pipeline, Write
from monitor.pipeline.outcome import Counters, Flush
from monitor.pipeline.retry import RETRY_ON
from monitor.pipeline.spool import DEFAULT_MAX_BYTES, Spool
from monitor.pipeline.spool_names import safe_name, store_key

__all__ = [
    "DEFAULT_MAX_BYTES",
    "RETRY_ON",
    "Codec",
    "Counters",
    "Flush",
    "OneRowPerItem",
    "Pipeline",
    "Spool",
    "Write",
    "safe_name",
    "store_key",
]
