"""The dashboard's URLs: which page a path names, and its parameters, validated (pure).

Every parameter that reaches a page has passed an allowlist or a strict pattern here; a URL
that fails gets a :class:`RouteError` with a message the page shows (never a stack trace).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote

from monitor.core.metrics import METRIC_NAMES
from monitor.core.run_records import RUN_STATUSES

RANGES: dict[str, int] = {  # name -> seconds
    "15m": 15 * 60,
    "1h": 3600,
    "6h": 6 * 3600,
    "24h": 24 * 3600,
    "7d": 7 * 86400,
    "30d": 30 * 86400,
}
DEFAULT_RANGE = "1h"
FLEET_SORTS = ("host", "utilization", "memory", "power", "temperature", "health")

_UUID = re.compile(r"^(?:GPU|MIG)-[0-9A-Za-z-]{4,80}$")
_RUN_REF = re.compile(r"^[^\x00-\x1f\x7f/\\]{1,200}$")
_TEXT = re.compile(r"^[^\x00-\x1f\x7f]{0,100}$")


class RouteError(ValueError):
    """A URL the dashboard does not serve, or a parameter that failed validation."""


@dataclass(frozen=True, slots=True)
class Route:
    page: str  # fleet, gpu, runs, run, compare, advice
    params: Mapping[str, str] = field(default_factory=dict)


def parse(pathname: str | None, search: str | None = None) -> Route:
    """The page and validated parameters of ``pathname`` + ``search`` (``?a=1&b=2``)."""
    path = (pathname or "/").rstrip("/") or "/"
    query = {k: v[-1] for k, v in parse_qs((search or "").lstrip("?")).items()}
    parts = [unquote(part) for part in path.strip("/").split("/")] if path != "/" else []
    if not parts or parts == ["fleet"]:
        return Route("fleet", _fleet(query))
    head, rest = parts[0], parts[1:]
    if head == "gpu" and len(rest) == 1:
        return Route("gpu", {"uuid": gpu_uuid(rest[0]), "range": range_name(query.get("range"))})
    if head == "runs" and not rest:
        return Route("runs", _runs(query))
    if head == "run" and len(rest) == 1:
        return Route("run", {"run": run_ref(rest[0])})
    if head == "compare" and not rest:
        chosen = {key: run_ref(query[key]) for key in ("a", "b") if query.get(key)}
        return Route("compare", chosen)
    if head == "advice" and not rest:
        return Route("advice", {})
    raise RouteError(f"no page at {path!r}: the pages are /, /gpu/UUID, /runs, /run/ID, "
                     "/compare?a=RUN&b=RUN and /advice")  # fmt: skip


def gpu_uuid(text: str) -> str:
    if not _UUID.match(text):
        raise RouteError("not a GPU UUID (GPU-... or MIG-...)")
    return text


def run_ref(text: str) -> str:
    if not _RUN_REF.match(text):
        raise RouteError("not a run id or name (1-200 printable characters, no slashes)")
    return text


def range_name(text: str | None) -> str:
    if text is None:
        return DEFAULT_RANGE
    if text not in RANGES:
        raise RouteError(f"range must be one of {', '.join(RANGES)}")
    return text


def metric_name(text: str) -> str:
    if text not in METRIC_NAMES:
        raise RouteError(f"unknown metric {text[:40]!r}")
    return text


def _fleet(query: Mapping[str, str]) -> dict[str, str]:
    sort = query.get("sort", "host")
    if sort not in FLEET_SORTS:
        raise RouteError(f"sort must be one of {', '.join(FLEET_SORTS)}")
    return {"sort": sort, "filter": _text(query.get("filter", ""))}


def _runs(query: Mapping[str, str]) -> dict[str, str]:
    status = query.get("status", "")
    if status and status not in RUN_STATUSES:
        raise RouteError(f"status must be one of {', '.join(RUN_STATUSES)}")
    return {"name": _text(query.get("name", "")), "host": _text(query.get("host", "")),
            "status": status}  # fmt: skip


def _text(value: str) -> str:
    if not _TEXT.match(value):
        raise RouteError("filter text: at most 100 printable characters")
    return value
