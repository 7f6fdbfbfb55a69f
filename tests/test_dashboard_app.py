"""The dashboard's routing, shell and the pure parts of its pages (no browser)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers import T0

from dashboard.routes import RouteError, parse
from monitor.core.gpu_records import CollectorStatus, GpuInfo, GpuSample, LatestGpu

pytest.importorskip("dash")


@pytest.mark.parametrize(
    ("path", "search", "page", "params"),
    [
        ("/", "", "fleet", {"sort": "host", "filter": ""}),
        ("/", "?sort=power&filter=node1", "fleet", {"sort": "power", "filter": "node1"}),
        ("/gpu/GPU-0a1b2c3d-aaaa", "", "gpu", {"uuid": "GPU-0a1b2c3d-aaaa", "range": "1h"}),
        ("/gpu/GPU-0a1b2c3d", "?range=30d", "gpu", {"uuid": "GPU-0a1b2c3d", "range": "30d"}),
        ("/runs", "?status=failed&name=b", "runs", {"name": "b", "host": "", "status": "failed"}),
        ("/run/4f1c2b", "", "run", {"run": "4f1c2b"}),
        ("/compare", "?a=x&b=y", "compare", {"a": "x", "b": "y"}),
        ("/advice/", "", "advice", {}),
    ],
)  # fmt: skip
def test_urls_name_pages_with_validated_parameters(
    path: str, search: str, page: str, params: dict[str, str]
) -> None:
    route = parse(path, search)
    assert (route.page, dict(route.params)) == (page, params)


@pytest.mark.parametrize(
    ("path", "search", "message"),
    [
        ("/etc/passwd", "", "no page at"),
        ("/gpu/..%2F..%2Fetc", "", "not a GPU UUID"),
        ("/gpu/GPU-0a1b2c3d", "?range=1y", "range must be one of"),
        ("/runs", "?status=' OR 1=1 --", "status must be one of"),
        ("/", "?sort=__class__", "sort must be one of"),
        ("/runs", "?name=" + "x" * 101, "at most 100"),
        ("/run/a%2Fb", "", "not a run id"),
        ("/run/%00", "", "not a run id"),
    ],
)
def test_hostile_urls_get_a_clear_error(path: str, search: str, message: str) -> None:
    with pytest.raises(RouteError, match=message):
        parse(path, search)


def _latest(**sample: Any) -> LatestGpu:
    gpu = GpuInfo("GPU-a", "h1", T0, 0, "H100", False, memory_total_bytes=80 * 1024**3)
    values = {"utilization_gpu_percent": 90.0, "memory_used_bytes": 40 * 1024**3, **sample}
    return LatestGpu(gpu, GpuSample("GPU-a", "h1", T0, **values))


def _collector(interval: float = 1.0) -> CollectorStatus:
    return CollectorStatus("h1", 1, "running", False, "0", interval, T0, T0, None, 0, 0, 0, 0, 0, 0)


def test_gpu_health_badges() -> None:
    from dashboard.pages.fleet import gpu_health

    now = T0 + timedelta(seconds=5)
    assert gpu_health(_latest(), _collector(), False, now) == ("ok",)
    assert gpu_health(_latest(), _collector(), True, now) == ("lost",)
    assert "stale" in gpu_health(_latest(), _collector(), False, T0 + timedelta(minutes=2))
    # a 60 s collector interval: a 2-minute-old sample is not stale yet
    assert gpu_health(_latest(), _collector(60.0), False, T0 + timedelta(minutes=2)) == ("ok",)
    assert gpu_health(_latest(clock_event_reasons=0x40), _collector(), False, now) == (
        "throttling",
    )
    idle = _latest(utilization_gpu_percent=0.0, memory_used_bytes=20 * 1024**3)
    assert gpu_health(idle, _collector(), False, now) == ("idle-allocated",)
    empty = _latest(utilization_gpu_percent=0.0, memory_used_bytes=1024**3)
    assert gpu_health(empty, _collector(), False, now) == ("ok",)
    no_sample = dataclasses.replace(_latest(), sample=None)
    assert gpu_health(no_sample, None, False, now) == ("stale",)


def test_the_shell_renders_messages_for_bad_urls_and_a_dead_store(tmp_path: Path) -> None:
    from dashboard.app import banner, create_app, render
    from dashboard.context import PageContext
    from monitor.store import Store

    store = Store.open(f"sqlite:///{tmp_path / 'g.db'}")
    app = create_app(store)
    assert app.server.debug is False
    ctx = PageContext(store)
    assert "no page at" in str(render(ctx, "/nope", ""))
    assert banner(ctx) == ("", {"display": "none"})
    dead = PageContext(Store.open(f"sqlite:///{tmp_path / 'g.db'}"))
    dead.store.engine.dispose()
    (tmp_path / "g.db").unlink()
    (tmp_path / "g.db").mkdir()  # the file is gone and the path cannot be opened
    text, style = banner(dead)
    assert style == {"display": "block"} and "unreachable" in text
    assert "The database is unreachable" in str(render(dead, "/runs", ""))
    store.close()


def test_the_fleet_renders_at_midnight_exactly(tmp_path: Path) -> None:
    # "energy today" asks for midnight..now, an empty range at midnight itself.
    from datetime import datetime, timezone

    from helpers import facts_records

    from dashboard.app import render
    from dashboard.context import PageContext
    from monitor.store import Store

    store = Store.open(f"sqlite:///{tmp_path / 'g.db'}")
    store.write(facts_records())  # type: ignore[arg-type]
    midnight = datetime(2026, 11, 23, tzinfo=timezone.utc)
    page = str(render(PageContext(store, now=lambda: midnight), "/", ""))
    assert "energy today" in page and "Traceback" not in page
    store.close()
