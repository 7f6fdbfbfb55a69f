"""The ``gpulens status`` document: a stable JSON shape and a text table. Pure.

JSON shape (a contract; extra keys may be added, none removed or renamed)::

    {"gpus": [{"host", "uuid", "index", "name", "simulated", "last_seen",
               "clock_event_reasons_decoded": [...], "metrics": {<column>: value}}],
     "collectors": [{"host", "pid", "state", "health", "simulated", "version",
                     "interval_seconds", "started_at", "heartbeat_at", "stale_since",
                     "counters": {"collected", "written", "dropped", "spooled", "pending",
                                  "poll_errors"}}]}

Metric keys are the raw-sample column names (``utilization_gpu_percent``,
``memory_used_bytes``, ``memory_total_bytes``, ``power_watts``, ``temperature_celsius``,
``sm_clock_mhz``, ...); a value the device does not report is ``null``. Times are ISO 8601 UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from monitor.core.gpu_records import CollectorStatus, LatestGpu
from monitor.core.throttle import decode_clock_event_reasons

# A collector that has not written a heartbeat for this many flush intervals (and at least
# this many seconds) is reported as not reporting.
_SILENT_FLUSHES = 3
_SILENT_MIN_SECONDS = 30.0


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat()


def collector_health(status: CollectorStatus, now: datetime, flush_seconds: float = 5.0) -> str:
    """``ok``, ``stale`` (a poll hung), ``stopped`` or ``not reporting``."""
    if status.state == "stopped":
        return "stopped"
    silent = max(_SILENT_FLUSHES * flush_seconds, _SILENT_MIN_SECONDS)
    if (now - status.heartbeat_at).total_seconds() > silent:
        return "not reporting"
    return "stale" if status.stale_since is not None else "ok"


def status_document(
    latest: Sequence[LatestGpu], collectors: Sequence[CollectorStatus], now: datetime
) -> dict[str, Any]:
    gpus = []
    for item in latest:
        sample = item.sample
        metrics = sample.metrics() if sample else {}
        reasons = metrics.get("clock_event_reasons")
        gpus.append(
            {
                "host": item.gpu.host,
                "uuid": item.gpu.uuid,
                "index": item.gpu.index,
                "name": item.gpu.name,
                "simulated": item.gpu.is_simulated,
                "last_seen": _iso(sample.ts if sample else None),
                "clock_event_reasons_decoded": list(
                    decode_clock_event_reasons(int(reasons)) if reasons is not None else ()
                ),
                "metrics": metrics,
            }
        )
    return {
        "gpus": gpus,
        "collectors": [
            {
                "host": c.host,
                "pid": c.pid,
                "state": c.state,
                "health": collector_health(c, now),
                "simulated": c.is_simulated,
                "version": c.version,
                "interval_seconds": c.interval_seconds,
                "started_at": _iso(c.started_at),
                "heartbeat_at": _iso(c.heartbeat_at),
                "stale_since": _iso(c.stale_since),
                "counters": {
                    "collected": c.collected,
                    "written": c.written,
                    "dropped": c.dropped,
                    "spooled": c.spooled,
                    "pending": c.pending,
                    "poll_errors": c.poll_errors,
                },
            }
            for c in collectors
        ],
    }


def _fmt(value: Any, scale: float = 1.0, digits: int = 0, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value / scale:.{digits}f}{unit}"


def format_status(document: dict[str, Any]) -> str:
    """A plain-text table of the document, for people."""
    lines = []
    header = f"{'HOST':<16} {'IDX':>3} {'GPU':<36} {'UTIL':>5} {'MEMORY':>17} {'POWER':>7} "
    lines.append(header + f"{'TEMP':>5} {'SM CLK':>8}  LAST SEEN")
    for gpu in document["gpus"]:
        m = gpu["metrics"]
        marker = " [simulated]" if gpu["simulated"] else ""
        name = gpu["name"][: 36 - len(marker)] + marker
        memory = f"{_fmt(m.get('memory_used_bytes'), 2**30, 1)}/" + _fmt(
            m.get("memory_total_bytes"), 2**30, 1, " GiB"
        )
        lines.append(
            f"{gpu['host'][:16]:<16} {gpu['index']:>3} {name:<36} "
            f"{_fmt(m.get('utilization_gpu_percent'), unit='%'):>5} {memory:>17} "
            f"{_fmt(m.get('power_watts'), unit=' W'):>7} "
            f"{_fmt(m.get('temperature_celsius'), unit='C'):>5} "
            f"{_fmt(m.get('sm_clock_mhz'), unit=' MHz'):>8}  {gpu['last_seen'] or 'never'}"
        )
    if not document["gpus"]:
        lines.append("(no GPUs yet: start a collector with `gpulens collect`)")
    lines.append("")
    lines.append(
        f"{'COLLECTOR':<16} {'HEALTH':<14} {'COLLECTED':>10} {'WRITTEN':>10} "
        f"{'PENDING':>8} {'SPOOLED':>8} {'DROPPED':>8}  HEARTBEAT"
    )
    for c in document["collectors"]:
        n = c["counters"]
        label = c["host"] + (" [sim]" if c["simulated"] else "")
        lines.append(
            f"{label[:16]:<16} {c['health']:<14} {n['collected']:>10} {n['written']:>10} "
            f"{n['pending']:>8} {n['spooled']:>8} {n['dropped']:>8}  {c['heartbeat_at']}"
        )
    return "\n".join(lines)
