"""The collector's end of the delivery pipeline: the codec of GPU records, and the pipeline as
the collector builds it (a spool keyed by the store, claiming spools of crashed collectors).

Spool rows are :func:`~monitor.core.gpu_records.record_to_dict` JSON, as before the pipeline
was shared, so a spool file of an older collector replays with ``gpulens collect --spool FILE``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from monitor.core.gpu_records import Record, record_from_dict, record_to_dict
from monitor.pipeline import OneRowPerItem, Pipeline, Spool, safe_name, store_key

log = logging.getLogger(__name__)

SPOOL_MAX_BYTES = 256 * 1024 * 1024


class GpuRecordCodec(OneRowPerItem[Record]):
    """Every record is one row and one counted unit; any records go to the store together."""

    family = "gpu"

    def encode(self, item: Record) -> list[dict[str, Any]]:
        return [record_to_dict(item)]

    def decode(self, row: Mapping[str, Any]) -> Record:
        return record_from_dict(row)


GPU_RECORDS = GpuRecordCodec()


def collector_spool(
    store_url: str,
    host_name: str,
    *,
    directory: Path,
    path: Path | None = None,
    max_bytes: int = SPOOL_MAX_BYTES,
) -> Spool[Record]:
    """The collector's spool: the file ``path`` if the user named one, else its own file in
    ``directory``, keyed by the store, from where it also replays spools of collectors that
    are gone (a crash, a kill)."""
    if path is not None:
        return Spool(path, GPU_RECORDS, max_bytes=max_bytes, claims=False)
    _mention_unkeyed(directory, host_name)
    stem = f"collector-{safe_name(host_name)}"
    key = store_key(GPU_RECORDS.family, store_url)
    return Spool.own(directory, stem, GPU_RECORDS, key=key, max_bytes=max_bytes)


def _mention_unkeyed(directory: Path, host_name: str) -> None:
    # Before spools were keyed by their store, a collector spooled to <host>.jsonl whatever
    # the database; which one it was meant for is unknown, so it is not replayed by itself.
    legacy = directory / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', host_name)}.jsonl"
    if legacy.is_file():
        log.warning(
            "an older collector left records in %s; replay them into the database they were "
            "meant for with `gpulens collect --spool %s --db URL`",
            legacy,
            legacy,
        )


def collector_pipeline(
    spool: Spool[Record],
    *,
    capacity: int = 100_000,
    batch_size: int = 5_000,
    clock: Callable[[], float] | None = None,
) -> Pipeline[Record]:
    """The collector's pipeline: memory goes to the spool at the first failed flush, so a
    kill during an outage loses at most one flush interval."""
    return Pipeline(
        spool,
        capacity=capacity,
        batch_size=batch_size,
        spool_after_s=0.0,
        clock=clock or time.monotonic,
    )


__all__ = [
    "GPU_RECORDS",
    "SPOOL_MAX_BYTES",
    "GpuRecordCodec",
    "collector_pipeline",
    "collector_spool",
]
